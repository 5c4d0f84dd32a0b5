package compat_test

import (
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/test/mailbox"
)

const password = "correct horse 1"

func formFields(email, password string) map[string]any {
	return map[string]any{"formFields": []map[string]string{{"id": "email", "value": email}, {"id": "password", "value": password}}}
}

func passwordAndPasskeys(origin string) contract.TenantConfig {
	return contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword, mfa.WebAuthn}, WebsiteDomain: origin}
}

func TestTheSDKSignsUpWithAPasswordRefreshesAndSignsOut(t *testing.T) {
	sys := start(t, passwordAndPasskeys)
	b := sys.open(t)

	methods := b.ok("getLoginMethods", b.call("Multitenancy", "getLoginMethods", map[string]any{}))
	if first, _ := methods["firstFactors"].([]any); !slices.Contains(first, any(mfa.WebAuthn)) || !slices.Contains(first, any(mfa.EmailPassword)) {
		t.Fatalf("getLoginMethods = %v, want emailpassword and webauthn", methods)
	}
	if code, _ := b.me(); code != 401 {
		t.Fatalf("the app before sign-up answered %d, want 401", code)
	}
	b.ok("signUp", b.call("EmailPassword", "signUp", formFields("ada@example.com", password)))
	if res := b.call("EmailPassword", "doesEmailExist", map[string]any{"email": "ada@example.com"}); res["doesExist"] != true {
		t.Fatalf("doesEmailExist = %v", res)
	}
	code, me := b.me()
	if code != 200 || me["userId"] != b.userID() {
		t.Fatalf("the app after sign-up = %d %v, want 200 for the session's user", code, me)
	}
	if res := b.eval(`compat.call("Session", "attemptRefreshingSession")`); res["value"] != true {
		t.Fatalf("attemptRefreshingSession = %v, want true", res)
	}
	b.ok("resyncSessionAndFetchMFAInfo", b.call("MultiFactorAuth", "resyncSessionAndFetchMFAInfo", map[string]any{}))
	b.call("Session", "signOut", map[string]any{})
	if res := b.eval(`compat.call("Session", "doesSessionExist")`); res["value"] != false {
		t.Fatalf("doesSessionExist after signOut = %v", res)
	}
	if code, _ := b.me(); code != 401 {
		t.Fatalf("the app after sign-out answered %d, want 401", code)
	}
	if res := b.call("EmailPassword", "signIn", formFields("ada@example.com", "wrong password 1")); res["status"] != contract.StatusWrongCredentials {
		t.Fatalf("signIn with a wrong password = %v", res)
	}
	b.ok("signIn", b.call("EmailPassword", "signIn", formFields("ada@example.com", password)))
	if code, _ := b.me(); code != 200 {
		t.Fatalf("the app after sign-in answered %d", code)
	}
}

func TestTheSDKSignsUpAndInWithAPasskey(t *testing.T) {
	sys := start(t, passwordAndPasskeys)
	b := sys.open(t)

	up := b.ok("registerCredentialWithSignUp", b.call("WebAuthn", "registerCredentialWithSignUp", map[string]any{"email": "grace@example.com"}))
	user, _ := up["user"].(map[string]any)
	if code, me := b.me(); code != 200 || me["userId"] != user["id"] {
		t.Fatalf("the app after the passkey sign-up = %d %v, want 200 for %v", code, me, user["id"])
	}
	if res := b.call("WebAuthn", "getEmailExists", map[string]any{"email": "grace@example.com"}); res["exists"] != true {
		t.Fatalf("getEmailExists = %v", res)
	}
	list := b.ok("listCredentials", b.call("WebAuthn", "listCredentials", map[string]any{}))
	if creds, _ := list["credentials"].([]any); len(creds) != 1 {
		t.Fatalf("listCredentials = %v, want the one passkey", list)
	}
	if res := b.call("WebAuthn", "registerCredentialWithSignUp", map[string]any{"email": "grace@example.com"}); res["status"] == "OK" {
		t.Fatalf("a second passkey sign-up with the same email = %v, want it refused", res)
	}

	b.call("Session", "signOut", map[string]any{})
	if code, _ := b.me(); code != 401 {
		t.Fatalf("the app after sign-out answered %d", code)
	}
	in := b.ok("authenticateCredentialWithSignIn", b.call("WebAuthn", "authenticateCredentialWithSignIn", map[string]any{}))
	if u, _ := in["user"].(map[string]any); u["id"] != user["id"] {
		t.Fatalf("the passkey signed in %v, want %v", u["id"], user["id"])
	}
	if code, _ := b.me(); code != 200 {
		t.Fatalf("the app after the passkey sign-in answered %d", code)
	}
}

