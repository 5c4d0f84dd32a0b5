package mfaengine

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

// Register adds the engine's endpoints to mux:
//
//	PUT /auth/mfa/info   the session's factors (next, alreadySetup, allowedToSetup), the user's
//	                     emails and phone numbers per factor; re-syncs the st-mfa claim
//	GET /auth/user/mfa   the user's own required secondary factors (Twofold extension)
//	PUT /auth/user/mfa   replace them; dropping one needs the requirement met (v true)
func (e *Engine) Register(mux *http.ServeMux) {
	mux.Handle("PUT /auth/mfa/info", e.opts.Sessions.Require(http.HandlerFunc(e.info)))
	mux.Handle("GET /auth/user/mfa", e.opts.Sessions.Require(http.HandlerFunc(e.getUserMFA)))
	mux.Handle("PUT /auth/user/mfa", e.opts.Sessions.Require(http.HandlerFunc(e.putUserMFA)))
}

// InternalError logs err and answers 500 {"status":"GENERAL_ERROR","message":"internal error"}.
func (e *Engine) InternalError(w http.ResponseWriter, r *http.Request, err error) {
	e.opts.Logger.Error(err, "Failed request", "method", r.Method, "path", r.URL.Path)
	httpapi.WriteJSON(w, http.StatusInternalServerError, map[string]string{"status": contract.StatusGeneralError, "message": "internal error"})
}

// sessionOf returns the session Require put in the request.
func sessionOf(r *http.Request) session.Session {
	s, _ := session.FromContext(r.Context())
	return s
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

func (e *Engine) info(w http.ResponseWriter, r *http.Request) {
	sess, st, err := e.Resync(r.Context(), w, r, sessionOf(r))
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	u, err := e.opts.Store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		e.InternalError(w, r, fmt.Errorf("load user %s: %w", sess.UserID, err))
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
	httpapi.WriteJSON(w, http.StatusOK, body)
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

func (e *Engine) writeUserMFA(w http.ResponseWriter, r *http.Request, sess session.Session) {
	t, err := e.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	own, err := e.UserFactors(r.Context(), sess.UserID)
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, userMFABody{Status: contract.StatusOK, RequiredSecondaryFactors: nonNil(own),
		Enforcement: t.Config.MFA.Enforcement, AvailableFactors: nonNil(Available(t))})
}

func (e *Engine) getUserMFA(w http.ResponseWriter, r *http.Request) {
	e.writeUserMFA(w, r, sessionOf(r))
}

func (e *Engine) putUserMFA(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	var body struct {
		RequiredSecondaryFactors *[]string `json:"requiredSecondaryFactors"`
	}
	if !httpapi.Decode(w, r, &body) {
		return
	}
	if body.RequiredSecondaryFactors == nil {
		httpapi.WriteError(w, http.StatusBadRequest, "requiredSecondaryFactors", "requiredSecondaryFactors is required: a list of factor ids, [] to turn your own MFA off")
		return
	}
	ctx := r.Context()
	t, err := e.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	st, err := e.SessionState(ctx, sess)
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	available := Available(t)
	var want []string
	for i, f := range *body.RequiredSecondaryFactors {
		field := fmt.Sprintf("requiredSecondaryFactors[%d]", i)
		switch {
		case !mfa.IsFactor(f):
			httpapi.WriteError(w, http.StatusBadRequest, field, "unknown factor %q", f)
			return
		case !mfa.IsSecondaryFactor(f):
			httpapi.WriteError(w, http.StatusBadRequest, field, "%q cannot be a secondary factor", f)
			return
		case !slices.Contains(available, f):
			httpapi.WriteError(w, http.StatusBadRequest, field, "%q is not enabled for this tenant; available: %v", f, available)
			return
		}
		if !slices.Contains(want, f) {
			want = append(want, f)
		}
	}
	own, err := e.UserFactors(ctx, sess.UserID)
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	for i, f := range want {
		if !slices.Contains(own, f) && !slices.Contains(st.SetUp, f) {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("requiredSecondaryFactors[%d]", i), "%q is not set up yet: set it up before requiring it", f)
			return
		}
	}
	// Dropping a factor weakens the account: only a session that meets its requirement may.
	if slices.ContainsFunc(own, func(f string) bool { return !slices.Contains(want, f) }) && !st.V {
		WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
		return
	}
	unchanged := len(want) == len(own) && !slices.ContainsFunc(want, func(f string) bool { return !slices.Contains(own, f) })
	if !unchanged {
		if err := e.SetUserFactors(ctx, sess.UserID, want); err != nil {
			e.InternalError(w, r, err)
			return
		}
	}
	sess, _, err = e.Resync(ctx, w, r, sess)
	if err != nil {
		e.InternalError(w, r, err)
		return
	}
	e.writeUserMFA(w, r, sess)
}
