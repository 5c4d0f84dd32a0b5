// Package adminapi is the admin API's user administration under /admin/v1 (docs/contracts.md,
// "User administration"): finding users, showing one with its factors, lockouts and sessions,
// resetting its MFA, clearing its lockouts, disabling, enabling and erasing it, explaining the
// requirement that applies to it, and the admin API's named keys.
//
// Rules:
//   - Every request is authenticated by httpapi.API.Admin: the core's own key (named
//     "default") or a named key of the store. Every action, reads included (they show personal
//     data), is an audit event naming the key ("by").
//   - Errors have the admin API's shape {"message", "field"}: 400 for bad input, 404 for an
//     unknown user, tenant or key; nothing is changed by a refused request.
//   - A disabled user cannot sign in by any factor nor refresh a session (session.Manager
//     checks every new session and refresh); disabling also revokes its live sessions.
//   - An MFA reset removes factors in one store transaction, then revokes the user's live
//     sessions (the default) or removes the reset factors from their claims ("refresh").
//   - An erasure revokes the live sessions and then deletes every row of the user in one
//     transaction.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/version"
)

// Options are the admin API's dependencies.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	Engine   *mfaengine.Engine
	// API authenticates requests and records audit events.
	API    *httpapi.API
	Clock  func() time.Time
	Logger logr.Logger
}

// API serves the user administration endpoints.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) *API {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &API{opts: opts}
}

// Register adds the endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	admin := a.opts.API.Admin
	mux.Handle("GET /admin/v1/tenants/{tenant}/users", admin(a.findUsers))
	mux.Handle("GET /admin/v1/users/{user}", admin(a.showUser))
	mux.Handle("DELETE /admin/v1/users/{user}", admin(a.deleteUser))
	mux.Handle("POST /admin/v1/users/{user}/mfa/reset", admin(a.resetMFA))
	mux.Handle("POST /admin/v1/users/{user}/lockouts/clear", admin(a.clearLockouts))
	mux.Handle("POST /admin/v1/users/{user}/disable", admin(a.disable))
	mux.Handle("POST /admin/v1/users/{user}/enable", admin(a.enable))
	mux.Handle("GET /admin/v1/users/{user}/explain", admin(a.explain))
	mux.Handle("GET /admin/v1/version", admin(a.version))
	mux.Handle("GET /admin/v1/admin-keys", admin(a.listKeys))
	mux.Handle("POST /admin/v1/admin-keys", admin(a.createKey))
	mux.Handle("DELETE /admin/v1/admin-keys/{name}", admin(a.revokeKey))
}

func (a *API) internalError(w http.ResponseWriter, r *http.Request, err error) {
	httpkit.InternalError(a.opts.Logger, w, r, err)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// user loads the request's {user}, or answers 404 and returns false.
func (a *API) user(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	id := r.PathValue("user")
	u, err := a.opts.Store.GetUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		httpkit.WriteError(w, http.StatusNotFound, "userId", "unknown user %q", id)
		return store.User{}, false
	}
	if err != nil {
		a.internalError(w, r, err)
		return store.User{}, false
	}
	return u, true
}

func toAdminUser(u store.User) contract.AdminUser {
	out := contract.AdminUser{UserID: u.ID, TimeJoined: u.TimeJoined.UnixMilli(), Disabled: !u.DisabledAt.IsZero(),
		DisabledAt: rfc3339(u.DisabledAt), TenantIDs: []string{}, Emails: []string{}, PhoneNumbers: []string{},
		LoginMethods: []contract.AdminLoginMethod{}}
	for _, lm := range u.LoginMethods {
		out.LoginMethods = append(out.LoginMethods, contract.AdminLoginMethod{RecipeUserID: lm.RecipeUserID, RecipeID: lm.RecipeID,
			TenantID: lm.TenantID, Email: lm.Email, PhoneNumber: lm.PhoneNumber, ThirdPartyID: lm.ThirdPartyID,
			ThirdPartyUserID: lm.ThirdPartyUserID, Verified: lm.Verified, TimeJoined: lm.TimeJoined.UnixMilli()})
		if !slices.Contains(out.TenantIDs, lm.TenantID) {
			out.TenantIDs = append(out.TenantIDs, lm.TenantID)
		}
		if lm.Email != "" && !slices.Contains(out.Emails, lm.Email) {
			out.Emails = append(out.Emails, lm.Email)
		}
		if lm.PhoneNumber != "" && !slices.Contains(out.PhoneNumbers, lm.PhoneNumber) {
			out.PhoneNumbers = append(out.PhoneNumbers, lm.PhoneNumber)
		}
	}
	return out
}

