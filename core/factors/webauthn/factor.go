package webauthn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/attempts"
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
	Claims func(ctx context.Context, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error)
	// NewID returns a new user id.
	NewID func() string
	// Recovery sends and checks account recovery links (core/accountapi); without it the
	// recovery endpoints are not served.
	Recovery Recovery
	// ClientOf is who sent a request, for the send limits and the audit trail.
	ClientOf func(r *http.Request) httpapi.Client
}

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

// newOptionsID returns a fresh, unguessable options id.
func newOptionsID() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64(b), nil
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
	claims, err := f.opts.Claims(ctx, t, res.User, mfa.Completed{mfa.WebAuthn: f.opts.Clock().Unix()})
	if err != nil {
		return Result{}, fmt.Errorf("compute session claims: %w", err)
	}
	res.Session, res.Tokens, err = f.opts.Sessions.Create(ctx, t.ID, res.User.ID, res.RecipeUserID, claims)
	return res, err
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
