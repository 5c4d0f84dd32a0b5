// Package accountapi serves the FDI endpoints of the passwordless factors, email
// verification and password reset, and links a passwordless factor completed during MFA to
// the session's user.
//
// Passwordless (rid passwordless): POST /auth/{t}/signinup/code, /signinup/code/resend and
// /signinup/code/consume, GET /auth/{t}/passwordless/email/exists and
// /passwordless/phoneNumber/exists. Without a session a code is a first factor: the flow type
// follows the tenant's first factors (otp-* gives a user input code, link-* a magic link, both
// give both) and a successful consume signs the user in or up with a new session. With a
// session (shouldTryLinkingWithSessionUser true, or absent while the request carries a
// session) it is a secondary factor with a user input code:
//
//   - an email or phone number that belongs to another user of the tenant is refused
//     (SIGN_IN_UP_NOT_ALLOWED) before any code is sent and again at consume;
//   - a contact the session's user already has a passwordless login method for is a factor
//     completion: the consume marks otp-email or otp-phone completed in the session
//     (mfaengine.Engine.Complete);
//   - any other contact is a factor setup and must pass the setup rule
//     (mfaengine.Engine.CheckSetup, a 403 invalid claim when refused) before the code is
//     sent and at consume, which then adds the contact to the user as a passwordless login
//     method and completes the factor.
//
// Codes are sent before they are stored, so a delivery failure (GENERAL_ERROR naming the
// channel) leaves no usable code behind.
//
// Email verification (rid emailverification) and password reset (rid emailpassword) send
// single-use links to the tenant's website; their tokens are 256-bit random values stored as
// SHA-256, valid 24 hours and 1 hour. Under the tenant's emailVerification REQUIRED, sessions
// carry the st-ev claim {"v": verified, "t": unix milliseconds} (WithEmailVerification), which
// the sidecars enforce.
package accountapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/delivery"
	deliverytenant "github.com/twofold-dev/twofold/core/delivery/tenant"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// Token lifetimes.
const (
	EmailVerificationTokenLifetime = 24 * time.Hour
	PasswordResetTokenLifetime     = time.Hour
	// backgroundSendTimeout bounds a password reset email sent after the answer.
	backgroundSendTimeout = 30 * time.Second
	// DefaultMaxBackgroundSends bounds the password reset emails in flight at once: a slow or
	// hanging mail server must not let a flood of requests pile up goroutines and
	// connections without end.
	DefaultMaxBackgroundSends = 64
)

// Options are the API's dependencies. Store, Tenants, Sessions, API, MFA and Claims are
// required.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	// API gives the tenant of a request and the audit log.
	API *httpapi.API
	// MFA sets up and completes secondary factors.
	MFA *mfaengine.Engine
	// Claims computes the claims of a session started by a passwordless first factor.
	Claims httpapi.ClaimsFunc
	// PasswordParams hash reset passwords; emailpassword.DefaultParams when zero.
	PasswordParams emailpassword.Params
	// Senders builds a tenant's senders; deliverytenant.FromConfig when nil.
	Senders func(contract.TenantConfig) (deliverytenant.Senders, error)
	Clock   func() time.Time
	Logger  logr.Logger
	// NewID makes user ids; uuid.NewString when nil.
	NewID func() string
	// Registry receives the metrics of code sends and second-factor code entries; a fresh
	// registry when nil.
	Registry prometheus.Registerer
	// MaxBackgroundSends bounds the emails sent after their request was answered (password
	// resets) that may be in flight at once; DefaultMaxBackgroundSends when zero.
	MaxBackgroundSends int
}

// API serves the endpoints; Register adds them to a mux.
type API struct {
	opts    Options
	log     logr.Logger
	metrics *metrics
	// sendSlots holds one token per background send in flight.
	sendSlots chan struct{}
}

