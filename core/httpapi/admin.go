package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

func redacted(s contract.TenantState) contract.TenantState {
	s.Config = s.Config.Redact()
	return s
}

// maxOwnerLength bounds the owner a claimant names (a Kubernetes namespace, name and UID
// fit in well under half of it).
const maxOwnerLength = 512

// ownerParam reads the optional ?owner= of a tenant write: who claims the tenant. It answers
// 400 itself, and returns ok false, when the parameter is present but not a usable owner.
func ownerParam(w http.ResponseWriter, r *http.Request) (owner string, ok bool) {
	q := r.URL.Query()
	if !q.Has("owner") {
		return "", true
	}
	owner = q.Get("owner")
	switch {
	case owner == "":
		httpkit.WriteError(w, http.StatusBadRequest, "owner", "owner is empty: name the claimant (the controllers send namespace/name/uid) or leave the parameter out")
		return "", false
	case len(owner) > maxOwnerLength:
		httpkit.WriteError(w, http.StatusBadRequest, "owner", "owner is %d characters long; at most %d are allowed", len(owner), maxOwnerLength)
		return "", false
	}
	for _, c := range []byte(owner) {
		if c <= ' ' || c > '~' {
			httpkit.WriteError(w, http.StatusBadRequest, "owner", "owner may hold only visible ASCII characters (no spaces)")
			return "", false
		}
	}
	return owner, true
}

// claimedBody is the 409 answer to a write by someone who does not own the tenant.
type claimedBody struct {
	Message string `json:"message"`
	Field   string `json:"field"`
	// Owner is who owns the tenant; empty when nobody does.
	Owner string `json:"owner"`
}

// writeClaimed answers 409 when err is a *store.ClaimedError and reports whether it was.
func (a *API) writeClaimed(w http.ResponseWriter, r *http.Request, id, owner, action string, err error) bool {
	var ce *store.ClaimedError
	if !errors.As(err, &ce) {
		return false
	}
	msg := fmt.Sprintf("tenant %q is owned by %s; only its owner can %s it", id, ce.Owner, action)
	if ce.Owner == "" {
		msg = fmt.Sprintf("tenant %q is not owned by %s (nobody has claimed it); only its owner can %s it", id, owner, action)
	}
	a.AdminAudit(r, "Refused tenant change by a non-owner", id, "", "refused", "action", action, "claimant", owner, "owner", ce.Owner)
	httpkit.WriteJSON(w, http.StatusConflict, claimedBody{Message: msg, Field: "owner", Owner: ce.Owner})
	return true
}

func (a *API) putTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	if err := contract.ValidateTenantID(id); err != nil {
		writeValidationError(w, err)
		return
	}
	owner, ok := ownerParam(w, r)
	if !ok {
		return
	}
	var c contract.TenantConfig
	if !httpkit.DecodeStrict(w, r, &c) {
		return
	}
	before, err := a.opts.Tenants.Get(r.Context(), id)
	if err != nil && !errors.Is(err, tenant.ErrUnknownTenant) {
		a.internalError(w, r, err)
		return
	}
	state, created, err := a.opts.Tenants.PutOwned(r.Context(), id, owner, c)
	if a.writeClaimed(w, r, id, owner, "change", err) {
		return
	}
	if errors.Is(err, contract.ErrInvalid) {
		writeValidationError(w, err)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if created || state.ConfigVersion != before.ConfigVersion {
		a.AdminAudit(r, "Changed tenant configuration", id, "", "success", "configVersion", state.ConfigVersion, "configHash", state.ConfigHash, "created", created, "owner", state.Owner)
	}
	if owner != "" && before.Owner != owner {
		a.AdminAudit(r, "Claimed tenant", id, "", "success", "owner", owner)
	}
	httpkit.WriteJSON(w, status, redacted(state))
}

func writeValidationError(w http.ResponseWriter, err error) {
	var ve *contract.ValidationError
	if errors.As(err, &ve) {
		httpkit.WriteError(w, http.StatusBadRequest, ve.Field, "%s", ve.Message)
		return
	}
	httpkit.WriteError(w, http.StatusBadRequest, "", "%v", err)
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	state, err := a.opts.Tenants.Get(r.Context(), id)
	if errors.Is(err, tenant.ErrUnknownTenant) {
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", id)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, redacted(state))
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) {
	list, err := a.opts.Tenants.List(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := contract.TenantList{Tenants: make([]contract.TenantState, 0, len(list))}
	for _, s := range list {
		out.Tenants = append(out.Tenants, redacted(s))
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	deleteUsers := false
	if v := r.URL.Query().Get("deleteUsers"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			httpkit.WriteError(w, http.StatusBadRequest, "deleteUsers", "deleteUsers must be true or false, not %q", v)
			return
		}
		deleteUsers = b
	}
	owner, ok := ownerParam(w, r)
	if !ok {
		return
	}
	err := a.opts.Tenants.DeleteOwned(r.Context(), id, owner, deleteUsers)
	if a.writeClaimed(w, r, id, owner, "delete", err) {
		return
	}
	switch {
	case errors.Is(err, tenant.ErrUnknownTenant):
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", id)
		return
	case errors.Is(err, tenant.ErrPublicTenantUsers):
		httpkit.WriteError(w, http.StatusBadRequest, "deleteUsers", "%v", err)
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	a.AdminAudit(r, "Deleted tenant configuration", id, "", "success", "deleteUsers", deleteUsers, "owner", owner)
	w.WriteHeader(http.StatusNoContent)
}

// releaseTenant gives up a claim: DELETE /admin/v1/tenants/{tenant}/owner?owner=... clears
// the owner when it is the one named; without ?owner= it clears any owner (the admin's way
// out when the claimant is gone for good).
func (a *API) releaseTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	owner, ok := ownerParam(w, r)
	if !ok {
		return
	}
	before, err := a.opts.Tenants.Get(r.Context(), id)
	if errors.Is(err, tenant.ErrUnknownTenant) {
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", id)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	state, err := a.opts.Tenants.Release(r.Context(), id, owner)
	if a.writeClaimed(w, r, id, owner, "release", err) {
		return
	}
	switch {
	case errors.Is(err, tenant.ErrUnknownTenant):
		httpkit.WriteError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", id)
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	if before.Owner != "" {
		a.AdminAudit(r, "Released tenant", id, "", "success", "owner", before.Owner, "forced", owner == "")
	}
	httpkit.WriteJSON(w, http.StatusOK, redacted(state))
}

func (a *API) revokeUserSessions(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("user")
	if _, err := a.opts.Store.GetUser(r.Context(), userID); errors.Is(err, store.ErrNotFound) {
		httpkit.WriteError(w, http.StatusNotFound, "userId", "unknown user %q", userID)
		return
	} else if err != nil {
		a.internalError(w, r, err)
		return
	}
	n, err := a.opts.Sessions.RevokeUser(r.Context(), userID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("revoke", "success").Add(float64(n))
	a.AdminAudit(r, "Revoked user sessions", "", userID, "success", "revoked", n)
	httpkit.WriteJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	handle := r.PathValue("handle")
	st, err := a.opts.Sessions.Revoke(r.Context(), handle)
	if errors.Is(err, session.ErrUnauthorised) {
		httpkit.WriteError(w, http.StatusNotFound, "sessionHandle", "unknown session %q", handle)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("revoke", "success").Inc()
	a.AdminAudit(r, "Revoked session", st.TenantID, st.UserID, "success", "session", handle)
	w.WriteHeader(http.StatusNoContent)
}
