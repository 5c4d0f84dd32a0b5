package webauthn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// SignInOptions are the options of an authentication ceremony, in the shape of SuperTokens'
// signInOptions answer (less its status).
type SignInOptions struct {
	ID               string                          `json:"webauthnGeneratedOptionsId"`
	RPID             string                          `json:"rpId"`
	CreatedAt        int64                           `json:"createdAt"`
	ExpiresAt        int64                           `json:"expiresAt"`
	Challenge        string                          `json:"challenge"`
	Timeout          int                             `json:"timeout"`
	UserVerification string                          `json:"userVerification"`
	AllowCredentials []protocol.CredentialDescriptor `json:"allowCredentials,omitempty"`
}

// SignInOptions starts an authentication ceremony in tenant t. With a user (a second factor),
// the options name that user's credentials, so security keys that keep no credential can
// answer; without one any passkey of the tenant may.
func (f *Factor) SignInOptions(ctx context.Context, t tenant.Tenant, userID string) (SignInOptions, error) {
	w, cfg, err := relyingParty(t)
	if err != nil {
		return SignInOptions{}, err
	}
	opts := []gowebauthn.LoginOption{gowebauthn.WithUserVerification(protocol.UserVerificationRequirement(cfg.UserVerification))}
	var allow []protocol.CredentialDescriptor
	if userID != "" {
		creds, err := f.opts.Store.ListWebAuthnCredentials(ctx, userID)
		if err != nil {
			return SignInOptions{}, err
		}
		allow = descriptors(creds)
		if len(allow) > 0 {
			opts = append(opts, gowebauthn.WithAllowedCredentials(allow))
		}
	}
	_, sd, err := w.BeginDiscoverableLogin(opts...)
	if err != nil {
		return SignInOptions{}, fmt.Errorf("begin webauthn sign-in: %w", err)
	}
	id, err := newOptionsID()
	if err != nil {
		return SignInOptions{}, err
	}
	now := f.opts.Clock()
	o := store.WebAuthnOptions{ID: id, TenantID: t.ID, Kind: store.WebAuthnSignIn, Challenge: sd.Challenge, RPID: cfg.RPID,
		UserVerification: cfg.UserVerification, CreatedAt: now, ExpiresAt: now.Add(OptionsLifetime)}
	if err := f.opts.Store.CreateWebAuthnOptions(ctx, o); err != nil {
		return SignInOptions{}, err
	}
	return SignInOptions{ID: id, RPID: cfg.RPID, CreatedAt: now.UnixMilli(), ExpiresAt: o.ExpiresAt.UnixMilli(), Challenge: sd.Challenge,
		Timeout: int(OptionsLifetime / time.Millisecond), UserVerification: cfg.UserVerification, AllowCredentials: allow}, nil
}

// Assertion is a verified authentication: the credential it used and its owner.
type Assertion struct {
	Credential store.WebAuthnCredential
	User       store.User
}

