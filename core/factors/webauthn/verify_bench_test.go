package webauthn

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/factors/webauthn/softauthn"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// benchTenant is a tenant whose relying party is app.example.test.
func benchTenant() tenant.Tenant {
	cfg := contract.TenantConfig{FirstFactors: []string{"webauthn"}, WebsiteDomain: "https://app.example.test"}.Normalize()
	return tenant.Tenant{ID: "public", Config: cfg}
}

// BenchmarkVerifyRegistration is the verification of one registration answer alone (parse,
// client data, attestation object, "none" statement), as the sign-up runs it: what one core
// spends per passkey before storage, HTTP and the session.
func BenchmarkVerifyRegistration(b *testing.B) {
	t, f := benchTenant(), &Factor{opts: Options{}}
	f.opts.Clock = time.Now
	a := softauthn.New("https://app.example.test")
	type ceremony struct {
		o      store.WebAuthnOptions
		answer json.RawMessage
	}
	w, _, _ := relyingParty(t)
	ceremonies := make([]ceremony, b.N)
	for i := range ceremonies {
		handle := []byte("user-handle")
		creation, sd, err := w.BeginRegistration(user{handle: handle, name: "u@example.com"}, gowebauthn.WithCredentialParameters(Algorithms))
		if err != nil {
			b.Fatal(err)
		}
		opts, _ := json.Marshal(map[string]any{"challenge": sd.Challenge, "rp": creation.Response.RelyingParty, "user": map[string]string{"id": b64(handle)}})
		answer, _, err := a.Create(opts)
		if err != nil {
			b.Fatal(err)
		}
		ceremonies[i] = ceremony{o: store.WebAuthnOptions{Challenge: sd.Challenge, UserHandle: string(handle), RPID: "app.example.test",
			UserVerification: "required"}, answer: answer}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := f.verifyRegistration(t, ceremonies[i].o, ceremonies[i].answer); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// BenchmarkVerifyAssertion is the verification of one authentication answer alone (parse,
// client data, authenticator data, the ES256 signature, the sign count), as the sign-in runs
// it before the compare-and-set on the count.
func BenchmarkVerifyAssertion(b *testing.B) {
	t := benchTenant()
	w, _, _ := relyingParty(t)
	a := softauthn.New("https://app.example.test")
	creation, sd, err := w.BeginRegistration(user{handle: []byte("h"), name: "u@example.com"}, gowebauthn.WithCredentialParameters(Algorithms))
	if err != nil {
		b.Fatal(err)
	}
	opts, _ := json.Marshal(map[string]any{"challenge": sd.Challenge, "rp": creation.Response.RelyingParty, "user": map[string]string{"id": b64([]byte("h"))}})
	answer, cred, err := a.Create(opts)
	if err != nil {
		b.Fatal(err)
	}
	parsedReg, _ := protocol.ParseCredentialCreationResponseBytes(answer)
	sd.CredParams = Algorithms
	sd.UserVerification = protocol.VerificationRequired
	lib, err := w.CreateCredential(user{handle: []byte("h")}, *sd, parsedReg)
	if err != nil {
		b.Fatal(err)
	}
	type ceremony struct {
		sd     gowebauthn.SessionData
		parsed *protocol.ParsedCredentialAssertionData
	}
	ceremonies := make([]ceremony, b.N)
	for i := range ceremonies {
		_, login, err := w.BeginDiscoverableLogin(gowebauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			b.Fatal(err)
		}
		raw, err := a.Get([]byte(`{"challenge":"`+login.Challenge+`","rpId":"app.example.test"}`), cred)
		if err != nil {
			b.Fatal(err)
		}
		login.UserID = []byte("h")
		ceremonies[i].sd = *login
		if ceremonies[i].parsed, err = protocol.ParseCredentialRequestResponseBytes(raw); err != nil {
			b.Fatal(err)
		}
	}
	owner := user{handle: []byte("h"), credentials: []gowebauthn.Credential{*lib}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c, err := w.ValidateLogin(owner, ceremonies[i].sd, ceremonies[i].parsed)
		if err != nil || c.Authenticator.CloneWarning {
			b.Fatal(err)
		}
		owner.credentials[0].Authenticator.SignCount = c.Authenticator.SignCount
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}
