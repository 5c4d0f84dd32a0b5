package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

// userJSON is FDI's user object.
type userJSON struct {
	ID            string            `json:"id"`
	TimeJoined    int64             `json:"timeJoined"`
	IsPrimaryUser bool              `json:"isPrimaryUser"`
	TenantIDs     []string          `json:"tenantIds"`
	Emails        []string          `json:"emails"`
	PhoneNumbers  []string          `json:"phoneNumbers"`
	ThirdParty    []thirdPartyJSON  `json:"thirdParty"`
	LoginMethods  []loginMethodJSON `json:"loginMethods"`
}

type thirdPartyJSON struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
}

type loginMethodJSON struct {
	RecipeID     string          `json:"recipeId"`
	RecipeUserID string          `json:"recipeUserId"`
	Verified     bool            `json:"verified"`
	TenantIDs    []string        `json:"tenantIds"`
	TimeJoined   int64           `json:"timeJoined"`
	Email        string          `json:"email,omitempty"`
	PhoneNumber  string          `json:"phoneNumber,omitempty"`
	ThirdParty   *thirdPartyJSON `json:"thirdParty,omitempty"`
}

func addUnique(list []string, v string) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// UserJSON converts a user to FDI's user object.
func UserJSON(u store.User) any { return toUserJSON(u) }

func toUserJSON(u store.User) userJSON {
	out := userJSON{ID: u.ID, TimeJoined: u.TimeJoined.UnixMilli(), IsPrimaryUser: u.IsPrimary,
		TenantIDs: []string{}, Emails: []string{}, PhoneNumbers: []string{}, ThirdParty: []thirdPartyJSON{}, LoginMethods: []loginMethodJSON{}}
	for _, lm := range u.LoginMethods {
		j := loginMethodJSON{RecipeID: lm.RecipeID, RecipeUserID: lm.RecipeUserID, Verified: lm.Verified,
			TenantIDs: []string{lm.TenantID}, TimeJoined: lm.TimeJoined.UnixMilli(), Email: lm.Email, PhoneNumber: lm.PhoneNumber}
		if lm.ThirdPartyID != "" {
			tp := thirdPartyJSON{ID: lm.ThirdPartyID, UserID: lm.ThirdPartyUserID}
			j.ThirdParty = &tp
			out.ThirdParty = append(out.ThirdParty, tp)
		}
		out.TenantIDs = addUnique(out.TenantIDs, lm.TenantID)
		out.Emails = addUnique(out.Emails, lm.Email)
		out.PhoneNumbers = addUnique(out.PhoneNumbers, lm.PhoneNumber)
		out.LoginMethods = append(out.LoginMethods, j)
	}
	return out
}

type provider struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (a *API) loginMethods(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok {
		return
	}
	c := t.Config
	providers := []provider{}
	for _, p := range c.ThirdPartyProviders {
		providers = append(providers, provider{ID: p.ID, Name: p.Name})
	}
	passwordless := slices.ContainsFunc(c.FirstFactors, func(f string) bool {
		return f == mfa.OTPEmail || f == mfa.OTPPhone || f == mfa.LinkEmail || f == mfa.LinkPhone
	})
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{
		"status":        contract.StatusOK,
		"emailPassword": map[string]bool{"enabled": slices.Contains(c.FirstFactors, mfa.EmailPassword)},
		"thirdParty":    map[string]any{"enabled": slices.Contains(c.FirstFactors, mfa.ThirdParty), "providers": providers},
		"passwordless":  map[string]bool{"enabled": passwordless},
		"firstFactors":  c.FirstFactors,
	})
}

