package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// testWebAuthn checks ceremony options, webauthn login methods and their credentials.
func testWebAuthn(t *testing.T, open Factory) {
	ctx := context.Background()
	credential := func(id string) store.WebAuthnCredential {
		return store.WebAuthnCredential{ID: id, RPID: "example.com", PublicKey: []byte{0xa5, 0x01, 0x02}, AttestationType: "none",
			AAGUID: make([]byte, 16), SignCount: 7, Transports: []string{"internal", "hybrid"}, UserVerified: true,
			BackupEligible: true, BackupState: true, Name: "Laptop " + id, CreatedAt: t0}
	}
	signUp := func(t *testing.T, s store.Store, recipeUserID, linkTo, email, credID string) store.User {
		t.Helper()
		return must(s.SignUpWebAuthn(ctx, store.NewWebAuthnUser{RecipeUserID: recipeUserID, UserID: linkTo, TenantID: "acme",
			Email: email, Credential: credential(credID), Now: t0}))(t)
	}

	t.Run("options are returned once and then are gone", func(t *testing.T) {
		s := open(t)
		o := store.WebAuthnOptions{ID: "o1", TenantID: "acme", Kind: store.WebAuthnRegister, Challenge: "c", Email: "a@example.com",
			UserHandle: "h", RecipeUserID: "r", RPID: "example.com", UserVerification: "required", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		must(0, s.CreateWebAuthnOptions(ctx, o))(t)
		if _, err := s.ConsumeWebAuthnOptions(ctx, "other", "o1", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("options of another tenant = %v, want ErrNotFound", err)
		}
		got := must(s.ConsumeWebAuthnOptions(ctx, "acme", "o1", t0.Add(time.Second)))(t)
		if got != o {
			t.Fatalf("ConsumeWebAuthnOptions = %+v, want %+v", got, o)
		}
		if _, err := s.ConsumeWebAuthnOptions(ctx, "acme", "o1", t0.Add(time.Second)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("options used twice = %v, want ErrNotFound", err)
		}
	})

	t.Run("expired options are refused and swept", func(t *testing.T) {
		s := open(t)
		for i, id := range []string{"old", "new"} {
			must(0, s.CreateWebAuthnOptions(ctx, store.WebAuthnOptions{ID: id, TenantID: "acme", Kind: store.WebAuthnSignIn,
				Challenge: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Duration(i+1) * time.Minute)}))(t)
		}
		if _, err := s.ConsumeWebAuthnOptions(ctx, "acme", "old", t0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("options at their expiry = %v, want ErrNotFound", err)
		}
		must(0, s.CreateWebAuthnOptions(ctx, store.WebAuthnOptions{ID: "old", TenantID: "acme", Kind: store.WebAuthnSignIn,
			Challenge: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}))(t)
		if n := must(s.DeleteWebAuthnOptionsBefore(ctx, t0.Add(time.Minute)))(t); n != 1 {
			t.Fatalf("DeleteWebAuthnOptionsBefore removed %d, want 1", n)
		}
		must(s.ConsumeWebAuthnOptions(ctx, "acme", "new", t0))(t)
	})

	t.Run("a passkey sign-up creates a user whose login method lists the credential", func(t *testing.T) {
		s := open(t)
		u := signUp(t, s, "w1", "", "a@example.com", "cred-1")
		if u.ID != "w1" || len(u.LoginMethods) != 1 {
			t.Fatalf("user = %+v", u)
		}
		lm := u.LoginMethods[0]
		if lm.RecipeID != store.RecipeWebAuthn || lm.Email != "a@example.com" || lm.TenantID != "acme" || !slices.Equal(lm.WebAuthnCredentialIDs, []string{"cred-1"}) {
			t.Fatalf("login method = %+v", lm)
		}
		c := must(s.GetWebAuthnCredential(ctx, "acme", "cred-1"))(t)
		want := credential("cred-1")
		want.TenantID, want.RecipeUserID, want.UserID = "acme", "w1", "w1"
		if !equalCredential(c, want) {
			t.Fatalf("GetWebAuthnCredential = %+v, want %+v", c, want)
		}
		if _, err := s.GetWebAuthnCredential(ctx, "other", "cred-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("credential of another tenant = %v, want ErrNotFound", err)
		}
	})

	t.Run("an email or a credential already registered in the tenant is refused", func(t *testing.T) {
		s := open(t)
		signUp(t, s, "w1", "", "a@example.com", "cred-1")
		_, err := s.SignUpWebAuthn(ctx, store.NewWebAuthnUser{RecipeUserID: "w2", TenantID: "acme", Email: "a@example.com", Credential: credential("cred-2"), Now: t0})
		if !errors.Is(err, store.ErrEmailTaken) {
			t.Fatalf("second sign-up with the email = %v, want ErrEmailTaken", err)
		}
		_, err = s.SignUpWebAuthn(ctx, store.NewWebAuthnUser{RecipeUserID: "w3", TenantID: "acme", Email: "b@example.com", Credential: credential("cred-1"), Now: t0})
		if !errors.Is(err, store.ErrCredentialExists) {
			t.Fatalf("sign-up with a registered credential = %v, want ErrCredentialExists", err)
		}
		if _, err := s.GetUser(ctx, "w3"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused sign-up left its user behind: %v", err)
		}
		if err := s.AddWebAuthnCredential(ctx, store.WebAuthnCredential{ID: "cred-1", RecipeUserID: "w1", PublicKey: []byte{1}, CreatedAt: t0}); !errors.Is(err, store.ErrCredentialExists) {
			t.Fatalf("adding a registered credential = %v, want ErrCredentialExists", err)
		}
	})

	t.Run("a passkey linked to an existing user is one of that user's credentials", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		u := signUp(t, s, "w1", "u1", "u1@example.com", "cred-1")
		if u.ID != "u1" || len(u.LoginMethods) != 2 {
			t.Fatalf("user after linking = %+v", u)
		}
		c := credential("cred-2")
		c.RecipeUserID = "w1"
		c.CreatedAt = t0.Add(time.Second)
		must(0, s.AddWebAuthnCredential(ctx, c))(t)
		ids := func(cs []store.WebAuthnCredential) (out []string) {
			for _, c := range cs {
				out = append(out, c.ID)
			}
			return out
		}
		for _, id := range []string{"u1", "w1"} {
			if got := ids(must(s.ListWebAuthnCredentials(ctx, id))(t)); !slices.Equal(got, []string{"cred-1", "cred-2"}) {
				t.Fatalf("ListWebAuthnCredentials(%s) = %v", id, got)
			}
		}
		if _, err := s.SignUpWebAuthn(ctx, store.NewWebAuthnUser{RecipeUserID: "w9", UserID: "nobody", TenantID: "acme", Email: "x@example.com", Credential: credential("cred-9"), Now: t0}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("linking to an unknown user = %v, want ErrNotFound", err)
		}
		if err := s.AddWebAuthnCredential(ctx, store.WebAuthnCredential{ID: "cred-8", RecipeUserID: "u1", PublicKey: []byte{1}, CreatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("adding a credential to a login method that is not webauthn = %v, want ErrNotFound", err)
		}
	})

	t.Run("an assertion moves the sign count with a compare-and-set", func(t *testing.T) {
		s := open(t)
		signUp(t, s, "w1", "", "a@example.com", "cred-1")
		use := func(old, new uint32) error {
			return s.UseWebAuthnCredential(ctx, store.WebAuthnAssertion{CredentialID: "cred-1", TenantID: "acme", OldCount: old, NewCount: new, Now: t0.Add(time.Hour)})
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = use(7, 8) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrCounterMoved):
				t.Fatalf("a racing assertion = %v, want nil or ErrCounterMoved", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d racing assertions from count 7 were stored, want exactly 1", won)
		}
		c := must(s.GetWebAuthnCredential(ctx, "acme", "cred-1"))(t)
		if c.SignCount != 8 || c.BackupState || !c.LastUsedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("credential after the assertion = %+v", c)
		}
		if err := s.UseWebAuthnCredential(ctx, store.WebAuthnAssertion{CredentialID: "gone", TenantID: "acme"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("assertion of an unknown credential = %v, want ErrNotFound", err)
		}
	})

	t.Run("only the owner renames or removes a credential", func(t *testing.T) {
		s := open(t)
		signUp(t, s, "w1", "", "a@example.com", "cred-1")
		signUp(t, s, "w2", "", "b@example.com", "cred-2")
		if err := s.RenameWebAuthnCredential(ctx, "w2", "cred-1", "mine now"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("renaming another user's credential = %v, want ErrNotFound", err)
		}
		if removed := must(s.RemoveWebAuthnCredential(ctx, "w2", "cred-1"))(t); removed {
			t.Fatal("another user removed the credential")
		}
		must(0, s.RenameWebAuthnCredential(ctx, "w1", "cred-1", "Phone"))(t)
		if c := must(s.GetWebAuthnCredential(ctx, "acme", "cred-1"))(t); c.Name != "Phone" {
			t.Fatalf("name after rename = %q", c.Name)
		}
		if removed := must(s.RemoveWebAuthnCredential(ctx, "w1", "cred-1"))(t); !removed {
			t.Fatal("the owner could not remove the credential")
		}
		u := must(s.GetUser(ctx, "w1"))(t)
		if len(u.LoginMethods) != 1 || len(u.LoginMethods[0].WebAuthnCredentialIDs) != 0 {
			t.Fatalf("user after removing the only credential = %+v, want the login method kept without credentials", u)
		}
	})

	t.Run("deleting a tenant with its users removes their credentials", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenant(ctx, "acme", []byte(`{}`), "h", t0))(t)
		signUp(t, s, "w1", "", "a@example.com", "cred-1")
		must(0, s.DeleteTenant(ctx, "acme", true))(t)
		if _, err := s.GetWebAuthnCredential(ctx, "acme", "cred-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("credential after the tenant's deletion = %v, want ErrNotFound", err)
		}
	})
}

func equalCredential(a, b store.WebAuthnCredential) bool {
	return a.ID == b.ID && a.TenantID == b.TenantID && a.RecipeUserID == b.RecipeUserID && a.UserID == b.UserID && a.RPID == b.RPID &&
		slices.Equal(a.PublicKey, b.PublicKey) && a.AttestationType == b.AttestationType && slices.Equal(a.AAGUID, b.AAGUID) &&
		a.SignCount == b.SignCount && slices.Equal(a.Transports, b.Transports) && a.UserVerified == b.UserVerified &&
		a.BackupEligible == b.BackupEligible && a.BackupState == b.BackupState && a.Name == b.Name &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastUsedAt.Equal(b.LastUsedAt)
}
