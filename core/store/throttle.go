package store

import (
	"context"
	"time"
)

// SignInThrottle counts password sign-in attempts per account (a tenant and a normalised
// email) and per client address, so that a password cannot be guessed at the rate the hash
// allows, and one source cannot spray guesses over many accounts. It lives in the store so
// the limits hold across core replicas: an attacker who spreads guesses over replicas gets
// no more of them.
//
// An attempt is reserved before the password is checked, in one transaction with the
// decision, so concurrent guesses cannot all pass a check made before any of them was
// counted: of N guesses sent at once, at most the limit are evaluated.
type SignInThrottle interface {
	// ReserveSignIn decides whether a sign-in attempt may be evaluated and counts it. When
	// the account is locked or the client's budget is spent, it returns the time the
	// refusal ends and counts nothing. Otherwise it counts the attempt as a failure of the
	// account and an attempt of the client (SignInSucceeded gives both back); the attempt
	// that reaches the account's limit locks the account until now+AccountLock and starts
	// its count again.
	ReserveSignIn(ctx context.Context, a SignInAttempt) (SignInReservation, error)
	// SignInSucceeded forgets the account's failures (and lock) after a correct password,
	// and gives the client back the attempt it reserved.
	SignInSucceeded(ctx context.Context, tenantID, account, client string) error
}

// SignInAttempt is one password sign-in about to be evaluated.
type SignInAttempt struct {
	TenantID string
	Account  string
	// Client is the client's budget key (see emailpassword.ClientKey); empty for none.
	Client string
	Now    time.Time
	Limits SignInLimits
}

// SignInLimits are the throttle's limits.
type SignInLimits struct {
	// MaxAccountFailures consecutive failures lock the account for AccountLock.
	MaxAccountFailures int
	AccountLock        time.Duration
	// MaxClientAttempts failed attempts per ClientWindow, from one client, over all accounts.
	MaxClientAttempts int
	ClientWindow      time.Duration
}

// SignInReservation is ReserveSignIn's answer.
type SignInReservation struct {
	// RefusedUntil is set when the attempt may not be evaluated: the end of the account's
	// lock or of the client's window.
	RefusedUntil time.Time
	// ClientRefused tells a refusal for the client's budget from one for the account.
	ClientRefused bool
	// LocksAccount is set when this attempt reached the account's limit: unless the password
	// is right, the account is now locked until LocksAccount.
	LocksAccount time.Time
}

// AccountAttempt is the counting rule both stores apply to an account's row (failures and
// lock end in unix milliseconds): refused while locked; otherwise one more failure, and the
// failure that reaches max locks the account until now+lock and starts the count again.
func AccountAttempt(failures int, lockedUntilMS int64, now time.Time, max int, lock time.Duration) (newFailures int, newLockedUntilMS int64, refused, locks time.Time) {
	if lockedUntilMS != 0 && now.UnixMilli() < lockedUntilMS {
		return failures, lockedUntilMS, time.UnixMilli(lockedUntilMS), time.Time{}
	}
	failures++
	if failures >= max {
		end := now.Add(lock).UnixMilli()
		return 0, end, time.Time{}, time.UnixMilli(end)
	}
	return failures, 0, time.Time{}, time.Time{}
}

// ClientAttempt is the counting rule for a client's row: a fixed window of the given length
// that starts with the first attempt after the previous window ended; refused once max
// attempts are counted in it.
func ClientAttempt(windowStartMS int64, attempts int, now time.Time, max int, window time.Duration) (newStartMS int64, newAttempts int, refused time.Time) {
	if now.UnixMilli() >= windowStartMS+window.Milliseconds() {
		windowStartMS, attempts = now.UnixMilli(), 0
	}
	if attempts >= max {
		return windowStartMS, attempts, time.UnixMilli(windowStartMS + window.Milliseconds())
	}
	return windowStartMS, attempts + 1, time.Time{}
}