// New returns the API.
func New(opts Options) (*API, error) {
	if opts.Store == nil || opts.Tenants == nil || opts.Sessions == nil || opts.API == nil || opts.MFA == nil || opts.Claims == nil {
		return nil, errors.New("accountapi: Store, Tenants, Sessions, API, MFA and Claims are required")
	}
	if opts.PasswordParams == (emailpassword.Params{}) {
		opts.PasswordParams = emailpassword.DefaultParams
	}
	if opts.Senders == nil {
		opts.Senders = deliverytenant.FromConfig
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.NewID == nil {
		opts.NewID = uuid.NewString
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.MaxBackgroundSends == 0 {
		opts.MaxBackgroundSends = DefaultMaxBackgroundSends
	}
	return &API{opts: opts, log: opts.Logger.WithName("accountapi"), metrics: newMetrics(opts.Registry),
		sendSlots: make(chan struct{}, opts.MaxBackgroundSends)}, nil
}

// Register adds every endpoint to mux, with and without the /{tenant} segment.
func (a *API) Register(mux *http.ServeMux) {
	req := a.opts.Sessions.Require
	for _, p := range []string{"/auth", "/auth/{tenant}"} {
		mux.HandleFunc("POST "+p+"/signinup/code", a.createCode)
		mux.HandleFunc("POST "+p+"/signinup/code/resend", a.resendCode)
		mux.HandleFunc("POST "+p+"/signinup/code/consume", a.consumeCode)
		mux.HandleFunc("GET "+p+"/passwordless/email/exists", a.emailExists)
		mux.HandleFunc("GET "+p+"/passwordless/phoneNumber/exists", a.phoneExists)
		mux.Handle("POST "+p+"/user/email/verify/token", req(http.HandlerFunc(a.sendVerificationEmail)))
		mux.HandleFunc("POST "+p+"/user/email/verify", a.verifyEmail)
		mux.Handle("GET "+p+"/user/email/verify", req(http.HandlerFunc(a.isEmailVerified)))
		mux.HandleFunc("POST "+p+"/user/password/reset/token", a.sendResetEmail)
		mux.HandleFunc("POST "+p+"/user/password/reset", a.resetPassword)
	}
}

// internalError logs err and answers 500 GENERAL_ERROR without details.
func (a *API) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error(err, "Failed request", "method", r.Method, "path", r.URL.Path)
	httpkit.WriteJSON(w, http.StatusInternalServerError, map[string]string{"status": contract.StatusGeneralError, "message": "internal error"})
}

// generalError answers 200 GENERAL_ERROR with a message the SDKs show to the user.
func generalError(w http.ResponseWriter, format string, args ...any) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusGeneralError, "message": fmt.Sprintf(format, args...)})
}

func status(w http.ResponseWriter, s string) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": s})
}

// channelName words a channel for messages: "email" or "SMS".
func channelName(ch delivery.Channel) string {
	if ch == delivery.SMS {
		return "SMS"
	}
	return "email"
}

// sender returns the tenant's templates and its sender for ch, or answers GENERAL_ERROR
// saying the channel is not configured and returns false.
func (a *API) sender(w http.ResponseWriter, r *http.Request, t tenant.Tenant, ch delivery.Channel) (delivery.Sender, delivery.Templates, bool) {
	senders, err := a.opts.Senders(t.Config)
	if err != nil {
		a.log.Error(err, "Tenant delivery configuration is invalid", "tenant", t.ID)
		generalError(w, "the %s delivery settings of tenant %q are invalid", channelName(ch), t.ID)
		return nil, delivery.Templates{}, false
	}
	s, err := senders.For(ch)
	if errors.Is(err, deliverytenant.ErrNotConfigured) {
		setting := "email.smtp"
		if ch == delivery.SMS {
			setting = "sms"
		}
		generalError(w, "tenant %q cannot send %s: it has no %s delivery configured (%s)", t.ID, channelName(ch), channelName(ch), setting)
		return nil, delivery.Templates{}, false
	}
	if err != nil {
		a.internalError(w, r, err)
		return nil, delivery.Templates{}, false
	}
	return s, senders.Templates, true
}

// websiteLink builds {websiteDomain}{websiteBasePath}{page}?token=...&tenantId=..., or
// answers GENERAL_ERROR when the tenant has no websiteDomain and returns false.
func websiteLink(w http.ResponseWriter, t tenant.Tenant, page, token string) (string, bool) {
	if t.Config.WebsiteDomain == "" {
		generalError(w, "tenant %q has no websiteDomain to send links to", t.ID)
		return "", false
	}
	return linkTo(t, page, token), true
}