// verifyAssertion checks an authentication answer against the options it answers: the
// credential must be one of the tenant's, the signature its key's, the sign count must not go
// backwards, and the new count is stored with a compare-and-set so the answer counts once.
func (f *Factor) verifyAssertion(ctx context.Context, t tenant.Tenant, o store.WebAuthnOptions, answer json.RawMessage) (Assertion, error) {
	w, _, err := relyingParty(t)
	if err != nil {
		return Assertion{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %v", ErrInvalidCredential, detail(err))
	}
	stored, err := f.opts.Store.GetWebAuthnCredential(ctx, t.ID, b64(parsed.RawID))
	if errors.Is(err, store.ErrNotFound) {
		return Assertion{}, fmt.Errorf("%w: unknown credential", ErrInvalidCredential)
	}
	if err != nil {
		return Assertion{}, err
	}
	lib, err := toLibrary(stored)
	if err != nil {
		return Assertion{}, err
	}
	owner := user{handle: []byte(stored.RecipeUserID), credentials: []gowebauthn.Credential{lib}}
	sd := gowebauthn.SessionData{Challenge: o.Challenge, RelyingPartyID: o.RPID, UserID: owner.handle,
		UserVerification: protocol.UserVerificationRequirement(o.UserVerification)}
	c, err := w.ValidateLogin(owner, sd, parsed)
	if err != nil {
		return Assertion{Credential: stored}, fmt.Errorf("%w: %v", ErrInvalidCredential, detail(err))
	}
	if c.Authenticator.CloneWarning {
		return Assertion{Credential: stored}, fmt.Errorf("%w: the sign count went from %d to %d: the authenticator may be cloned",
			ErrInvalidCredential, stored.SignCount, parsed.Response.AuthenticatorData.Counter)
	}
	err = f.opts.Store.UseWebAuthnCredential(ctx, store.WebAuthnAssertion{CredentialID: stored.ID, TenantID: t.ID,
		OldCount: stored.SignCount, NewCount: c.Authenticator.SignCount, BackupState: c.Flags.BackupState, Now: f.opts.Clock()})
	if errors.Is(err, store.ErrCounterMoved) || errors.Is(err, store.ErrNotFound) {
		return Assertion{Credential: stored}, fmt.Errorf("%w: the credential was used or removed concurrently", ErrInvalidCredential)
	}
	if err != nil {
		return Assertion{}, err
	}
	u, err := f.opts.Store.GetUser(ctx, stored.RecipeUserID)
	if err != nil {
		return Assertion{}, err
	}
	return Assertion{Credential: stored, User: u}, nil
}

// SignIn finishes an authentication begun with SignInOptions. Without a session it is a
// first-factor sign-in and starts a session; with one it completes webauthn in that session,
// and the credential must be the session user's.
func (f *Factor) SignIn(ctx context.Context, t tenant.Tenant, sess *session.Session, optionsID string, answer json.RawMessage) (Result, error) {
	if sess == nil && !firstFactor(t) {
		return Result{}, ErrNotAllowed
	}
	if sess != nil {
		if err := f.checkLock(ctx, sess.UserID); err != nil {
			return Result{}, err
		}
	}
	o, err := f.consume(ctx, t, optionsID, store.WebAuthnSignIn)
	if err != nil {
		return Result{}, err
	}
	a, err := f.verifyAssertion(ctx, t, o, answer)
	if errors.Is(err, ErrInvalidCredential) {
		// A failure with a known credential counts against its owner, and against the
		// session's user when it is a second factor.
		for _, id := range []string{a.Credential.UserID, sessionUser(sess)} {
			if id != "" {
				if ferr := f.fail(ctx, id); ferr != nil {
					return Result{}, errors.Join(err, ferr)
				}
			}
		}
		return Result{}, err
	}
	if err != nil {
		return Result{}, err
	}
	if sess != nil && a.User.ID != sess.UserID {
		// A valid passkey of someone else proves nothing about the session's user: it counts
		// as a failed attempt of theirs.
		if err := f.fail(ctx, sess.UserID); err != nil {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("%w: the passkey belongs to another user", ErrNotAllowed)
	}
	if sess == nil {
		// A first-factor sign-in learns the user from the passkey: a locked user stays locked,
		// even with a passkey that verifies.
		if err := f.checkLock(ctx, a.User.ID); err != nil {
			return Result{}, err
		}
	}
	if err := f.succeed(ctx, a.User.ID); err != nil {
		return Result{}, err
	}
	res := Result{User: a.User, RecipeUserID: a.Credential.RecipeUserID}
	if sess != nil {
		res.Update, err = f.opts.Engine.Complete(ctx, *sess, mfa.WebAuthn)
		return res, err
	}
	return f.start(ctx, t, res)
}

// checkLock refuses a locked user with ErrLocked, wrapped with how long the lock lasts.
func (f *Factor) checkLock(ctx context.Context, userID string) error {
	limit, err := f.opts.Store.GetAttemptLimit(ctx, userID)
	if err != nil {
		return err
	}
	now := f.opts.Clock()
	l := attempts.Limiter{Failures: limit.Failures, LockedUntil: limit.LockedUntil}
	if l.Locked(now) {
		return &LockedError{RetryAfter: l.RetryAfter(now)}
	}
	return nil
}

// LockedError is ErrLocked with how long the lock lasts.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("%v: try again in %s", ErrLocked, e.RetryAfter.Round(time.Second))
}

// Unwrap lets errors.Is(err, ErrLocked) match.
func (e *LockedError) Unwrap() error { return ErrLocked }

func (f *Factor) fail(ctx context.Context, userID string) error {
	now := f.opts.Clock()
	_, err := f.opts.Store.UpdateAttemptLimit(ctx, userID, func(cur store.AttemptLimit) store.AttemptLimit {
		l := attempts.Limiter{Failures: cur.Failures, LockedUntil: cur.LockedUntil}
		l.Fail(now)
		return store.AttemptLimit(l)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (f *Factor) succeed(ctx context.Context, userID string) error {
	_, err := f.opts.Store.UpdateAttemptLimit(ctx, userID, func(cur store.AttemptLimit) store.AttemptLimit {
		if cur.Failures == 0 && cur.LockedUntil.IsZero() {
			return cur
		}
		l := attempts.Limiter{Failures: cur.Failures, LockedUntil: cur.LockedUntil}
		l.Succeed()
		return store.AttemptLimit(l)
	})
	return err
}