// formFields reads FDI's {formFields: [{id, value}]} body and returns the email and password,
// answering 400 with SuperTokens' messages when the shape is wrong.
func formFields(w http.ResponseWriter, r *http.Request) (email, password string, ok bool) {
	var body struct {
		FormFields                      json.RawMessage `json:"formFields"`
		ShouldTryLinkingWithSessionUser *bool           `json:"shouldTryLinkingWithSessionUser"`
	}
	if !httpkit.Decode(w, r, &body) {
		return "", "", false
	}
	if len(body.FormFields) == 0 || string(body.FormFields) == "null" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Missing input param: formFields")
		return "", "", false
	}
	if body.ShouldTryLinkingWithSessionUser != nil && *body.ShouldTryLinkingWithSessionUser {
		httpkit.WriteError(w, http.StatusBadRequest, "", "shouldTryLinkingWithSessionUser is not supported by this core yet: sign in without it")
		return "", "", false
	}
	var fields []json.RawMessage
	if err := json.Unmarshal(body.FormFields, &fields); err != nil {
		httpkit.WriteError(w, http.StatusBadRequest, "", "formFields must be an array")
		return "", "", false
	}
	values := map[string]string{}
	for _, raw := range fields {
		var f map[string]json.RawMessage
		if err := json.Unmarshal(raw, &f); err != nil || f == nil {
			httpkit.WriteError(w, http.StatusBadRequest, "", "All elements of formFields must be an object")
			return "", "", false
		}
		var id string
		if err := json.Unmarshal(f["id"], &id); err != nil || id == "" || f["value"] == nil {
			httpkit.WriteError(w, http.StatusBadRequest, "", "All elements of formFields must contain an 'id' and 'value' field")
			return "", "", false
		}
		if id == "email" || id == "password" {
			var v string
			if err := json.Unmarshal(f["value"], &v); err != nil {
				httpkit.WriteError(w, http.StatusBadRequest, "", "The value of formFields with id = %s must be a string", id)
				return "", "", false
			}
			values[id] = v
		}
	}
	return values["email"], values["password"], true
}

func (a *API) firstFactorAllowed(w http.ResponseWriter, t tenant.Tenant, factor, status string) bool {
	if slices.Contains(t.Config.FirstFactors, factor) {
		return true
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": status, "reason": fmt.Sprintf("%s is not a first factor of tenant %q", factor, t.ID)})
	return false
}

func (a *API) signUp(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok || !a.firstFactorAllowed(w, t, mfa.EmailPassword, contract.StatusSignUpNotAllowed) {
		return
	}
	email, password, ok := formFields(w, r)
	if !ok {
		return
	}
	u, err := a.opts.EmailPassword.SignUp(r.Context(), t.ID, email, password)
	var fe emailpassword.FieldErrors
	switch {
	case errors.As(err, &fe):
		a.metrics.signIns.WithLabelValues("emailpassword-signup", "field_error").Inc()
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusFieldError, "formFields": fe})
		return
	case errors.Is(err, emailpassword.ErrEmailTaken):
		a.metrics.signIns.WithLabelValues("emailpassword-signup", "email_exists").Inc()
		a.auditEvent(r, "Refused sign-up", t.ID, "", "email_exists", "recipe", "emailpassword")
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusFieldError,
			"formFields": emailpassword.FieldErrors{{ID: "email", Error: emailpassword.MsgEmailExists}}})
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	a.metrics.signIns.WithLabelValues("emailpassword-signup", "success").Inc()
	a.auditEvent(r, "Signed up", t.ID, u.ID, "success", "recipe", "emailpassword")
	a.startSession(w, r, t, u, u.ID, mfa.EmailPassword, map[string]any{"status": contract.StatusOK, "user": toUserJSON(u)})
}

func (a *API) signIn(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok || !a.firstFactorAllowed(w, t, mfa.EmailPassword, contract.StatusSignInNotAllowed) {
		return
	}
	email, password, ok := formFields(w, r)
	if !ok {
		return
	}
	account := emailpassword.NormaliseEmail(email)
	if fe := emailpassword.ValidateSignIn(account, password); len(fe) > 0 {
		a.metrics.signIns.WithLabelValues("emailpassword", "field_error").Inc()
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusFieldError, "formFields": fe})
		return
	}
	client := clientKey(a.clientAddr(r))
	// The attempt is counted before the hash is spent, in the same transaction as the
	// decision, so concurrent guesses cannot slip past the limit; a locked account is refused
	// whether it exists or not, so the answer reveals nothing about which emails have accounts.
	res, err := a.opts.Store.ReserveSignIn(r.Context(), store.SignInAttempt{
		TenantID: t.ID, Account: account, Client: client, Now: a.opts.Clock(), Limits: a.opts.SignInLimits})
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if !res.RefusedUntil.IsZero() {
		a.refuseThrottledSignIn(w, r, t.ID, account, res)
		return
	}
	u, err := a.opts.EmailPassword.SignIn(r.Context(), t.ID, email, password)
	var fe emailpassword.FieldErrors
	switch {
	case errors.As(err, &fe):
		a.metrics.signIns.WithLabelValues("emailpassword", "field_error").Inc()
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusFieldError, "formFields": fe})
		return
	case errors.Is(err, emailpassword.ErrWrongCredentials):
		a.metrics.signIns.WithLabelValues("emailpassword", "wrong_credentials").Inc()
		a.auditEvent(r, "Refused sign-in", t.ID, "", "wrong_credentials", "recipe", "emailpassword", "email", account)
		if !res.LocksAccount.IsZero() {
			a.auditEvent(r, "Locked sign-in", t.ID, "", "locked", "recipe", "emailpassword", "email", account, "lockedUntil", res.LocksAccount.UTC().Format(time.RFC3339))
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusWrongCredentials})
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	if err := a.opts.Store.SignInSucceeded(r.Context(), t.ID, account, client); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.metrics.signIns.WithLabelValues("emailpassword", "success").Inc()
	a.auditEvent(r, "Signed in", t.ID, u.ID, "success", "recipe", "emailpassword")
	recipeUserID := u.ID
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipeEmailPassword && lm.TenantID == t.ID && lm.Email == emailpassword.NormaliseEmail(email) {
			recipeUserID = lm.RecipeUserID
		}
	}
	a.startSession(w, r, t, u, recipeUserID, mfa.EmailPassword, map[string]any{"status": contract.StatusOK, "user": toUserJSON(u)})
}