// linkTo builds {websiteDomain}{websiteBasePath}{page}?token=...&tenantId=...
func linkTo(t tenant.Tenant, page, token string) string {
	base := strings.TrimSuffix(t.Config.WebsiteDomain, "/") + strings.TrimSuffix(t.Config.WebsiteBasePath, "/")
	return base + page + "?token=" + url.QueryEscape(token) + "&tenantId=" + url.QueryEscape(t.ID)
}

// newToken returns a 256-bit random token and its SHA-256, which is all the store keeps.
func newToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// optionalSession returns the request's session when it carries an access token; an
// invalid token is answered 401 as SuperTokens does (the client refreshes) and ok is false.
func (a *API) optionalSession(w http.ResponseWriter, r *http.Request) (sess session.Session, has, ok bool) {
	token, transport := session.AccessTokenFrom(r)
	if token == "" {
		return session.Session{}, false, true
	}
	sess, err := a.opts.Sessions.Verify(r.Context(), token, session.VerifyOptions{CheckDatabase: true})
	if err != nil {
		session.WriteError(w, err)
		return session.Session{}, false, false
	}
	settings, err := a.opts.Sessions.Settings(r.Context(), sess.TenantID)
	if err != nil || !session.CSRFProtected(r, transport, settings) {
		session.WriteError(w, session.ErrUnauthorised)
		return session.Session{}, false, false
	}
	return sess, true, true
}

// startSession creates a session for u signed in with recipeUserID, factor completed now,
// writes its tokens in the transport the client asked for and answers body.
func (a *API) startSession(w http.ResponseWriter, r *http.Request, t tenant.Tenant, u store.User, recipeUserID, factor string, body any) {
	claims, err := a.opts.Claims(r.Context(), t, u, mfa.Completed{factor: a.opts.Clock().Unix()})
	if err != nil {
		a.internalError(w, r, fmt.Errorf("compute session claims: %w", err))
		return
	}
	_, tokens, err := a.opts.Sessions.Create(r.Context(), t.ID, u.ID, recipeUserID, claims)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.Sessions.WriteTokens(w, session.RequestedTransport(r), tokens, httpapi.SessionSettings(t.Config))
	httpkit.WriteJSON(w, http.StatusOK, body)
}

// backgroundSlot takes one of the slots for sends that outlive their request, or, when all
// are taken, answers GENERAL_ERROR and returns false. release gives the slot back.
func (a *API) backgroundSlot(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case a.sendSlots <- struct{}{}:
		return func() { <-a.sendSlots }, true
	default:
		a.metrics.codes.WithLabelValues(string(delivery.Email), "busy").Inc()
		generalError(w, "too many emails are being sent right now; try again in a minute")
		return nil, false
	}
}

// background returns a context for work that outlives the request.
func background(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), backgroundSendTimeout)
}

// DeleteExpired removes passwordless devices whose codes have all expired, expired email
// verification and password reset tokens, and code sends older than any send window; the
// server's maintenance loop calls it.
func (a *API) DeleteExpired(ctx context.Context) error {
	now := a.opts.Clock()
	devices, err := a.opts.Store.DeletePasswordlessDevicesBefore(ctx, now.Add(-passwordless.CodeLifetime))
	if err != nil {
		return fmt.Errorf("delete expired passwordless devices: %w", err)
	}
	tokens, err := a.opts.Store.DeleteAccountTokensBefore(ctx, now)
	if err != nil {
		return fmt.Errorf("delete expired account tokens: %w", err)
	}
	// No tenant's send window is longer than MaxCodeWindowSeconds, so older sends count
	// against nothing.
	sends, err := a.opts.Store.DeleteSendsBefore(ctx, now.Add(-time.Duration(contract.MaxCodeWindowSeconds)*time.Second))
	if err != nil {
		return fmt.Errorf("delete old code sends: %w", err)
	}
	if devices+tokens+sends > 0 {
		a.log.Info("Deleted expired passwordless devices, account tokens and code sends", "devices", devices, "tokens", tokens, "sends", sends)
	}
	return nil
}
