package store

import (
	"context"
	"time"
)

// SendBudget is one key a message is counted against (a contact, a user) and how many
// messages it may receive in the window.
type SendBudget struct {
	Key string
	Max int
}

// SendLimiter counts the one-time codes and links the core sends, per contact and per user,
// in a sliding window, so that nobody can flood a phone with text messages (toll fraud) or a
// mailbox, or open device after device to get more guesses at a second factor. It lives in
// the store so the limits hold across core replicas.
type SendLimiter interface {
	// ReserveSend counts one message against every budget at now, in one transaction, when
	// each has had fewer than its Max messages in (now-window, now]. Otherwise it counts
	// nothing and returns when the first budget that is spent has room again.
	ReserveSend(ctx context.Context, tenantID string, budgets []SendBudget, window time.Duration, now time.Time) (refusedUntil time.Time, err error)
	// DeleteSendsBefore forgets messages sent before t.
	DeleteSendsBefore(ctx context.Context, t time.Time) (int, error)
}

// SendRefusedUntil is the rule both stores apply to one budget: given the send times inside
// the window, oldest first, the zero time when one more fits, or else when the oldest one
// that must leave the window does.
func SendRefusedUntil(inWindow []time.Time, max int, window time.Duration) time.Time {
	if len(inWindow) < max {
		return time.Time{}
	}
	return inWindow[len(inWindow)-max].Add(window)
}
