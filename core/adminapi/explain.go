package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// firstFactorOf is the factor a login method completes.
func firstFactorOf(lm store.LoginMethod) string {
	switch lm.RecipeID {
	case store.RecipeEmailPassword:
		return mfa.EmailPassword
	case store.RecipeThirdParty:
		return mfa.ThirdParty
	case store.RecipeWebAuthn:
		return mfa.WebAuthn
	case store.RecipePasswordless:
		if lm.PhoneNumber != "" {
			return mfa.OTPPhone
		}
		return mfa.OTPEmail
	}
	return lm.RecipeID
}

// explain: GET /admin/v1/users/{user}/explain[?tenantId=&path=&method=] says which factors the
// user needs next and why: the tenant's policy, the user's own factors, what they have set
// up, the grace period, and for a route what the sidecars require, checked against each live
// session.
func (a *API) explain(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	path, method := q.Get("path"), strings.ToUpper(q.Get("method"))
	if path != "" && !strings.HasPrefix(path, "/") {
		httpkit.WriteError(w, http.StatusBadRequest, "path", "path must start with /, not %q", path)
		return
	}
	if method != "" && path == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "method", "method needs a path")
		return
	}
	if path != "" && method == "" {
		method = http.MethodGet
	}
	tenantID := q.Get("tenantId")
	var first *store.LoginMethod
	for i, lm := range u.LoginMethods {
		if tenantID == "" || lm.TenantID == tenantID {
			first = &u.LoginMethods[i]
			break
		}
	}
	if first == nil {
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "user %q has no login method in tenant %q", u.ID, tenantID)
		return
	}
	ctx := r.Context()
	t, err := a.opts.Tenants.Current(ctx, first.TenantID)
	if errors.Is(err, tenant.ErrUnknownTenant) {
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", first.TenantID)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	now := a.opts.Clock()
	own, err := a.opts.Engine.UserFactors(ctx, u.ID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	ff := firstFactorOf(*first)
	st, err := a.opts.Engine.State(ctx, t, u.ID, mfa.Completed{ff: now.Unix()})
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	pol := t.Config.MFA
	e := contract.AdminExplanation{UserID: u.ID, TenantID: t.ID, Disabled: !u.DisabledAt.IsZero(), Enforcement: string(pol.Enforcement),
		Requirement: st.Requirement, RequiredSecondaryFactors: nonNil(own), SetUp: nonNil(st.SetUp), Available: nonNil(st.Available),
		FirstFactor: ff, Next: nonNil(st.Next), InGracePeriod: st.InGracePeriod, Sessions: []contract.AdminSessionExplain{}}
	if e.Requirement == nil {
		e.Requirement = mfa.Requirement{}
	}
	e.MustSetUp = len(st.Next) > 0 && !slices.ContainsFunc(st.Next, func(f string) bool { return slices.Contains(st.SetUp, f) })
	say := func(format string, args ...any) { e.Reasons = append(e.Reasons, fmt.Sprintf(format, args...)) }
	if e.Disabled {
		say("The user is disabled (since %s): every sign-in and refresh is refused, whatever the factors.", rfc3339(u.DisabledAt))
	}
	switch {
	case len(pol.Requirement) == 0:
		say("Tenant %q requires no secondary factor of every user.", t.ID)
	case pol.Enforcement == contract.EnforcementUserOptIn && len(own) == 0:
		say("Tenant %q requires %s only of users who opted in (UserOptIn); this user has not, so the tenant's requirement does not apply.", t.ID, reqString(pol.Requirement))
	case pol.Enforcement == contract.EnforcementUserOptIn:
		say("Tenant %q requires %s of users who opted in (UserOptIn); this user opted in.", t.ID, reqString(pol.Requirement))
	default:
		say("Tenant %q requires %s of every user (Required).", t.ID, reqString(pol.Requirement))
	}
	if len(own) > 0 {
		say("The user's own required factors add one of %s.", strings.Join(own, ", "))
	}
	if pol.MaxFactorAgeSeconds > 0 {
		say("Completed factors count for %s (maxFactorAgeSeconds).", time.Duration(pol.MaxFactorAgeSeconds)*time.Second)
	}
	if len(st.SetUp) == 0 {
		say("The user has set up no secondary factor.")
	} else {
		say("The user has set up: %s.", strings.Join(st.SetUp, ", "))
	}
	switch {
	case len(st.Next) == 0:
		say("After signing in with %s, nothing more is required.", ff)
	case e.MustSetUp:
		say("After signing in with %s, the user must complete one of %s, and has set up none of them: the hosted pages ask them to set one up (allowed now: %s).",
			ff, strings.Join(st.Next, ", "), strings.Join(nonNil(st.AllowedToSetUp), ", "))
	default:
		say("After signing in with %s, the user must complete one of %s.", ff, strings.Join(st.Next, ", "))
	}
	if st.InGracePeriod {
		say("The enrolment grace period still lets the user in without it (v is true).")
	}
	var rule *contract.Route
	if path != "" {
		rule = matchRoute(pol.Routes, path, method)
		rx := &contract.AdminRouteExplain{Path: path, Method: method, Rule: rule, Requirement: mfa.Requirement{}}
		switch {
		case rule == nil:
			say("No route rule matches %s %s: the tenant's requirement is all the sidecars check.", method, path)
		case rule.Public:
			rx.Public = true
			say("%s %s matches the public rule %q: the sidecars let it through without a session.", method, path, rule.PathPrefix)
		default:
			rx.Requirement, rx.MaxFactorAgeSeconds = rule.Requirement, rule.MaxFactorAgeSeconds
			if len(rx.Requirement) == 0 {
				rx.Requirement = pol.Requirement
			}
			if rx.MaxFactorAgeSeconds == 0 {
				rx.MaxFactorAgeSeconds = pol.MaxFactorAgeSeconds
			}
			age := "of any age"
			if rx.MaxFactorAgeSeconds > 0 {
				age = fmt.Sprintf("completed within %s", time.Duration(rx.MaxFactorAgeSeconds)*time.Second)
			}
			say("%s %s matches the rule %q: the sidecars also require %s, %s, on top of the tenant's requirement; without it they answer 403.",
				method, path, rule.PathPrefix, reqString(rx.Requirement), age)
		}
		e.Route = rx
	}
	live, err := a.opts.Store.LiveUserSessions(ctx, u.ID, now)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	for _, s := range live {
		if s.TenantID != t.ID {
			continue
		}
		as := toAdminSession(s)
		ss, err := a.opts.Engine.State(ctx, t, u.ID, as.Completed)
		if err != nil {
			a.internalError(w, r, err)
			return
		}
		x := contract.AdminSessionExplain{SessionHandle: s.Handle, V: ss.V, Next: nonNil(ss.Next), Verdict: "allowed"}
		if !ss.V {
			x.Verdict = "mfa-incomplete"
		}
		if e.Route != nil && rule != nil && !rule.Public && x.Verdict == "allowed" {
			c := as.Completed
			if e.Route.MaxFactorAgeSeconds > 0 {
				c = c.Fresh(now, time.Duration(e.Route.MaxFactorAgeSeconds)*time.Second)
			}
			if next := e.Route.Requirement.NextSet(c); len(next) > 0 {
				x.RouteNext, x.Verdict = next, "step-up"
			}
		}
		switch x.Verdict {
		case "mfa-incomplete":
			say("Session %s has completed %s and still needs one of %s: the sidecars refuse it (403, or the hosted MFA page for a browser).",
				short(s.Handle), completedString(as.Completed, now), strings.Join(x.Next, ", "))
		case "step-up":
			say("Session %s has completed %s, which does not meet the route's rule: it needs one of %s (again) — 403 until it does.",
				short(s.Handle), completedString(as.Completed, now), strings.Join(x.RouteNext, ", "))
		default:
			say("Session %s has completed %s: allowed.", short(s.Handle), completedString(as.Completed, now))
		}
		e.Sessions = append(e.Sessions, x)
	}
	if len(e.Sessions) == 0 {
		say("The user has no live session in tenant %q.", t.ID)
	}
	a.opts.API.AdminAudit(r, "Explained requirement", t.ID, u.ID, "success", "path", path, "method", method)
	httpkit.WriteJSON(w, http.StatusOK, e)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func short(handle string) string {
	if len(handle) > 8 {
		return handle[:8] + "…"
	}
	return handle
}

func reqString(req mfa.Requirement) string {
	if len(req) == 0 {
		return "nothing"
	}
	b, _ := json.Marshal(req)
	return string(b)
}

func completedString(c mfa.Completed, now time.Time) string {
	if len(c) == 0 {
		return "no factor"
	}
	var parts []string
	for _, f := range c.Names() {
		parts = append(parts, fmt.Sprintf("%s %s ago", f, now.Sub(time.Unix(c[f], 0)).Round(time.Second)))
	}
	return strings.Join(parts, ", ")
}

// matchRoute is the sidecars' rule choice: the longest path prefix that covers path and
// method, a protected rule before a public one with the same prefix.
func matchRoute(routes []contract.Route, path, method string) *contract.Route {
	sorted := slices.Clone(routes)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if len(a.PathPrefix) != len(b.PathPrefix) {
			return len(a.PathPrefix) > len(b.PathPrefix)
		}
		return !a.Public && b.Public
	})
	for i := range sorted {
		rt := &sorted[i]
		if hasPathPrefix(path, rt.PathPrefix) && matchesMethod(rt.Methods, method) {
			return rt
		}
	}
	return nil
}

func matchesMethod(methods []string, method string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		m = strings.ToUpper(m)
		if m == method || (m == http.MethodGet && method == http.MethodHead) {
			return true
		}
	}
	return false
}

// hasPathPrefix is the sidecars' prefix test: prefix /admin covers /admin and /admin/x, not
// /administrator.
func hasPathPrefix(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return len(prefix) > 1 && prefix[len(prefix)-1] == '/' && p == prefix[:len(prefix)-1]
	}
	if len(p) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	c := p[len(prefix)]
	return c == '/' || c == ';'
}
