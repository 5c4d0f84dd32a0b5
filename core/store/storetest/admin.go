package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

func testUserAdmin(t *testing.T, open Factory) {
	ctx := context.Background()
	// userWithEverything is u1 in tenant acme: a password, a phone and an email contact
	// linked as second factors, a passkey, a TOTP device, recovery codes, metadata, a
	// session, failed attempts of both kinds and a pending account token.
	userWithEverything := func(t *testing.T, s store.Store) {
		t.Helper()
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u1", TenantID: "acme", Email: "ana@x.io", PasswordHash: "h", Now: t0}))(t)
		must3(s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "pl-phone", UserID: "u1", TenantID: "acme", PhoneNumber: "+15550001", Now: t0}))(t)
		must3(s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "pl-email", UserID: "u1", TenantID: "acme", Email: "ana@x.io", Now: t0}))(t)
		must(s.SignUpWebAuthn(ctx, store.NewWebAuthnUser{RecipeUserID: "wa", UserID: "u1", TenantID: "acme", Email: "ana@x.io",
			Credential: store.WebAuthnCredential{ID: "cred1", RPID: "x.io", PublicKey: []byte{1}, AttestationType: "none", Name: "Laptop", CreatedAt: t0}, Now: t0}))(t)
		must(0, s.CreateTOTPDevice(ctx, store.TOTPDevice{UserID: "u1", Name: "phone", Secret: "S", Digits: 6, Period: 30, Skew: 1, CreatedAt: t0}))(t)
		must(0, s.ReplaceRecoveryCodes(ctx, "u1", [][]byte{{1}, {2}, {3}}, t0))(t)
		must(s.UpdateUserMetadata(ctx, "u1", map[string]json.RawMessage{"first": json.RawMessage(`"Ana"`)}, t0))(t)
		createSession(t, s, "s1", "u1", "acme", "r1")
		must(s.UpdateAttemptLimit(ctx, "u1", func(store.AttemptLimit) store.AttemptLimit {
			return store.AttemptLimit{Failures: 5, LockedUntil: t0.Add(15 * time.Minute)}
		}))(t)
		limits := store.SignInLimits{MaxAccountFailures: 2, AccountLock: time.Hour, MaxClientAttempts: 100, ClientWindow: time.Hour}
		for range 2 {
			must(s.ReserveSignIn(ctx, store.SignInAttempt{TenantID: "acme", Account: "ana@x.io", Now: t0, Limits: limits}))(t)
		}
		must(0, s.CreateAccountToken(ctx, store.AccountToken{Hash: "tok", Kind: store.TokenPasswordReset, TenantID: "acme",
			RecipeUserID: "u1", Email: "ana@x.io", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))(t)
	}

	t.Run("users are found by email, phone, user id and third-party id within their tenant", func(t *testing.T) {
		s := open(t)
		userWithEverything(t, s)
		must2(s.UpsertThirdPartyUser(ctx, store.ThirdPartyIdentity{TenantID: "acme", ThirdPartyID: "google", ThirdPartyUserID: "g-1", Email: "bo@x.io"}, "u2", t0))(t)
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u3", TenantID: "other", Email: "ana@x.io", PasswordHash: "h", Now: t0}))(t)
		for _, tc := range []struct {
			name string
			q    store.UserQuery
			want []string
		}{
			{"an email in any case", store.UserQuery{TenantID: "acme", Email: "ANA@x.io"}, []string{"u1"}},
			{"a phone number of a linked login method", store.UserQuery{TenantID: "acme", PhoneNumber: "+15550001"}, []string{"u1"}},
			{"a recipe user id", store.UserQuery{TenantID: "acme", UserID: "pl-phone"}, []string{"u1"}},
			{"a third-party id", store.UserQuery{TenantID: "acme", ThirdPartyID: "google", ThirdPartyUserID: "g-1"}, []string{"u2"}},
			{"an email of another tenant finds nobody here", store.UserQuery{TenantID: "nobody", Email: "ana@x.io"}, nil},
			{"the same email in the other tenant finds its own user", store.UserQuery{TenantID: "other", Email: "ana@x.io"}, []string{"u3"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.q.Limit = 10
				page := must(s.FindUsers(ctx, tc.q))(t)
				var got []string
				for _, u := range page.Users {
					got = append(got, u.ID)
				}
				if !slices.Equal(got, tc.want) || page.Next != "" {
					t.Fatalf("FindUsers = %v (next %q), want %v", got, page.Next, tc.want)
				}
			})
		}
	})

	t.Run("pages of users follow the cursor to the end", func(t *testing.T) {
		s2 := open(t)
		must(s2.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "a", TenantID: "acme", Email: "x@x.io", PasswordHash: "h", Now: t0}))(t)
		must3(s2.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "b", TenantID: "acme", Email: "x@x.io", Now: t0}))(t)
		must2(s2.UpsertThirdPartyUser(ctx, store.ThirdPartyIdentity{TenantID: "acme", ThirdPartyID: "google", ThirdPartyUserID: "g", Email: "x@x.io"}, "c", t0))(t)
		must(s2.SignUpWebAuthn(ctx, store.NewWebAuthnUser{RecipeUserID: "d", TenantID: "acme", Email: "x@x.io",
			Credential: store.WebAuthnCredential{ID: "c1", RPID: "x.io", PublicKey: []byte{1}, AttestationType: "none", CreatedAt: t0}, Now: t0}))(t)
		var got []string
		q := store.UserQuery{TenantID: "acme", Email: "x@x.io", Limit: 3}
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("the cursor never ended")
			}
			page := must(s2.FindUsers(ctx, q))(t)
			for _, u := range page.Users {
				got = append(got, u.ID)
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
		if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
			t.Fatalf("paged users = %v, want %v", got, want)
		}
	})

	t.Run("a disabled user is reported disabled, by either id, and starts no session until enabled", func(t *testing.T) {
		s := open(t)
		userWithEverything(t, s)
		u := must(s.SetUserDisabled(ctx, "pl-phone", true, t0))(t)
		if !u.DisabledAt.Equal(t0) {
			t.Fatalf("DisabledAt = %v, want %v", u.DisabledAt, t0)
		}
		again := must(s.SetUserDisabled(ctx, "u1", true, t0.Add(time.Hour)))(t)
		if !again.DisabledAt.Equal(t0) {
			t.Fatalf("disabling twice moved DisabledAt to %v", again.DisabledAt)
		}
		for _, id := range []string{"u1", "pl-phone"} {
			if got := must(s.GetUser(ctx, id))(t); !got.DisabledAt.Equal(t0) {
				t.Fatalf("GetUser(%s) DisabledAt = %v", id, got.DisabledAt)
			}
		}
		sess := store.Session{Handle: "new", UserID: "u1", RecipeUserID: "u1", TenantID: "public", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), CurrentRefreshHash: "new-r1"}
		if err := s.CreateSession(ctx, sess); !errors.Is(err, store.ErrUserDisabled) {
			t.Fatalf("a disabled user's new session = %v, want ErrUserDisabled", err)
		}
		if _, err := s.GetSession(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused session was stored: %v", err)
		}
		must(s.SetUserDisabled(ctx, "u1", false, t0))(t)
		if !must(s.GetUser(ctx, "u1"))(t).DisabledAt.IsZero() {
			t.Fatal("an enabled user is still disabled")
		}
		must(0, s.CreateSession(ctx, sess))(t)
		// Disabled again while signed in: the refresh token is refused and not rotated.
		must(s.SetUserDisabled(ctx, "u1", true, t0))(t)
		if _, err := s.RotateRefreshToken(ctx, "new-r1", "new-r2", t0.Add(time.Minute)); !errors.Is(err, store.ErrUserDisabled) {
			t.Fatalf("a disabled user's refresh = %v, want ErrUserDisabled", err)
		}
		must(s.SetUserDisabled(ctx, "u1", false, t0))(t)
		if rot := must(s.RotateRefreshToken(ctx, "new-r1", "new-r2", t0.Add(time.Minute)))(t); rot.Session.CurrentRefreshHash != "new-r1" {
			t.Fatalf("after enabling, the refresh = %+v", rot)
		}
		if _, err := s.SetUserDisabled(ctx, "ghost", true, t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("disabling an unknown user = %v, want ErrNotFound", err)
		}
	})

	t.Run("resetting chosen factors removes only those and their lockout, and keeps the first login method", func(t *testing.T) {
		s := open(t)
		userWithEverything(t, s)
		r := must(s.ResetMFA(ctx, "u1", []string{store.FactorTOTP, store.FactorOTPPhone}))(t)
		if r.TOTPDevices != 1 || r.RecoveryCodes != 0 || r.WebAuthnCredentials != 0 || !slices.Equal(r.LoginMethods, []string{"pl-phone"}) {
			t.Fatalf("ResetMFA = %+v", r)
		}
		if l := must(s.GetAttemptLimit(ctx, "u1"))(t); l != (store.AttemptLimit{}) {
			t.Fatalf("the second-factor lockout survived the reset: %+v", l)
		}
		st := must(s.GetMFAStatus(ctx, "u1"))(t)
		if st.UnusedRecoveryCodes != 3 {
			t.Fatalf("recovery codes after a TOTP reset = %d, want 3", st.UnusedRecoveryCodes)
		}
		if len(must(s.ListTOTPDevices(ctx, "u1"))(t)) != 0 {
			t.Fatal("the TOTP device survived")
		}
		u := must(s.GetUser(ctx, "u1"))(t)
		var ids []string
		for _, lm := range u.LoginMethods {
			ids = append(ids, lm.RecipeUserID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"pl-email", "u1", "wa"}) {
			t.Fatalf("login methods after reset = %v", ids)
		}
	})

	t.Run("resetting every factor leaves the password and nothing else", func(t *testing.T) {
		s := open(t)
		userWithEverything(t, s)
		r := must(s.ResetMFA(ctx, "u1", nil))(t)
		if r.TOTPDevices != 1 || r.RecoveryCodes != 3 || r.WebAuthnCredentials != 1 || len(r.LoginMethods) != 3 {
			t.Fatalf("ResetMFA = %+v", r)
		}
		u := must(s.GetUser(ctx, "u1"))(t)
		if len(u.LoginMethods) != 1 || u.LoginMethods[0].RecipeID != store.RecipeEmailPassword {
			t.Fatalf("login methods after reset = %+v", u.LoginMethods)
		}
		if _, err := s.ResetMFA(ctx, "ghost", nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("resetting an unknown user = %v, want ErrNotFound", err)
		}
	})

	t.Run("clearing lockouts reports them and forgets both kinds", func(t *testing.T) {
		s := open(t)
		userWithEverything(t, s)
		l := must(s.UserLockouts(ctx, "u1"))(t)
		if l.SecondFactor.Failures != 5 || len(l.SignIn) != 1 || l.SignIn[0].LockedUntil.IsZero() || l.SignIn[0].Account != "ana@x.io" {
			t.Fatalf("UserLockouts = %+v", l)
		}
		cleared := must(s.ClearLockouts(ctx, "u1"))(t)
		if cleared.SecondFactor.Failures != 5 || len(cleared.SignIn) != 1 {
			t.Fatalf("ClearLockouts = %+v", cleared)
		}
		after := must(s.UserLockouts(ctx, "u1"))(t)
		if after.SecondFactor != (store.AttemptLimit{}) || len(after.SignIn) != 0 {
			t.Fatalf("lockouts after clearing = %+v", after)
		}
		if must(s.GetAttemptLimit(ctx, "u1"))(t) != (store.AttemptLimit{}) {
			t.Fatal("the attempt limit survived")
		}
	})

	t.Run("deleting a user erases it and keeps everyone else", func(t *testing.T) {
		s := open(t)
		userWithEverything(t, s)
		newUser(t, s, "keep")
		createSession(t, s, "s-keep", "keep", "public", "rk")
		u := must(s.DeleteUser(ctx, "pl-email"))(t)
		if u.ID != "u1" || len(u.LoginMethods) != 4 {
			t.Fatalf("DeleteUser = %+v", u)
		}
		for _, id := range []string{"u1", "pl-phone", "pl-email", "wa"} {
			if _, err := s.GetUser(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetUser(%s) after delete = %v", id, err)
			}
		}
		if _, err := s.GetSession(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the session survived: %v", err)
		}
		if _, err := s.GetAccountToken(ctx, store.TokenPasswordReset, "tok", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the account token survived: %v", err)
		}
		if _, err := s.GetWebAuthnCredential(ctx, "acme", "cred1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the passkey survived: %v", err)
		}
		if len(must(s.FindUsers(ctx, store.UserQuery{TenantID: "acme", Email: "ana@x.io", Limit: 10}))(t).Users) != 0 {
			t.Fatal("the user is still found")
		}
		// The throttle row of the erased email is gone: a new sign-up starts with no failures.
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u9", TenantID: "acme", Email: "ana@x.io", PasswordHash: "h", Now: t0}))(t)
		if l := must(s.UserLockouts(ctx, "u9"))(t); len(l.SignIn) != 0 {
			t.Fatalf("the erased user's sign-in failures survived: %+v", l)
		}
		must(s.GetUser(ctx, "keep"))(t)
		must(s.GetSession(ctx, "s-keep"))(t)
		if _, err := s.DeleteUser(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting twice = %v, want ErrNotFound", err)
		}
	})
}

