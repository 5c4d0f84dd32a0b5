// Package thirdparty is the OAuth2/OIDC first factor: authorization code flow with PKCE
// against Google, GitHub or any OIDC provider found by discovery. ID tokens are verified
// (signature by the provider's JWKS, issuer, audience, expiry) with go-oidc.
//
// Every call to a provider goes through one client from package outbound: the tenant chose
// the issuer and endpoints, so the core refuses internal destinations (unless the operator
// allows them), follows at most three redirects and reads at most 1 MiB of any answer. What a
// provider answers is logged for the operator but never put in an error: a failed step is
// reported in the core's own words, because the caller may be anyone on the internet.
package thirdparty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-logr/logr"
	"golang.org/x/oauth2"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/outbound"
	"github.com/twofold-dev/twofold/core/store"
)

// Errors callers branch on.
var (
	// ErrUnknownProvider: the tenant has no provider with that thirdPartyId.
	ErrUnknownProvider = errors.New("unknown third-party provider")
	// ErrBadRedirect: the redirect carried no code, or the provider reported an error.
	ErrBadRedirect = errors.New("the provider's redirect carries no authorization code")
	// ErrProvider: the provider refused the code or answered something unusable.
	ErrProvider = errors.New("the third-party provider refused the sign-in")
	// ErrNoEmail: the provider gave no email for the user.
	ErrNoEmail = errors.New("the third-party provider gave no email")
)

// Presets for the well-known providers.
const (
	GoogleIssuer        = "https://accounts.google.com"
	GitHubAuthorizeURL  = "https://github.com/login/oauth/authorize"
	GitHubTokenURL      = "https://github.com/login/oauth/access_token"
	GitHubUserURL       = "https://api.github.com/user"
	discoveryCacheTTL   = time.Hour
	maxUserInfoBodySize = 1 << 20
	// maxRedirects bounds the redirects followed to a discovery document, JWKS or userinfo.
	maxRedirects = 3
)

// Options configure a Recipe.
type Options struct {
	Store store.Users
	// HTTPClient talks to the providers; when nil, a client from Outbound: internal
	// destinations refused, three redirects, 1 MiB answers, 15 s per exchange.
	HTTPClient *http.Client
	// Outbound is the operator's rule for which destinations providers may be at.
	Outbound outbound.Policy
	Clock    func() time.Time
	NewID    func() string
	// Logger receives what providers answered when a step fails.
	Logger logr.Logger
}

// Recipe signs users in with third-party providers.
type Recipe struct {
	opts Options

	mu        sync.Mutex
	providers map[string]discovered // by issuer
}

type discovered struct {
	p  *oidc.Provider
	at time.Time
}

// New returns a Recipe.
func New(opts Options) (*Recipe, error) {
	if opts.NewID == nil {
		return nil, errors.New("thirdparty: Options.NewID is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = opts.Outbound.Client(outbound.ClientOptions{MaxRedirects: maxRedirects, MaxBodyBytes: maxUserInfoBodySize})
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Recipe{opts: opts, providers: map[string]discovered{}}, nil
}

// Find returns the tenant's provider with id.
func Find(c contract.TenantConfig, id string) (contract.Provider, error) {
	for _, p := range c.ThirdPartyProviders {
		if p.ID == id {
			return p, nil
		}
	}
	return contract.Provider{}, fmt.Errorf("%w %q", ErrUnknownProvider, id)
}

func (r *Recipe) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, r.opts.HTTPClient) // oauth2 reads the same context key
}

// Steps that can fail at a provider, in the words callers see.
const (
	stepDiscovery = "the OIDC provider's discovery document could not be read"
	stepExchange  = "the provider did not accept the authorization code"
	stepIDToken   = "the provider's ID token could not be verified"
	stepUserInfo  = "the provider's user information could not be read"
	stepSubject   = "the provider's user information is about another user than its ID token"
	stepGitHub    = "the GitHub user could not be read"
)

