// Package mfaapi is the MFA engine's HTTP edge: it serves the engine's endpoints and holds
// the helpers every factor's endpoints answer the engine's outcomes with.
//
//	PUT /auth/mfa/info   the session's factors (next, alreadySetup, allowedToSetup), the user's
//	                     emails and phone numbers per factor; re-syncs the st-mfa claim
//	GET /auth/user/mfa   the user's own required secondary factors (Twofold extension)
//	PUT /auth/user/mfa   replace them; dropping one needs the requirement met (v true)
//
// The engine itself (core/mfaengine) knows no transport: its operations return an
// mfaengine.Update, which WriteUpdate sends in the transport the request used.
package mfaapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// Options are the API's dependencies.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	Engine   *mfaengine.Engine
	Logger   logr.Logger
}

// API serves the MFA engine's endpoints.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) *API {
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &API{opts: opts}
}

// Register adds the endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("PUT /auth/mfa/info", a.opts.Sessions.Require(http.HandlerFunc(a.info)))
	mux.Handle("GET /auth/user/mfa", a.opts.Sessions.Require(http.HandlerFunc(a.getUserMFA)))
	mux.Handle("PUT /auth/user/mfa", a.opts.Sessions.Require(http.HandlerFunc(a.putUserMFA)))
}

// WriteUpdate sends the tokens of an engine update, when its claim changed, in the transport
// r used.
func WriteUpdate(w http.ResponseWriter, r *http.Request, sessions *session.Manager, u mfaengine.Update) error {
	if u.Tokens == nil {
		return nil
	}
	return sessions.WriteTokensFor(w, r, u.Session.TenantID, *u.Tokens)
}

// WriteSetupError answers err from the engine's CheckSetup: the 403 invalid claim for a
// refusal, and false when err is something else (the caller answers 500).
func WriteSetupError(w http.ResponseWriter, err error) bool {
	var denied *mfaengine.SetupDeniedError
	if errors.As(err, &denied) {
		httpkit.WriteClaimError(w, denied.Reason)
		return true
	}
	return false
}

