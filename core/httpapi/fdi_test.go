package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

func TestLoginMethods(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"firstFactors":["emailpassword","thirdparty"],
		"thirdPartyProviders":[{"id":"google","type":"google","clientId":"cid","clientSecret":"very-secret"}]}`)
	tests := []struct {
		name, path string
		wantEP     bool
		wantTP     bool
		providers  int
	}{
		{"the public tenant offers emailpassword by default", "/auth/loginmethods", true, false, 0},
		{"the public tenant answers under its own segment too", "/auth/public/loginmethods", true, false, 0},
		{"a tenant lists its providers by id and name", "/auth/acme/loginmethods", true, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.Do("GET", tt.path, nil)
			m := coretest.MustStatus(t, r, 200, "OK")
			if m["emailPassword"].(map[string]any)["enabled"] != tt.wantEP {
				t.Fatalf("emailPassword = %v", m["emailPassword"])
			}
			tp := m["thirdParty"].(map[string]any)
			if tp["enabled"] != tt.wantTP || len(tp["providers"].([]any)) != tt.providers {
				t.Fatalf("thirdParty = %v", tp)
			}
			if strings.Contains(string(r.Body), "very-secret") || strings.Contains(string(r.Body), "cid") {
				t.Fatalf("login methods leak provider credentials: %s", r.Body)
			}
		})
	}
	t.Run("an unknown tenant is a clear 404", func(t *testing.T) {
		r := h.Do("GET", "/auth/nope/loginmethods", nil)
		if r.Status != 404 || r.JSON(t)["message"] != `unknown tenant "nope"` {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestSignUp(t *testing.T) {
	h := coretest.New(t)
	t.Run("a new user gets a session in header mode by default", func(t *testing.T) {
		r := h.SignUp("", "  Alice@Example.COM ", "secret123")
		m := coretest.MustStatus(t, r, 200, "OK")
		user := m["user"].(map[string]any)
		if user["emails"].([]any)[0] != "alice@example.com" || user["isPrimaryUser"] != true {
			t.Fatalf("user = %v", user)
		}
		lm := user["loginMethods"].([]any)[0].(map[string]any)
		if lm["recipeId"] != "emailpassword" || lm["recipeUserId"] != user["id"] || lm["tenantIds"].([]any)[0] != "public" {
			t.Fatalf("login method = %v", lm)
		}
		if r.Header.Get("st-access-token") == "" || r.Header.Get("st-refresh-token") == "" || r.Header.Get("front-token") == "" {
			t.Fatalf("header mode tokens missing: %v", r.Header)
		}
		if r.Cookie("sAccessToken") != nil {
			t.Fatalf("header mode set a cookie")
		}
		expose := r.Header.Get("Access-Control-Expose-Headers")
		for _, name := range []string{"front-token", "st-access-token", "st-refresh-token"} {
			if !strings.Contains(expose, name) {
				t.Fatalf("Access-Control-Expose-Headers %q lacks %s", expose, name)
			}
		}
		ft := coretest.FrontToken(t, r)
		if ft["uid"] != user["id"] {
			t.Fatalf("front token uid = %v", ft["uid"])
		}
		mfaClaim := ft["up"].(map[string]any)["st-mfa"].(map[string]any)
		if mfaClaim["v"] != true || mfaClaim["c"].(map[string]any)["emailpassword"] == nil {
			t.Fatalf("st-mfa = %v", mfaClaim)
		}
	})
	t.Run("a second sign-up with the same mailbox is told the email exists", func(t *testing.T) {
		before := h.Snapshot()
		m := coretest.MustStatus(t, h.SignUp("", "alice@example.com ", "secret123"), 200, "FIELD_ERROR")
		fe := m["formFields"].([]any)[0].(map[string]any)
		if fe["id"] != "email" || fe["error"] != "This email already exists. Please sign in instead." {
			t.Fatalf("formFields = %v", m["formFields"])
		}
		if h.Snapshot() != before {
			t.Fatalf("a refused sign-up changed the store")
		}
	})
	tests := []struct {
		name, email, password, field, message string
	}{
		{"an invalid email is a field error", "not-an-email", "secret123", "email", "Email is invalid"},
		{"an empty email is a field error", "", "secret123", "email", "Field is not optional"},
		{"a short password is a field error", "b@example.com", "abc1", "password", "Password must contain at least 8 characters, including a number"},
		{"a password without a digit is a field error", "b@example.com", "abcdefghij", "password", "Password must contain at least one number"},
		{"a password without a letter is a field error", "b@example.com", "1234567890", "password", "Password must contain at least one alphabet"},
		{"a password of 100 characters is a field error", "b@example.com", strings.Repeat("a1", 50), "password", "Password's length must be lesser than 100 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			m := coretest.MustStatus(t, h.SignUp("", tt.email, tt.password), 200, "FIELD_ERROR")
			fe := m["formFields"].([]any)[0].(map[string]any)
			if fe["id"] != tt.field || fe["error"] != tt.message {
				t.Fatalf("formFields = %v, want %s: %s", m["formFields"], tt.field, tt.message)
			}
			if h.Snapshot() != before {
				t.Fatalf("a refused sign-up changed the store")
			}
		})
	}
	t.Run("a tenant without emailpassword refuses sign-up", func(t *testing.T) {
		h.PutTenantJSON("tp", `{"firstFactors":["thirdparty"],"thirdPartyProviders":[{"id":"google","type":"google","clientId":"c"}]}`)
		m := coretest.MustStatus(t, h.SignUp("/tp", "c@example.com", "secret123"), 200, "SIGN_UP_NOT_ALLOWED")
		if !strings.Contains(m["reason"].(string), "not a first factor") {
			t.Fatalf("reason = %v", m["reason"])
		}
	})
}

func TestSignIn(t *testing.T) {
	h := coretest.New(t)
	coretest.MustStatus(t, h.SignUp("", "bob@example.com", "secret123"), 200, "OK")
	h.PutTenantJSON("acme", `{}`)

	t.Run("the right password signs in and sets cookies in cookie mode", func(t *testing.T) {
		r := h.Do("POST", "/auth/signin", coretest.Form("BOB@example.com", "secret123"), "st-auth-mode", "cookie")
		m := coretest.MustStatus(t, r, 200, "OK")
		if m["user"].(map[string]any)["emails"].([]any)[0] != "bob@example.com" {
			t.Fatalf("user = %v", m["user"])
		}
		at, rt := r.Cookie("sAccessToken"), r.Cookie("sRefreshToken")
		if at == nil || rt == nil {
			t.Fatalf("cookies missing: %v", r.Header["Set-Cookie"])
		}
		if !at.HttpOnly || at.Path != "/" || !at.Secure || at.SameSite != http.SameSiteLaxMode {
			t.Fatalf("access cookie = %+v", at)
		}
		if !rt.HttpOnly || rt.Path != "/auth/session/refresh" {
			t.Fatalf("refresh cookie = %+v", rt)
		}
		if r.Header.Get("st-access-token") != "" || r.Header.Get("front-token") == "" {
			t.Fatalf("cookie mode must send the front token and no token headers: %v", r.Header)
		}
	})
	tests := []struct {
		name, path, email, password, status string
	}{
		{"a wrong password is wrong credentials", "/auth/signin", "bob@example.com", "secret124", "WRONG_CREDENTIALS_ERROR"},
		{"an unknown email is the same wrong credentials", "/auth/signin", "nobody@example.com", "secret123", "WRONG_CREDENTIALS_ERROR"},
		{"a user of another tenant is unknown here", "/auth/acme/signin", "bob@example.com", "secret123", "WRONG_CREDENTIALS_ERROR"},
		{"an invalid email is a field error", "/auth/signin", "bob", "secret123", "FIELD_ERROR"},
		{"an empty password is a field error", "/auth/signin", "bob@example.com", "", "FIELD_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A wrong password counts toward the account's and the client's sign-in limits and
			// changes nothing else.
			before := h.SnapshotWithout("signin_failures", "signin_clients")
			r := h.Do("POST", tt.path, coretest.Form(tt.email, tt.password))
			coretest.MustStatus(t, r, 200, tt.status)
			if r.Header.Get("st-access-token") != "" || r.Header.Get("front-token") != "" {
				t.Fatalf("a refused sign-in issued tokens")
			}
			if h.SnapshotWithout("signin_failures", "signin_clients") != before {
				t.Fatalf("a refused sign-in changed the store")
			}
		})
	}
}

func TestEmailExists(t *testing.T) {
	h := coretest.New(t)
	coretest.MustStatus(t, h.SignUp("", "carol@example.com", "secret123"), 200, "OK")
	h.PutTenantJSON("acme", `{}`)
	tests := []struct {
		name, path string
		exists     bool
	}{
		{"a registered email exists", "/auth/emailpassword/email/exists?email=carol@example.com", true},
		{"the check normalises the email", "/auth/emailpassword/email/exists?email=CAROL@example.com", true},
		{"an unknown email does not exist", "/auth/emailpassword/email/exists?email=dan@example.com", false},
		{"emails are per tenant", "/auth/acme/emailpassword/email/exists?email=carol@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := coretest.MustStatus(t, h.Do("GET", tt.path, nil), 200, "OK")
			if m["exists"] != tt.exists {
				t.Fatalf("exists = %v, want %v", m["exists"], tt.exists)
			}
		})
	}
	t.Run("a missing email parameter is a bad request", func(t *testing.T) {
		r := h.Do("GET", "/auth/emailpassword/email/exists", nil)
		if r.Status != 400 || r.JSON(t)["message"] != "Please provide the email as a GET param" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestBadInputGetsASpecificErrorAndChangesNothing(t *testing.T) {
	h := coretest.New(t)
	coretest.MustStatus(t, h.SignUp("", "erin@example.com", "secret123"), 200, "OK")
	huge := `{"formFields":[{"id":"email","value":"` + strings.Repeat("a", 1<<20) + `@x.io"},{"id":"password","value":"secret123"}]}`
	tests := []struct {
		name, method, path, body string
		admin                    bool
		status                   int
		message                  string
	}{
		{"malformed JSON is refused", "POST", "/auth/signup", `{"formFields": [`, false, 400, "not valid JSON"},
		{"an empty body is refused", "POST", "/auth/signup", ``, false, 400, "request body is empty"},
		{"a JSON array instead of an object is refused", "POST", "/auth/signup", `[]`, false, 400, "must be a JSON object"},
		{"trailing data after the object is refused", "POST", "/auth/signup", `{"formFields":[]} {}`, false, 400, "trailing data"},
		{"missing formFields are refused", "POST", "/auth/signup", `{}`, false, 400, "Missing input param: formFields"},
		{"formFields that are not a list are refused", "POST", "/auth/signup", `{"formFields":"x"}`, false, 400, "formFields must be an array"},
		{"a form field that is not an object is refused", "POST", "/auth/signin", `{"formFields":[3]}`, false, 400, "must be an object"},
		{"a form field without a value is refused", "POST", "/auth/signin", `{"formFields":[{"id":"email"}]}`, false, 400, "must contain an 'id' and 'value' field"},
		{"a numeric password is refused", "POST", "/auth/signup", `{"formFields":[{"id":"email","value":"f@x.io"},{"id":"password","value":12345678}]}`, false, 400, "id = password must be a string"},
		{"a body over 1 MiB is refused with 413", "POST", "/auth/signup", huge, false, 413, "larger than 1048576 bytes"},
		{"an unknown tenant is refused", "POST", "/auth/nope/signup", `{"formFields":[{"id":"email","value":"f@x.io"},{"id":"password","value":"secret123"}]}`, false, 404, `unknown tenant "nope"`},
		{"an unknown endpoint is a 404", "POST", "/auth/acme/nothing/here", `{}`, false, 404, "no endpoint"},
		{"an admin body with an unknown field is refused", "PUT", "/admin/v1/tenants/acme", `{"firstFactor":["totp"]}`, true, 400, `unknown field "firstFactor"`},
		{"an admin body with a wrong type is refused", "PUT", "/admin/v1/tenants/acme", `{"firstFactors":"emailpassword"}`, true, 400, "firstFactors must be a list"},
		{"an invalid configuration is refused", "PUT", "/admin/v1/tenants/acme", `{"firstFactors":["totp"]}`, true, 400, "cannot be a first factor"},
		{"an invalid tenant id is refused", "PUT", "/admin/v1/tenants/Bad_Id", `{}`, true, 400, "not a valid tenant id"},
		{"a reserved tenant id is refused", "PUT", "/admin/v1/tenants/signin", `{}`, true, 400, "reserved"},
		{"a huge admin body is refused with 413", "PUT", "/admin/v1/tenants/acme", `{"websiteBasePath":"/` + strings.Repeat("a", 1<<20) + `"}`, true, 413, "larger than"},
		{"an unknown requirement factor is refused", "PUT", "/admin/v1/tenants/acme", `{"mfa":{"requirement":["sms"]}}`, true, 400, `unknown factor "sms"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			var r coretest.Response
			if tt.admin {
				r = h.AdminDo(tt.method, tt.path, tt.body)
			} else {
				r = h.Do(tt.method, tt.path, tt.body)
			}
			if r.Status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tt.status, r.Body)
			}
			msg, _ := r.JSON(t)["message"].(string)
			if !strings.Contains(msg, tt.message) {
				t.Fatalf("message = %q, want it to mention %q", msg, tt.message)
			}
			if after := h.Snapshot(); after != before {
				t.Fatalf("refused request changed the store:\nbefore %s\nafter %s", before, after)
			}
		})
	}
	t.Run("a field error in the admin API names the field", func(t *testing.T) {
		m := h.AdminDo("PUT", "/admin/v1/tenants/acme", `{"session":{"cookieSameSite":"sometimes"}}`).JSON(t)
		if m["field"] != "session.cookieSameSite" {
			t.Fatalf("field = %v", m["field"])
		}
	})
}

func TestAWrongMethodIsAJSON405(t *testing.T) {
	h := coretest.New(t)
	// GET /auth/signin is the hosted sign-in page; the refresh endpoint is POST only.
	r := h.Do("GET", "/auth/session/refresh", nil)
	if r.Status != 405 || r.Header.Get("Allow") == "" || !strings.Contains(r.JSON(t)["message"].(string), "method GET is not allowed on /auth/session/refresh; use POST") {
		t.Fatalf("got %d %v %s", r.Status, r.Header, r.Body)
	}
}
