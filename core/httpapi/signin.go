// The first-factor FDI endpoints: login methods, email-and-password sign-up and sign-in, and
// the email check.

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
)

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
