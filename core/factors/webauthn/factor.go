package webauthn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/factors"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// OptionsLifetime is how long a ceremony's options can be answered; it is also the timeout
// the browser is given.
const OptionsLifetime = 2 * time.Minute

// MaxCredentialNameLength bounds a credential's name.
const MaxCredentialNameLength = 100

// Algorithms are the COSE algorithms a new credential may use, SuperTokens' list: EdDSA,
// ES256 and RS256.
var Algorithms = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: -8},
	{Type: protocol.PublicKeyCredentialType, Algorithm: -7},
	{Type: protocol.PublicKeyCredentialType, Algorithm: -257},
}

// Errors of the operations; the edges answer each with its SuperTokens status.
var (
	// ErrNoRelyingParty: the tenant has no origin for passkeys (websiteDomain or
	// webauthn.origins).
	ErrNoRelyingParty = errors.New("the tenant has no relying party for passkeys: set websiteDomain (https, or http://localhost) or webauthn.origins and webauthn.rpId")
	// ErrOptionsNotFound: the options are unknown, used already, expired, or of another
	// ceremony (OPTIONS_NOT_FOUND_ERROR).
	ErrOptionsNotFound = errors.New("the webauthn options are unknown, used or expired")
	// ErrInvalidCredential: the browser's answer did not verify (INVALID_CREDENTIALS_ERROR).
	ErrInvalidCredential = errors.New("the webauthn credential did not verify")
	// ErrInvalidAuthenticator: the authenticator's answer is malformed or uses what the core
	// does not accept (INVALID_AUTHENTICATOR_ERROR).
	ErrInvalidAuthenticator = errors.New("the authenticator's answer is not acceptable")
	// ErrEmailTaken: the tenant has a webauthn login method with the email
	// (EMAIL_ALREADY_EXISTS_ERROR).
	ErrEmailTaken = errors.New("the email already has a passkey account in this tenant")
	// ErrCredentialExists: the credential is registered already.
	ErrCredentialExists = store.ErrCredentialExists
	// ErrNotAllowed: the tenant does not offer passkeys for this (first factor, or a
	// credential of another user as a second factor).
	ErrNotAllowed = errors.New("passkeys are not allowed here")
	// ErrLocked: the user failed too often; nothing was checked.
	ErrLocked = errors.New("too many failed attempts")
	// ErrUnknownCredential: the user has no credential with that id.
	ErrUnknownCredential = errors.New("no such webauthn credential")
	// ErrRecoveryTokenInvalid: the account recovery token is unknown, used, expired or of
	// another tenant (RECOVER_ACCOUNT_TOKEN_INVALID_ERROR).
	ErrRecoveryTokenInvalid = errors.New("the account recovery token is unknown, used or expired")
	// ErrNameTooLong refuses a credential name longer than MaxCredentialNameLength bytes.
	ErrNameTooLong = fmt.Errorf("the name is longer than %d bytes", MaxCredentialNameLength)
)

// Options are the factor's dependencies.
type Options struct {
	factors.Options
	// Claims computes a new session's claims (the core's claim function, with st-ev).
	Claims func(ctx context.Context, r store.MFAReader, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error)
	// NewID returns a new user id.
	NewID func() string
	// Recovery sends and checks account recovery links (core/accountapi); without it the
	// recovery endpoints are not served.
	Recovery Recovery
	// ClientOf is who sent a request, for the send limits and the audit trail.
	ClientOf func(r *http.Request) httpapi.Client
}

// Factor is the webauthn factor: its operations, and Register for its endpoints.
type Factor struct {
	opts Options
}

// New returns the factor and, with Options.Pages, adds its hosted step to the pages.
func New(opts Options) (*Factor, error) {
	opts.Options = opts.Options.WithDefaults()
	if opts.Pages != nil {
		if err := opts.Pages.AddFactor(mfa.WebAuthn, templates); err != nil {
			return nil, err
		}
	}
	if opts.Claims == nil {
		opts.Claims = opts.Engine.Claims
	}
	if opts.NewID == nil {
		return nil, errors.New("webauthn: Options.NewID is required")
	}
	return &Factor{opts: opts}, nil
}

// Register adds the FDI endpoints and, with Options.Pages, the hosted step to mux.
func (f *Factor) Register(mux *http.ServeMux) {
	f.registerFDI(mux)
	if f.opts.Pages != nil {
		f.registerPages(mux)
	}
}

// relyingParty is go-webauthn configured for tenant t.
func relyingParty(t tenant.Tenant) (*gowebauthn.WebAuthn, contract.WebAuthn, error) {
	c := t.Config.WebAuthn
	if !c.HasRelyingParty() {
		return nil, c, ErrNoRelyingParty
	}
	w, err := gowebauthn.New(&gowebauthn.Config{RPID: c.RPID, RPDisplayName: c.RPName, RPOrigins: c.Origins})
	if err != nil {
		return nil, c, fmt.Errorf("webauthn relying party of tenant %q: %w", t.ID, err)
	}
	return w, c, nil
}

// user is a webauthn login method as go-webauthn sees it: its user handle is the login
// method's id.
type user struct {
	handle      []byte
	name        string
	credentials []gowebauthn.Credential
}

