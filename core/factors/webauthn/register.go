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
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// RegistrationOptions are the options of a registration ceremony, in the shape of
// SuperTokens' registerOptions answer (less its status).
type RegistrationOptions struct {
	ID                     string                          `json:"webauthnGeneratedOptionsId"`
	CreatedAt              int64                           `json:"createdAt"`
	ExpiresAt              int64                           `json:"expiresAt"`
	RP                     protocol.RelyingPartyEntity     `json:"rp"`
	User                   registrationUser                `json:"user"`
	Challenge              string                          `json:"challenge"`
	Timeout                int                             `json:"timeout"`
	ExcludeCredentials     []protocol.CredentialDescriptor `json:"excludeCredentials"`
	Attestation            string                          `json:"attestation"`
	PubKeyCredParams       []protocol.CredentialParameter  `json:"pubKeyCredParams"`
	AuthenticatorSelection protocol.AuthenticatorSelection `json:"authenticatorSelection"`
}

type registrationUser struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// RegisterOptions starts registering a credential for email in tenant t. The credential
// belongs to the tenant's webauthn login method with that email when there is one (for adding
// a credential or recovering an account: recipeUserID names it), or to a new one. The
// authenticators that already hold a credential of that login method are excluded.
func (f *Factor) RegisterOptions(ctx context.Context, t tenant.Tenant, email, displayName, recipeUserID string) (RegistrationOptions, error) {
	w, cfg, err := relyingParty(t)
	if err != nil {
		return RegistrationOptions{}, err
	}
	handle := recipeUserID
	var exclude []protocol.CredentialDescriptor
	if handle == "" {
		handle = f.opts.NewID()
	} else {
		creds, err := f.opts.Store.ListWebAuthnCredentials(ctx, recipeUserID)
		if err != nil {
			return RegistrationOptions{}, err
		}
		var own []store.WebAuthnCredential
		for _, c := range creds {
			if c.RecipeUserID == recipeUserID {
				own = append(own, c)
			}
		}
		exclude = descriptors(own)
	}
	if displayName == "" {
		displayName = email
	}
	rk := protocol.ResidentKeyRequirement(cfg.ResidentKey)
	required := rk == protocol.ResidentKeyRequirementRequired
	selection := protocol.AuthenticatorSelection{AuthenticatorAttachment: protocol.AuthenticatorAttachment(cfg.AuthenticatorAttachment),
		RequireResidentKey: &required, ResidentKey: rk, UserVerification: protocol.UserVerificationRequirement(cfg.UserVerification)}
	creation, sd, err := w.BeginRegistration(user{handle: []byte(handle), name: email},
		gowebauthn.WithAuthenticatorSelection(selection), gowebauthn.WithConveyancePreference(protocol.ConveyancePreference(cfg.Attestation)),
		gowebauthn.WithExclusions(exclude), gowebauthn.WithCredentialParameters(Algorithms))
	if err != nil {
		return RegistrationOptions{}, fmt.Errorf("begin webauthn registration: %w", err)
	}
	id, err := newOptionsID()
	if err != nil {
		return RegistrationOptions{}, err
	}
	now := f.opts.Clock()
	o := store.WebAuthnOptions{ID: id, TenantID: t.ID, Kind: store.WebAuthnRegister, Challenge: sd.Challenge, Email: email,
		UserHandle: handle, RecipeUserID: recipeUserID, RPID: cfg.RPID, UserVerification: cfg.UserVerification,
		CreatedAt: now, ExpiresAt: now.Add(OptionsLifetime)}
	if err := f.opts.Store.CreateWebAuthnOptions(ctx, o); err != nil {
		return RegistrationOptions{}, err
	}
	pk := creation.Response
	if exclude == nil {
		exclude = []protocol.CredentialDescriptor{}
	}
	return RegistrationOptions{ID: id, CreatedAt: now.UnixMilli(), ExpiresAt: o.ExpiresAt.UnixMilli(), RP: pk.RelyingParty,
		User:      registrationUser{ID: b64([]byte(handle)), Name: email, DisplayName: displayName},
		Challenge: sd.Challenge, Timeout: int(OptionsLifetime / time.Millisecond), ExcludeCredentials: exclude,
		Attestation: cfg.Attestation, PubKeyCredParams: Algorithms, AuthenticatorSelection: selection}, nil
}