// findUsers: GET /admin/v1/tenants/{tenant}/users?email=|phoneNumber=|userId=|thirdPartyId=&thirdPartyUserId=
// with limit (1-100, 20 by default) and cursor.
func (a *API) findUsers(w http.ResponseWriter, r *http.Request) {
	tenantID := r.PathValue("tenant")
	if _, err := a.opts.Tenants.Get(r.Context(), tenantID); errors.Is(err, tenant.ErrUnknownTenant) {
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", tenantID)
		return
	} else if err != nil {
		a.internalError(w, r, err)
		return
	}
	q := r.URL.Query()
	uq := store.UserQuery{TenantID: tenantID, Email: strings.TrimSpace(q.Get("email")), PhoneNumber: strings.TrimSpace(q.Get("phoneNumber")),
		UserID: q.Get("userId"), ThirdPartyID: q.Get("thirdPartyId"), ThirdPartyUserID: q.Get("thirdPartyUserId"), After: q.Get("cursor"), Limit: 20}
	given := 0
	for _, v := range []string{uq.Email, uq.PhoneNumber, uq.UserID, uq.ThirdPartyID + uq.ThirdPartyUserID} {
		if v != "" {
			given++
		}
	}
	switch {
	case given != 1:
		httpkit.WriteError(w, http.StatusBadRequest, "", "give exactly one of email, phoneNumber, userId, or thirdPartyId with thirdPartyUserId")
		return
	case (uq.ThirdPartyID == "") != (uq.ThirdPartyUserID == ""):
		httpkit.WriteError(w, http.StatusBadRequest, "thirdPartyUserId", "thirdPartyId and thirdPartyUserId go together")
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxUserPage {
			httpkit.WriteError(w, http.StatusBadRequest, "limit", "limit must be a whole number from 1 to %d, not %q", store.MaxUserPage, v)
			return
		}
		uq.Limit = n
	}
	page, err := a.opts.Store.FindUsers(r.Context(), uq)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := contract.AdminUserList{Users: []contract.AdminUser{}, NextCursor: page.Next}
	for _, u := range page.Users {
		out.Users = append(out.Users, toAdminUser(u))
	}
	by := "email"
	switch {
	case uq.PhoneNumber != "":
		by = "phoneNumber"
	case uq.UserID != "":
		by = "userId"
	case uq.ThirdPartyID != "":
		by = "thirdPartyId"
	}
	a.opts.API.AdminAudit(r, "Looked up users", tenantID, "", "success", "query", by, "found", len(out.Users))
	httpkit.WriteJSON(w, http.StatusOK, out)
}

func toLockout(l store.AttemptLimit, now time.Time) contract.AdminLockout {
	out := contract.AdminLockout{Failures: l.Failures}
	if now.Before(l.LockedUntil) {
		out.Locked, out.LockedUntil = true, rfc3339(l.LockedUntil)
	}
	return out
}

func toLockouts(l store.Lockouts, now time.Time) contract.AdminLockouts {
	out := contract.AdminLockouts{SecondFactor: toLockout(l.SecondFactor, now), SignIn: []contract.AdminSignInLockout{}}
	for _, s := range l.SignIn {
		out.SignIn = append(out.SignIn, contract.AdminSignInLockout{TenantID: s.TenantID, Email: s.Account,
			AdminLockout: toLockout(store.AttemptLimit{Failures: s.Failures, LockedUntil: s.LockedUntil}, now)})
	}
	return out
}

func toAdminSession(s store.Session) contract.AdminSession {
	out := contract.AdminSession{SessionHandle: s.Handle, TenantID: s.TenantID, RecipeUserID: s.RecipeUserID,
		CreatedAt: rfc3339(s.CreatedAt), ExpiresAt: rfc3339(s.ExpiresAt), Completed: mfa.Completed{}}
	var claims map[string]json.RawMessage
	if json.Unmarshal(s.Claims, &claims) == nil {
		var c mfa.Claim
		if json.Unmarshal(claims[mfa.ClaimKey], &c) == nil {
			out.V = c.V
			if c.C != nil {
				out.Completed = c.C
			}
		}
	}
	return out
}

func (a *API) showUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	d, err := a.detail(r.Context(), u)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.AdminAudit(r, "Viewed user", "", u.ID, "success")
	httpkit.WriteJSON(w, http.StatusOK, d)
}

