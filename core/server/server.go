// Package server wires the auth core together: store, tenants, signing keys, sessions, the
// recipes and the HTTP API. Tests and cmd/core build the whole core with New.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/adminapi"
	"github.com/twofold-dev/twofold/core/audit"
	deliverytenant "github.com/twofold-dev/twofold/core/delivery/tenant"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/factors"
	"github.com/twofold-dev/twofold/core/factors/otp"
	"github.com/twofold-dev/twofold/core/factors/recoverycode"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/factors/webauthn"
	"github.com/twofold-dev/twofold/core/hostedui"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/outbound"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

// MaintenanceInterval is how often Run rotates keys and deletes dead sessions.
const MaintenanceInterval = time.Minute

// Options configure a Server. Store and Issuer are required.
type Options struct {
	Store store.Store
	// Issuer is the iss of access tokens and the base of the OpenID configuration, e.g.
	// https://core.example/auth.
	Issuer string
	// AdminKey authenticates the admin API; empty turns it off.
	AdminKey string
	Clock    func() time.Time
	Logger   logr.Logger
	// Registry receives the metrics; a fresh registry when nil.
	Registry *prometheus.Registry
	// Outbound is the operator's rule for the destinations tenant configuration names (OIDC
	// providers, the Twilio base URL, the SMS webhook): internal addresses and cluster names
	// are refused unless its allow-list permits them. The zero value refuses them all.
	Outbound outbound.Policy
	// PasswordParams are the argon2id parameters; emailpassword.DefaultParams when zero.
	PasswordParams emailpassword.Params
	// TrustedProxies are the peers whose X-Forwarded-For names the client;
	// httpapi.DefaultTrustedProxies when nil.
	TrustedProxies []netip.Prefix
	// SignInLimits bound password sign-in attempts per account and per client;
	// emailpassword.DefaultSignInLimits when zero.
	SignInLimits store.SignInLimits
	// MaxBackgroundSends bounds the password reset emails in flight at once;
	// accountapi.DefaultMaxBackgroundSends when zero.
	MaxBackgroundSends int
	// Keys tune signing-key rotation; Clock and MaxTokenLifetime are filled in.
	Keys keys.Options
	// Claims computes new sessions' claims; the MFA engine's Claims when nil.
	Claims httpapi.ClaimsFunc
	// AuditSink receives every audit event (docs/audit.md) besides the audit log, e.g. an
	// audit.Webhook; none when nil.
	AuditSink audit.Sink
	// Routes registers further endpoints on the core's mux; it runs once New has built every
	// part, so it can use the server's sessions, store and API helpers.
	Routes func(s *Server, mux *http.ServeMux)
}

// Part is a part of the core that serves endpoints: the API, the hosted pages, each factor.
type Part interface {
	Register(mux *http.ServeMux)
}

// Server is an assembled auth core.
type Server struct {
	Store         store.Store
	Tenants       *tenant.Service
	Keys          *keys.Manager
	Sessions      *session.Manager
	EmailPassword *emailpassword.Recipe
	ThirdParty    *thirdparty.Recipe
	// MFA evaluates MFA requirements and keeps sessions' st-mfa claims current.
	MFA *mfaengine.Engine
	// TOTP is the totp factor: its operations, FDI endpoints and hosted steps.
	TOTP *totp.Factor
	// RecoveryCodes is the recovery-code factor: its operations, FDI endpoints and hosted steps.
	RecoveryCodes *recoverycode.Factor
	// OTP is the otp-email and otp-phone factor: its operations, the passwordless code
	// endpoints (which serve first-factor codes through Account) and hosted steps.
	OTP *otp.Factor
	// WebAuthn is the webauthn factor (passkeys): its operations and FDI endpoints.
	WebAuthn *webauthn.Factor
	// Account runs first-factor passwordless codes, email verification and password reset.
	Account *accountapi.API
	API     *httpapi.API

	handler http.Handler
	opts    Options
}