// providerError logs err (which may quote the provider's answer) for the operator and returns
// an error wrapping ErrProvider that names only the failed step.
func (r *Recipe) providerError(p contract.Provider, step string, err error) error {
	r.opts.Logger.Error(err, "Failed a call to a third-party provider", "provider", p.ID, "issuer", issuerOf(p), "step", step)
	return fmt.Errorf("%w: %s", ErrProvider, step)
}

// discover returns the OIDC provider of an issuer, cached for an hour.
func (r *Recipe) discover(ctx context.Context, prov contract.Provider) (*oidc.Provider, error) {
	issuer := issuerOf(prov)
	now := r.opts.Clock()
	r.mu.Lock()
	d, ok := r.providers[issuer]
	r.mu.Unlock()
	if ok && now.Sub(d.at) < discoveryCacheTTL {
		return d.p, nil
	}
	p, err := oidc.NewProvider(r.ctx(ctx), issuer)
	if err != nil {
		return nil, r.providerError(prov, stepDiscovery, err)
	}
	r.mu.Lock()
	r.providers[issuer] = discovered{p: p, at: now}
	r.mu.Unlock()
	return p, nil
}

func issuerOf(p contract.Provider) string {
	if p.Issuer != "" {
		return p.Issuer
	}
	if p.Type == contract.ProviderGoogle {
		return GoogleIssuer
	}
	return ""
}

// oauthConfig builds the OAuth2 client of a provider, discovering endpoints when needed.
func (r *Recipe) oauthConfig(ctx context.Context, p contract.Provider, redirectURI string) (*oauth2.Config, *oidc.Provider, error) {
	cfg := &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: redirectURI, Scopes: p.Scopes}
	var op *oidc.Provider
	switch p.Type {
	case contract.ProviderGitHub:
		cfg.Endpoint = oauth2.Endpoint{AuthURL: GitHubAuthorizeURL, TokenURL: GitHubTokenURL, AuthStyle: oauth2.AuthStyleInParams}
		if len(cfg.Scopes) == 0 {
			cfg.Scopes = []string{"read:user", "user:email"}
		}
	default:
		var err error
		if op, err = r.discover(ctx, p); err != nil {
			return nil, nil, err
		}
		cfg.Endpoint = op.Endpoint()
		if len(cfg.Scopes) == 0 {
			cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
		}
	}
	if p.AuthorizationEndpoint != "" {
		cfg.Endpoint.AuthURL = p.AuthorizationEndpoint
	}
	if p.TokenEndpoint != "" {
		cfg.Endpoint.TokenURL = p.TokenEndpoint
	}
	return cfg, op, nil
}

// AuthorisationURL returns the provider URL to send the browser to, with a fresh PKCE
// verifier that the client keeps and sends back to SignInUp (SuperTokens' flow: the frontend
// adds and checks its own state parameter).
func (r *Recipe) AuthorisationURL(ctx context.Context, p contract.Provider, redirectURI string) (url, verifier string, err error) {
	cfg, _, err := r.oauthConfig(ctx, p, redirectURI)
	if err != nil {
		return "", "", err
	}
	verifier = oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.Type == contract.ProviderGoogle {
		opts = append(opts, oauth2.SetAuthURLParam("include_granted_scopes", "true"), oauth2.AccessTypeOffline)
	}
	return cfg.AuthCodeURL("", opts...), verifier, nil
}

// Identity is what the provider told about the user.
type Identity struct {
	UserID        string
	Email         string
	EmailVerified bool
}

