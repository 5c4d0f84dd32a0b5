package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/coretest"
)

// changesAt asks the incremental feed of tenant for what changed since cursor, for a sidecar
// holding configuration version cv (none when cv < 0).
func changesAt(h *coretest.Core, tenant string, cursor, cv int64, headers ...string) (coretest.Response, contract.EnforcementChanges) {
	h.T.Helper()
	path := fmt.Sprintf("/auth/%s/enforcement?v=3&since=%d", tenant, cursor)
	if cv >= 0 {
		path += "&cv=" + strconv.FormatInt(cv, 10)
	}
	r := h.Do("GET", path, nil, headers...)
	var c contract.EnforcementChanges
	if r.Status == 200 {
		if err := json.Unmarshal(r.Body, &c); err != nil {
			h.T.Fatalf("GET %s: %v\n%s", path, err, r.Body)
		}
	}
	return r, c
}

// revokeNew signs a new user up in tenant and revokes the session with the admin API, and
// returns the session's handle.
func revokeNew(h *coretest.Core, tenant, email string) string {
	h.T.Helper()
	access := coretest.MustStatusHeader(h.T, h.SignUp("/"+tenant, email, "secret123"), "st-access-token")
	handle := coretest.PayloadOf(h.T, access)["sessionHandle"].(string)
	if r := h.AdminDo("DELETE", "/admin/v1/sessions/"+handle, nil); r.Status != 204 {
		h.T.Fatalf("revoking %s: %d %s", handle, r.Status, r.Body)
	}
	return handle
}

func hashesOf(c contract.EnforcementChanges) []string {
	var out []string
	for _, s := range c.RevokedSessions {
		out = append(out, s.HandleHash)
	}
	return out
}

func TestTheIncrementalFeedCarriesOnlyWhatChanged(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"session":{"accessTokenLifetimeSeconds":600},"mfa":{"requirement":["totp"]}}`)
	old := revokeNew(h, "acme", "old@example.com")

	r, first := changesAt(h, "acme", 0, -1)
	t.Run("a first ask gets the policy, every revoked session and a cursor", func(t *testing.T) {
		if r.Status != 200 || first.V != contract.EnforcementChangesVersion || first.TenantID != "acme" || !first.Full ||
			first.Policy == nil || first.ConfigVersion != 1 || first.Cursor <= 0 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if first.Policy.AccessTokenLifetimeSeconds != 600 || len(first.Policy.MFA.Requirement) != 1 || first.Policy.Issuer != h.Srv.Sessions.Issuer() {
			t.Fatalf("policy = %+v", first.Policy)
		}
		if got := hashesOf(first); len(got) != 1 || got[0] != contract.SessionHandleHash(old) {
			t.Fatalf("revoked sessions = %v, want the one revoked before", got)
		}
		if r.Header.Get("ETag") != contract.EnforcementChangesETag(1, first.Cursor) {
			t.Fatalf("ETag = %q", r.Header.Get("ETag"))
		}
	})

	var handles []string
	for i := range 5 {
		handles = append(handles, revokeNew(h, "acme", fmt.Sprintf("u%d@example.com", i)))
	}
	r, next := changesAt(h, "acme", first.Cursor, first.ConfigVersion)
	t.Run("asking with the cursor gets only the sessions revoked after it, without the policy", func(t *testing.T) {
		if r.Status != 200 || next.Full || next.Policy != nil || next.Cursor <= first.Cursor {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		var want []string
		for _, handle := range handles {
			want = append(want, contract.SessionHandleHash(handle))
		}
		if got := hashesOf(next); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("revoked sessions = %v, want %v", got, want)
		}
	})

	t.Run("one more revocation costs one entry, however many came before", func(t *testing.T) {
		last := revokeNew(h, "acme", "last@example.com")
		r, c := changesAt(h, "acme", next.Cursor, next.ConfigVersion)
		if got := hashesOf(c); r.Status != 200 || len(got) != 1 || got[0] != contract.SessionHandleHash(last) {
			t.Fatalf("got %d %s, want only %s", r.Status, r.Body, contract.SessionHandleHash(last))
		}
		next = c
	})

	t.Run("nothing changed: the ETag of the last answer gets 304", func(t *testing.T) {
		etag := contract.EnforcementChangesETag(next.ConfigVersion, next.Cursor)
		if r, _ := changesAt(h, "acme", next.Cursor, next.ConfigVersion, "If-None-Match", etag); r.Status != 304 || len(r.Body) != 0 {
			t.Fatalf("got %d %q", r.Status, r.Body)
		}
		r, c := changesAt(h, "acme", next.Cursor, next.ConfigVersion)
		if r.Status != 200 || len(c.RevokedSessions) != 0 || c.Policy != nil || c.Cursor != next.Cursor {
			t.Fatalf("without If-None-Match: %d %s, want an empty answer", r.Status, r.Body)
		}
	})

	t.Run("a policy change sends the new policy once", func(t *testing.T) {
		h.PutTenantJSON("acme", `{"session":{"accessTokenLifetimeSeconds":600},"mfa":{"requirement":["otp-email"]}}`)
		etag := contract.EnforcementChangesETag(next.ConfigVersion, next.Cursor)
		r, c := changesAt(h, "acme", next.Cursor, next.ConfigVersion, "If-None-Match", etag)
		if r.Status != 200 || c.ConfigVersion != 2 || c.Policy == nil || len(c.Policy.MFA.Requirement) != 1 || len(c.RevokedSessions) != 0 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if r, c := changesAt(h, "acme", c.Cursor, c.ConfigVersion); r.Status != 200 || c.Policy != nil {
			t.Fatalf("asking again at version 2: %d %s, want no policy", r.Status, r.Body)
		}
	})

	t.Run("a cursor the core never reached gets the full list", func(t *testing.T) {
		r, c := changesAt(h, "acme", next.Cursor+1000, 2)
		if r.Status != 200 || !c.Full || len(c.RevokedSessions) != 7 || c.Cursor != next.Cursor {
			t.Fatalf("got %d %s, want all 7 revoked sessions at cursor %d", r.Status, r.Body, next.Cursor)
		}
	})

	t.Run("revocations older than the access-token lifetime are not sent again", func(t *testing.T) {
		h.Clock.Advance(601e9)
		if r, c := changesAt(h, "acme", 0, -1); r.Status != 200 || len(c.RevokedSessions) != 0 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestTheIncrementalFeedRefusesQueriesItDoesNotUnderstand(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{}`)
	tests := []struct {
		name, query string
		status      int
		message     string
	}{
		{"another version is refused with the versions this core serves", "v=4", 400, `v="4": this core serves the enforcement feed in version 3 (ask without v for version 2)`},
		{"a negative cursor is refused", "v=3&since=-1", 400, `since="-1": want the revocation cursor of the last answer, a whole number from 0`},
		{"a cursor that is not a number is refused", "v=3&since=abc", 400, `since="abc": want the revocation cursor of the last answer, a whole number from 0`},
		{"a configuration version that is not a number is refused", "v=3&since=0&cv=x", 400, `cv="x": want the configVersion of the last answer, a whole number from 0`},
		{"an unknown tenant has no feed", "v=3&since=0", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tenant := "acme"
			if tc.status == 404 {
				tenant = "nope"
			}
			r := h.Do("GET", "/auth/"+tenant+"/enforcement?"+tc.query, nil)
			if r.Status != tc.status {
				t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.status)
			}
			if tc.message != "" && r.JSON(t)["message"] != tc.message {
				t.Fatalf("message = %q, want %q", r.JSON(t)["message"], tc.message)
			}
		})
	}
}

