package store

import (
	"context"
	"time"
)

// SignInThrottle counts failed password sign-ins per account (a tenant and a normalised
// email), so that a password cannot be guessed at the rate the hash allows. It lives in the
// store so the limit holds across core replicas: an attacker who spreads guesses over replicas
// gets no more of them.
type SignInThrottle interface {
	// SignInLockedUntil returns when the account's sign-in lock ends; the zero time when it
	// is not locked at now.
	SignInLockedUntil(ctx context.Context, tenantID, account string, now time.Time) (time.Time, error)
	// RecordSignInFailure counts one more consecutive failure at now. The failure that
	// reaches max locks the account until now+lock and starts the count again; it returns
	// the lock's end, or the zero time when the account is not locked.
	RecordSignInFailure(ctx context.Context, tenantID, account string, now time.Time, max int, lock time.Duration) (time.Time, error)
	// ResetSignInFailures forgets the account's failures after a successful sign-in.
	ResetSignInFailures(ctx context.Context, tenantID, account string) error
}

// NextSignInFailure is the counting rule both stores apply: one more failure at now, and the
// failure that reaches max locks the account until now+lock (unix milliseconds) and starts the
// count again.
func NextSignInFailure(failures int, lockedUntilMS int64, now time.Time, max int, lock time.Duration) (int, int64) {
	failures++
	if failures >= max {
		return 0, now.Add(lock).UnixMilli()
	}
	return failures, lockedUntilMS
}

// SignInLockEnd is the end of a stored lock (unix milliseconds), or the zero time when there
// is none or it is over at now.
func SignInLockEnd(lockedUntilMS int64, now time.Time) time.Time {
	if lockedUntilMS == 0 || now.UnixMilli() >= lockedUntilMS {
		return time.Time{}
	}
	return time.UnixMilli(lockedUntilMS)
}