// New assembles the core: it makes sure the public tenant and a signing key exist.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("server: Options.Store is required")
	}
	if opts.Issuer == "" {
		return nil, errors.New("server: Options.Issuer is required")
	}
	if u, err := url.Parse(opts.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("server: issuer %q is not an absolute http(s) URL such as https://core.example/auth", opts.Issuer)
	}
	opts.Issuer = strings.TrimSuffix(opts.Issuer, "/")
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{Store: opts.Store, opts: opts}
	s.Tenants = tenant.New(opts.Store, opts.Clock)
	s.Tenants.CheckDestination = opts.Outbound.CheckURL
	if err := s.Tenants.EnsurePublic(ctx); err != nil {
		return nil, err
	}
	ko := opts.Keys
	ko.Clock = opts.Clock
	ko.MaxTokenLifetime = contract.MaxAccessTokenLifetimeSeconds * time.Second
	s.Keys = keys.New(opts.Store, ko)
	if _, err := s.Keys.Rotate(ctx); err != nil {
		return nil, err
	}
	s.Sessions = session.New(session.Options{
		Store: opts.Store, Keys: s.Keys, Issuer: opts.Issuer, APIBasePath: "/auth", Clock: opts.Clock,
		Settings: func(ctx context.Context, tenantID string) (session.Settings, error) {
			t, err := s.Tenants.Current(ctx, tenantID)
			if err != nil {
				return session.Settings{}, err
			}
			return httpapi.SessionSettings(t.Config), nil
		},
	})
	var err error
	s.EmailPassword, err = emailpassword.New(emailpassword.Options{Store: opts.Store, Params: opts.PasswordParams, Clock: opts.Clock, NewID: uuid.NewString})
	if err != nil {
		return nil, err
	}
	s.ThirdParty, err = thirdparty.New(thirdparty.Options{Store: opts.Store, Outbound: opts.Outbound, Clock: opts.Clock, NewID: uuid.NewString,
		Logger: opts.Logger.WithName("thirdparty")})
	if err != nil {
		return nil, err
	}
	s.MFA = mfaengine.New(mfaengine.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, Clock: opts.Clock, Logger: opts.Logger})
	if opts.Claims == nil {
		opts.Claims = s.MFA.Claims
	}
	opts.Claims = accountapi.WithEmailVerification(opts.Claims, opts.Clock)
	s.API = httpapi.New(httpapi.Options{
		Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, Keys: s.Keys,
		EmailPassword: s.EmailPassword, ThirdParty: s.ThirdParty, AdminKey: opts.AdminKey,
		Claims: opts.Claims, Registry: opts.Registry, Logger: opts.Logger, Clock: opts.Clock,
		TrustedProxies: opts.TrustedProxies, SignInLimits: opts.SignInLimits, AuditSink: opts.AuditSink,
	})
	s.Account, err = accountapi.New(accountapi.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, API: s.API,
		Claims: opts.Claims, PasswordParams: opts.PasswordParams, Clock: opts.Clock, Logger: opts.Logger, Registry: opts.Registry,
		MaxBackgroundSends: opts.MaxBackgroundSends,
		Senders:            deliverytenant.NewBuilder(opts.Outbound).FromConfig})
	if err != nil {
		return nil, err
	}
	// The hosted pages call the same operations as the FDI endpoints.
	ui, err := hostedui.New(hostedui.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, MFA: s.MFA,
		ThirdParty: s.ThirdParty, Secrets: s.Keys, API: s.API, Account: s.Account, Audit: s.API.Audit,
		Clock: opts.Clock, Logger: opts.Logger.WithName("hostedui")})
	if err != nil {
		return nil, fmt.Errorf("server: hosted UI: %w", err)
	}
	s.TOTP, err = totp.New(totp.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, Engine: s.MFA,
		Pages: ui, Clock: opts.Clock, Logger: opts.Logger, Audit: s.API.Audit})
	if err != nil {
		return nil, fmt.Errorf("server: totp: %w", err)
	}
	s.RecoveryCodes, err = recoverycode.New(recoverycode.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions,
		Engine: s.MFA, Pages: ui, Clock: opts.Clock, Logger: opts.Logger, Audit: s.API.Audit})
	if err != nil {
		return nil, fmt.Errorf("server: recovery codes: %w", err)
	}
	s.OTP, err = otp.New(otp.Options{Options: factors.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions,
		Engine: s.MFA, Pages: ui, Clock: opts.Clock, Logger: opts.Logger}, API: s.API, Account: s.Account, Registry: opts.Registry})
	if err != nil {
		return nil, fmt.Errorf("server: otp: %w", err)
	}
	s.WebAuthn, err = webauthn.New(webauthn.Options{Options: factors.Options{Store: opts.Store, Tenants: s.Tenants,
		Sessions: s.Sessions, Engine: s.MFA, Pages: ui, Clock: opts.Clock, Logger: opts.Logger, Audit: s.API.Audit}, Claims: opts.Claims, NewID: uuid.NewString,
		Recovery: s.Account, ClientOf: s.API.ClientOf})
	if err != nil {
		return nil, fmt.Errorf("server: webauthn: %w", err)
	}
	// Every part registers its own endpoints on one router; a factor registers its FDI
	// endpoints and its hosted steps.
	factorParts := []Part{s.TOTP, s.RecoveryCodes, s.OTP, s.WebAuthn}
	parts := append([]Part{s.API, ui,
		mfaapi.New(mfaapi.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, Engine: s.MFA, Logger: opts.Logger}),
		adminapi.New(adminapi.Options{Store: opts.Store, Tenants: s.Tenants, Sessions: s.Sessions, Engine: s.MFA, API: s.API,
			Clock: opts.Clock, Logger: opts.Logger.WithName("adminapi")}),
		s.Account,
	}, factorParts...)
	mux := http.NewServeMux()
	for _, p := range parts {
		p.Register(mux)
	}
	if opts.Routes != nil {
		opts.Routes(s, mux)
	}
	s.handler = s.API.Handler(mux)
	return s, nil
}

// ServeHTTP serves the core's whole HTTP API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Maintain rotates signing keys when due and deletes sessions that can no longer be used or
// reported: expired, or revoked longer ago than the longest access-token lifetime; and
// passwordless devices and account tokens that have expired.
func (s *Server) Maintain(ctx context.Context) error {
	created, err := s.Keys.Rotate(ctx)
	if err != nil {
		return err
	}
	if created {
		s.opts.Logger.Info("Created signing key")
	}
	cutoff := s.opts.Clock().Add(-contract.MaxAccessTokenLifetimeSeconds * time.Second)
	n, err := s.Store.DeleteSessionsBefore(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("delete old sessions: %w", err)
	}
	if n > 0 {
		s.opts.Logger.Info("Deleted old sessions", "count", n)
	}
	if err := s.WebAuthn.DeleteExpired(ctx); err != nil {
		return fmt.Errorf("delete expired webauthn options: %w", err)
	}
	return s.Account.DeleteExpired(ctx)
}

// Run calls Maintain every MaintenanceInterval until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Maintain(ctx); err != nil {
				s.opts.Logger.Error(err, "Failed maintenance")
			}
		}
	}
}