func TestASidecarFollowsTheIncrementalFeed(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"session":{"accessTokenLifetimeSeconds":600}}`)
	sc, sidecar := h.ViaSidecar("acme")
	tokens := map[string]string{}
	for _, email := range []string{"ann@example.com", "bob@example.com", "cy@example.com"} {
		tokens[email] = coretest.MustStatusHeader(t, h.SignUp("/acme", email, "secret123"), "st-access-token")
	}
	status := func(email string) int {
		return sc.Do("GET", "/orders", nil, "Authorization", "Bearer "+tokens[email]).Status
	}
	revoke := func(email string) {
		handle := coretest.PayloadOf(t, tokens[email])["sessionHandle"].(string)
		if r := h.AdminDo("DELETE", "/admin/v1/sessions/"+handle, nil); r.Status != 204 {
			t.Fatalf("revoking: %d %s", r.Status, r.Body)
		}
		if err := sidecar.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		do      func()
		refused []string
	}{
		{"before any revocation every session is let through", func() {}, nil},
		{"a revocation after the first answer is refused", func() { revoke("ann@example.com") }, []string{"ann@example.com"}},
		{"a second change adds to the first", func() { revoke("bob@example.com") }, []string{"ann@example.com", "bob@example.com"}},
		{"a policy change keeps the revocations", func() {
			h.PutTenantJSON("acme", `{"session":{"accessTokenLifetimeSeconds":600},"mfa":{"requirement":[]}}`)
			if err := sidecar.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, []string{"ann@example.com", "bob@example.com"}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.do()
			for email := range tokens {
				want := 200
				for _, r := range step.refused {
					if r == email {
						want = 401
					}
				}
				if got := status(email); got != want {
					t.Errorf("%s through the sidecar: %d, want %d", email, got, want)
				}
			}
		})
	}
}
