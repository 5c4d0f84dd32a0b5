package webauthn_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/factors/webauthn"
	"github.com/twofold-dev/twofold/core/factors/webauthn/softauthn"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// The FDI endpoints are tested through HTTP in fdi_test.go; these tests call the operations
// as they are, with no request or response, and a software authenticator in place of the
// browser.

const origin = "https://app.example.test"

type core struct {
	*factortest.Core
	f *webauthn.Factor
}

// newCore starts a core whose public tenant offers passkeys as a first factor beside the
// password, on origin, and requires req after the first factor.
func newCore(t testing.TB, req mfa.Requirement) core {
	t.Helper()
	c := core{Core: factortest.NewWithConfig(t, contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword, mfa.WebAuthn},
		WebsiteDomain: origin, MFA: contract.MFA{Requirement: req}})}
	c.f = c.Srv.WebAuthn
	return c
}

func (c core) configure(cfg contract.TenantConfig) {
	c.T.Helper()
	if _, _, err := c.Srv.Tenants.Put(context.Background(), contract.PublicTenantID, cfg); err != nil {
		c.T.Fatal(err)
	}
}

func (c core) tenant() tenant.Tenant {
	c.T.Helper()
	t, err := c.Srv.Tenants.Current(context.Background(), contract.PublicTenantID)
	if err != nil {
		c.T.Fatal(err)
	}
	return t
}

func asJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register signs up email with a new passkey of a, linked to sess's user when sess is set.
func (c core) register(a *softauthn.Authenticator, email string, sess *session.Session) (webauthn.Result, *softauthn.Credential, error) {
	c.T.Helper()
	ctx, t := context.Background(), c.tenant()
	o, err := c.f.RegisterOptions(ctx, t, email, "", "")
	if err != nil {
		c.T.Fatal(err)
	}
	answer, cred, err := a.Create(asJSON(c.T, o))
	if err != nil {
		c.T.Fatal(err)
	}
	res, err := c.f.SignUp(ctx, t, sess, o.ID, answer)
	return res, cred, err
}

// options starts a sign-in ceremony, for userID's credentials when it is set.
func (c core) options(userID string) webauthn.SignInOptions {
	c.T.Helper()
	o, err := c.f.SignInOptions(context.Background(), c.tenant(), userID)
	if err != nil {
		c.T.Fatal(err)
	}
	return o
}

func (c core) signIn(a *softauthn.Authenticator, cred *softauthn.Credential, sess *session.Session) (webauthn.Result, error) {
	c.T.Helper()
	o := c.options("")
	answer, err := a.Get(asJSON(c.T, o), cred)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.f.SignIn(context.Background(), c.tenant(), sess, o.ID, answer)
}

func completed(t *testing.T, s session.Session) mfa.Claim {
	t.Helper()
	claim, err := s.MFA()
	if err != nil {
		t.Fatal(err)
	}
	return claim
}

func TestAPasskeySignsUpAndSignsInWithoutAPassword(t *testing.T) {
	c := newCore(t, nil)
	a := softauthn.New(origin)
	res, cred, err := c.register(a, "grace@example.com", nil)
	if err != nil {
		t.Fatalf("SignUp: %v", err)
	}
	if !res.Created || res.Session.Handle == "" || res.Tokens.AccessToken == "" || res.User.ID != res.RecipeUserID {
		t.Fatalf("SignUp = %+v, want a new user with a session", res)
	}
	lm := res.User.LoginMethods
	if len(lm) != 1 || lm[0].RecipeID != store.RecipeWebAuthn || lm[0].Email != "grace@example.com" || len(lm[0].WebAuthnCredentialIDs) != 1 {
		t.Fatalf("login methods = %+v, want one webauthn login method with the credential", lm)
	}
	if claim := completed(t, res.Session); claim.C[mfa.WebAuthn] == 0 || !claim.V {
		t.Fatalf("claim after the sign-up = %+v, want webauthn completed and v true", claim)
	}

	c.Now = c.Now.Add(time.Minute)
	in, err := c.signIn(a, cred, nil)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	if in.Created || in.User.ID != res.User.ID || in.Session.Handle == res.Session.Handle {
		t.Fatalf("SignIn = %+v, want a new session of the same user", in)
	}
	stored, err := c.Srv.Store.GetWebAuthnCredential(context.Background(), contract.PublicTenantID, lm[0].WebAuthnCredentialIDs[0])
	if err != nil || stored.SignCount != 1 || !stored.LastUsedAt.Equal(c.Now) || !stored.UserVerified || !stored.BackupEligible {
		t.Fatalf("credential after the sign-in = %+v, %v, want count 1 used now", stored, err)
	}
	if exists, err := c.f.EmailExists(context.Background(), contract.PublicTenantID, "grace@example.com"); err != nil || !exists {
		t.Fatalf("EmailExists = %v, %v", exists, err)
	}
}

func TestASyncedPasskeyThatAlwaysCountsZeroSignsInAgain(t *testing.T) {
	c := newCore(t, nil)
	a := softauthn.New(origin)
	a.ZeroCounter = true
	_, cred, err := c.register(a, "zoe@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.signIn(a, cred, nil); err != nil {
			t.Fatalf("sign-in %d with a count of 0: %v", i+1, err)
		}
	}
}

