// The first-factor FDI endpoints: login methods, email-and-password sign-up and sign-in, and
// the email check.

package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/session"
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

// firstFactorAllowed answers status with the reason when tenant t does not offer factor as a
// first factor, before the body is read, and returns false.
func (a *API) firstFactorAllowed(w http.ResponseWriter, t tenant.Tenant, factor, status string) bool {
	reason := firstFactorRefusal(t, factor)
	if reason == "" {
		return true
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": status, "reason": reason})
	return false
}

func (a *API) signUp(w http.ResponseWriter, r *http.Request) {
	a.emailPassword(w, r, contract.StatusSignUpNotAllowed, a.SignUp)
}

func (a *API) signIn(w http.ResponseWriter, r *http.Request) {
	a.emailPassword(w, r, contract.StatusSignInNotAllowed, a.SignIn)
}

// emailPassword serves sign-up or sign-in (op) with email and password; notAllowed is the
// status of a tenant without the emailpassword first factor.
func (a *API) emailPassword(w http.ResponseWriter, r *http.Request, notAllowed string,
	op func(context.Context, Client, tenant.Tenant, string, string) (SignInResult, error)) {
	t, ok := a.tenantOf(w, r)
	if !ok || !a.firstFactorAllowed(w, t, mfa.EmailPassword, notAllowed) {
		return
	}
	email, password, ok := formFields(w, r)
	if !ok {
		return
	}
	res, err := op(r.Context(), a.ClientOf(r), t, email, password)
	a.writeSignIn(w, r, t, res, err, false)
}

// writeSignIn answers a first-factor sign-in: the new session's tokens in the transport the
// client asked for and the user, or the refusal. A throttled sign-in carries Retry-After and
// retryAfterMs with status 200, as every FDI GENERAL_ERROR: supertokens-web-js throws the bare
// response of any status of 300 or more, so a 429 never reached the user as a message.
// withCreated adds createdNewRecipeUser (third party).
func (a *API) writeSignIn(w http.ResponseWriter, r *http.Request, t tenant.Tenant, res SignInResult, err error, withCreated bool) {
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	switch res.Status {
	case contract.StatusOK:
		a.opts.Sessions.WriteTokens(w, session.RequestedTransport(r), res.Tokens, a.settings(t))
		body := map[string]any{"status": contract.StatusOK, "user": toUserJSON(res.User)}
		if withCreated {
			body["createdNewRecipeUser"] = res.Created
		}
		httpkit.WriteJSON(w, http.StatusOK, body)
	case contract.StatusFieldError:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": res.Status, "formFields": res.FieldErrors})
	case contract.StatusSignInNotAllowed, contract.StatusSignUpNotAllowed, contract.StatusSignInUpNotAllowed:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": res.Status, "reason": res.Reason})
	case contract.StatusGeneralError:
		if res.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(int(res.RetryAfter.Round(time.Second)/time.Second), 1)))
			httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": res.Status, "message": res.Message, "retryAfterMs": res.RetryAfter.Milliseconds()})
			return
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": res.Status, "message": res.Message})
	default:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": res.Status})
	}
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
