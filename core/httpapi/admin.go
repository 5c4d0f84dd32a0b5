package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twofold-dev/twofold/core/config"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

func redacted(s config.TenantState) config.TenantState {
	s.Config = s.Config.Redact()
	return s
}

func (a *API) putTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	if err := config.ValidateTenantID(id); err != nil {
		writeValidationError(w, err)
		return
	}
	var c config.TenantConfig
	if !decode(w, r, &c, true) {
		return
	}
	before, err := a.opts.Tenants.Get(r.Context(), id)
	if err != nil && !errors.Is(err, tenant.ErrUnknownTenant) {
		a.internalError(w, r, err)
		return
	}
	state, created, err := a.opts.Tenants.Put(r.Context(), id, c)
	if errors.Is(err, config.ErrInvalid) {
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
		a.auditEvent(r, "Changed tenant configuration", id, "", "success", "configVersion", state.ConfigVersion, "configHash", state.ConfigHash, "created", created)
	}
	writeJSON(w, status, redacted(state))
}

func writeValidationError(w http.ResponseWriter, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		writeError(w, http.StatusBadRequest, ve.Field, "%s", ve.Message)
		return
	}
	writeError(w, http.StatusBadRequest, "", "%v", err)
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	state, err := a.opts.Tenants.Get(r.Context(), id)
	if errors.Is(err, tenant.ErrUnknownTenant) {
		writeError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", id)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redacted(state))
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) {
	list, err := a.opts.Tenants.List(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := config.TenantList{Tenants: make([]config.TenantState, 0, len(list))}
	for _, s := range list {
		out.Tenants = append(out.Tenants, redacted(s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	deleteUsers := false
	if v := r.URL.Query().Get("deleteUsers"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "deleteUsers", "deleteUsers must be true or false, not %q", v)
			return
		}
		deleteUsers = b
	}
	err := a.opts.Tenants.Delete(r.Context(), id, deleteUsers)
	switch {
	case errors.Is(err, tenant.ErrUnknownTenant):
		writeError(w, http.StatusNotFound, "tenantId", "unknown tenant %q", id)
		return
	case errors.Is(err, tenant.ErrPublicTenantUsers):
		writeError(w, http.StatusBadRequest, "deleteUsers", "%v", err)
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	a.auditEvent(r, "Deleted tenant configuration", id, "", "success", "deleteUsers", deleteUsers)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) revokeUserSessions(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("user")
	if _, err := a.opts.Store.GetUser(r.Context(), userID); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "userId", "unknown user %q", userID)
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
	a.auditEvent(r, "Revoked user sessions", "", userID, "success", "revoked", n, "by", "admin")
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	handle := r.PathValue("handle")
	st, err := a.opts.Sessions.Revoke(r.Context(), handle)
	if errors.Is(err, session.ErrUnauthorised) {
		writeError(w, http.StatusNotFound, "sessionHandle", "unknown session %q", handle)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("revoke", "success").Inc()
	a.auditEvent(r, "Revoked session", st.TenantID, st.UserID, "success", "session", handle, "by", "admin")
	w.WriteHeader(http.StatusNoContent)
}

// etagOf is a strong entity tag of a body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// etagMatches implements If-None-Match: a list of tags, or *.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
