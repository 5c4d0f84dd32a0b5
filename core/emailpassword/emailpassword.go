// Package emailpassword is the email and password first factor: sign-up and sign-in with
// argon2id password hashes, email normalisation and SuperTokens' default form validation.
package emailpassword

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-dev/twofold/core/store"
)

// Errors callers branch on.
var (
	// ErrWrongCredentials: unknown email or wrong password (deliberately not told apart).
	ErrWrongCredentials = errors.New("wrong credentials")
	// ErrEmailTaken: sign-up with an email the tenant already has.
	ErrEmailTaken = errors.New("email already exists")
)

// Field error messages, as SuperTokens' default validators word them.
const (
	MsgFieldRequired  = "Field is not optional"
	MsgEmailInvalid   = "Email is invalid"
	MsgPasswordShort  = "Password must contain at least 8 characters, including a number"
	MsgPasswordLong   = "Password's length must be lesser than 100 characters"
	MsgPasswordLetter = "Password must contain at least one alphabet"
	MsgPasswordNumber = "Password must contain at least one number"
	MsgEmailExists    = "This email already exists. Please sign in instead."
	maxEmailLength    = 320
	maxPasswordLength = 100
	minPasswordLength = 8
)

// FieldError is a form field's validation error.
type FieldError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// FieldErrors is returned (as an error) when a form does not validate.
type FieldErrors []FieldError

// Error lists the fields and their messages.
func (f FieldErrors) Error() string {
	parts := make([]string, len(f))
	for i, e := range f {
		parts[i] = e.ID + ": " + e.Error
	}
	return "invalid form fields: " + strings.Join(parts, "; ")
}

// The email pattern of SuperTokens' default validator.
var emailPattern = regexp.MustCompile(`^(([^<>()\[\]\\.,;:\s@"]+(\.[^<>()\[\]\\.,;:\s@"]+)*)|(".+"))@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\])|(([a-zA-Z\-0-9]+\.)+[a-zA-Z]{2,}))$`)

var (
	hasLetter = regexp.MustCompile(`[A-Za-z]`)
	hasDigit  = regexp.MustCompile(`[0-9]`)
)

// NormaliseEmail trims spaces and lower-cases an email, so one mailbox is one account.
func NormaliseEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ValidateEmail returns the field error message for email, or "".
func ValidateEmail(email string) string {
	switch {
	case email == "":
		return MsgFieldRequired
	case len(email) > maxEmailLength || !emailPattern.MatchString(email):
		return MsgEmailInvalid
	}
	return ""
}

// ValidatePassword applies SuperTokens' default password policy: 8 to 99 characters with at
// least one letter and one digit.
func ValidatePassword(pw string) string {
	n := utf8.RuneCountInString(pw)
	switch {
	case pw == "":
		return MsgFieldRequired
	case n < minPasswordLength:
		return MsgPasswordShort
	case n >= maxPasswordLength:
		return MsgPasswordLong
	case !hasLetter.MatchString(pw):
		return MsgPasswordLetter
	case !hasDigit.MatchString(pw):
		return MsgPasswordNumber
	}
	return ""
}

// Options configure a Recipe.
type Options struct {
	Store store.Users
	// Params are the argon2id parameters of new hashes; DefaultParams when zero.
	Params Params
	// MaxConcurrentHashes bounds the memory argon2id can take (19 MiB each); 2*GOMAXPROCS when 0.
	MaxConcurrentHashes int
	Clock               func() time.Time
	NewID               func() string
}

// Recipe signs users up and in with an email and a password.
type Recipe struct {
	opts  Options
	sem   chan struct{}
	dummy string // a hash to spend time on when the email is unknown
}

// New returns a Recipe. It computes one hash up front (the decoy used for unknown emails).
func New(opts Options) (*Recipe, error) {
	if opts.Params == (Params{}) {
		opts.Params = DefaultParams
	}
	if opts.MaxConcurrentHashes <= 0 {
		opts.MaxConcurrentHashes = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.NewID == nil {
		return nil, errors.New("emailpassword: Options.NewID is required")
	}
	dummy, err := opts.Params.Hash("decoy password for unknown emails")
	if err != nil {
		return nil, err
	}
	return &Recipe{opts: opts, sem: make(chan struct{}, opts.MaxConcurrentHashes), dummy: dummy}, nil
}

func (r *Recipe) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recipe) release() { <-r.sem }

