package session

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

func TestRequestedTransport(t *testing.T) {
	tests := []struct {
		name, header string
		want         Transport
	}{
		{"no st-auth-mode header means header mode", "", TransportHeader},
		{"st-auth-mode cookie means cookie mode", "cookie", TransportCookie},
		{"st-auth-mode is read case-insensitively", "Cookie", TransportCookie},
		{"st-auth-mode header means header mode", "header", TransportHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/auth/signin", nil)
			if tt.header != "" {
				r.Header.Set(contract.HeaderAuthMode, tt.header)
			}
			if got := RequestedTransport(r); got != tt.want {
				t.Fatalf("RequestedTransport = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFrontTokenIsBase64JSONWithUidAteAndUp(t *testing.T) {
	tok := Tokens{UserID: "u1", AccessTokenExpiry: time.UnixMilli(1_700_000_000_000), Payload: json.RawMessage(`{"sub":"u1","st-mfa":{"c":{},"v":true}}`)}
	b, err := base64.StdEncoding.DecodeString(tok.FrontToken())
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		UID string         `json:"uid"`
		ATE int64          `json:"ate"`
		UP  map[string]any `json:"up"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.UID != "u1" || m.ATE != 1_700_000_000_000 || m.UP["sub"] != "u1" || m.UP["st-mfa"] == nil {
		t.Fatalf("front token = %s", b)
	}
}

func TestTokensFromRequestPreferTheHeader(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer from-header")
	r.AddCookie(&http.Cookie{Name: contract.CookieAccessToken, Value: "from-cookie"})
	r.AddCookie(&http.Cookie{Name: contract.CookieRefreshToken, Value: "refresh-cookie"})
	if tok, tr := AccessTokenFrom(r); tok != "from-header" || tr != TransportHeader {
		t.Fatalf("AccessTokenFrom = %q, %q", tok, tr)
	}
	r.Header.Del("Authorization")
	if tok, tr := AccessTokenFrom(r); tok != "from-cookie" || tr != TransportCookie {
		t.Fatalf("AccessTokenFrom without a header = %q, %q", tok, tr)
	}
	if tok, tr := RefreshTokenFrom(r); tok != "refresh-cookie" || tr != TransportCookie {
		t.Fatalf("RefreshTokenFrom = %q, %q", tok, tr)
	}
}

func TestCSRFProtection(t *testing.T) {
	none := Settings{CookieSameSite: http.SameSiteNoneMode}
	lax := Settings{CookieSameSite: http.SameSiteLaxMode}
	tests := []struct {
		name      string
		method    string
		transport Transport
		settings  Settings
		rid       bool
		want      bool
	}{
		{"a lax cookie needs nothing", "POST", TransportCookie, lax, false, true},
		{"a header token needs nothing", "POST", TransportHeader, none, false, true},
		{"a SameSite=none cookie on GET needs nothing", "GET", TransportCookie, none, false, true},
		{"a SameSite=none cookie on POST without rid is refused", "POST", TransportCookie, none, false, false},
		{"a SameSite=none cookie on POST with rid passes", "POST", TransportCookie, none, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			if tt.rid {
				r.Header.Set("rid", "session")
			}
			if got := CSRFProtected(r, tt.transport, tt.settings); got != tt.want {
				t.Fatalf("CSRFProtected = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWriteTokensListsEveryHeaderOnceForCORS(t *testing.T) {
	m := New(Options{})
	w := httptest.NewRecorder()
	w.Header().Set("Access-Control-Expose-Headers", "x-other")
	m.WriteTokens(w, TransportHeader, Tokens{AccessToken: "a", RefreshToken: "r", Payload: json.RawMessage(`{}`)}, Settings{})
	m.ClearTokens(w, Settings{})
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("an answer with tokens may be cached: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	got := w.Header().Values("Access-Control-Expose-Headers")
	if len(got) != 1 || got[0] != "x-other, front-token, st-access-token, st-refresh-token" {
		t.Fatalf("Access-Control-Expose-Headers = %q", got)
	}
}
