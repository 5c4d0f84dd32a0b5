package accountapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/server"
)

func TestPasswordlessFlowTypeFollowsTheTenantsFirstFactors(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	texts, sms := coretest.StartTwilio(t)
	tests := []struct {
		name, firstFactors, contactKey, contact string
		box                                     *coretest.Outbox
		wantFlow                                string
		wantCode, wantLink                      bool
	}{
		{"otp-email sends a code only", `["otp-email"]`, "email", "a@example.com", mails, "USER_INPUT_CODE", true, false},
		{"link-email sends a magic link only", `["link-email"]`, "email", "b@example.com", mails, "MAGIC_LINK", false, true},
		{"both email factors send a code and a link", `["otp-email","link-email"]`, "email", "c@example.com", mails, "USER_INPUT_CODE_AND_MAGIC_LINK", true, true},
		{"otp-phone sends a code by SMS", `["otp-phone"]`, "phoneNumber", "+14155550101", texts, "USER_INPUT_CODE", true, false},
		{"link-phone sends a magic link by SMS", `["link-phone"]`, "phoneNumber", "+14155550102", texts, "MAGIC_LINK", false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "flow" + string(rune('a'+i))
			tp := h.DeliveryTenant(id, email, sms, `"firstFactors":`+tt.firstFactors)
			m := h.CreateCode(tp, map[string]any{tt.contactKey: tt.contact})
			if m["status"] != "OK" || m["flowType"] != tt.wantFlow || m["deviceId"] == "" || m["preAuthSessionId"] == "" {
				t.Fatalf("answer = %v, want OK with flowType %s", m, tt.wantFlow)
			}
			msg := tt.box.Last(t, tt.contact)
			if got := coretest.SixDigits.MatchString(msg.Text); got != tt.wantCode {
				t.Fatalf("message has a code: %v, want %v: %q", got, tt.wantCode, msg.Text)
			}
			if got := coretest.AnyLink.MatchString(msg.Text); got != tt.wantLink {
				t.Fatalf("message has a link: %v, want %v: %q", got, tt.wantLink, msg.Text)
			}
			if tt.wantLink {
				prefix := "https://app.acme.test/auth/verify?preAuthSessionId=" + url.QueryEscape(m["preAuthSessionId"].(string)) + "&tenantId=" + id + "#"
				if l := msg.Link(t); !strings.HasPrefix(l, prefix) || len(l) == len(prefix) {
					t.Fatalf("magic link = %q, want %s<linkCode>", l, prefix)
				}
			}
		})
	}
}

