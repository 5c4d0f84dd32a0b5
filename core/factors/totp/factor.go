package totp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/factors"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

// QRCodeSize is the side of the QR code PNG in pixels.
const QRCodeSize = 256

// MaxDeviceNameLength bounds a device name.
const MaxDeviceNameLength = 100

// Errors of the operations that the edges answer specifically. A refusal of the setup rule is
// a *mfaengine.SetupDeniedError, and removing a verified device without the requirement met is
// mfaengine.ErrNotSatisfied.
var (
	// ErrNameTooLong refuses a device name longer than MaxDeviceNameLength bytes.
	ErrNameTooLong = fmt.Errorf("deviceName is longer than %d bytes", MaxDeviceNameLength)
	// ErrDeviceExists refuses creating a device under a name the user already has.
	ErrDeviceExists = store.ErrDeviceExists
	// ErrUnknownDevice means the user has no device of that name.
	ErrUnknownDevice = errors.New("no such TOTP device")
	// ErrDeviceVerified refuses showing the secret of a verified device: it is shown only
	// before verification.
	ErrDeviceVerified = errors.New("the TOTP device is verified")
	// ErrOtherSession refuses showing the secret of a device another session is setting up.
	ErrOtherSession = errors.New("the TOTP device is being set up in another session")
)

//go:embed templates/*.html
var templates embed.FS

// Options are the factor's dependencies.
type Options = factors.Options

// Factor is the totp factor: its operations, and Register for its endpoints and pages.
type Factor struct {
	opts Options
}

// New returns the factor and adds its hosted steps to opts.Pages.
func New(opts Options) (*Factor, error) {
	opts = opts.WithDefaults()
	if opts.Pages != nil {
		if err := opts.Pages.AddFactor(mfa.TOTP, templates); err != nil {
			return nil, err
		}
	}
	return &Factor{opts: opts}, nil
}

// Register adds the FDI endpoints and, with Options.Pages, the hosted steps to mux.
func (f *Factor) Register(mux *http.ServeMux) {
	f.registerFDI(mux)
	if f.opts.Pages != nil {
		f.registerPages(mux)
	}
}

// ConfigOf returns the TOTP settings of a tenant's configuration.
func ConfigOf(c contract.TOTP) Config {
	return Config{Issuer: c.Issuer, Digits: c.Digits, Period: time.Duration(c.PeriodSeconds) * time.Second,
		Skew: c.Skew, Algorithm: SHA1}.WithDefaults()
}

// deviceConfig is the configuration a device was created with.
func deviceConfig(issuer string, d store.TOTPDevice) Config {
	return Config{Issuer: issuer, Digits: d.Digits, Period: time.Duration(d.Period) * time.Second, Skew: d.Skew, Algorithm: SHA1}.WithDefaults()
}

// account is the otpauth label's account: the user's email, else phone number, else id.
func account(u store.User) string {
	for _, lm := range u.LoginMethods {
		if lm.Email != "" {
			return lm.Email
		}
	}
	for _, lm := range u.LoginMethods {
		if lm.PhoneNumber != "" {
			return lm.PhoneNumber
		}
	}
	return u.ID
}

// Devices lists the user's devices.
func (f *Factor) Devices(ctx context.Context, userID string) ([]store.TOTPDevice, error) {
	return f.opts.Store.ListTOTPDevices(ctx, userID)
}

// NewDevice is a device just created: its name, its secret and the otpauth URI carrying it.
type NewDevice struct {
	Name   string
	Secret string
	URI    string
}

// CreateDevice creates an unverified device for the session's user, named name or, when name
// is empty, SuperTokens' default "TOTP Device N" (the first N not taken). It is a factor setup:
// the setup rule applies.
func (f *Factor) CreateDevice(ctx context.Context, sess session.Session, name string) (NewDevice, error) {
	if len(name) > MaxDeviceNameLength {
		return NewDevice{}, ErrNameTooLong
	}
	if err := f.opts.Engine.CheckSetup(ctx, sess, mfa.TOTP); err != nil {
		return NewDevice{}, err
	}
	t, err := f.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		return NewDevice{}, err
	}
	u, err := f.opts.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		return NewDevice{}, err
	}
	cfg := ConfigOf(t.Config.TOTP)
	secret, err := NewSecret()
	if err != nil {
		return NewDevice{}, err
	}
	uri, err := cfg.URI(secret, account(u))
	if err != nil {
		return NewDevice{}, fmt.Errorf("build the otpauth URI: %w", err)
	}
	d := store.TOTPDevice{UserID: u.ID, Name: name, Secret: secret, Digits: cfg.Digits,
		Period: int(cfg.Period / time.Second), Skew: cfg.Skew, CreatedAt: f.opts.Clock(), CreatedBySession: sess.Handle}
	if d.Name == "" {
		if d.Name, err = f.defaultName(ctx, u.ID); err != nil {
			return NewDevice{}, err
		}
	}
	if err := f.opts.Store.CreateTOTPDevice(ctx, d); err != nil {
		return NewDevice{}, err
	}
	return NewDevice{Name: d.Name, Secret: secret, URI: uri}, nil
}