func TestTheSDKSetsUpAndCompletesTOTPAndAPasskeyAsSecondFactors(t *testing.T) {
	sys := start(t, func(origin string) contract.TenantConfig {
		c := passwordAndPasskeys(origin)
		c.FirstFactors = []string{mfa.EmailPassword}
		c.MFA.Requirement = mfa.Requirement{{OneOf: []string{mfa.TOTP, mfa.WebAuthn}}}
		return c
	})
	b := sys.open(t)
	b.ok("signUp", b.call("EmailPassword", "signUp", formFields("ada@example.com", password)))
	if code, _ := b.me(); code != 403 {
		t.Fatalf("the app with the password alone answered %d, want 403", code)
	}
	info := b.ok("MFA info", b.call("MultiFactorAuth", "resyncSessionAndFetchMFAInfo", map[string]any{}))
	next, _ := info["factors"].(map[string]any)["next"].([]any)
	if !slices.Contains(next, any(mfa.TOTP)) || !slices.Contains(next, any(mfa.WebAuthn)) {
		t.Fatalf("MFA info = %v, want totp and webauthn next", info)
	}

	dev := b.ok("createDevice", b.call("TOTP", "createDevice", map[string]any{}))
	secret := dev["secret"].(string)
	now := time.Now()
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	b.ok("verifyDevice", b.call("TOTP", "verifyDevice", map[string]any{"deviceName": dev["deviceName"], "totp": code}))
	if code, _ := b.me(); code != 200 {
		t.Fatalf("the app after TOTP set-up answered %d", code)
	}
	// With the requirement met, a passkey may be added as another second factor.
	b.ok("passkey set-up", b.call("WebAuthn", "registerCredentialWithSignUp", map[string]any{"email": "ada@example.com"}))

	b.call("Session", "signOut", map[string]any{})
	b.ok("signIn", b.call("EmailPassword", "signIn", formFields("ada@example.com", password)))
	if code, _ := b.me(); code != 403 {
		t.Fatalf("the app after the password answered %d, want 403", code)
	}
	next30, _ := totp.GenerateCode(secret, now.Add(30*time.Second))
	b.ok("verifyCode", b.call("TOTP", "verifyCode", map[string]any{"totp": next30}))
	if code, _ := b.me(); code != 200 {
		t.Fatalf("the app after the TOTP code answered %d", code)
	}

	b.call("Session", "signOut", map[string]any{})
	b.ok("signIn", b.call("EmailPassword", "signIn", formFields("ada@example.com", password)))
	b.ok("passkey as the second factor", b.call("WebAuthn", "authenticateCredentialWithSignIn", map[string]any{}))
	code2, me := b.me()
	if code2 != 200 || me["userId"] != b.userID() {
		t.Fatalf("the app after the passkey as the second factor = %d %v", code2, me)
	}
}

func TestTheSDKRecoversAPasskeyAccountFromTheEmailedLink(t *testing.T) {
	box := mailbox.Start(t)
	sys := start(t, func(origin string) contract.TenantConfig {
		c := passwordAndPasskeys(origin)
		c.Email = smtp(box)
		return c
	})
	b := sys.open(t)
	up := b.ok("registerCredentialWithSignUp", b.call("WebAuthn", "registerCredentialWithSignUp", map[string]any{"email": "rosa@example.com"}))
	user, _ := up["user"].(map[string]any)
	b.call("Session", "signOut", map[string]any{})

	// The passkey is lost: a new browser, with a new authenticator, asks for the email.
	lost := sys.open(t)
	lost.ok("generateRecoverAccountToken", lost.call("WebAuthn", "generateRecoverAccountToken", map[string]any{"email": "rosa@example.com"}))
	link := regexp.MustCompile(`https?://\S+`).FindString(box.Next(t))
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("the recovery email's link %q has no token", link)
	}
	lost.ok("registerCredentialWithRecoverAccount", lost.call("WebAuthn", "registerCredentialWithRecoverAccount", map[string]any{"recoverAccountToken": u.Query().Get("token")}))
	in := lost.ok("authenticateCredentialWithSignIn", lost.call("WebAuthn", "authenticateCredentialWithSignIn", map[string]any{}))
	if got, _ := in["user"].(map[string]any); got["id"] != user["id"] {
		t.Fatalf("the new passkey signed in %v, want %v", got["id"], user["id"])
	}
	if code, _ := lost.me(); code != 200 {
		t.Fatalf("the app after the recovered passkey answered %d", code)
	}
}