// detail gathers everything the admin API shows about u.
func (a *API) detail(ctx context.Context, u store.User) (contract.AdminUserDetail, error) {
	now := a.opts.Clock()
	d := contract.AdminUserDetail{AdminUser: toAdminUser(u), RequiredSecondaryFactors: []string{}, Sessions: []contract.AdminSession{},
		Factors: contract.AdminFactors{SetUp: []string{}, TOTPDevices: []contract.AdminTOTPDevice{},
			PasswordlessContacts: []contract.AdminContact{}, Passkeys: []contract.AdminPasskey{}}}
	devices, err := a.opts.Store.ListTOTPDevices(ctx, u.ID)
	if err != nil {
		return d, err
	}
	for _, dev := range devices {
		d.Factors.TOTPDevices = append(d.Factors.TOTPDevices, contract.AdminTOTPDevice{Name: dev.Name, Verified: dev.Verified, CreatedAt: rfc3339(dev.CreatedAt)})
	}
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipePasswordless {
			d.Factors.PasswordlessContacts = append(d.Factors.PasswordlessContacts, contract.AdminContact{RecipeUserID: lm.RecipeUserID,
				TenantID: lm.TenantID, Email: lm.Email, PhoneNumber: lm.PhoneNumber})
		}
	}
	creds, err := a.opts.Store.ListWebAuthnCredentials(ctx, u.ID)
	if err != nil {
		return d, err
	}
	for _, c := range creds {
		d.Factors.Passkeys = append(d.Factors.Passkeys, contract.AdminPasskey{ID: c.ID, TenantID: c.TenantID, Name: c.Name,
			CreatedAt: rfc3339(c.CreatedAt), LastUsedAt: rfc3339(c.LastUsedAt)})
	}
	if d.Factors.RecoveryCodes.Unused, d.Factors.RecoveryCodes.Total, err = a.opts.Store.CountRecoveryCodes(ctx, u.ID); err != nil {
		return d, err
	}
	d.Factors.SetUp = setUp(u, devices, creds, d.Factors.RecoveryCodes.Unused)
	own, err := a.opts.Engine.UserFactors(ctx, u.ID)
	if err != nil {
		return d, err
	}
	if own != nil {
		d.RequiredSecondaryFactors = own
	}
	l, err := a.opts.Store.UserLockouts(ctx, u.ID)
	if err != nil {
		return d, err
	}
	d.Lockouts = toLockouts(l, now)
	live, err := a.opts.Store.LiveUserSessions(ctx, u.ID, now)
	if err != nil {
		return d, err
	}
	for _, s := range live {
		d.Sessions = append(d.Sessions, toAdminSession(s))
	}
	return d, nil
}

// setUp lists the secondary factors u has set up, as the MFA engine counts them.
func setUp(u store.User, devices []store.TOTPDevice, creds []store.WebAuthnCredential, unusedCodes int) []string {
	has := map[string]bool{}
	for _, lm := range u.LoginMethods {
		switch lm.RecipeID {
		case store.RecipeEmailPassword:
			has[mfa.EmailPassword] = true
		case store.RecipePasswordless:
			if lm.Email != "" {
				has[mfa.OTPEmail], has[mfa.LinkEmail] = true, true
			}
			if lm.PhoneNumber != "" {
				has[mfa.OTPPhone], has[mfa.LinkPhone] = true, true
			}
		}
	}
	has[mfa.WebAuthn] = len(creds) > 0
	has[mfa.TOTP] = slices.ContainsFunc(devices, func(d store.TOTPDevice) bool { return d.Verified })
	has[mfa.RecoveryCode] = unusedCodes > 0
	out := []string{}
	for _, f := range mfaengine.Supported {
		if has[f] {
			out = append(out, f)
		}
	}
	return out
}

