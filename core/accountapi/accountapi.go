// Package accountapi holds the account flows that are not a factor package: passwordless
// codes as a first factor, email verification and password reset, each as transport-free
// operations with their FDI endpoints.
//
// Passwordless (rid passwordless): a first-factor code's flow type follows the tenant's first
// factors (otp-* gives a user input code, link-* a magic link, both give both), and a right
// code signs the user in or up with a new session (CreateCode, ResendCode, ConsumeCode). The
// code endpoints themselves (POST /auth/{t}/signinup/code, /resend, /consume) are served by
// core/factors/otp, which also takes the codes of the otp-email and otp-phone second factors
// over them; it sends and checks codes with SendCode, ResendCode and ConsumeDevice. This
// package serves GET /auth/{t}/passwordless/email/exists and /passwordless/phoneNumber/exists.
// Codes are sent before they are stored, so a delivery failure (GENERAL_ERROR naming the
// channel) leaves no usable code behind; every send counts against the tenant's send limits.
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
	"github.com/twofold-dev/twofold/core/delivery"
	deliverytenant "github.com/twofold-dev/twofold/core/delivery/tenant"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
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

// Options are the API's dependencies. Store, Tenants, Sessions, API and Claims are required.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	// API gives the tenant of a request and the audit log.
	API *httpapi.API
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
	if opts.Store == nil || opts.Tenants == nil || opts.Sessions == nil || opts.API == nil || opts.Claims == nil {
		return nil, errors.New("accountapi: Store, Tenants, Sessions, API and Claims are required")
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

// A Refusal is an operation's answer when it does not do what it was asked, in FDI's words: a
// status (GENERAL_ERROR, RESTART_FLOW_ERROR, SIGN_IN_UP_NOT_ALLOWED, FIELD_ERROR, ...) with the
// message, reason or field the SDKs show. It is an error so that an operation can return it
// from any depth; the FDI edge answers it with status 200 and its body, the hosted pages word
// it for people.
type Refusal struct {
	Status string
	// Message is a GENERAL_ERROR's message, or a FIELD_ERROR's error for Field.
	Message string
	// Reason is a SIGN_IN_UP_NOT_ALLOWED's reason.
	Reason string
	Field  string
	// RetryAfter is how long a limit holds; Retry says whether the answer carries it.
	RetryAfter time.Duration
	Retry      bool
}

func (e *Refusal) Error() string {
	for _, s := range []string{e.Message, e.Reason} {
		if s != "" {
			return e.Status + ": " + s
		}
	}
	return e.Status
}

// body is the refusal's FDI answer.
func (e *Refusal) body() map[string]any {
	b := map[string]any{"status": e.Status}
	switch {
	case e.Status == contract.StatusFieldError:
		b["formFields"] = emailpassword.FieldErrors{{ID: e.Field, Error: e.Message}}
	case e.Message != "":
		b["message"] = e.Message
	case e.Reason != "":
		b["reason"] = e.Reason
	}
	if e.Retry {
		b["retryAfterMs"] = e.RetryAfter.Milliseconds()
	}
	return b
}

// refused is a GENERAL_ERROR with a message the SDKs show to the user.
func refused(format string, args ...any) *Refusal {
	return &Refusal{Status: contract.StatusGeneralError, Message: fmt.Sprintf(format, args...)}
}

// WriteError answers an operation's error: a refusal with its body, a refusal of the MFA
// setup rule with the 403 invalid claim, anything else 500.
func (a *API) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		httpkit.WriteJSON(w, http.StatusOK, ref.body())
	case mfaapi.WriteSetupError(w, err):
	default:
		a.internalError(w, r, err)
	}
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

// sender returns the tenant's templates and its sender for ch, or a refusal saying the channel
// is not configured.
func (a *API) sender(t tenant.Tenant, ch delivery.Channel) (delivery.Sender, delivery.Templates, error) {
	senders, err := a.opts.Senders(t.Config)
	if err != nil {
		a.log.Error(err, "Tenant delivery configuration is invalid", "tenant", t.ID)
		return nil, delivery.Templates{}, refused("the %s delivery settings of tenant %q are invalid", channelName(ch), t.ID)
	}
	s, err := senders.For(ch)
	if errors.Is(err, deliverytenant.ErrNotConfigured) {
		setting := "email.smtp"
		if ch == delivery.SMS {
			setting = "sms"
		}
		return nil, delivery.Templates{}, refused("tenant %q cannot send %s: it has no %s delivery configured (%s)", t.ID, channelName(ch), channelName(ch), setting)
	}
	if err != nil {
		return nil, delivery.Templates{}, err
	}
	return s, senders.Templates, nil
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

// backgroundSlot takes one of the slots for sends that outlive their request, or, when all
// are taken, returns a refusal. release gives the slot back.
func (a *API) backgroundSlot() (release func(), err error) {
	select {
	case a.sendSlots <- struct{}{}:
		return func() { <-a.sendSlots }, nil
	default:
		a.metrics.codes.WithLabelValues(string(delivery.Email), "busy").Inc()
		return nil, refused("too many emails are being sent right now; try again in a minute")
	}
}

// background returns a context for work that outlives the request of ctx.
func background(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), backgroundSendTimeout)
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