// verifyRegistration checks a registration answer against the options it answers and returns
// the credential to store.
func (f *Factor) verifyRegistration(t tenant.Tenant, o store.WebAuthnOptions, answer json.RawMessage) (store.WebAuthnCredential, error) {
	w, _, err := relyingParty(t)
	if err != nil {
		return store.WebAuthnCredential{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return store.WebAuthnCredential{}, fmt.Errorf("%w: %v", ErrInvalidAuthenticator, err)
	}
	sd := gowebauthn.SessionData{Challenge: o.Challenge, RelyingPartyID: o.RPID, UserID: []byte(o.UserHandle),
		UserVerification: protocol.UserVerificationRequirement(o.UserVerification), CredParams: Algorithms}
	c, err := w.CreateCredential(user{handle: []byte(o.UserHandle), name: o.Email}, sd, parsed)
	if err != nil {
		return store.WebAuthnCredential{}, fmt.Errorf("%w: %v", ErrInvalidCredential, detail(err))
	}
	out := store.WebAuthnCredential{ID: b64(c.ID), TenantID: t.ID, RecipeUserID: o.UserHandle, RPID: o.RPID, PublicKey: c.PublicKey,
		AttestationType: c.AttestationType, AAGUID: c.Authenticator.AAGUID, SignCount: c.Authenticator.SignCount,
		UserVerified: c.Flags.UserVerified, BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState,
		Name: defaultName(c), CreatedAt: f.opts.Clock()}
	for _, tr := range c.Transport {
		out.Transports = append(out.Transports, string(tr))
	}
	return out, nil
}

// defaultName names a new credential after where it lives.
func defaultName(c *gowebauthn.Credential) string {
	switch {
	case c.Flags.BackupEligible:
		return "Passkey"
	default:
		return "Security key"
	}
}

// SignUp finishes a registration begun with RegisterOptions for a new login method. Without a
// session it is a first-factor sign-up: a new user and a new session. With one (the linking
// session), it sets up webauthn for the session's user: the setup rule applies, the login
// method is linked to that user, and webauthn is completed in the session.
func (f *Factor) SignUp(ctx context.Context, t tenant.Tenant, sess *session.Session, optionsID string, answer json.RawMessage) (Result, error) {
	if sess == nil && !firstFactor(t) {
		return Result{}, ErrNotAllowed
	}
	if sess != nil {
		if err := f.opts.Engine.CheckSetup(ctx, *sess, mfa.WebAuthn); err != nil {
			return Result{}, err
		}
	}
	o, err := f.consume(ctx, t, optionsID, store.WebAuthnRegister)
	if err != nil {
		return Result{}, err
	}
	if o.RecipeUserID != "" {
		// The options were for the email's existing login method.
		return Result{}, ErrEmailTaken
	}
	if _, _, found, err := f.loginByEmail(ctx, t.ID, o.Email); err != nil || found {
		if err == nil {
			err = ErrEmailTaken
		}
		return Result{}, err
	}
	c, err := f.verifyRegistration(t, o, answer)
	if err != nil {
		return Result{}, err
	}
	n := store.NewWebAuthnUser{RecipeUserID: o.UserHandle, TenantID: t.ID, Email: o.Email, Credential: c, Now: f.opts.Clock()}
	if sess != nil {
		n.UserID = sess.UserID
	}
	u, err := f.opts.Store.SignUpWebAuthn(ctx, n)
	switch {
	case errors.Is(err, store.ErrEmailTaken):
		return Result{}, ErrEmailTaken
	case err != nil:
		return Result{}, err
	}
	res := Result{User: u, RecipeUserID: o.UserHandle, Created: true}
	if sess != nil {
		res.Update, err = f.opts.Engine.Complete(ctx, *sess, mfa.WebAuthn)
		return res, err
	}
	return f.start(ctx, t, res)
}