func (f *Factor) defaultName(ctx context.Context, userID string) (string, error) {
	devices, err := f.opts.Store.ListTOTPDevices(ctx, userID)
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, d := range devices {
		taken[d.Name] = true
	}
	for n := len(devices) + 1; ; n++ {
		if name := fmt.Sprintf("TOTP Device %d", n); !taken[name] {
			return name, nil
		}
	}
}

// findDevice returns the user's device called name.
func (f *Factor) findDevice(ctx context.Context, userID, name string) (store.TOTPDevice, bool, error) {
	devices, err := f.opts.Store.ListTOTPDevices(ctx, userID)
	if err != nil {
		return store.TOTPDevice{}, false, err
	}
	for _, d := range devices {
		if d.Name == name {
			return d, true, nil
		}
	}
	return store.TOTPDevice{}, false, nil
}

// PendingDevice is the newest device the session created that is not verified yet: the one
// being set up.
func (f *Factor) PendingDevice(ctx context.Context, sess session.Session) (store.TOTPDevice, bool, error) {
	devices, err := f.opts.Store.ListTOTPDevices(ctx, sess.UserID)
	if err != nil {
		return store.TOTPDevice{}, false, err
	}
	var found store.TOTPDevice
	ok := false
	for _, d := range devices {
		// Another session's device being set up is not ours to show: its secret would let
		// that session's holder, perhaps a password thief, hold the authenticator for good.
		if !d.Verified && d.CreatedBySession == sess.Handle && (!ok || !d.CreatedAt.Before(found.CreatedAt)) {
			found, ok = d, true
		}
	}
	return found, ok, nil
}

// QRCode returns the PNG QR code of the otpauth URI of the user's unverified device called
// name. The code carries the secret: only a session that may set up totp sees it, and only
// the session that created the device, or a password thief signed in beside the user could
// read the secret of a device the user is still enrolling and hold the authenticator for good.
func (f *Factor) QRCode(ctx context.Context, sess session.Session, name string) ([]byte, error) {
	d, ok, err := f.findDevice(ctx, sess.UserID, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrUnknownDevice
	}
	if d.Verified {
		return nil, ErrDeviceVerified
	}
	if err := f.opts.Engine.CheckSetup(ctx, sess, mfa.TOTP); err != nil {
		return nil, err
	}
	if d.CreatedBySession == "" || d.CreatedBySession != sess.Handle {
		return nil, ErrOtherSession
	}
	t, err := f.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		return nil, err
	}
	u, err := f.opts.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	uri, err := deviceConfig(ConfigOf(t.Config.TOTP).Issuer, d).URI(d.Secret, account(u))
	if err != nil {
		return nil, err
	}
	return QRCodePNG(uri, QRCodeSize)
}

// Outcome is what one verification came to.
type Outcome int

// The outcomes of a verification.
const (
	// Accepted: the code was right; totp is completed in the session.
	Accepted Outcome = iota
	// Invalid: the code was wrong (or used already); one more failure counted.
	Invalid
	// Locked: too many failures; the code was not checked.
	Locked
	// NoDevice: the user has no such device (VerifyDevice) or no verified device (Verify).
	NoDevice
)

// Result is a verification's outcome with what the answer reports.
type Result struct {
	Outcome Outcome
	// Failures counts the user's consecutive failures after an Invalid code, of MaxFailures.
	Failures int
	// RetryAfter is how long the lock lasts: Locked, or the Invalid code that locked the user.
	RetryAfter time.Duration
	// WasAlreadyVerified reports that the device VerifyDevice accepted the code of had been
	// verified before.
	WasAlreadyVerified bool
	// Update is the session with totp completed (Accepted).
	Update mfaengine.Update
}

// MaxFailures is how many consecutive failures lock the user out.
const MaxFailures = attempts.MaxFailures

