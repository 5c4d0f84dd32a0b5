package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// enforcementFeed serves GET /auth/{tenant}/enforcement: the incremental answer to a sidecar
// that asks with v=3, the full version 2 answer to any other.
func (a *API) enforcementFeed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("v") {
		a.enforcement(w, r)
		return
	}
	since, cv, err := parseFeedQuery(q.Get("v"), q.Get("since"), q.Get("cv"), q.Has("cv"))
	if err != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
		return
	}
	t, ok := a.tenantOf(w, r)
	if !ok {
		return
	}
	lifetime := time.Duration(t.Config.Session.AccessTokenLifetimeSeconds) * time.Second
	revoked, cursor, full, err := a.revocations.since(r.Context(), a.opts.Store, t.ID, since, a.opts.Clock().Add(-lifetime))
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	etag := contract.EnforcementChangesETag(t.Version, cursor)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	unchanged := !full && cursor == since && cv == t.Version
	if match := r.Header.Get("If-None-Match"); unchanged && match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	changes := contract.EnforcementChanges{
		V:               contract.EnforcementChangesVersion,
		TenantID:        t.ID,
		ConfigVersion:   t.Version,
		Cursor:          cursor,
		Full:            full,
		RevokedSessions: revoked,
	}
	if cv != t.Version {
		p := t.Config.EnforcementPolicy(t.ID, a.opts.Sessions.Issuer())
		changes.Policy = &p
	}
	body, err := json.Marshal(changes)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(append(body, '\n'))
}

// parseFeedQuery reads the incremental feed's parameters: v (3), since (a revocation cursor,
// 0 for everything) and cv (the configuration version the sidecar holds; -1 when absent).
func parseFeedQuery(v, since, cv string, hasCV bool) (int64, int64, error) {
	if v != strconv.Itoa(contract.EnforcementChangesVersion) {
		return 0, 0, fmt.Errorf("v=%q: this core serves the enforcement feed in version %d (ask without v for version %d)",
			v, contract.EnforcementChangesVersion, contract.EnforcementVersion)
	}
	cursor := int64(0)
	if since != "" {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("since=%q: want the revocation cursor of the last answer, a whole number from 0", since)
		}
		cursor = n
	}
	version := int64(-1)
	if hasCV {
		n, err := strconv.ParseInt(cv, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("cv=%q: want the configVersion of the last answer, a whole number from 0", cv)
		}
		version = n
	}
	return cursor, version, nil
}

// enforcement serves the sidecar feed with a strong ETag; a matching If-None-Match gets 304.
func (a *API) enforcement(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok {
		return
	}
	lifetime := time.Duration(t.Config.Session.AccessTokenLifetimeSeconds) * time.Second
	revoked, err := a.opts.Store.RevokedSince(r.Context(), t.ID, a.opts.Clock().Add(-lifetime))
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	list := make([]contract.RevokedSession, 0, len(revoked))
	for _, s := range revoked {
		list = append(list, contract.RevokedSession{HandleHash: contract.SessionHandleHash(s.Handle), RevokedAt: s.RevokedAt.Unix()})
	}
	a.writeTagged(w, r, t.Config.Enforcement(t.ID, t.Version, a.opts.Sessions.Issuer(), list), "no-cache")
}

// writeTagged answers v as JSON with a strong ETag of its body and the given Cache-Control; a
// matching If-None-Match gets 304 and no body.
func (a *API) writeTagged(w http.ResponseWriter, r *http.Request, v any, cacheControl string) {
	body, err := json.Marshal(v)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	etag := etagOf(body)
	w.Header().Set("Cache-Control", cacheControl)
	w.Header().Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(append(body, '\n'))
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
