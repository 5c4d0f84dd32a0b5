package webauthn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

// AddCredential finishes a registration begun with RegisterOptions for the session user's
// webauthn login method recipeUserID: another passkey of the same account. It is a factor
// setup: the setup rule applies.
func (f *Factor) AddCredential(ctx context.Context, sess session.Session, recipeUserID, optionsID string, answer json.RawMessage) error {
	if err := f.opts.Engine.CheckSetup(ctx, sess, mfa.WebAuthn); err != nil {
		return err
	}
	t, err := f.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		return err
	}
	u, err := f.opts.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		return err
	}
	lm, ok := findLogin(u, recipeUserID)
	if !ok {
		return ErrUnknownCredential
	}
	o, err := f.consume(ctx, t, optionsID, store.WebAuthnRegister)
	if err != nil {
		return err
	}
	if o.RecipeUserID != lm.RecipeUserID || o.Email != lm.Email {
		return ErrOptionsNotFound
	}
	c, err := f.verifyRegistration(t, o, answer)
	if err != nil {
		return err
	}
	return f.opts.Store.AddWebAuthnCredential(ctx, c)
}

func findLogin(u store.User, recipeUserID string) (store.LoginMethod, bool) {
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipeWebAuthn && lm.RecipeUserID == recipeUserID {
			return lm, true
		}
	}
	return store.LoginMethod{}, false
}

// Credentials lists the passkeys of the user.
func (f *Factor) Credentials(ctx context.Context, userID string) ([]store.WebAuthnCredential, error) {
	return f.opts.Store.ListWebAuthnCredentials(ctx, userID)
}

// RenameCredential renames one of the session user's passkeys.
func (f *Factor) RenameCredential(ctx context.Context, sess session.Session, id, name string) error {
	name = strings.TrimSpace(name)
	if len(name) > MaxCredentialNameLength {
		return ErrNameTooLong
	}
	err := f.opts.Store.RenameWebAuthnCredential(ctx, sess.UserID, id, name)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownCredential
	}
	return err
}

// RemoveCredential removes one of the session user's passkeys. The session must have met its
// requirement: a password thief must not strip the second factor.
func (f *Factor) RemoveCredential(ctx context.Context, sess session.Session, id string) error {
	if err := f.opts.Engine.RequireSatisfied(ctx, sess); err != nil {
		return err
	}
	removed, err := f.opts.Store.RemoveWebAuthnCredential(ctx, sess.UserID, id)
	if err != nil {
		return err
	}
	if !removed {
		return ErrUnknownCredential
	}
	return nil
}