func TestAnEmailCodeSignsTheUserUpAndThenIn(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`, `"branding":{"appName":"Acme"}`)
	exists := func() bool {
		return coretest.MustStatus(t, h.Do("GET", "/auth/acme/passwordless/email/exists?email=Ada%40Example.com", nil), 200, "OK")["exists"].(bool)
	}
	if exists() {
		t.Fatalf("the email exists before anyone signed up")
	}
	var userID string
	for i, wantCreated := range []bool{true, false} {
		created := h.CreateCode(tp, map[string]any{"email": "  Ada@Example.com "})
		msg := mails.Wait(t, i+1)
		if msg.To != "ada@example.com" || msg.Subject != "Your Acme sign-in code" || !strings.Contains(msg.Text, "It expires in 15 minutes") {
			t.Fatalf("email = %+v", msg)
		}
		r := h.Consume(tp, created, msg.Code(t), "st-auth-mode", "cookie")
		m := coretest.MustStatus(t, r, 200, "OK")
		if m["createdNewRecipeUser"] != wantCreated {
			t.Fatalf("createdNewRecipeUser = %v, want %v", m["createdNewRecipeUser"], wantCreated)
		}
		user := m["user"].(map[string]any)
		lm := user["loginMethods"].([]any)[0].(map[string]any)
		if lm["recipeId"] != "passwordless" || lm["email"] != "ada@example.com" || lm["verified"] != true {
			t.Fatalf("login method = %v", lm)
		}
		if userID == "" {
			userID = user["id"].(string)
		} else if user["id"] != userID {
			t.Fatalf("the second sign-in found user %v, want %s", user["id"], userID)
		}
		if r.Cookie("sAccessToken") == nil || r.Cookie("sRefreshToken") == nil {
			t.Fatalf("cookie mode set no session cookies: %v", r.Header)
		}
		mfaClaim := coretest.FrontToken(t, r)["up"].(map[string]any)["st-mfa"].(map[string]any)
		if mfaClaim["c"].(map[string]any)["otp-email"] == nil || mfaClaim["v"] != true {
			t.Fatalf("st-mfa = %v, want otp-email completed and v true", mfaClaim)
		}
	}
	if !exists() {
		t.Fatalf("the email does not exist after sign-up")
	}
}

func TestSMSCodesGoThroughTheTenantsProvider(t *testing.T) {
	providers := []struct {
		name  string
		start func(testing.TB) (*coretest.Outbox, string)
	}{
		{"a Twilio-style API", coretest.StartTwilio},
		{"the tenant's own webhook", coretest.StartWebhook},
	}
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			h := coretest.New(t)
			texts, sms := p.start(t)
			tp := h.DeliveryTenant("acme", sms, `"firstFactors":["otp-phone"]`)
			created := h.CreateCode(tp, map[string]any{"phoneNumber": "+1 (415) 555-0100"})
			msg := texts.Last(t, "+14155550100")
			if !strings.HasPrefix(msg.Text, "Your Twofold sign-in code is ") {
				t.Fatalf("SMS = %q", msg.Text)
			}
			m := coretest.MustStatus(t, h.Consume(tp, created, msg.Code(t)), 200, "OK")
			if phones := m["user"].(map[string]any)["phoneNumbers"].([]any); len(phones) != 1 || phones[0] != "+14155550100" {
				t.Fatalf("phoneNumbers = %v", phones)
			}
			r := h.Do("GET", "/auth/acme/passwordless/phoneNumber/exists?phoneNumber="+url.QueryEscape("+14155550100"), nil)
			if !coretest.MustStatus(t, r, 200, "OK")["exists"].(bool) {
				t.Fatalf("the phone number does not exist after sign-up")
			}
		})
	}
}

func TestConsumeAnswersEveryStatus(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	start := func(t *testing.T, addr string) (map[string]any, string) {
		t.Helper()
		created := h.CreateCode(tp, map[string]any{"email": addr})
		return created, mails.Last(t, addr).Code(t)
	}
	wrongOf := func(code string) string {
		if code == "000000" {
			return "111111"
		}
		return "000000"
	}
	wantAttempts := func(t *testing.T, r coretest.Response, status string, failed int) {
		t.Helper()
		m := coretest.MustStatus(t, r, 200, status)
		if m["failedCodeInputAttemptCount"] != float64(failed) || m["maximumCodeInputAttempts"] != float64(5) {
			t.Fatalf("answer = %v, want %d of 5 failed attempts", m, failed)
		}
	}
	t.Run("a wrong code is INCORRECT_USER_INPUT_CODE_ERROR with the attempt count", func(t *testing.T) {
		created, code := start(t, "a@example.com")
		wantAttempts(t, h.Consume(tp, created, wrongOf(code)), "INCORRECT_USER_INPUT_CODE_ERROR", 1)
		coretest.MustStatus(t, h.Consume(tp, created, code), 200, "OK")
	})
	t.Run("the right code after 15 minutes is EXPIRED_USER_INPUT_CODE_ERROR and counts", func(t *testing.T) {
		created, code := start(t, "b@example.com")
		h.Clock.Advance(15 * time.Minute)
		wantAttempts(t, h.Consume(tp, created, code), "EXPIRED_USER_INPUT_CODE_ERROR", 1)
		wantAttempts(t, h.Consume(tp, created, wrongOf(code)), "INCORRECT_USER_INPUT_CODE_ERROR", 2)
	})
	t.Run("the fifth wrong code restarts the flow and the right one no longer works", func(t *testing.T) {
		created, code := start(t, "c@example.com")
		for i := 1; i < 5; i++ {
			wantAttempts(t, h.Consume(tp, created, wrongOf(code)), "INCORRECT_USER_INPUT_CODE_ERROR", i)
		}
		coretest.MustStatus(t, h.Consume(tp, created, wrongOf(code)), 200, "RESTART_FLOW_ERROR")
		coretest.MustStatus(t, h.Consume(tp, created, code), 200, "RESTART_FLOW_ERROR")
	})
	t.Run("a used code restarts the flow", func(t *testing.T) {
		created, code := start(t, "d@example.com")
		coretest.MustStatus(t, h.Consume(tp, created, code), 200, "OK")
		coretest.MustStatus(t, h.Consume(tp, created, code), 200, "RESTART_FLOW_ERROR")
	})
	t.Run("a device id that does not match the preAuthSessionId restarts the flow", func(t *testing.T) {
		created, code := start(t, "e@example.com")
		other, _ := start(t, "f@example.com")
		created["deviceId"] = other["deviceId"]
		coretest.MustStatus(t, h.Consume(tp, created, code), 200, "RESTART_FLOW_ERROR")
	})
	t.Run("a resend sends a new code and keeps the first one valid", func(t *testing.T) {
		created, first := start(t, "g@example.com")
		before := mails.Count()
		r := h.Do("POST", "/auth/acme/signinup/code/resend", map[string]any{"deviceId": created["deviceId"], "preAuthSessionId": created["preAuthSessionId"]})
		coretest.MustStatus(t, r, 200, "OK")
		second := mails.Wait(t, before+1)
		if second.To != "g@example.com" {
			t.Fatalf("the resend went to %s", second.To)
		}
		coretest.MustStatus(t, h.Consume(tp, created, first), 200, "OK")
		coretest.MustStatus(t, h.Consume(tp, created, second.Code(t)), 200, "RESTART_FLOW_ERROR")
	})
	t.Run("a resend for an unknown device, or with the wrong device id, restarts the flow", func(t *testing.T) {
		created, _ := start(t, "h@example.com")
		before := mails.Count()
		for _, body := range []map[string]any{
			{"deviceId": created["deviceId"], "preAuthSessionId": "unknown"},
			{"deviceId": "not-the-device", "preAuthSessionId": created["preAuthSessionId"]},
		} {
			coretest.MustStatus(t, h.Do("POST", "/auth/acme/signinup/code/resend", body), 200, "RESTART_FLOW_ERROR")
		}
		if mails.Count() != before {
			t.Fatalf("a refused resend sent an email")
		}
	})
}

func TestAMagicLinkSignsTheUserIn(t *testing.T) {
	h := coretest.New(t)
	texts, sms := coretest.StartTwilio(t)
	tp := h.DeliveryTenant("acme", sms, `"firstFactors":["link-phone"]`)
	created := h.CreateCode(tp, map[string]any{"phoneNumber": "+442079460123"})
	link, err := url.Parse(texts.Last(t, "+442079460123").Link(t))
	if err != nil {
		t.Fatal(err)
	}
	// The hosted UI's verify page reads preAuthSessionId from the query and the link code
	// from the fragment, and consumes it.
	consume := func(linkCode string) coretest.Response {
		return h.Do("POST", "/auth"+tp+"/signinup/code/consume", map[string]any{
			"preAuthSessionId": link.Query().Get("preAuthSessionId"), "linkCode": linkCode})
	}
	if link.Query().Get("preAuthSessionId") != created["preAuthSessionId"] || link.Query().Get("tenantId") != "acme" {
		t.Fatalf("link = %s", link)
	}
	coretest.MustStatus(t, consume(link.Fragment+"x"), 200, "RESTART_FLOW_ERROR")
	created = h.CreateCode(tp, map[string]any{"phoneNumber": "+442079460123"})
	link, _ = url.Parse(texts.Last(t, "+442079460123").Link(t))
	r := consume(link.Fragment)
	m := coretest.MustStatus(t, r, 200, "OK")
	if m["createdNewRecipeUser"] != true || r.Header.Get("st-access-token") == "" {
		t.Fatalf("answer = %v, headers %v", m, r.Header)
	}
	if c := coretest.PayloadOf(t, r.Header.Get("st-access-token"))["st-mfa"].(map[string]any)["c"].(map[string]any); c["link-phone"] == nil {
		t.Fatalf("st-mfa.c = %v, want link-phone", c)
	}
	coretest.MustStatus(t, consume(link.Fragment), 200, "RESTART_FLOW_ERROR")
}

func TestAFailedDeliveryLeavesNoUsableCode(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	twilio, sms := coretest.StartTwilio(t)
	h.DeliveryTenant("acme", email, sms, `"firstFactors":["otp-email","otp-phone"]`)
	h.DeliveryTenant("mailonly", email, `"firstFactors":["otp-email","otp-phone"]`)
	h.DeliveryTenant("nomail", `"firstFactors":["otp-email"]`)
	hook, webhookSMS := coretest.StartWebhook(t)
	h.DeliveryTenant("hooked", webhookSMS, `"firstFactors":["otp-phone"]`)
	h.PutTenantJSON("nosite", `{"session":{"cookieSecure":false},`+email+`,"firstFactors":["link-email"]}`)
	mails.Fail.Store(true)
	twilio.Fail.Store(true)
	hook.Fail.Store(true)
	tests := []struct {
		name, tenant string
		body         map[string]any
		wantMessage  string
	}{
		{"the SMTP relay refusing the email", "acme", map[string]any{"email": "a@example.com"}, "the sign-in code could not be sent by email; try again later"},
		{"the SMS provider refusing the text", "acme", map[string]any{"phoneNumber": "+14155550100"}, "the sign-in code could not be sent by SMS; try again later"},
		{"a tenant without SMS delivery", "mailonly", map[string]any{"phoneNumber": "+14155550100"}, `tenant "mailonly" cannot send SMS: it has no SMS delivery configured (sms)`},
		{"a tenant without email delivery", "nomail", map[string]any{"email": "a@example.com"}, `tenant "nomail" cannot send email: it has no email delivery configured (email.smtp)`},
		{"the tenant's webhook failing", "hooked", map[string]any{"phoneNumber": "+14155550100"}, "the sign-in code could not be sent by SMS; try again later"},
		{"a magic link without a website to point at", "nosite", map[string]any{"email": "a@example.com"}, `tenant "nosite" has no websiteDomain to send magic links to`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The attempt counts against the contact's send limit (a provider may charge for
			// it); nothing else changes.
			before := h.SnapshotWithout("code_sends")
			m := coretest.MustStatus(t, h.Do("POST", "/auth/"+tt.tenant+"/signinup/code", tt.body), 200, "GENERAL_ERROR")
			if m["message"] != tt.wantMessage {
				t.Fatalf("message = %q, want %q", m["message"], tt.wantMessage)
			}
			if h.SnapshotWithout("code_sends") != before {
				t.Fatalf("the failed delivery changed the store")
			}
		})
	}
	t.Run("a failed resend adds no code", func(t *testing.T) {
		mails.Fail.Store(false)
		created := h.CreateCode("/acme", map[string]any{"email": "b@example.com"})
		first := mails.Last(t, "b@example.com").Code(t)
		mails.Fail.Store(true)
		before := h.SnapshotWithout("code_sends")
		r := h.Do("POST", "/auth/acme/signinup/code/resend", map[string]any{"deviceId": created["deviceId"], "preAuthSessionId": created["preAuthSessionId"]})
		coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
		if h.SnapshotWithout("code_sends") != before {
			t.Fatalf("the failed resend changed the store")
		}
		coretest.MustStatus(t, h.Consume("/acme", created, first), 200, "OK")
	})
}

func TestBadPasswordlessInputIsRefusedWithoutChangingTheStore(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	h.DeliveryTenant("acme", email, `"firstFactors":["otp-email","otp-phone"]`)
	h.DeliveryTenant("pwonly", email, `"firstFactors":["emailpassword"]`)
	tests := []struct {
		name, path  string
		body        any
		wantStatus  int
		wantField   string // the status field of a 200 answer
		wantMessage string
	}{
		{"malformed JSON", "/auth/acme/signinup/code", `{"email":`, 400, "", "request body is not valid JSON: it ends too early"},
		{"both an email and a phone number", "/auth/acme/signinup/code", map[string]any{"email": "a@example.com", "phoneNumber": "+14155550100"}, 400, "", "Please provide exactly one of email or phoneNumber"},
		{"neither an email nor a phone number", "/auth/acme/signinup/code", map[string]any{}, 400, "", "Please provide exactly one of email or phoneNumber"},
		{"an invalid phone number", "/auth/acme/signinup/code", map[string]any{"phoneNumber": "+1 555"}, 200, "GENERAL_ERROR", "Phone number is invalid"},
		{"a phone number without its country code", "/auth/acme/signinup/code", map[string]any{"phoneNumber": "4155550100"}, 200, "GENERAL_ERROR", "must start with + and the country code"},
		{"an invalid email", "/auth/acme/signinup/code", map[string]any{"email": "Ada <ada@example.com>"}, 200, "GENERAL_ERROR", "Email is invalid"},
		{"an unknown tenant", "/auth/nope/signinup/code", map[string]any{"email": "a@example.com"}, 404, "", `unknown tenant "nope"`},
		{"a tenant without passwordless first factors", "/auth/pwonly/signinup/code", map[string]any{"email": "a@example.com"}, 200, "SIGN_IN_UP_NOT_ALLOWED", `signing in with a code by email is not enabled for tenant "pwonly"`},
		{"linking asked for without a session", "/auth/acme/signinup/code", map[string]any{"email": "a@example.com", "shouldTryLinkingWithSessionUser": true}, 401, "", "unauthorised"},
		{"a consume without preAuthSessionId", "/auth/acme/signinup/code/consume", map[string]any{"deviceId": "d", "userInputCode": "123456"}, 400, "", "Please provide preAuthSessionId"},
		{"a consume with a link code and a user input code", "/auth/acme/signinup/code/consume", map[string]any{"preAuthSessionId": "p", "linkCode": "l", "deviceId": "d", "userInputCode": "123456"}, 400, "", "Please provide one of (linkCode) or (deviceId+userInputCode) and not both"},
		{"a consume with a user input code but no device id", "/auth/acme/signinup/code/consume", map[string]any{"preAuthSessionId": "p", "userInputCode": "123456"}, 400, "", "Please provide one of (linkCode) or (deviceId+userInputCode) and not both"},
		{"a consume for an unknown device", "/auth/acme/signinup/code/consume", map[string]any{"preAuthSessionId": "p", "deviceId": "d", "userInputCode": "123456"}, 200, "RESTART_FLOW_ERROR", ""},
		{"a resend without a device id", "/auth/acme/signinup/code/resend", map[string]any{"preAuthSessionId": "p"}, 400, "", "Please provide a deviceId and a preAuthSessionId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			r := h.Do("POST", tt.path, tt.body)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tt.wantStatus, r.Body)
			}
			m := r.JSON(t)
			msg, _ := m["message"].(string)
			if tt.wantField != "" {
				if m["status"] != tt.wantField {
					t.Fatalf("status field = %v, want %s", m["status"], tt.wantField)
				}
				if reason, ok := m["reason"].(string); ok {
					msg = reason
				}
			}
			if !strings.Contains(msg, tt.wantMessage) {
				t.Fatalf("message = %q, want it to contain %q", msg, tt.wantMessage)
			}
			if h.Snapshot() != before {
				t.Fatalf("the refused request changed the store")
			}
		})
	}
	if n := mails.Count(); n != 0 {
		t.Fatalf("refused requests sent %d emails", n)
	}
	t.Run("exists checks need their parameter", func(t *testing.T) {
		for _, p := range []string{"email", "phoneNumber"} {
			r := h.Do("GET", "/auth/acme/passwordless/"+p+"/exists", nil)
			if r.Status != http.StatusBadRequest || r.JSON(t)["message"] != "Please provide the "+p+" as a GET param" {
				t.Fatalf("GET %s/exists = %d %s", p, r.Status, r.Body)
			}
		}
	})
}

func TestResendsStopAtFiveLiveCodes(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	created := h.CreateCode(tp, map[string]any{"email": "a@example.com"})
	resend := func() coretest.Response {
		return h.Do("POST", "/auth/acme/signinup/code/resend", map[string]any{"deviceId": created["deviceId"], "preAuthSessionId": created["preAuthSessionId"]})
	}
	for i := 2; i <= 5; i++ {
		coretest.MustStatus(t, resend(), 200, "OK")
		mails.Wait(t, i)
	}
	coretest.MustStatus(t, resend(), 200, "RESTART_FLOW_ERROR")
	if n := mails.Count(); n != 5 {
		t.Fatalf("%d emails were sent, want 5", n)
	}
	t.Run("codes that expired no longer count", func(t *testing.T) {
		h.Clock.Advance(15 * time.Minute)
		coretest.MustStatus(t, resend(), 200, "OK")
		coretest.MustStatus(t, h.Consume(tp, created, mails.Wait(t, 6).Code(t)), 200, "OK")
	})
}

func TestConcurrentConsumesOfOneDeviceAreCountedOnce(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	run := func(t *testing.T, n int, code string, created map[string]any) map[string]int {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"preAuthSessionId": created["preAuthSessionId"], "deviceId": created["deviceId"], "userInputCode": code})
		var mu sync.Mutex
		var wg sync.WaitGroup
		statuses := map[string]int{}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(h.TS.URL+"/auth"+tp+"/signinup/code/consume", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var m map[string]any
				json.NewDecoder(resp.Body).Decode(&m)
				mu.Lock()
				statuses[fmt.Sprint(m["status"])]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return statuses
	}
	t.Run("ten wrong codes at once: four are counted, then the flow restarts", func(t *testing.T) {
		created := h.CreateCode(tp, map[string]any{"email": "a@example.com"})
		wrong := "000000"
		if mails.Last(t, "a@example.com").Code(t) == wrong {
			wrong = "111111"
		}
		got := run(t, 10, wrong, created)
		if got["INCORRECT_USER_INPUT_CODE_ERROR"] != 4 || got["RESTART_FLOW_ERROR"] != 6 {
			t.Fatalf("statuses = %v, want 4 incorrect and 6 restarts", got)
		}
	})
	t.Run("the right code sent five times at once signs in once", func(t *testing.T) {
		created := h.CreateCode(tp, map[string]any{"email": "b@example.com"})
		got := run(t, 5, mails.Last(t, "b@example.com").Code(t), created)
		if got["OK"] != 1 || got["RESTART_FLOW_ERROR"] != 4 {
			t.Fatalf("statuses = %v, want one OK and 4 restarts", got)
		}
	})
}

func TestMaintenanceDeletesExpiredDevicesAndTokens(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["emailpassword","otp-email"]`)
	h.SignUpMFA(tp, "ada@example.com")
	h.CreateCode(tp, map[string]any{"email": "ada@example.com"})
	coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset/token", coretest.EmailForm("ada@example.com")), http.StatusOK, "OK")
	mails.Wait(t, 2)
	rows := func() (devices, tokens bool) {
		snap := h.Snapshot()
		return !strings.Contains(snap, "passwordless_devices: 0 rows"), !strings.Contains(snap, "account_tokens: 0 rows")
	}
	if d, tk := rows(); !d || !tk {
		t.Fatalf("before maintenance: device stored %v, token stored %v", d, tk)
	}
	h.Clock.Advance(15 * time.Minute)
	if err := h.Srv.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, tk := rows(); d || !tk {
		t.Fatalf("after 15 minutes: device stored %v (want false), token stored %v (want true)", d, tk)
	}
	h.Clock.Advance(45 * time.Minute)
	if err := h.Srv.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, tk := rows(); tk {
		t.Fatalf("the reset token outlived its hour")
	}
	if strings.Contains(h.Snapshot(), "code_sends: 0 rows") {
		t.Fatalf("the code send was forgotten before a day passed: a send window may be a day long")
	}
	h.Clock.Advance(24 * time.Hour)
	if err := h.Srv.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.Snapshot(), "code_sends: 0 rows") {
		t.Fatalf("a code send outlived the longest send window")
	}
}