// SignUp validates the form and creates a user. It returns FieldErrors for invalid input and
// an error wrapping ErrEmailTaken when the tenant already has the email.
func (r *Recipe) SignUp(ctx context.Context, tenantID, email, password string) (store.User, error) {
	email = NormaliseEmail(email)
	var fe FieldErrors
	if msg := ValidateEmail(email); msg != "" {
		fe = append(fe, FieldError{ID: "email", Error: msg})
	}
	if msg := ValidatePassword(password); msg != "" {
		fe = append(fe, FieldError{ID: "password", Error: msg})
	}
	if len(fe) > 0 {
		return store.User{}, fe
	}
	if err := r.acquire(ctx); err != nil {
		return store.User{}, err
	}
	hash, err := r.opts.Params.Hash(password)
	r.release()
	if err != nil {
		return store.User{}, err
	}
	u, err := r.opts.Store.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{
		UserID: r.opts.NewID(), TenantID: tenantID, Email: email, PasswordHash: hash, Now: r.opts.Clock(),
	})
	if errors.Is(err, store.ErrEmailTaken) {
		return store.User{}, fmt.Errorf("%w: %w", ErrEmailTaken, err)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sign up: %w", err)
	}
	return u, nil
}

// ValidateSignIn returns the field errors of a sign-in form: only presence and email syntax;
// the password policy is not applied, so accounts from older policies can still sign in.
func ValidateSignIn(email, password string) FieldErrors {
	var fe FieldErrors
	if msg := ValidateEmail(NormaliseEmail(email)); msg != "" {
		fe = append(fe, FieldError{ID: "email", Error: msg})
	}
	if password == "" {
		fe = append(fe, FieldError{ID: "password", Error: MsgFieldRequired})
	}
	return fe
}

// DefaultSignInLimits are the sign-in throttle's limits. After 10 consecutive wrong passwords
// for one account, sign-ins to it are refused for 15 minutes. With argon2id at ~22 ms a hash,
// an unthrottled core would let an attacker try about 80 passwords a second per core; the lock
// holds them to 10 every 15 minutes per account. The price is that a stranger who knows an
// email can keep its owner locked out of password sign-in (passwordless, OIDC and password
// reset still work), which is why the limit is not lower. One client address (an IPv4 address
// or an IPv6 /64) may fail 100 times in 15 minutes over all accounts, so that it cannot spray
// a few guesses at each of many accounts; a successful sign-in gives its attempt back, so a
// busy office behind one address is not refused for its users' successes.
var DefaultSignInLimits = store.SignInLimits{
	MaxAccountFailures: 10, AccountLock: 15 * time.Minute,
	MaxClientAttempts: 100, ClientWindow: 15 * time.Minute,
}

// SignIn checks an email and password. An unknown email costs the same hash as a known one,
// so response times do not reveal which emails have accounts.
func (r *Recipe) SignIn(ctx context.Context, tenantID, email, password string) (store.User, error) {
	email = NormaliseEmail(email)
	if fe := ValidateSignIn(email, password); len(fe) > 0 {
		return store.User{}, fe
	}
	u, hash, err := r.opts.Store.GetEmailPasswordLogin(ctx, tenantID, email)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("sign in: %w", err)
	}
	if !known {
		hash = r.dummy
	}
	if err := r.acquire(ctx); err != nil {
		return store.User{}, err
	}
	ok, err := Verify(hash, password)
	r.release()
	if err != nil {
		return store.User{}, fmt.Errorf("sign in: %w", err)
	}
	if !known || !ok {
		return store.User{}, ErrWrongCredentials
	}
	return u, nil
}

// EmailExists reports whether the tenant has an emailpassword login method with email.
// FDI exposes this on purpose (sign-up forms check it as the user types).
func (r *Recipe) EmailExists(ctx context.Context, tenantID, email string) (bool, error) {
	_, _, err := r.opts.Store.GetEmailPasswordLogin(ctx, tenantID, NormaliseEmail(email))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("email exists: %w", err)
	}
	return true, nil
}