func (u user) WebAuthnID() []byte                           { return u.handle }
func (u user) WebAuthnName() string                         { return u.name }
func (u user) WebAuthnDisplayName() string                  { return u.name }
func (u user) WebAuthnCredentials() []gowebauthn.Credential { return u.credentials }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// toLibrary is a stored credential as go-webauthn verifies it.
func toLibrary(c store.WebAuthnCredential) (gowebauthn.Credential, error) {
	id, err := base64.RawURLEncoding.DecodeString(c.ID)
	if err != nil {
		return gowebauthn.Credential{}, fmt.Errorf("stored credential id %q: %w", c.ID, err)
	}
	out := gowebauthn.Credential{ID: id, PublicKey: c.PublicKey, AttestationType: c.AttestationType,
		Flags:         gowebauthn.CredentialFlags{UserPresent: true, UserVerified: c.UserVerified, BackupEligible: c.BackupEligible, BackupState: c.BackupState},
		Authenticator: gowebauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount}}
	for _, t := range c.Transports {
		out.Transport = append(out.Transport, protocol.AuthenticatorTransport(t))
	}
	return out, nil
}

func descriptors(creds []store.WebAuthnCredential) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(creds))
	for _, c := range creds {
		lib, err := toLibrary(c)
		if err != nil {
			continue
		}
		out = append(out, lib.Descriptor())
	}
	return out
}

// webauthnLogin returns u's webauthn login method in tenant tenantID.
func webauthnLogin(u store.User, tenantID string) (store.LoginMethod, bool) {
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipeWebAuthn && lm.TenantID == tenantID {
			return lm, true
		}
	}
	return store.LoginMethod{}, false
}

// loginByEmail returns the tenant's webauthn login method with email and its user.
func (f *Factor) loginByEmail(ctx context.Context, tenantID, email string) (store.User, store.LoginMethod, bool, error) {
	users, err := f.opts.Store.UsersByEmail(ctx, tenantID, email)
	if err != nil {
		return store.User{}, store.LoginMethod{}, false, err
	}
	for _, u := range users {
		for _, lm := range u.LoginMethods {
			if lm.RecipeID == store.RecipeWebAuthn && lm.TenantID == tenantID && lm.Email == email {
				return u, lm, true, nil
			}
		}
	}
	return store.User{}, store.LoginMethod{}, false, nil
}

// newOptionsID returns a fresh, unguessable options id.
func newOptionsID() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64(b), nil
}

// consume takes the options for one use.
func (f *Factor) consume(ctx context.Context, t tenant.Tenant, id, kind string) (store.WebAuthnOptions, error) {
	o, err := f.opts.Store.ConsumeWebAuthnOptions(ctx, t.ID, id, f.opts.Clock())
	if errors.Is(err, store.ErrNotFound) {
		return o, ErrOptionsNotFound
	}
	if err != nil {
		return o, err
	}
	if o.Kind != kind {
		return o, ErrOptionsNotFound
	}
	return o, nil
}

// detail is go-webauthn's developer detail of err, which says what failed.
func detail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return pe.Details + ": " + pe.DevInfo
	}
	if errors.As(err, &pe) {
		return pe.Details
	}
	return err.Error()
}

// Result is a sign-up's or a sign-in's outcome.
type Result struct {
	User store.User
	// RecipeUserID is the webauthn login method used or created.
	RecipeUserID string
	// Created reports a new login method.
	Created bool
	// Session and Tokens are the new session's (first factor).
	Session session.Session
	Tokens  session.Tokens
	// Update is the session with webauthn completed (second factor).
	Update mfaengine.Update
}

func sessionUser(s *session.Session) string {
	if s == nil {
		return ""
	}
	return s.UserID
}

func firstFactor(t tenant.Tenant) bool {
	for _, f := range t.Config.FirstFactors {
		if f == mfa.WebAuthn {
			return true
		}
	}
	return false
}

// start creates the session of a first-factor sign-in or sign-up.
func (f *Factor) start(ctx context.Context, t tenant.Tenant, res Result) (Result, error) {
	claims, err := f.opts.Claims(ctx, f.opts.Store, t, res.User, mfa.Completed{mfa.WebAuthn: f.opts.Clock().Unix()})
	if err != nil {
		return Result{}, fmt.Errorf("compute session claims: %w", err)
	}
	res.Session, res.Tokens, err = f.opts.Sessions.Create(ctx, t.ID, res.User.ID, res.RecipeUserID, claims)
	return res, err
}

// EmailExists reports whether the tenant has a webauthn login method with email.
func (f *Factor) EmailExists(ctx context.Context, tenantID, email string) (bool, error) {
	_, _, found, err := f.loginByEmail(ctx, tenantID, email)
	return found, err
}

// DeleteExpired removes ceremony options nobody answered in time; the server's maintenance
// loop calls it.
func (f *Factor) DeleteExpired(ctx context.Context) error {
	_, err := f.opts.Store.DeleteWebAuthnOptionsBefore(ctx, f.opts.Clock())
	return err
}
