// Package attempts is the core's failed-attempt limit: five wrong answers in a row lock the
// user out for 15 minutes. One limit per user is shared by TOTP codes, recovery codes and
// second-factor email and SMS codes, so switching between them gives an attacker no extra
// guesses; the store keeps it (store.AttemptLimit) and saves it in the transaction that checks
// an answer.
package attempts

import "time"

// The failed-attempt policy, as SuperTokens applies it to TOTP.
const (
	// MaxFailures consecutive failed verifications lock the user out.
	MaxFailures = 5
	// LockDuration is how long the lock lasts.
	LockDuration = 15 * time.Minute
)

// Limiter is a user's failed-attempt state. The store keeps one per user (not per device, so
// adding devices does not multiply an attacker's guesses) and saves it after every
// verification. The zero value is a user with no failures.
type Limiter struct {
	// Failures counts consecutive failed verifications.
	Failures int
	// LockedUntil is when the lock ends; zero when not locked.
	LockedUntil time.Time
}

// Locked reports whether verification must be refused at now, without checking the code.
func (l Limiter) Locked(now time.Time) bool {
	return now.Before(l.LockedUntil)
}

// RetryAfter is how long until the lock ends (zero when not locked); clients receive it as
// retryAfterMs.
func (l Limiter) RetryAfter(now time.Time) time.Duration {
	if !l.Locked(now) {
		return 0
	}
	return l.LockedUntil.Sub(now)
}

// Fail records a failed verification at now; the MaxFailures-th consecutive one locks the
// user for LockDuration. After a lock has expired the count starts again from zero. A
// failure while locked changes nothing (callers should not have verified), so a locked-out
// attacker cannot keep the real user locked out for longer.
func (l *Limiter) Fail(now time.Time) {
	if l.Locked(now) {
		return
	}
	if !l.LockedUntil.IsZero() {
		*l = Limiter{}
	}
	l.Failures++
	if l.Failures >= MaxFailures {
		l.LockedUntil = now.Add(LockDuration)
	}
}

// Succeed records a successful verification: the failure count starts again.
func (l *Limiter) Succeed() {
	*l = Limiter{}
}