func testAdminKeys(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("a key is found by its hash until it is revoked", func(t *testing.T) {
		s := open(t)
		must(0, s.CreateAdminKey(ctx, store.AdminKey{Name: "helpdesk", Hash: "h1", CreatedAt: t0}))(t)
		must(0, s.CreateAdminKey(ctx, store.AdminKey{Name: "ci", Hash: "h2", CreatedAt: t0}))(t)
		if k := must(s.AdminKeyByHash(ctx, "h1"))(t); k.Name != "helpdesk" || !k.CreatedAt.Equal(t0) {
			t.Fatalf("AdminKeyByHash = %+v", k)
		}
		k := must(s.RevokeAdminKey(ctx, "helpdesk", t0.Add(time.Hour)))(t)
		if !k.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("RevokedAt = %v", k.RevokedAt)
		}
		if again := must(s.RevokeAdminKey(ctx, "helpdesk", t0.Add(2*time.Hour)))(t); !again.RevokedAt.Equal(k.RevokedAt) {
			t.Fatalf("revoking twice moved RevokedAt to %v", again.RevokedAt)
		}
		if _, err := s.AdminKeyByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a revoked key = %v, want ErrNotFound", err)
		}
		keys := must(s.ListAdminKeys(ctx))(t)
		if len(keys) != 2 || keys[0].Name != "ci" || keys[1].Name != "helpdesk" || keys[1].RevokedAt.IsZero() {
			t.Fatalf("ListAdminKeys = %+v", keys)
		}
	})
	t.Run("a name is never used twice, even after revocation", func(t *testing.T) {
		s := open(t)
		must(0, s.CreateAdminKey(ctx, store.AdminKey{Name: "helpdesk", Hash: "h1", CreatedAt: t0}))(t)
		must(s.RevokeAdminKey(ctx, "helpdesk", t0))(t)
		if err := s.CreateAdminKey(ctx, store.AdminKey{Name: "helpdesk", Hash: "h2", CreatedAt: t0}); !errors.Is(err, store.ErrAdminKeyExists) {
			t.Fatalf("reusing a name = %v, want ErrAdminKeyExists", err)
		}
		if _, err := s.RevokeAdminKey(ctx, "ghost", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoking an unknown key = %v, want ErrNotFound", err)
		}
	})
}

func must3[T, U, V any](v T, _ U, _ V, err error) func(*testing.T) T { return must(v, err) }