// refuseThrottledSignIn answers a sign-in refused by the throttle, for the account's lock or
// the client's spent budget: SuperTokens' GENERAL_ERROR body with retryAfterMs, and
// Retry-After. The status is 200, as for every FDI GENERAL_ERROR: supertokens-web-js throws
// the bare response of any status of 300 or more, so a 429 never reached the user as a
// message.
func (a *API) refuseThrottledSignIn(w http.ResponseWriter, r *http.Request, tenantID, account string, res store.SignInReservation) {
	left := res.RefusedUntil.Sub(a.opts.Clock())
	minutes := max(int(left.Round(time.Minute)/time.Minute), 1)
	msg := fmt.Sprintf("Too many failed sign-in attempts for this account. Try again in %d minutes, or reset your password.", minutes)
	outcome := "locked"
	if res.ClientRefused {
		outcome = "client_throttled"
		msg = fmt.Sprintf("Too many failed sign-in attempts from your network. Try again in %d minutes.", minutes)
	}
	a.metrics.signIns.WithLabelValues("emailpassword", outcome).Inc()
	a.auditEvent(r, "Refused sign-in", tenantID, "", outcome, "recipe", "emailpassword", "email", account)
	w.Header().Set("Retry-After", strconv.Itoa(max(int(left.Round(time.Second)/time.Second), 1)))
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusGeneralError, "message": msg, "retryAfterMs": left.Milliseconds()})
}

// startSession creates a session whose st-mfa claim records factor as completed now, writes
// its tokens in the transport the client asked for, and answers body.
func (a *API) startSession(w http.ResponseWriter, r *http.Request, t tenant.Tenant, u store.User, recipeUserID, factor string, body any) {
	claims, err := a.opts.Claims(r.Context(), t, u, mfa.Completed{factor: a.opts.Clock().Unix()})
	if err != nil {
		a.internalError(w, r, fmt.Errorf("compute session claims: %w", err))
		return
	}
	_, tokens, err := a.opts.Sessions.Create(r.Context(), t.ID, u.ID, recipeUserID, claims)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.Sessions.WriteTokens(w, session.RequestedTransport(r), tokens, a.settings(t))
	httpkit.WriteJSON(w, http.StatusOK, body)
}