func TestADisabledUsersCodeIsRefusedAndAudited(t *testing.T) {
	logs := &coretest.Logs{}
	h := coretest.New(t, func(o *server.Options) {
		o.Logger = funcr.NewJSON(func(obj string) { logs.Add("", obj) }, funcr.Options{})
	})
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	created := h.CreateCode(tp, map[string]any{"email": "ada@example.com"})
	m := coretest.MustStatus(t, h.Consume(tp, created, mails.Wait(t, 1).Code(t)), 200, "OK")
	id := m["user"].(map[string]any)["id"].(string)
	coretest.MustStatus(t, h.AdminDo("POST", "/admin/v1/users/"+id+"/disable", nil), 200, "")

	created = h.CreateCode(tp, map[string]any{"email": "ada@example.com"})
	r := h.Consume(tp, created, mails.Wait(t, 2).Code(t))
	got := coretest.MustStatus(t, r, 200, "SIGN_IN_UP_NOT_ALLOWED")
	if got["reason"] != httpapi.MsgUserDisabled {
		t.Fatalf("reason = %v, want %q", got["reason"], httpapi.MsgUserDisabled)
	}
	if r.Header.Get("st-access-token") != "" || r.Cookie("sAccessToken") != nil {
		t.Fatalf("a disabled user got a session: %v", r.Header)
	}
	if !strings.Contains(logs.String(), `"outcome":"user_disabled"`) {
		t.Fatalf("no Refused sign-in event for the disabled user:\n%s", logs.String())
	}
	// The code is used up all the same.
	coretest.MustStatus(t, h.Consume(tp, created, mails.Wait(t, 2).Code(t)), 200, "RESTART_FLOW_ERROR")
}
