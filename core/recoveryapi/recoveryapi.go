// Package recoveryapi serves Twofold's recovery-code endpoints (factor id recovery-code), with
// a session and without a tenant segment:
//
//	POST /auth/recovery-codes         -> OK{codes:[10 codes]}: a new set, shown this once
//	GET  /auth/recovery-codes/status  -> OK{remaining, total}
//	POST /auth/recovery-codes/verify  {code} -> OK | INVALID_RECOVERY_CODE_ERROR{currentNumberOfFailedAttempts,
//	                                  maxNumberOfFailedAttempts} | LIMIT_REACHED_ERROR{retryAfterMs} |
//	                                  NO_RECOVERY_CODES_ERROR
//
// Generating a first set is a factor setup (the MFA engine's setup rule, so allowed once the
// requirement is met or when recovery-code is in the next set); replacing a set that still
// has unused codes needs the requirement met. An accepted code is used up (a compare-and-set
// in the store, so two concurrent uses of one code cannot both succeed) and marks
// recovery-code completed in the session; how a completed recovery code satisfies the
// requirement is the engine's stand-in rule. Failures count toward the same per-user limit
// as TOTP: five in a row lock both for 15 minutes.
package recoveryapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/recovery"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

// Options are the API's dependencies.
type Options struct {
	Store    store.Store
	Sessions *session.Manager
	Engine   *mfaengine.Engine
	Clock    func() time.Time
	Logger   logr.Logger
}

// API serves the recovery-code endpoints.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) *API {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &API{opts: opts}
}

func (a *API) internalError(w http.ResponseWriter, r *http.Request, err error) {
	httpkit.InternalError(a.opts.Logger, w, r, err)
}

// Register adds the endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	req := func(h http.HandlerFunc) http.Handler { return a.opts.Sessions.Require(h) }
	mux.Handle("POST /auth/recovery-codes", req(a.generate))
	mux.Handle("GET /auth/recovery-codes/status", req(a.status))
	mux.Handle("POST /auth/recovery-codes/verify", req(a.verify))
}

func (a *API) generate(w http.ResponseWriter, r *http.Request) {
	sess := session.Of(r)
	ctx := r.Context()
	unused, _, err := a.opts.Store.CountRecoveryCodes(ctx, sess.UserID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if unused > 0 {
		// Replacing a set invalidates the codes the user wrote down: only a session that
		// meets its requirement may.
		if err := a.opts.Engine.RequireSatisfied(ctx, sess); err != nil {
			if errors.Is(err, mfaengine.ErrNotSatisfied) {
				httpkit.WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
				return
			}
			a.internalError(w, r, err)
			return
		}
	} else if err := a.opts.Engine.CheckSetup(ctx, sess, mfa.RecoveryCode); err != nil {
		if !mfaapi.WriteSetupError(w, err) {
			a.internalError(w, r, err)
		}
		return
	}
	set, err := recovery.Generate(sess.UserID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if err := a.opts.Store.ReplaceRecoveryCodes(ctx, sess.UserID, set.Hashes, a.opts.Clock()); err != nil {
		a.internalError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "codes": set.Codes})
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	unused, total, err := a.opts.Store.CountRecoveryCodes(r.Context(), session.Of(r).UserID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "remaining": unused, "total": total})
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	sess := session.Of(r)
	ctx := r.Context()
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
	now := a.opts.Clock()
	var status string
	var failures int
	var retryAfter time.Duration
	_, err := a.opts.Store.UseRecoveryCode(ctx, sess.UserID, now, func(limit store.AttemptLimit, codes []store.RecoveryCode) (store.RecoveryAttempt, error) {
		l := attempts.Limiter(limit)
		if l.Locked(now) {
			status, retryAfter = contract.StatusLimitReached, l.RetryAfter(now)
			return store.RecoveryAttempt{Limit: limit}, nil
		}
		if len(codes) == 0 {
			status = contract.StatusNoRecoveryCodes
			return store.RecoveryAttempt{Limit: limit}, nil
		}
		hashes := make([][]byte, len(codes))
		for i, c := range codes {
			hashes[i] = c.Hash
		}
		i, err := recovery.Verify(sess.UserID, body.Code, hashes)
		if err == nil {
			l.Succeed()
			status = contract.StatusOK
			return store.RecoveryAttempt{Limit: store.AttemptLimit(l), CodeID: codes[i].ID}, nil
		}
		l.Fail(now)
		status, failures = contract.StatusInvalidRecoveryCode, l.Failures
		return store.RecoveryAttempt{Limit: store.AttemptLimit(l)}, nil
	})
	if errors.Is(err, store.ErrCodeUsed) {
		// Another request used this code first; it is not accepted twice.
		status, failures = contract.StatusInvalidRecoveryCode, 0
		if l, lerr := a.opts.Store.GetAttemptLimit(ctx, sess.UserID); lerr == nil {
			failures = l.Failures
		}
		err = nil
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	switch status {
	case contract.StatusOK:
	case contract.StatusLimitReached:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": status, "retryAfterMs": retryAfter.Milliseconds()})
		return
	case contract.StatusInvalidRecoveryCode:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": status, "currentNumberOfFailedAttempts": failures, "maxNumberOfFailedAttempts": attempts.MaxFailures})
		return
	default:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": status})
		return
	}
	upd, err := a.opts.Engine.Complete(ctx, sess, mfa.RecoveryCode)
	mfaapi.WriteCompleted(a.opts.Logger, w, r, a.opts.Sessions, upd, err, map[string]string{"status": contract.StatusOK})
}