func (a *API) emailExists(w http.ResponseWriter, r *http.Request) {
	t, ok := a.tenantOf(w, r)
	if !ok {
		return
	}
	email := r.URL.Query().Get("email")
	if email == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the email as a GET param")
		return
	}
	exists, err := a.opts.EmailPassword.EmailExists(r.Context(), t.ID, email)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": exists})
}

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
	p, err := thirdparty.Find(t.Config, body.ThirdPartyID)
	if err != nil {
		httpkit.WriteError(w, http.StatusBadRequest, "", "the provider %s could not be found in the configuration of tenant %q", body.ThirdPartyID, t.ID)
		return
	}
	u, created, err := a.opts.ThirdParty.SignInUp(r.Context(), t.ID, p, body.RedirectURIInfo.RedirectURIOnProviderDashboard, query, body.RedirectURIInfo.PKCECodeVerifier)
	switch {
	case errors.Is(err, thirdparty.ErrNoEmail):
		a.metrics.signIns.WithLabelValues("thirdparty", "no_email").Inc()
		a.auditEvent(r, "Refused sign-in", t.ID, "", "no_email", "recipe", "thirdparty", "provider", p.ID)
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": "NO_EMAIL_GIVEN_BY_PROVIDER"})
		return
	case errors.Is(err, thirdparty.ErrBadRedirect), errors.Is(err, thirdparty.ErrProvider):
		a.metrics.signIns.WithLabelValues("thirdparty", "provider_error").Inc()
		a.auditEvent(r, "Refused sign-in", t.ID, "", "provider_error", "recipe", "thirdparty", "provider", p.ID, "reason", err.Error())
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusGeneralError, "message": err.Error()})
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	a.metrics.signIns.WithLabelValues("thirdparty", "success").Inc()
	a.auditEvent(r, "Signed in", t.ID, u.ID, "success", "recipe", "thirdparty", "provider", p.ID, "createdNewRecipeUser", created)
	recipeUserID := u.ID
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipeThirdParty && lm.ThirdPartyID == p.ID {
			recipeUserID = lm.RecipeUserID
		}
	}
	a.startSession(w, r, t, u, recipeUserID, mfa.ThirdParty, map[string]any{"status": contract.StatusOK, "createdNewRecipeUser": created, "user": toUserJSON(u)})
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	token, transport := session.RefreshTokenFrom(r)
	sess, tokens, err := a.opts.Sessions.Refresh(r.Context(), token)
	if errors.Is(err, session.ErrUnauthorised) && transport == session.TransportHeader {
		// The Authorization header may be the application's own; a refresh cookie still counts.
		if c, cerr := r.Cookie(contract.CookieRefreshToken); cerr == nil && c.Value != "" {
			transport = session.TransportCookie
			sess, tokens, err = a.opts.Sessions.Refresh(r.Context(), c.Value)
		}
	}
	if err != nil {
		settings := a.defaultSettings(r, sess.TenantID)
		switch {
		case errors.Is(err, session.ErrTokenTheft):
			a.metrics.sessions.WithLabelValues("refresh", "theft").Inc()
			a.auditEvent(r, "Revoked session after refresh-token theft", sess.TenantID, sess.UserID, "token_theft", "session", sess.Handle)
		case errors.Is(err, session.ErrUnauthorised), errors.Is(err, tenant.ErrUnknownTenant):
			// A session of a deleted tenant cannot be refreshed either.
			err = fmt.Errorf("%w: %w", session.ErrUnauthorised, err)
			a.metrics.sessions.WithLabelValues("refresh", "unauthorised").Inc()
		default:
			a.internalError(w, r, err)
			return
		}
		a.opts.Sessions.ClearTokens(w, settings)
		session.WriteError(w, err)
		return
	}
	t, err := a.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("refresh", "success").Inc()
	a.opts.Sessions.WriteTokens(w, transport, tokens, a.settings(t))
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{})
}

// defaultSettings are the cookie settings used to clear cookies of a session whose tenant
// may be unknown.
func (a *API) defaultSettings(r *http.Request, tenantID string) session.Settings {
	if tenantID != "" {
		if t, err := a.opts.Tenants.Current(r.Context(), tenantID); err == nil {
			return a.settings(t)
		}
	}
	if t, err := a.opts.Tenants.Current(r.Context(), "public"); err == nil {
		return a.settings(t)
	}
	return session.Settings{CookieSameSite: http.SameSiteLaxMode, CookieSecure: true}
}

func (a *API) signOut(w http.ResponseWriter, r *http.Request) {
	token, transport := session.AccessTokenFrom(r)
	if token == "" {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK})
		return
	}
	sess, err := a.opts.Sessions.Verify(r.Context(), token, session.VerifyOptions{})
	if err != nil {
		session.WriteError(w, err)
		return
	}
	settings := a.defaultSettings(r, sess.TenantID)
	if !session.CSRFProtected(r, transport, settings) {
		session.WriteError(w, session.ErrUnauthorised)
		return
	}
	if _, err := a.opts.Sessions.Revoke(r.Context(), sess.Handle); err != nil && !errors.Is(err, session.ErrUnauthorised) {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("signout", "success").Inc()
	a.auditEvent(r, "Signed out", sess.TenantID, sess.UserID, "success", "session", sess.Handle)
	a.opts.Sessions.ClearTokens(w, settings)
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK})
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := a.opts.Keys.JWKS(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	body, err := json.Marshal(set)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	// Short caching: verifiers refetch on an unknown kid anyway, and revalidation with the
	// ETag costs no body.
	etag := etagOf(body)
	w.Header().Set("Cache-Control", "max-age=60, must-revalidate")
	w.Header().Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(append(body, '\n'))
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
	feed := t.Config.Enforcement(t.ID, t.Version, a.opts.Sessions.Issuer(), list)
	body, err := json.Marshal(feed)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	etag := etagOf(body)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(append(body, '\n'))
}
