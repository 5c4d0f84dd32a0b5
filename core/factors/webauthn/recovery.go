package webauthn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// Recovery sends and checks the emailed links that let a user who lost every passkey create a
// new one (core/accountapi's API).
type Recovery interface {
	SendPasskeyRecoveryEmail(ctx context.Context, cl httpapi.Client, t tenant.Tenant, email string, hosted bool) error
	// PasskeyRecoveryToken returns store.ErrNotFound for a token that is unknown, used,
	// expired or of another tenant.
	PasskeyRecoveryToken(ctx context.Context, t tenant.Tenant, token string, consume bool) (store.AccountToken, error)
	// WriteError answers a refusal of SendPasskeyRecoveryEmail (an invalid email, a send limit).
	WriteError(w http.ResponseWriter, r *http.Request, err error)
}

// recoveryToken returns tenant t's account recovery token, using it up when consume is set.
func (f *Factor) recoveryToken(ctx context.Context, t tenant.Tenant, token string, consume bool) (store.AccountToken, error) {
	if f.opts.Recovery == nil || token == "" {
		return store.AccountToken{}, ErrRecoveryTokenInvalid
	}
	tok, err := f.opts.Recovery.PasskeyRecoveryToken(ctx, t, token, consume)
	if errors.Is(err, store.ErrNotFound) {
		return store.AccountToken{}, ErrRecoveryTokenInvalid
	}
	return tok, err
}

// RecoveryOptions starts registering a new passkey with an account recovery token: for the
// login method the token was sent for. The token is not used up.
func (f *Factor) RecoveryOptions(ctx context.Context, t tenant.Tenant, token string) (RegistrationOptions, error) {
	tok, err := f.recoveryToken(ctx, t, token, false)
	if err != nil {
		return RegistrationOptions{}, err
	}
	return f.RegisterOptions(ctx, t, tok.Email, "", tok.RecipeUserID)
}

// RecoverAccount finishes a registration begun with RecoveryOptions: the new passkey is added to
// the login method the token was sent for, the token is used up and the email marked verified
// (the link proved it). The token is used up only once the passkey verified, so a failed
// ceremony can be tried again with the same link.
func (f *Factor) RecoverAccount(ctx context.Context, t tenant.Tenant, token, optionsID string, answer json.RawMessage) (store.User, error) {
	tok, err := f.recoveryToken(ctx, t, token, false)
	if err != nil {
		return store.User{}, err
	}
	o, err := f.consume(ctx, t, optionsID, store.WebAuthnRegister)
	if err != nil {
		return store.User{}, err
	}
	if o.RecipeUserID != tok.RecipeUserID || o.Email != tok.Email {
		return store.User{}, ErrOptionsNotFound
	}
	c, err := f.verifyRegistration(t, o, answer)
	if err != nil {
		return store.User{}, err
	}
	if _, err := f.recoveryToken(ctx, t, token, true); err != nil {
		return store.User{}, err
	}
	if err := f.opts.Store.AddWebAuthnCredential(ctx, c); err != nil {
		return store.User{}, err
	}
	u, err := f.opts.Store.SetEmailVerified(ctx, tok.RecipeUserID, tok.Email)
	if errors.Is(err, store.ErrNotFound) {
		// The login method's email changed since the link was sent: the passkey stays, the
		// email is not marked verified.
		return f.opts.Store.GetUser(ctx, tok.RecipeUserID)
	}
	return u, err
}
