// Third-party (OIDC) sign-in: the authorisation URL and the sign-in-up with the provider's code.

package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

func (a *API) authorisationURL(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	id, redirect := q.Get("thirdPartyId"), q.Get("redirectURIOnProviderDashboard")
	if id == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the thirdPartyId as a GET param")
		return
	}
	if redirect == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the redirectURIOnProviderDashboard as a GET param")
		return
	}
	p, err := thirdparty.Find(t.Config, id)
	if err != nil {
		httpkit.WriteError(w, http.StatusBadRequest, "", "the provider %s could not be found in the configuration of tenant %q", id, t.ID)
		return
	}
	u, verifier, err := a.opts.ThirdParty.AuthorisationURL(r.Context(), p, redirect)
	if err != nil {
		a.log.Error(err, "Failed to build an authorisation URL", "tenant", t.ID, "provider", id)
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusGeneralError, "message": "the provider " + id + " cannot be reached"})
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK, "urlWithQueryParams": u, "pkceCodeVerifier": verifier})
}

func (a *API) thirdPartySignInUp(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		ThirdPartyID    string `json:"thirdPartyId"`
		RedirectURIInfo *struct {
			RedirectURIOnProviderDashboard string          `json:"redirectURIOnProviderDashboard"`
			RedirectURIQueryParams         json.RawMessage `json:"redirectURIQueryParams"`
			PKCECodeVerifier               string          `json:"pkceCodeVerifier"`
		} `json:"redirectURIInfo"`
		OAuthTokens                     json.RawMessage `json:"oAuthTokens"`
		ShouldTryLinkingWithSessionUser bool            `json:"shouldTryLinkingWithSessionUser"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	switch {
	case body.ThirdPartyID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the thirdPartyId in request body")
		return
	case body.ShouldTryLinkingWithSessionUser:
		httpkit.WriteError(w, http.StatusBadRequest, "", "shouldTryLinkingWithSessionUser is not supported by this core yet: sign in without it")
		return
	case body.RedirectURIInfo == nil && len(body.OAuthTokens) > 0:
		httpkit.WriteError(w, http.StatusBadRequest, "", "oAuthTokens are not accepted: send redirectURIInfo so the core exchanges the code itself")
		return
	case body.RedirectURIInfo == nil:
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide one of redirectURIInfo or oAuthTokens in the request body")
		return
	case body.RedirectURIInfo.RedirectURIOnProviderDashboard == "":
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the redirectURIOnProviderDashboard in redirectURIInfo")
		return
	}
	query := map[string]string{}
	if raw := body.RedirectURIInfo.RedirectURIQueryParams; len(raw) > 0 && string(raw) != "null" {
		var params map[string]any
		if err := json.Unmarshal(raw, &params); err != nil {
			httpkit.WriteError(w, http.StatusBadRequest, "", "redirectURIQueryParams must be an object")
			return
		}
		for k, v := range params {
			if s, ok := v.(string); ok {
				query[k] = s
			}
		}
	}
	if !a.firstFactorAllowed(w, t, mfa.ThirdParty, contract.StatusSignInUpNotAllowed) {
		return
	}
	res, err := a.ThirdPartySignInUp(r.Context(), a.ClientOf(r), t, ThirdPartySignIn{ProviderID: body.ThirdPartyID,
		RedirectURI: body.RedirectURIInfo.RedirectURIOnProviderDashboard, QueryParams: query, CodeVerifier: body.RedirectURIInfo.PKCECodeVerifier})
	if errors.Is(err, ErrUnknownProvider) {
		httpkit.WriteError(w, http.StatusBadRequest, "", "the provider %s could not be found in the configuration of tenant %q", body.ThirdPartyID, t.ID)
		return
	}
	a.writeSignIn(w, r, t, res, err, true)
}
