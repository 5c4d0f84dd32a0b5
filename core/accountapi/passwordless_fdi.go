package accountapi

import (
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file is the passwordless FDI edge: each handler decodes the request, decides whether
// it is a secondary factor (linkingSession), calls one operation of passwordless.go and
// encodes its result as the SuperTokens SDKs expect it.

// linkingSession decides whether a passwordless request is a secondary factor: with
// shouldTryLinkingWithSessionUser false it never is; true requires a session (401 without);
// absent uses the request's session when it has one. A session of another tenant is refused.
// linking is the session a secondary factor is for, nil for a first factor.
func (a *API) linkingSession(w http.ResponseWriter, r *http.Request, t tenant.Tenant, should *bool) (linking *session.Session, ok bool) {
	if should != nil && !*should {
		return nil, true
	}
	sess, has, ok := a.optionalSession(w, r)
	if !ok {
		return nil, false
	}
	if !has {
		if should != nil {
			session.WriteError(w, session.ErrUnauthorised)
			return nil, false
		}
		return nil, true
	}
	if sess.TenantID != t.ID {
		httpkit.WriteError(w, http.StatusBadRequest, "", "the session belongs to tenant %q, not %q", sess.TenantID, t.ID)
		return nil, false
	}
	return &sess, true
}

func (a *API) createCode(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Email                           *string `json:"email"`
		PhoneNumber                     *string `json:"phoneNumber"`
		ShouldTryLinkingWithSessionUser *bool   `json:"shouldTryLinkingWithSessionUser"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if (body.Email == nil) == (body.PhoneNumber == nil) {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide exactly one of email or phoneNumber")
		return
	}
	ch, value := delivery.Email, body.Email
	if body.PhoneNumber != nil {
		ch, value = delivery.SMS, body.PhoneNumber
	}
	contact, err := ParseContact(ch, *value)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	linking, ok := a.linkingSession(w, r, t, body.ShouldTryLinkingWithSessionUser)
	if !ok {
		return
	}
	sent, err := a.CreateCode(r.Context(), a.opts.API.ClientOf(r), t, contact, linking)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK, "deviceId": sent.DeviceID,
		"preAuthSessionId": sent.PreAuthSessionID, "flowType": string(sent.Flow)})
}

func (a *API) resendCode(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		DeviceID         string `json:"deviceId"`
		PreAuthSessionID string `json:"preAuthSessionId"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.DeviceID == "" || body.PreAuthSessionID == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide a deviceId and a preAuthSessionId")
		return
	}
	if err := a.ResendCode(r.Context(), a.opts.API.ClientOf(r), t, body.DeviceID, body.PreAuthSessionID); err != nil {
		a.writeError(w, r, err)
		return
	}
	status(w, contract.StatusOK)
}

func (a *API) consumeCode(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		PreAuthSessionID                string `json:"preAuthSessionId"`
		DeviceID                        string `json:"deviceId"`
		UserInputCode                   string `json:"userInputCode"`
		LinkCode                        string `json:"linkCode"`
		ShouldTryLinkingWithSessionUser *bool  `json:"shouldTryLinkingWithSessionUser"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	in := passwordless.Input{DeviceID: body.DeviceID, UserInputCode: body.UserInputCode, LinkCode: body.LinkCode}
	switch {
	case body.PreAuthSessionID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide preAuthSessionId")
		return
	case (in.LinkCode != "") == (in.DeviceID != "" || in.UserInputCode != ""), in.LinkCode == "" && (in.DeviceID == "" || in.UserInputCode == ""):
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide one of (linkCode) or (deviceId+userInputCode) and not both")
		return
	}
	linking, ok := a.linkingSession(w, r, t, body.ShouldTryLinkingWithSessionUser)
	if !ok {
		return
	}
	res, err := a.ConsumeCode(r.Context(), a.opts.API.ClientOf(r), t, body.PreAuthSessionID, in, linking)
	switch {
	case err != nil:
		a.writeError(w, r, err)
		return
	case res.Status == contract.StatusIncorrectUserInputCode, res.Status == contract.StatusExpiredUserInputCode:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": res.Status,
			"failedCodeInputAttemptCount": res.FailedAttempts, "maximumCodeInputAttempts": res.MaxAttempts})
		return
	case res.Status != contract.StatusOK:
		status(w, res.Status)
		return
	}
	if linking != nil {
		err = mfaapi.WriteUpdate(w, r, a.opts.Sessions, mfaengine.Update{Session: res.Session, Tokens: res.Tokens})
		if err != nil {
			a.internalError(w, r, err)
			return
		}
	} else {
		a.opts.Sessions.WriteTokens(w, session.RequestedTransport(r), *res.Tokens, httpapi.SessionSettings(t.Config))
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "createdNewRecipeUser": res.Created, "user": httpapi.UserJSON(res.User)})
}

func (a *API) emailExists(w http.ResponseWriter, r *http.Request) {
	a.contactExists(w, r, "email", func(v string) (passwordless.Contact, error) {
		e, err := passwordless.NormaliseEmail(v)
		return passwordless.Contact{Email: e}, err
	})
}

func (a *API) phoneExists(w http.ResponseWriter, r *http.Request) {
	a.contactExists(w, r, "phoneNumber", func(v string) (passwordless.Contact, error) {
		p, err := passwordless.NormalisePhone(v, "")
		return passwordless.Contact{PhoneNumber: p}, err
	})
}

// contactExists answers whether the tenant has a passwordless login method for the contact
// in query parameter param; a contact that cannot be normalised does not exist.
func (a *API) contactExists(w http.ResponseWriter, r *http.Request, param string, normalise func(string) (passwordless.Contact, error)) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	v := r.URL.Query().Get(param)
	if v == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the %s as a GET param", param)
		return
	}
	c, err := normalise(v)
	if err != nil {
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": false})
		return
	}
	var users []store.User
	if c.Email != "" {
		users, err = a.opts.Store.UsersByEmail(r.Context(), t.ID, c.Email)
	} else {
		users, err = a.opts.Store.UsersByPhone(r.Context(), t.ID, c.PhoneNumber)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	exists := slices.ContainsFunc(users, func(u store.User) bool { return hasPasswordlessLogin(u, t.ID, c) })
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": exists})
}
