package otp

import (
	"net/http"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file is the FDI edge: each handler decodes the request, decides whether it is a second
// factor (linkingSession), calls one operation (this package's for a second factor,
// core/accountapi's for a first) and encodes its result as the SuperTokens SDKs expect it.

func (f *Factor) registerFDI(mux *http.ServeMux) {
	for _, p := range []string{"/auth", "/auth/{tenant}"} {
		mux.HandleFunc("POST "+p+"/signinup/code", f.createCode)
		mux.HandleFunc("POST "+p+"/signinup/code/resend", f.resendCode)
		mux.HandleFunc("POST "+p+"/signinup/code/consume", f.consumeCode)
	}
}

// optionalSession returns the request's session when it carries an access token; an
// invalid token is answered 401 as SuperTokens does (the client refreshes) and ok is false.
func (f *Factor) optionalSession(w http.ResponseWriter, r *http.Request) (sess session.Session, has, ok bool) {
	token, transport := session.AccessTokenFrom(r)
	if token == "" {
		return session.Session{}, false, true
	}
	sess, err := f.opts.Sessions.Verify(r.Context(), token, session.VerifyOptions{CheckDatabase: true})
	if err != nil {
		session.WriteError(w, err)
		return session.Session{}, false, false
	}
	settings, err := f.opts.Sessions.Settings(r.Context(), sess.TenantID)
	if err != nil || !session.CSRFProtected(r, transport, settings) {
		session.WriteError(w, session.ErrUnauthorised)
		return session.Session{}, false, false
	}
	return sess, true, true
}

// linkingSession decides whether a passwordless request is a second factor: with
// shouldTryLinkingWithSessionUser false it never is; true requires a session (401 without);
// absent uses the request's session when it has one. A session of another tenant is refused.
// linking is the session a second factor is for, nil for a first factor.
func (f *Factor) linkingSession(w http.ResponseWriter, r *http.Request, t tenant.Tenant, should *bool) (linking *session.Session, ok bool) {
	if should != nil && !*should {
		return nil, true
	}
	sess, has, ok := f.optionalSession(w, r)
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

// decode reads the request's tenant and its JSON body into body, or answers 404 for an
// unknown tenant or 400 for a bad body and returns false.
func (f *Factor) decode(w http.ResponseWriter, r *http.Request, body any) (tenant.Tenant, bool) {
	t, ok := f.opts.API.TenantOf(w, r)
	return t, ok && httpkit.Decode(w, r, body)
}

func (f *Factor) createCode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email                           *string `json:"email"`
		PhoneNumber                     *string `json:"phoneNumber"`
		ShouldTryLinkingWithSessionUser *bool   `json:"shouldTryLinkingWithSessionUser"`
	}
	t, ok := f.decode(w, r, &body)
	if !ok {
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
	contact, err := accountapi.ParseContact(ch, *value)
	if err != nil {
		f.opts.Account.WriteError(w, r, err)
		return
	}
	linking, ok := f.linkingSession(w, r, t, body.ShouldTryLinkingWithSessionUser)
	if !ok {
		return
	}
	var sent accountapi.CodeSent
	if linking != nil {
		sent, err = f.Send(r.Context(), f.opts.API.ClientOf(r), t, *linking, contact)
	} else {
		sent, err = f.opts.Account.CreateCode(r.Context(), f.opts.API.ClientOf(r), t, contact)
	}
	if err != nil {
		f.opts.Account.WriteError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK, "deviceId": sent.DeviceID,
		"preAuthSessionId": sent.PreAuthSessionID, "flowType": string(sent.Flow)})
}

func (f *Factor) resendCode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceID         string `json:"deviceId"`
		PreAuthSessionID string `json:"preAuthSessionId"`
	}
	t, ok := f.decode(w, r, &body)
	if !ok {
		return
	}
	if body.DeviceID == "" || body.PreAuthSessionID == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide a deviceId and a preAuthSessionId")
		return
	}
	if err := f.opts.Account.ResendCode(r.Context(), f.opts.API.ClientOf(r), t, body.DeviceID, body.PreAuthSessionID); err != nil {
		f.opts.Account.WriteError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK})
}

func (f *Factor) consumeCode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PreAuthSessionID                string `json:"preAuthSessionId"`
		DeviceID                        string `json:"deviceId"`
		UserInputCode                   string `json:"userInputCode"`
		LinkCode                        string `json:"linkCode"`
		ShouldTryLinkingWithSessionUser *bool  `json:"shouldTryLinkingWithSessionUser"`
	}
	t, ok := f.decode(w, r, &body)
	if !ok {
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
	linking, ok := f.linkingSession(w, r, t, body.ShouldTryLinkingWithSessionUser)
	if !ok {
		return
	}
	var res accountapi.Consumed
	var err error
	if linking != nil {
		res, err = f.Verify(r.Context(), f.opts.API.ClientOf(r), t, *linking, body.PreAuthSessionID, in)
	} else {
		res, err = f.opts.Account.ConsumeCode(r.Context(), f.opts.API.ClientOf(r), t, body.PreAuthSessionID, in)
	}
	switch {
	case err != nil:
		f.opts.Account.WriteError(w, r, err)
		return
	case res.Status == contract.StatusIncorrectUserInputCode, res.Status == contract.StatusExpiredUserInputCode:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": res.Status,
			"failedCodeInputAttemptCount": res.FailedAttempts, "maximumCodeInputAttempts": res.MaxAttempts})
		return
	case res.Status != contract.StatusOK:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": res.Status})
		return
	}
	if linking != nil {
		if err := mfaapi.WriteUpdate(w, r, f.opts.Sessions, mfaengine.Update{Session: res.Session, Tokens: res.Tokens}); err != nil {
			f.opts.Account.WriteError(w, r, err)
			return
		}
	} else {
		f.opts.Sessions.WriteTokens(w, session.RequestedTransport(r), *res.Tokens, httpapi.SessionSettings(t.Config))
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "createdNewRecipeUser": res.Created, "user": httpapi.UserJSON(res.User)})
}