// SignInUp exchanges the code from the provider's redirect (with the PKCE verifier), reads
// the user's identity and finds or creates the user.
func (r *Recipe) SignInUp(ctx context.Context, tenantID string, p contract.Provider, redirectURI string, query map[string]string, verifier string) (store.User, bool, error) {
	if e := query["error"]; e != "" {
		return store.User{}, false, fmt.Errorf("%w: the provider answered %q: %s", ErrBadRedirect, e, query["error_description"])
	}
	code := query["code"]
	if code == "" {
		return store.User{}, false, ErrBadRedirect
	}
	cfg, op, err := r.oauthConfig(ctx, p, redirectURI)
	if err != nil {
		return store.User{}, false, err
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := cfg.Exchange(r.ctx(ctx), code, opts...)
	if err != nil {
		return store.User{}, false, r.providerError(p, stepExchange, err)
	}
	var id Identity
	if p.Type == contract.ProviderGitHub {
		id, err = r.gitHubIdentity(ctx, p, tok)
	} else {
		id, err = r.oidcIdentity(ctx, p, op, tok)
	}
	if err != nil {
		return store.User{}, false, err
	}
	if id.UserID == "" {
		return store.User{}, false, fmt.Errorf("%w: no user id in the provider's answer", ErrProvider)
	}
	if id.Email == "" {
		return store.User{}, false, ErrNoEmail
	}
	u, created, err := r.opts.Store.UpsertThirdPartyUser(ctx, store.ThirdPartyIdentity{
		TenantID: tenantID, ThirdPartyID: p.ID, ThirdPartyUserID: id.UserID,
		Email: strings.ToLower(strings.TrimSpace(id.Email)), Verified: id.EmailVerified,
	}, r.opts.NewID(), r.opts.Clock())
	if err != nil {
		return store.User{}, false, fmt.Errorf("third-party sign-in: %w", err)
	}
	return u, created, nil
}

func (r *Recipe) oidcIdentity(ctx context.Context, p contract.Provider, op *oidc.Provider, tok *oauth2.Token) (Identity, error) {
	var claims struct {
		Sub           string `json:"sub"`
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw != "" {
		v := op.Verifier(&oidc.Config{ClientID: p.ClientID, Now: r.opts.Clock})
		idt, err := v.Verify(r.ctx(ctx), raw)
		if err != nil {
			return Identity{}, r.providerError(p, stepIDToken, err)
		}
		if err := idt.Claims(&claims); err != nil {
			return Identity{}, r.providerError(p, stepIDToken, err)
		}
	}
	if raw == "" || (claims.Email == "" && (op.UserInfoEndpoint() != "" || p.UserInfoEndpoint != "")) {
		ui, err := op.UserInfo(r.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, r.providerError(p, stepUserInfo, err)
		}
		if raw != "" && ui.Subject != claims.Sub {
			return Identity{}, r.providerError(p, stepSubject, fmt.Errorf("userinfo subject %q differs from the ID token's %q", ui.Subject, claims.Sub))
		}
		claims.Sub, claims.Email, claims.EmailVerified = ui.Subject, ui.Email, ui.EmailVerified
	}
	return Identity{UserID: claims.Sub, Email: claims.Email, EmailVerified: truthy(claims.EmailVerified)}, nil
}

// truthy reads email_verified, which some providers send as the string "true".
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		ok, _ := strconv.ParseBool(b)
		return ok
	}
	return false
}

func (r *Recipe) getJSON(ctx context.Context, url string, tok *oauth2.Token, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	tok.SetAuthHeader(req)
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxUserInfoBodySize)).Decode(into)
}

func (r *Recipe) gitHubIdentity(ctx context.Context, p contract.Provider, tok *oauth2.Token) (Identity, error) {
	userURL := GitHubUserURL
	if p.UserInfoEndpoint != "" {
		userURL = p.UserInfoEndpoint
	}
	var user struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	}
	if err := r.getJSON(ctx, userURL, tok, &user); err != nil {
		return Identity{}, r.providerError(p, stepGitHub, err)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	id := Identity{UserID: strconv.FormatInt(user.ID, 10), Email: user.Email}
	if user.ID == 0 {
		id.UserID = ""
	}
	if err := r.getJSON(ctx, strings.TrimSuffix(userURL, "/")+"/emails", tok, &emails); err == nil {
		for _, e := range emails {
			if e.Primary {
				id.Email, id.EmailVerified = e.Email, e.Verified
			}
		}
	}
	return id, nil
}
