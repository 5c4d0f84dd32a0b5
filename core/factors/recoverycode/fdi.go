package recoverycode

import (
	"errors"
	"net/http"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
)

// This file is the FDI edge: decode, call an operation, encode.

// Register adds the FDI endpoints and, with Options.Pages, the hosted steps to mux.
func (f *Factor) Register(mux *http.ServeMux) {
	req := func(h http.HandlerFunc) http.Handler { return f.opts.Sessions.Require(h) }
	mux.Handle("POST /auth/recovery-codes", req(f.generate))
	mux.Handle("GET /auth/recovery-codes/status", req(f.status))
	mux.Handle("POST /auth/recovery-codes/verify", req(f.verify))
	if f.opts.Pages != nil {
		f.registerPages(mux)
	}
}

func (f *Factor) internalError(w http.ResponseWriter, r *http.Request, err error) {
	httpkit.InternalError(f.opts.Logger, w, r, err)
}

func (f *Factor) generate(w http.ResponseWriter, r *http.Request) {
	codes, err := f.NewSet(r.Context(), session.Of(r))
	if errors.Is(err, mfaengine.ErrNotSatisfied) {
		httpkit.WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
		return
	}
	if err != nil {
		if !mfaapi.WriteSetupError(w, err) {
			f.internalError(w, r, err)
		}
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "codes": codes})
}

func (f *Factor) status(w http.ResponseWriter, r *http.Request) {
	unused, total, err := f.Remaining(r.Context(), session.Of(r).UserID)
	if err != nil {
		f.internalError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "remaining": unused, "total": total})
}

func (f *Factor) verify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if strings.TrimSpace(body.Code) == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "code", "code is required: one of your recovery codes, e.g. abcd-efgh-jkmn")
		return
	}
	res, err := f.Use(r.Context(), session.Of(r), body.Code)
	f.auditResult(r, session.Of(r), res, err)
	switch {
	case err != nil || res.Outcome == Accepted:
		mfaapi.WriteCompleted(f.opts.Logger, w, r, f.opts.Sessions, res.Update, err, map[string]string{"status": contract.StatusOK})
	case res.Outcome == Locked:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusLimitReached, "retryAfterMs": res.RetryAfter.Milliseconds()})
	case res.Outcome == NoCodes:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusNoRecoveryCodes})
	default:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusInvalidRecoveryCode,
			"currentNumberOfFailedAttempts": res.Failures, "maxNumberOfFailedAttempts": MaxFailures})
	}
}