func TestRefusedCeremoniesChangeNothing(t *testing.T) {
	tests := []struct {
		name string
		// attack answers with the passkey cred of a, signed up already, and returns the
		// operation's error.
		attack func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error
		want   error
	}{
		{"an assertion from another origin is refused", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			a.Origin = "https://evil.example.test"
			_, err := c.signIn(a, cred, nil)
			return err
		}, webauthn.ErrInvalidCredential},
		{"a replayed assertion is refused: its options are used up", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			o := c.options("")
			answer, _ := a.Get(asJSON(c.T, o), cred)
			if _, err := c.f.SignIn(context.Background(), c.tenant(), nil, o.ID, answer); err != nil {
				c.T.Fatalf("the first use: %v", err)
			}
			_, err := c.f.SignIn(context.Background(), c.tenant(), nil, o.ID, answer)
			return err
		}, webauthn.ErrOptionsNotFound},
		{"an assertion answering other options is refused: the challenge differs", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			answer, _ := a.Get(asJSON(c.T, c.options("")), cred)
			_, err := c.f.SignIn(context.Background(), c.tenant(), nil, c.options("").ID, answer)
			return err
		}, webauthn.ErrInvalidCredential},
		{"a credential the core does not know is refused", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			other := softauthn.New(origin)
			o, _ := c.f.RegisterOptions(context.Background(), c.tenant(), "stranger@example.com", "", "")
			_, unknown, _ := other.Create(asJSON(c.T, o))
			_, err := c.signIn(other, unknown, nil)
			return err
		}, webauthn.ErrInvalidCredential},
		{"a sign count that goes backwards is refused as a cloned authenticator", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			if _, err := c.signIn(a, cred, nil); err != nil {
				c.T.Fatal(err)
			}
			cred.Counter = 0
			_, err := c.signIn(a, cred, nil)
			return err
		}, webauthn.ErrInvalidCredential},
		{"an assertion without user verification is refused when the tenant requires it", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			a.NoUserVerification = true
			_, err := c.signIn(a, cred, nil)
			return err
		}, webauthn.ErrInvalidCredential},
		{"expired options are refused", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			o := c.options("")
			answer, _ := a.Get(asJSON(c.T, o), cred)
			c.Now = c.Now.Add(webauthn.OptionsLifetime)
			_, err := c.f.SignIn(context.Background(), c.tenant(), nil, o.ID, answer)
			return err
		}, webauthn.ErrOptionsNotFound},
		{"registration options do not start a sign-in", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			o, _ := c.f.RegisterOptions(context.Background(), c.tenant(), "x@example.com", "", "")
			answer, _ := a.Get(asJSON(c.T, c.options("")), cred)
			_, err := c.f.SignIn(context.Background(), c.tenant(), nil, o.ID, answer)
			return err
		}, webauthn.ErrOptionsNotFound},
		{"a second passkey account for the same email is refused", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			_, _, err := c.register(softauthn.New(origin), "grace@example.com", nil)
			return err
		}, webauthn.ErrEmailTaken},
		{"a registration from another origin is refused", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			_, _, err := c.register(softauthn.New("https://evil.example.test"), "new@example.com", nil)
			return err
		}, webauthn.ErrInvalidCredential},
		{"a tenant without passkeys as a first factor refuses a passkey sign-in", func(c core, a *softauthn.Authenticator, cred *softauthn.Credential) error {
			c.configure(contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}, WebsiteDomain: origin})
			_, err := c.signIn(a, cred, nil)
			return err
		}, webauthn.ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(t, nil)
			a := softauthn.New(origin)
			up, cred, err := c.register(a, "grace@example.com", nil)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := c.Srv.Store.GetWebAuthnCredential(context.Background(), contract.PublicTenantID, up.User.LoginMethods[0].WebAuthnCredentialIDs[0])
			err = tt.attack(c, a, cred)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			after, _ := c.Srv.Store.GetWebAuthnCredential(context.Background(), contract.PublicTenantID, before.ID)
			if after.SignCount < before.SignCount {
				t.Fatalf("the stored sign count went from %d to %d", before.SignCount, after.SignCount)
			}
			users, _ := c.Srv.Store.UsersByEmail(context.Background(), contract.PublicTenantID, "new@example.com")
			if len(users) != 0 {
				t.Fatalf("a refused registration created %v", users)
			}
		})
	}
}

