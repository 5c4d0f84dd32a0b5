package controllers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/test/testenv"
)

// signIn signs up (or, when the user exists, in) on the core in header mode and returns the
// st-mfa claim of the new session, read from the front-token as a frontend SDK reads it.
func signIn(t *testing.T, coreURL, tenantID, email string) (v bool, completed map[string]int64) {
	t.Helper()
	for _, path := range []string{"/signup", "/signin"} {
		body, _ := json.Marshal(map[string]any{"formFields": []map[string]string{{"id": "email", "value": email}, {"id": "password", "value": "correct-horse-battery-9"}}})
		req, _ := http.NewRequest(http.MethodPost, coreURL+"/auth/"+tenantID+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("rid", "emailpassword")
		req.Header.Set("st-auth-mode", "header")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Status string `json:"status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Status != "OK" {
			continue // the user exists already: sign in instead
		}
		raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("front-token"))
		if err != nil {
			t.Fatalf("front-token: %v", err)
		}
		var ft struct {
			Up struct {
				MFA struct {
					C map[string]int64 `json:"c"`
					V bool             `json:"v"`
				} `json:"st-mfa"`
			} `json:"up"`
		}
		if err := json.Unmarshal(raw, &ft); err != nil {
			t.Fatalf("front-token payload %s: %v", raw, err)
		}
		return ft.Up.MFA.V, ft.Up.MFA.C
	}
	t.Fatalf("neither sign-up nor sign-in of %s succeeded", email)
	return false, nil
}

func TestAppliedSamplesMakeSignInRequireTheDeclaredFactors(t *testing.T) {
	f := setup(t, 0)
	f.secret("acme-google-oauth", map[string]string{"client-secret": "google-secret"})
	f.secret("acme-smtp", map[string]string{"username": "mailer", "password": "smtp-secret"})
	f.secret("acme-twilio", map[string]string{"auth-token": "twilio-secret"})

	read := func(name string, into any) {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	var tenant authv1alpha1.AuthTenant
	read("auth_v1alpha1_authtenant.yaml", &tenant)
	f.create(&tenant)
	eventually(t, "sample tenant Ready", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))

	if v, _ := signIn(t, f.core.URL, "acme", "before@acme.example"); !v {
		t.Fatal("with no MFAPolicy a first factor alone must complete the session (v=true)")
	}

	var policy authv1alpha1.MFAPolicy
	read("auth_v1alpha1_mfapolicy_totp_required.yaml", &policy)
	f.create(&policy)
	f.waitRequirement("acme", `["totp"]`)

	v, c := signIn(t, f.core.URL, "acme", "alice@acme.example")
	if v {
		t.Fatal("with the TOTP policy applied, a password sign-in alone must leave st-mfa.v false")
	}
	if _, ok := c["emailpassword"]; !ok {
		t.Fatalf("completed factors %v lack emailpassword", c)
	}

	if err := env.Client.Delete(context.Background(), &policy); err != nil {
		t.Fatal(err)
	}
	f.waitRequirement("acme", `null`)
	if v, _ := signIn(t, f.core.URL, "acme", "alice@acme.example"); !v {
		t.Fatal("after deleting the MFAPolicy a password sign-in must complete the session again")
	}
}

func TestThePasskeySampleTenantOffersPasskeysInTheCore(t *testing.T) {
	f := setup(t, 0)
	var tenant authv1alpha1.AuthTenant
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "auth_v1alpha1_authtenant_passkeys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tenant); err != nil {
		t.Fatal(err)
	}
	f.create(&tenant)
	eventually(t, "passkey tenant Ready", wait, tenantReady(t, f.key("passkeys"), authv1alpha1.ReasonSynced))

	resp, err := http.Post(f.core.URL+"/auth/passkeys/webauthn/options/signin", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var opts struct {
		Status           string `json:"status"`
		RPID             string `json:"rpId"`
		UserVerification string `json:"userVerification"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&opts); err != nil {
		t.Fatal(err)
	}
	if opts.Status != "OK" || opts.RPID != "example.com" || opts.UserVerification != "required" {
		t.Fatalf("passkey sign-in options of the sample tenant = %+v, want OK for relying party example.com with user verification required", opts)
	}
}
