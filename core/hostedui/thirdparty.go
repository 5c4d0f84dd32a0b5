package hostedui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

// OAuthCookie keeps a third-party sign-in in progress between the redirect to the provider
// and the callback: the state parameter, the PKCE verifier, the tenant and where to go after.
const OAuthCookie = "twofold-oauth"

// oauthState is the OAuthCookie's value (JSON, base64url).
type oauthState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Tenant   string `json:"t"`
	Provider string `json:"p"`
	Back     string `json:"b"`
}

// callbackURL is the hosted callback of provider id, registered with the provider: on the
// tenant's websiteDomain when it has one, else on the origin the browser used.
func callbackURL(r *http.Request, t tenant.Tenant, id string) string {
	origin := strings.TrimSuffix(t.Config.WebsiteDomain, "/")
	if origin == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	return origin + UIPrefix + "/callback/" + url.PathEscape(id)
}

// thirdPartyStart sends the browser to the provider's authorisation endpoint (the
// authorisation code flow with PKCE), remembering the attempt in a short-lived cookie.
func (u *UI) thirdPartyStart(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	id := r.FormValue("provider")
	p, err := thirdparty.Find(t.Config, id)
	if err != nil || !slices.Contains(t.Config.FirstFactors, mfa.ThirdParty) {
		u.errorPage(w, r, http.StatusNotFound, "Unknown sign-in provider", "This organisation does not offer signing in with "+id+".")
		return
	}
	authURL, verifier, err := u.opts.ThirdParty.AuthorisationURL(r.Context(), p, callbackURL(r, t, p.ID))
	if err != nil {
		u.opts.Logger.Error(err, "Failed to build an authorisation URL", "tenant", t.ID, "provider", p.ID)
		u.errorPage(w, r, http.StatusBadGateway, "Sign-in provider unavailable", "We could not reach "+firstNonEmpty(p.Name, p.ID)+". Please try again later.")
		return
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		u.InternalError(w, r, err)
		return
	}
	st := oauthState{State: base64.RawURLEncoding.EncodeToString(b), Verifier: verifier, Tenant: t.ID, Provider: p.ID,
		Back: SafeRedirect(r.FormValue("redirectToPath"))}
	target, err := url.Parse(authURL)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	q := target.Query()
	q.Set("state", st.State)
	target.RawQuery = q.Encode()
	raw, _ := json.Marshal(st)
	settings, err := u.opts.Sessions.Settings(r.Context(), t.ID)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	// Lax: the provider sends the browser back with a top-level GET from its own site.
	http.SetCookie(w, &http.Cookie{Name: OAuthCookie, Value: base64.RawURLEncoding.EncodeToString(raw), Path: UIPrefix + "/callback",
		MaxAge: int((10 * time.Minute).Seconds()), HttpOnly: true, Secure: settings.CookieSecure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Location", target.String())
	w.WriteHeader(http.StatusSeeOther)
}

// thirdPartyCallback finishes a third-party sign-in: the state must match the cookie set at
// the start, then the code is exchanged by the FDI sign-in-up endpoint.
func (u *UI) thirdPartyCallback(w http.ResponseWriter, r *http.Request) {
	var st oauthState
	c, err := r.Cookie(OAuthCookie)
	if err == nil {
		raw, derr := base64.RawURLEncoding.DecodeString(c.Value)
		err = derr
		if err == nil {
			err = json.Unmarshal(raw, &st)
		}
	}
	state := r.URL.Query().Get("state")
	if err != nil || st.State == "" || st.Provider != r.PathValue("provider") || subtle.ConstantTimeCompare([]byte(state), []byte(st.State)) != 1 {
		u.errorPage(w, r, http.StatusBadRequest, "Sign-in could not be finished",
			"This sign-in link is not valid in this browser, or it expired. Please start again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: OAuthCookie, Value: "", Path: UIPrefix + "/callback", MaxAge: -1, HttpOnly: true})
	t, err := u.opts.Tenants.Current(r.Context(), st.Tenant)
	if err != nil {
		u.errorPage(w, r, http.StatusNotFound, "Unknown organisation", "There is no sign-in page for "+st.Tenant+".")
		return
	}
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			params[k] = v[0]
		}
	}
	res, err := u.opts.API.ThirdPartySignInUp(r.Context(), u.opts.API.ClientOf(r), t, httpapi.ThirdPartySignIn{ProviderID: st.Provider,
		RedirectURI: callbackURL(r, t, st.Provider), QueryParams: params, CodeVerifier: st.Verifier})
	if err != nil && !errors.Is(err, httpapi.ErrUnknownProvider) {
		u.InternalError(w, r, err)
		return
	}
	if err == nil && res.Status == contract.StatusOK {
		u.signedIn(w, r, t, res.Session, res.Tokens, st.Back)
		return
	}
	msg := "The sign-in provider did not confirm who you are. Please try again."
	if res.Status == httpapi.StatusNoEmailGivenByProvider {
		msg = "The sign-in provider did not share an email address, which this site needs."
	}
	u.errorPage(w, r, http.StatusUnauthorized, "Sign-in could not be finished", msg)
}