func TestAPasskeyIsASecondFactorOfThePasswordUser(t *testing.T) {
	c := newCore(t, mfa.Requirement{{Factor: mfa.WebAuthn}})
	ctx := context.Background()
	sess := c.SignIn()
	if completed(t, sess).V {
		t.Fatal("the password alone satisfies a requirement of webauthn")
	}
	a := softauthn.New(origin)
	res, cred, err := c.register(a, factortest.Email, &sess)
	if err != nil {
		t.Fatalf("setting up the passkey: %v", err)
	}
	if res.Update.Tokens == nil || !res.Update.State.V {
		t.Fatalf("update after the setup = %+v, want new tokens with the requirement met", res.Update)
	}
	u, err := c.Srv.Store.GetUser(ctx, sess.UserID)
	if err != nil || len(u.LoginMethods) != 2 || res.User.ID != sess.UserID {
		t.Fatalf("user after the setup = %+v, %v, want the password user with a webauthn login method", u, err)
	}

	// Next time the passkey completes the second factor of a password session.
	c.Now = c.Now.Add(time.Hour)
	next := c.SignIn()
	o := c.options(next.UserID)
	if len(o.AllowCredentials) != 1 {
		t.Fatalf("options for the session's user name %d credentials, want its one", len(o.AllowCredentials))
	}
	answer, _ := a.Get(asJSON(t, o), cred)
	done, err := c.f.SignIn(ctx, c.tenant(), &next, o.ID, answer)
	if err != nil || done.Update.Tokens == nil || !done.Update.State.V || done.Session.Handle != "" {
		t.Fatalf("the passkey as a second factor = %+v, %v, want the session's requirement met and no new session", done, err)
	}

	// Another user's passkey completes nothing, and counts as a failure of the session's user.
	other, otherCred, err := c.register(softauthn.New(origin), "mallory@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := c.SignIn()
	if _, err := c.signIn(softauthn.New(origin), otherCred, &victim); !errors.Is(err, webauthn.ErrNotAllowed) {
		t.Fatalf("another user's passkey (%s) as the second factor: %v, want ErrNotAllowed", other.User.ID, err)
	}
}

func TestTheSetupRuleAndTheRequirementGuardPasskeys(t *testing.T) {
	c := newCore(t, mfa.Requirement{{Factor: mfa.TOTP}})
	ctx := context.Background()
	sess := c.SignIn()
	// The user has no TOTP device, so setting up a passkey is not what the requirement asks.
	_, _, err := c.register(softauthn.New(origin), factortest.Email, &sess)
	var denied *mfaengine.SetupDeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("setting up a passkey while totp is required and not set up: %v, want a SetupDeniedError", err)
	}

	c.configure(contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword, mfa.WebAuthn}, WebsiteDomain: origin})
	sess = c.SignIn()
	res, _, err := c.register(softauthn.New(origin), factortest.Email, &sess)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, lm := range res.User.LoginMethods {
		if lm.RecipeID == store.RecipeWebAuthn {
			id = lm.WebAuthnCredentialIDs[0]
		}
	}
	if err := c.f.RenameCredential(ctx, sess, id, "  Work laptop "); err != nil {
		t.Fatal(err)
	}
	creds, _ := c.f.Credentials(ctx, sess.UserID)
	if len(creds) != 1 || creds[0].Name != "Work laptop" {
		t.Fatalf("credentials after rename = %+v", creds)
	}

	// With webauthn required again, a session that has only the password may not remove it.
	c.configure(contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword, mfa.WebAuthn}, WebsiteDomain: origin,
		MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.WebAuthn}}}})
	if err := c.f.RemoveCredential(ctx, c.SignIn(), id); !errors.Is(err, mfaengine.ErrNotSatisfied) {
		t.Fatalf("removing the passkey without the second factor: %v, want ErrNotSatisfied", err)
	}
	if err := c.f.RemoveCredential(ctx, sess, "no-such-credential"); !errors.Is(err, webauthn.ErrUnknownCredential) && !errors.Is(err, mfaengine.ErrNotSatisfied) {
		t.Fatalf("removing an unknown credential: %v", err)
	}
	creds, _ = c.f.Credentials(ctx, sess.UserID)
	if len(creds) != 1 {
		t.Fatalf("credentials after the refused removals = %d, want 1", len(creds))
	}
}

func TestFailedPasskeysLockTheUserLikeTheOtherFactors(t *testing.T) {
	c := newCore(t, mfa.Requirement{{Factor: mfa.WebAuthn}})
	sess := c.SignIn()
	c.configure(contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword, mfa.WebAuthn}, WebsiteDomain: origin})
	a := softauthn.New(origin)
	_, own, err := c.register(a, factortest.Email, &sess)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := c.register(softauthn.New(origin), "mallory@example.com", nil)
	var errs []error
	for range 6 {
		_, err := c.signIn(softauthn.New(origin), stranger, &sess)
		errs = append(errs, err)
	}
	if !slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, webauthn.ErrLocked) }) {
		t.Fatalf("six failed passkey attempts: %v, want the user locked", errs)
	}
	limit, err := c.Srv.Store.GetAttemptLimit(context.Background(), sess.UserID)
	if err != nil || limit.LockedUntil.IsZero() {
		t.Fatalf("attempt limit = %+v, %v, want a lock", limit, err)
	}
	// The user's own passkey does not lift the lock as a first factor either.
	if _, err := c.signIn(a, own, nil); !errors.Is(err, webauthn.ErrLocked) {
		t.Fatalf("a first-factor sign-in of the locked user with their own passkey: %v, want ErrLocked", err)
	}
	if after, _ := c.Srv.Store.GetAttemptLimit(context.Background(), sess.UserID); after.LockedUntil.IsZero() {
		t.Fatal("the refused sign-in lifted the lock")
	}
}