// Verify checks code against each of the user's verified devices and, when one accepts it,
// completes totp in the session.
func (f *Factor) Verify(ctx context.Context, sess session.Session, code string) (Result, error) {
	return f.finish(ctx, sess, "", code, Result{})
}

// VerifyDevice checks code against the user's device called name and, when it accepts it,
// completes totp in the session. Verifying a device not verified yet completes its setup, so
// the setup rule applies again, in case the user set up another factor since the device was
// created.
func (f *Factor) VerifyDevice(ctx context.Context, sess session.Session, name, code string) (Result, error) {
	d, found, err := f.findDevice(ctx, sess.UserID, name)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return Result{Outcome: NoDevice}, nil
	}
	if !d.Verified {
		if err := f.opts.Engine.CheckSetup(ctx, sess, mfa.TOTP); err != nil {
			return Result{}, err
		}
	}
	return f.finish(ctx, sess, name, code, Result{WasAlreadyVerified: d.Verified})
}

// finish verifies the code and, when accepted, completes totp in the session, in one store
// transaction.
func (f *Factor) finish(ctx context.Context, sess session.Session, name, code string, res Result) (Result, error) {
	t, err := f.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		return Result{}, err
	}
	issuer := ConfigOf(t.Config.TOTP).Issuer
	var checked Result
	upd, _, err := f.opts.Engine.CompleteIf(ctx, sess, mfa.TOTP, func(tx store.SessionTx) (bool, error) {
		var err error
		checked, err = f.check(ctx, tx, issuer, sess.UserID, name, code)
		return checked.Outcome == Accepted, err
	})
	if errors.Is(err, store.ErrStepUsed) {
		// Another request accepted this code between our read and our write; nothing was
		// stored, and the code is not accepted twice.
		checked, err = Result{Outcome: Invalid}, nil
	}
	if err != nil {
		return Result{}, err
	}
	res.Outcome, res.Failures, res.RetryAfter = checked.Outcome, checked.Failures, checked.RetryAfter
	if res.Outcome == Accepted {
		res.Update = upd
	}
	return res, nil
}

// check runs one verification of code against the user's device called name (every verified
// device when name is empty) in the session's transaction tx. A code another request
// accepted first gives store.ErrStepUsed.
func (f *Factor) check(ctx context.Context, tx store.SessionTx, issuer, userID, name, code string) (Result, error) {
	now := f.opts.Clock()
	var res Result
	_, err := tx.VerifyTOTP(ctx, userID, name, func(limit store.AttemptLimit, devices []store.TOTPDevice) (store.TOTPAttempt, error) {
		res = Result{}
		l := attempts.Limiter{Failures: limit.Failures, LockedUntil: limit.LockedUntil}
		if l.Locked(now) {
			res.Outcome, res.RetryAfter = Locked, l.RetryAfter(now)
			return store.TOTPAttempt{Limit: limit}, nil
		}
		if len(devices) == 0 {
			res.Outcome = NoDevice
			return store.TOTPAttempt{Limit: limit}, nil
		}
		for _, d := range devices {
			step, err := deviceConfig(issuer, d).Verify(d.Secret, code, now, d.LastUsedStep)
			if err == nil {
				l.Succeed()
				res.Outcome = Accepted
				return store.TOTPAttempt{Limit: store.AttemptLimit(l), Device: d.Name, Step: step}, nil
			}
			if !errors.Is(err, ErrInvalidCode) {
				return store.TOTPAttempt{}, fmt.Errorf("verify TOTP device %q: %w", d.Name, err)
			}
		}
		l.Fail(now)
		res.Outcome, res.Failures = Invalid, l.Failures
		res.RetryAfter = l.RetryAfter(now)
		return store.TOTPAttempt{Limit: store.AttemptLimit(l)}, nil
	})
	return res, err
}

// RemoveDevice removes the user's device called name and reports whether it existed. A
// session that has not met its requirement may only remove devices that are not verified:
// removing a verified one would let a password thief strip the second factor, so that is
// refused with mfaengine.ErrNotSatisfied.
func (f *Factor) RemoveDevice(ctx context.Context, sess session.Session, name string) (existed bool, err error) {
	err = f.opts.Engine.RequireSatisfied(ctx, sess)
	satisfied := err == nil
	if err != nil && !errors.Is(err, mfaengine.ErrNotSatisfied) {
		return false, err
	}
	existed, deleted, err := f.opts.Store.DeleteTOTPDevice(ctx, sess.UserID, name, !satisfied)
	if err != nil {
		return false, err
	}
	if existed && !deleted {
		return true, mfaengine.ErrNotSatisfied
	}
	return existed, nil
}