func (a *API) resetMFA(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	var req contract.AdminMFAResetRequest
	if r.ContentLength != 0 && !httpkit.DecodeStrict(w, r, &req) {
		return
	}
	for i, f := range req.Factors {
		if !slices.Contains(store.ResettableFactors, f) {
			httpkit.WriteError(w, http.StatusBadRequest, "factors["+strconv.Itoa(i)+"]", "%q is not a factor a reset removes: use %s", f, strings.Join(store.ResettableFactors, ", "))
			return
		}
	}
	switch req.Sessions {
	case "":
		req.Sessions = contract.ResetSessionsRevoke
	case contract.ResetSessionsRevoke, contract.ResetSessionsRefresh:
	default:
		httpkit.WriteError(w, http.StatusBadRequest, "sessions", "sessions must be %q or %q, not %q", contract.ResetSessionsRevoke, contract.ResetSessionsRefresh, req.Sessions)
		return
	}
	factors := req.Factors
	if len(factors) == 0 {
		factors = store.ResettableFactors
	}
	ctx := r.Context()
	removed, err := a.opts.Store.ResetMFA(ctx, u.ID, factors)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := contract.AdminMFAReset{UserID: u.ID, Factors: factors, RemovedTOTPDevices: removed.TOTPDevices, RemovedRecoveryCodes: removed.RecoveryCodes,
		RemovedPasskeys: removed.WebAuthnCredentials, RemovedLoginMethods: removed.LoginMethods, Sessions: req.Sessions}
	if out.RemovedLoginMethods == nil {
		out.RemovedLoginMethods = []string{}
	}
	if req.Sessions == contract.ResetSessionsRevoke {
		if out.RevokedSessions, err = a.opts.Sessions.RevokeUser(ctx, u.ID); err != nil {
			a.internalError(w, r, err)
			return
		}
	} else {
		live, err := a.opts.Store.LiveUserSessions(ctx, u.ID, a.opts.Clock())
		if err != nil {
			a.internalError(w, r, err)
			return
		}
		for _, s := range live {
			sess := session.Session{Handle: s.Handle, UserID: s.UserID, RecipeUserID: s.RecipeUserID, TenantID: s.TenantID}
			if _, err := a.opts.Engine.Forget(ctx, sess, factors); err != nil && !errors.Is(err, store.ErrSessionRevoked) && !errors.Is(err, store.ErrNotFound) {
				a.internalError(w, r, err)
				return
			}
			out.RefreshedSessions++
		}
	}
	a.opts.API.AdminAudit(r, "Reset user MFA", "", u.ID, "success", "factors", strings.Join(factors, ","),
		"removedTotpDevices", out.RemovedTOTPDevices, "removedRecoveryCodes", out.RemovedRecoveryCodes, "removedPasskeys", out.RemovedPasskeys,
		"removedLoginMethods", strings.Join(out.RemovedLoginMethods, ","), "sessions", req.Sessions,
		"revokedSessions", out.RevokedSessions, "refreshedSessions", out.RefreshedSessions)
	httpkit.WriteJSON(w, http.StatusOK, out)
}

func (a *API) clearLockouts(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	now := a.opts.Clock()
	l, err := a.opts.Store.ClearLockouts(r.Context(), u.ID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := contract.AdminLockoutsCleared{UserID: u.ID, Cleared: toLockouts(l, now)}
	a.opts.API.AdminAudit(r, "Cleared lockouts", "", u.ID, "success", "secondFactorFailures", l.SecondFactor.Failures,
		"secondFactorLocked", out.Cleared.SecondFactor.Locked, "signInAccounts", len(l.SignIn))
	httpkit.WriteJSON(w, http.StatusOK, out)
}

func (a *API) disable(w http.ResponseWriter, r *http.Request) { a.setDisabled(w, r, true) }
func (a *API) enable(w http.ResponseWriter, r *http.Request)  { a.setDisabled(w, r, false) }

func (a *API) setDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	u, err := a.opts.Store.SetUserDisabled(ctx, u.ID, disabled, a.opts.Clock())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := contract.AdminUserStatus{AdminUser: toAdminUser(u)}
	if disabled {
		// After the flag is stored no session starts or refreshes, so none escapes this.
		if out.RevokedSessions, err = a.opts.Sessions.RevokeUser(ctx, u.ID); err != nil {
			a.internalError(w, r, err)
			return
		}
		a.opts.API.AdminAudit(r, "Disabled user", "", u.ID, "success", "revokedSessions", out.RevokedSessions)
	} else {
		a.opts.API.AdminAudit(r, "Enabled user", "", u.ID, "success")
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	// Revoke first so the revocations are counted and reach the feed's cursor, then erase.
	n, err := a.opts.Sessions.RevokeUser(ctx, u.ID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	deleted, err := a.opts.Store.DeleteUser(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		httpkit.WriteError(w, http.StatusNotFound, "userId", "unknown user %q", u.ID)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	tenants := toAdminUser(deleted).TenantIDs
	// The event names no email or phone: the erasure is of exactly those.
	a.opts.API.AdminAudit(r, "Deleted user", "", u.ID, "success", "loginMethods", len(deleted.LoginMethods),
		"tenants", strings.Join(tenants, ","), "revokedSessions", n)
	httpkit.WriteJSON(w, http.StatusOK, contract.AdminUserDeleted{UserID: u.ID, LoginMethods: len(deleted.LoginMethods), RevokedSessions: n})
}

// version answers the core's build version, so tools can show it beside the tenants.
func (a *API) version(w http.ResponseWriter, _ *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, contract.AdminVersion{Version: version.Version})
}
