package hostedui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/session"
)

// recorder is an http.ResponseWriter that keeps an FDI handler's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

// answer is an FDI endpoint's answer.
type answer struct {
	Code int
	// Status is the body's status field (OK, WRONG_CREDENTIALS_ERROR, ...), empty for an
	// answer without one (a 4xx {"message"}).
	Status string
	// Message is the body's message field.
	Message string
	Body    map[string]json.RawMessage
}

// str returns a string field of the body.
func (a answer) str(field string) string {
	var s string
	_ = json.Unmarshal(a.Body[field], &s)
	return s
}

// call is one browser request being served, with the access token the browser holds now: a
// call that changes the session's tokens updates it for the calls after it.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	access string
}

func (u *UI) newCall(w http.ResponseWriter, r *http.Request) *call {
	c := &call{w: w, r: r}
	if ck, err := r.Cookie(contract.CookieAccessToken); err == nil {
		c.access = ck.Value
	}
	return c
}

// fdi hands one action to the core's FDI endpoint method path with a JSON body, in process,
// as the browser (cookie transport, the browser's address for the audit log). The cookies the
// endpoint sets are passed on to the browser.
func (u *UI) fdi(c *call, method, path string, body any) (answer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return answer{}, fmt.Errorf("encode %s %s: %w", method, path, err)
	}
	req, err := http.NewRequestWithContext(c.r.Context(), method, path, bytes.NewReader(raw))
	if err != nil {
		return answer{}, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.RemoteAddr = c.r.RemoteAddr
	req.Host = c.r.Host
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(contract.HeaderAuthMode, string(session.TransportCookie))
	// The form's CSRF token was checked; rid is what the FDI asks of cookie requests when
	// cookies are SameSite=None.
	req.Header.Set("rid", accountapi.HostedUIRecipeID)
	if fwd := c.r.Header.Get("X-Forwarded-For"); fwd != "" {
		req.Header.Set("X-Forwarded-For", fwd)
	}
	if c.access != "" {
		req.AddCookie(&http.Cookie{Name: contract.CookieAccessToken, Value: c.access})
	}
	rec := &recorder{header: http.Header{}}
	u.opts.Core.ServeHTTP(rec, req)
	for _, sc := range rec.header.Values("Set-Cookie") {
		c.w.Header().Add("Set-Cookie", sc)
		if ck, err := http.ParseSetCookie(sc); err == nil && ck.Name == contract.CookieAccessToken {
			c.access = ck.Value
			if ck.MaxAge < 0 {
				c.access = ""
			}
		}
	}
	a := answer{Code: rec.status, Body: map[string]json.RawMessage{}}
	if a.Code == 0 {
		a.Code = http.StatusOK
	}
	if strings.HasPrefix(rec.header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.body.Bytes(), &a.Body); err != nil {
			return answer{}, fmt.Errorf("%s %s answered %d with a body that is not a JSON object: %w", method, path, a.Code, err)
		}
	}
	a.Status, a.Message = a.str("status"), a.str("message")
	if a.Code >= 500 {
		return a, fmt.Errorf("%s %s answered %d: %s", method, path, a.Code, a.Message)
	}
	return a, nil
}
