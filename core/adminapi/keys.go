package adminapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/store"
)

// The admin API's named keys (GET and POST /admin/v1/admin-keys, DELETE
// /admin/v1/admin-keys/{name}): a key is shown once, when it is created, and stored as its
// SHA-256; a key's name is never used again, even after it is revoked.

var keyNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func keyInfo(k store.AdminKey) contract.AdminKeyInfo {
	return contract.AdminKeyInfo{Name: k.Name, CreatedAt: rfc3339(k.CreatedAt), RevokedAt: rfc3339(k.RevokedAt), Source: "store"}
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.opts.Store.ListAdminKeys(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	out := contract.AdminKeyList{Keys: []contract.AdminKeyInfo{{Name: httpapi.DefaultAdminKeyName, Source: "environment"}}}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyInfo(k))
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	var req contract.AdminKeyCreateRequest
	if !httpkit.DecodeStrict(w, r, &req) {
		return
	}
	if !keyNamePattern.MatchString(req.Name) || req.Name == httpapi.DefaultAdminKeyName {
		httpkit.WriteError(w, http.StatusBadRequest, "name", "a key's name is 1-63 lower-case letters, digits and hyphens, not %q (and not %q, the core's own key)", req.Name, httpapi.DefaultAdminKeyName)
		return
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		a.internalError(w, r, err)
		return
	}
	key := "tfk_" + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(key))
	k := store.AdminKey{Name: req.Name, Hash: hex.EncodeToString(sum[:]), CreatedAt: a.opts.Clock()}
	err := a.opts.Store.CreateAdminKey(r.Context(), k)
	if errors.Is(err, store.ErrAdminKeyExists) {
		httpkit.WriteError(w, http.StatusConflict, "name", "an admin key named %q exists or existed: names are never reused, choose another", req.Name)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.AdminAudit(r, "Created admin key", "", "", "success", "name", req.Name)
	httpkit.WriteJSON(w, http.StatusCreated, contract.AdminKeyCreated{AdminKeyInfo: keyInfo(k), Key: key})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == httpapi.DefaultAdminKeyName {
		httpkit.WriteError(w, http.StatusBadRequest, "name", "the default key is the core's own (TWOFOLD_ADMIN_KEY): replace it in the core's environment or Secret")
		return
	}
	k, err := a.opts.Store.RevokeAdminKey(r.Context(), name, a.opts.Clock())
	if errors.Is(err, store.ErrNotFound) {
		httpkit.WriteError(w, http.StatusNotFound, "name", "unknown admin key %q", name)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.AdminAudit(r, "Revoked admin key", "", "", "success", "name", name)
	httpkit.WriteJSON(w, http.StatusOK, keyInfo(k))
}
