package httpkit_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"

	"github.com/twofold-dev/twofold/core/httpkit"
)

type signIn struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Remember bool   `json:"remember"`
}

// answer is what a handler answered: its status and JSON body.
type answer struct {
	status int
	body   map[string]any
}

func decodeWith(t *testing.T, strict bool, body string) (bool, signIn, answer) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/auth/signin", strings.NewReader(body))
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, httpkit.MaxBodyBytes)
	var v signIn
	decode := httpkit.Decode
	if strict {
		decode = httpkit.DecodeStrict
	}
	ok := decode(w, r, &v)
	a := answer{status: w.Code}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("the answer is not JSON: %q", w.Body.String())
		}
	}
	return ok, v, a
}

func TestBadRequestBodiesGetASpecificAnswer(t *testing.T) {
	for _, tc := range []struct {
		name          string
		strict        bool
		body          string
		status        int
		field, prefix string
	}{
		{name: "an empty body asks for a JSON object", body: "", status: 400, prefix: "request body is empty: send a JSON object"},
		{name: "a body cut short says it ends too early", body: `{"email":"a@b.c"`, status: 400, prefix: "request body is not valid JSON: it ends too early"},
		{name: "a syntax error names the byte it is at", body: `{"email":,}`, status: 400, prefix: "request body is not valid JSON at byte 10"},
		{name: "a field of the wrong type is named with the type it must be", body: `{"email":42}`, status: 400, field: "email", prefix: "email must be a string, not number"},
		{name: "a boolean field given a string says it must be a boolean", body: `{"remember":"yes"}`, status: 400, field: "remember", prefix: "remember must be a boolean, not string"},
		{name: "a list instead of an object says the body must be an object", body: `[1,2]`, status: 400, prefix: "request body must be a JSON object, not array"},
		{name: "data after the JSON value is refused", body: `{"email":"a@b.c"} {"email":"x@y.z"}`, status: 400, prefix: "request body is not valid: trailing data after the JSON value"},
		{name: "a body over 1 MiB is answered 413", body: `{"email":"` + strings.Repeat("a", httpkit.MaxBodyBytes) + `"}`, status: 413, prefix: "request body is larger than 1048576 bytes (1 MiB)"},
		{name: "the strict decoder names an unknown field", strict: true, body: `{"email":"a@b.c","admin":true}`, status: 400, field: "admin", prefix: `unknown field "admin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, _, a := decodeWith(t, tc.strict, tc.body)
			if ok {
				t.Fatalf("Decode accepted %.60q", tc.body)
			}
			msg, _ := a.body["message"].(string)
			field, _ := a.body["field"].(string)
			if a.status != tc.status || !strings.HasPrefix(msg, tc.prefix) || field != tc.field {
				t.Fatalf("answer = %d %v, want %d with field %q and a message starting %q", a.status, a.body, tc.status, tc.field, tc.prefix)
			}
		})
	}
}

func TestGoodRequestBodiesDecodeWithoutAnAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		strict bool
		body   string
		want   signIn
	}{
		{name: "an object decodes into the value", body: `{"email":"a@b.c","password":"pw","remember":true}`, want: signIn{Email: "a@b.c", Password: "pw", Remember: true}},
		{name: "unknown fields are ignored, as SuperTokens does", body: `{"email":"a@b.c","formFields":[]}`, want: signIn{Email: "a@b.c"}},
		{name: "white space after the value is fine", body: "{\"email\":\"a@b.c\"}\n\n", want: signIn{Email: "a@b.c"}},
		{name: "the strict decoder takes an object of known fields", strict: true, body: `{"password":"pw"}`, want: signIn{Password: "pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, v, a := decodeWith(t, tc.strict, tc.body)
			if !ok || v != tc.want || a.body != nil {
				t.Fatalf("Decode = %t, %+v, answered %d %v; want %+v and no answer", ok, v, a.status, a.body, tc.want)
			}
		})
	}
}

func TestAnInternalErrorIsLoggedButNotShown(t *testing.T) {
	var logged []string
	log := funcr.New(func(prefix, args string) { logged = append(logged, args) }, funcr.Options{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/auth/signin", nil)
	httpkit.InternalError(log, w, r, errors.New("sqlite: disk I/O error at /var/lib/twofold/twofold.db"))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "sqlite") ||
		strings.TrimSpace(w.Body.String()) != `{"message":"internal error","status":"GENERAL_ERROR"}` {
		t.Fatalf("answer = %d %s, want 500 GENERAL_ERROR without the cause", w.Code, w.Body)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "disk I/O error") || !strings.Contains(logged[0], "/auth/signin") {
		t.Fatalf("logged %q, want the cause with the request's path", logged)
	}
}

func TestAnMFARefusalHasSuperTokensShape(t *testing.T) {
	w := httptest.NewRecorder()
	httpkit.WriteClaimError(w, "factor setup required")
	var body struct {
		Message string `json:"message"`
		Errors  []struct {
			ID     string         `json:"id"`
			Reason map[string]any `json:"reason"`
		} `json:"claimValidationErrors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusForbidden || body.Message != "invalid claim" || len(body.Errors) != 1 ||
		body.Errors[0].ID != "st-mfa" || body.Errors[0].Reason["message"] != "factor setup required" {
		t.Fatalf("answer = %d %s, want 403 invalid claim st-mfa with the reason", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
}
