// The signing keys and the OpenID discovery document that point verifiers at them.

package httpapi

import (
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/core/httpkit"
)

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := a.opts.Keys.JWKS(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	// Short caching: verifiers refetch on an unknown kid anyway, and revalidation with the
	// ETag costs no body.
	a.writeTagged(w, r, set, "max-age=60, must-revalidate")
}

func (a *API) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	iss := a.opts.Sessions.Issuer()
	set, err := a.opts.Keys.JWKS(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	// The algorithms of the published keys, in the JWKS's order (newest first).
	algs := []string{}
	for _, k := range set.Keys {
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + "/jwt/jwks.json",
		"id_token_signing_alg_values_supported": algs,
	})
}
