package recoverycode

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/hostedui"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file is the hosted-page edge: the steps of the hosted MFA and account pages for
// recovery codes, rendered by core/hostedui with templates/recovery.html and codes.html. Each
// step calls the operations directly.

// Paths of the hosted steps.
const (
	pagePath       = hostedui.MFAPath + "/recovery-code"
	verifyAction   = hostedui.UIPrefix + "/action/recovery/verify"
	generateAction = hostedui.UIPrefix + "/action/recovery/generate"
	downloadAction = hostedui.UIPrefix + "/action/recovery/download"
)

func (f *Factor) registerPages(mux *http.ServeMux) {
	ui := f.opts.Pages
	mux.Handle("GET "+pagePath, ui.Page(f.page))
	mux.Handle("POST "+verifyAction, ui.Action(f.verifyStep))
	mux.Handle("POST "+generateAction, ui.Action(f.generateStep))
	mux.Handle("POST "+downloadAction, ui.Action(f.downloadStep))
}

// page asks for a recovery code.
func (f *Factor) page(w http.ResponseWriter, r *http.Request) {
	m, ok := f.opts.Pages.LoadMFA(w, r)
	if !ok {
		return
	}
	f.render(w, r, m, http.StatusOK, "")
}

func (f *Factor) render(w http.ResponseWriter, r *http.Request, m hostedui.MFAPage, status int, msg string) {
	ui := f.opts.Pages
	v, err := ui.MFAView(w, r, m, "Use a recovery code")
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	v.Factor = mfa.RecoveryCode
	if msg != "" {
		v.FieldErrors["code"] = msg
	}
	ui.Render(w, r, status, "recovery", v)
}

// verifyStep uses up a recovery code.
func (f *Factor) verifyStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.LoadMFA(w, r)
	if !ok {
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	if code == "" {
		f.render(w, r, m, http.StatusUnprocessableEntity, "Enter one of your recovery codes.")
		return
	}
	res, err := f.Use(r.Context(), m.Session, code)
	f.auditResult(r, m.Session, res, err)
	switch {
	case err != nil:
		ui.InternalError(w, r, err)
	case res.Outcome == Accepted:
		ui.AfterFactor(w, r, m, res.Update, false)
	case res.Outcome == Invalid:
		f.render(w, r, m, http.StatusUnprocessableEntity, hostedui.AttemptsMessage("recovery code", res.Failures, MaxFailures))
	case res.Outcome == Locked:
		// Whole milliseconds, as the FDI answer's retryAfterMs.
		f.render(w, r, m, http.StatusTooManyRequests, hostedui.LockedMessage(res.RetryAfter.Truncate(time.Millisecond)))
	default:
		f.render(w, r, m, http.StatusUnprocessableEntity, "You have no recovery codes left.")
	}
}

// firstSetupStep shows a new set after the user's first MFA setup, when they have never had
// one, and reports whether it answered.
func (f *Factor) firstSetupStep(w http.ResponseWriter, r *http.Request, sess session.Session, t tenant.Tenant, next string) bool {
	_, total, err := f.Remaining(r.Context(), sess.UserID)
	if err != nil {
		f.opts.Pages.InternalError(w, r, err)
		return true
	}
	if total > 0 {
		return false
	}
	f.showNewSet(w, r, sess, t, next)
	return true
}

// generateStep replaces the user's recovery codes from the account page and shows the new
// set once.
func (f *Factor) generateStep(w http.ResponseWriter, r *http.Request) {
	m, ok := f.opts.Pages.AccountSession(w, r)
	if !ok {
		return
	}
	f.showNewSet(w, r, m.Session, m.Tenant, hostedui.AccountPath)
}

// showNewSet creates a new set and shows it, this once, with a link on to next.
func (f *Factor) showNewSet(w http.ResponseWriter, r *http.Request, sess session.Session, t tenant.Tenant, next string) {
	ui := f.opts.Pages
	codes, err := f.NewSet(r.Context(), sess)
	var denied *mfaengine.SetupDeniedError
	switch {
	case errors.Is(err, mfaengine.ErrNotSatisfied):
		ui.ErrorPage(w, r, http.StatusForbidden, "Recovery codes not created", "New recovery codes cannot be created now: "+mfa.ClaimNotSatisfiedMessage+".")
		return
	case errors.As(err, &denied):
		ui.ErrorPage(w, r, http.StatusForbidden, "Recovery codes not created", "New recovery codes cannot be created now: "+denied.Reason+".")
		return
	case err != nil:
		ui.InternalError(w, r, err)
		return
	}
	v, err := ui.NewView(w, r, t, "Save your recovery codes")
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	v.Codes, v.CodesText, v.Continue = codes, strings.Join(codes, "\n"), next
	ui.Render(w, r, http.StatusOK, "codes", v)
}

// codePattern is one recovery code as shown: groups of letters and digits with dashes.
var codePattern = regexp.MustCompile(`^[a-z0-9]{4}(?:-[a-z0-9]{4})+$`)

// downloadStep answers the codes the page showed as a text file. The codes come back in the
// form body (never a URL); anything that is not a code is dropped.
func (f *Factor) downloadStep(w http.ResponseWriter, r *http.Request) {
	var codes []string
	for _, line := range strings.Split(r.PostFormValue("codes"), "\n") {
		if line = strings.TrimSpace(line); codePattern.MatchString(line) {
			codes = append(codes, line)
		}
	}
	if len(codes) == 0 {
		f.opts.Pages.ErrorPage(w, r, http.StatusBadRequest, "Nothing to download", "The recovery codes were not sent with the form.")
		return
	}
	body := f.opts.Pages.AppName(r) + " recovery codes\n\nEach code signs you in once if you lose your authenticator.\n\n" + strings.Join(codes, "\n") + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="recovery-codes.txt"`)
	w.Write([]byte(body))
}