// WriteCompleted sends the tokens of a completed factor and answers ok; a session revoked in
// the meantime is answered 401, anything else 500.
func WriteCompleted(log logr.Logger, w http.ResponseWriter, r *http.Request, sessions *session.Manager, u mfaengine.Update, err error, ok any) {
	if err == nil {
		err = WriteUpdate(w, r, sessions, u)
	}
	if errors.Is(err, session.ErrUnauthorised) {
		session.WriteError(w, err)
		return
	}
	if err != nil {
		httpkit.InternalError(log, w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, ok)
}

func (a *API) internalError(w http.ResponseWriter, r *http.Request, err error) {
	httpkit.InternalError(a.opts.Logger, w, r, err)
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

type infoFactors struct {
	Next           []string `json:"next"`
	AlreadySetup   []string `json:"alreadySetup"`
	AllowedToSetup []string `json:"allowedToSetup"`
}

type infoBody struct {
	Status       string              `json:"status"`
	Factors      infoFactors         `json:"factors"`
	Emails       map[string][]string `json:"emails"`
	PhoneNumbers map[string][]string `json:"phoneNumbers"`
}

func (a *API) info(w http.ResponseWriter, r *http.Request) {
	upd, err := a.opts.Engine.Resync(r.Context(), session.Of(r))
	if err == nil {
		err = WriteUpdate(w, r, a.opts.Sessions, upd)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	sess, st := upd.Session, upd.State
	u, err := a.opts.Store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		a.internalError(w, r, fmt.Errorf("load user %s: %w", sess.UserID, err))
		return
	}
	// As SuperTokens does, next lists only factors the user can complete or set up now.
	var next []string
	for _, f := range st.Next {
		if slices.Contains(st.SetUp, f) || slices.Contains(st.AllowedToSetUp, f) {
			next = append(next, f)
		}
	}
	emails, phones := contacts(u, sess.RecipeUserID)
	body := infoBody{Status: contract.StatusOK, Factors: infoFactors{Next: nonNil(next), AlreadySetup: nonNil(st.SetUp), AllowedToSetup: nonNil(st.AllowedToSetUp)},
		Emails: map[string][]string{}, PhoneNumbers: map[string][]string{}}
	for _, f := range st.Available {
		switch f {
		case mfa.OTPEmail, mfa.LinkEmail:
			body.Emails[f] = emails
		case mfa.OTPPhone, mfa.LinkPhone:
			body.PhoneNumbers[f] = phones
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, body)
}

// contacts lists the user's distinct emails and phone numbers, those of the session's login
// method first.
func contacts(u store.User, recipeUserID string) (emails, phones []string) {
	emails, phones = []string{}, []string{}
	methods := slices.Clone(u.LoginMethods)
	slices.SortStableFunc(methods, func(a, b store.LoginMethod) int {
		switch {
		case a.RecipeUserID == recipeUserID && b.RecipeUserID != recipeUserID:
			return -1
		case b.RecipeUserID == recipeUserID && a.RecipeUserID != recipeUserID:
			return 1
		}
		return 0
	})
	for _, lm := range methods {
		if lm.Email != "" && !slices.Contains(emails, lm.Email) {
			emails = append(emails, lm.Email)
		}
		if lm.PhoneNumber != "" && !slices.Contains(phones, lm.PhoneNumber) {
			phones = append(phones, lm.PhoneNumber)
		}
	}
	return emails, phones
}

type userMFABody struct {
	Status                   string   `json:"status"`
	RequiredSecondaryFactors []string `json:"requiredSecondaryFactors"`
	// Enforcement is the tenant's: under UserOptIn the tenant's requirement applies only
	// once requiredSecondaryFactors is not empty.
	Enforcement string `json:"enforcement"`
	// AvailableFactors are the factors the user may require.
	AvailableFactors []string `json:"availableFactors"`
}

func (a *API) writeUserMFA(w http.ResponseWriter, r *http.Request, sess session.Session) {
	t, err := a.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	own, err := a.opts.Engine.UserFactors(r.Context(), sess.UserID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, userMFABody{Status: contract.StatusOK, RequiredSecondaryFactors: nonNil(own),
		Enforcement: t.Config.MFA.Enforcement, AvailableFactors: nonNil(mfaengine.Available(t))})
}

func (a *API) getUserMFA(w http.ResponseWriter, r *http.Request) {
	a.writeUserMFA(w, r, session.Of(r))
}

func (a *API) putUserMFA(w http.ResponseWriter, r *http.Request) {
	sess := session.Of(r)
	var body struct {
		RequiredSecondaryFactors *[]string `json:"requiredSecondaryFactors"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.RequiredSecondaryFactors == nil {
		httpkit.WriteError(w, http.StatusBadRequest, "requiredSecondaryFactors", "requiredSecondaryFactors is required: a list of factor ids, [] to turn your own MFA off")
		return
	}
	ctx := r.Context()
	t, err := a.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	st, err := a.opts.Engine.SessionState(ctx, sess)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	available := mfaengine.Available(t)
	var want []string
	for i, f := range *body.RequiredSecondaryFactors {
		field := fmt.Sprintf("requiredSecondaryFactors[%d]", i)
		switch {
		case !mfa.IsFactor(f):
			httpkit.WriteError(w, http.StatusBadRequest, field, "unknown factor %q", f)
			return
		case !mfa.IsSecondaryFactor(f):
			httpkit.WriteError(w, http.StatusBadRequest, field, "%q cannot be a secondary factor", f)
			return
		case !slices.Contains(available, f):
			httpkit.WriteError(w, http.StatusBadRequest, field, "%q is not enabled for this tenant; available: %v", f, available)
			return
		}
		if !slices.Contains(want, f) {
			want = append(want, f)
		}
	}
	own, err := a.opts.Engine.UserFactors(ctx, sess.UserID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	for i, f := range want {
		if !slices.Contains(own, f) && !slices.Contains(st.SetUp, f) {
			httpkit.WriteError(w, http.StatusBadRequest, fmt.Sprintf("requiredSecondaryFactors[%d]", i), "%q is not set up yet: set it up before requiring it", f)
			return
		}
	}
	// Dropping a factor weakens the account: only a session that meets its requirement may.
	if slices.ContainsFunc(own, func(f string) bool { return !slices.Contains(want, f) }) && !st.V {
		httpkit.WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
		return
	}
	unchanged := len(want) == len(own) && !slices.ContainsFunc(want, func(f string) bool { return !slices.Contains(own, f) })
	if !unchanged {
		if err := a.opts.Engine.SetUserFactors(ctx, sess.UserID, want); err != nil {
			a.internalError(w, r, err)
			return
		}
	}
	upd, err := a.opts.Engine.Resync(ctx, sess)
	if err == nil {
		err = WriteUpdate(w, r, a.opts.Sessions, upd)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.writeUserMFA(w, r, upd.Session)
}
