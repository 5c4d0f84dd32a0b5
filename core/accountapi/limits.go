package accountapi

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// metrics count what the limits of this file decide.
type metrics struct {
	codes    *prometheus.CounterVec
	attempts *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		codes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "codes_sent_total",
			Help: "Sign-in codes and magic links by channel and outcome: sent, limited (a contact's or user's send limit refused it) or failed (delivery failed).",
		}, []string{"channel", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "second_factor_code_attempts_total",
			Help: "Second-factor code entries by outcome: accepted, wrong, or locked (refused by the user's lockout, shared with TOTP and recovery codes).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.codes, m.attempts)
	// The series the dashboard plots exist from the start, at zero.
	for _, ch := range []delivery.Channel{delivery.Email, delivery.SMS} {
		for _, outcome := range []string{"sent", "limited", "failed"} {
			m.codes.WithLabelValues(string(ch), outcome)
		}
	}
	return m
}

// reserveSend counts one message to contact c (and to userID, the signed-in user a second
// factor is sent for, when not empty) against the tenant's send limits. Over a limit it
// returns a GENERAL_ERROR refusal with retryAfterMs: nothing is sent or counted.
func (a *API) reserveSend(ctx context.Context, cl httpapi.Client, t tenant.Tenant, c passwordless.Contact, userID string, ch delivery.Channel) error {
	limits := t.Config.CodeSending
	contact := c.Email
	if contact == "" {
		contact = c.PhoneNumber
	}
	budgets := []store.SendBudget{{Key: "contact:" + contact, Max: limits.MaxPerContact}}
	if userID != "" {
		budgets = append(budgets, store.SendBudget{Key: "user:" + userID, Max: limits.MaxPerUser})
	}
	now := a.opts.Clock()
	until, err := a.opts.Store.ReserveSend(ctx, t.ID, budgets, time.Duration(limits.WindowSeconds)*time.Second, now)
	if err != nil {
		return err
	}
	if until.IsZero() {
		return nil
	}
	a.metrics.codes.WithLabelValues(string(ch), "limited").Inc()
	a.opts.API.AuditClient(cl, "Refused to send a sign-in code", t.ID, userID, "send_limit", "channel", string(ch))
	left := until.Sub(now)
	return &Refusal{Status: contract.StatusGeneralError, RetryAfter: left, Retry: true,
		Message: fmt.Sprintf("Too many codes were sent to this %s. Try again in %s.", contactWord(ch), minutes(left))}
}

// reserveFactorAttempt counts a second-factor code entry of the user as a failure before the
// code is checked, in the lockout TOTP and recovery codes share, so concurrent guesses cannot
// pass a check made before any of them was counted. A locked user gets a GENERAL_ERROR
// refusal with retryAfterMs. factorAccepted gives the attempt back.
func (a *API) reserveFactorAttempt(ctx context.Context, cl httpapi.Client, t tenant.Tenant, userID string) error {
	now := a.opts.Clock()
	var retry time.Duration
	_, err := a.opts.Store.UpdateAttemptLimit(ctx, userID, func(l store.AttemptLimit) store.AttemptLimit {
		lim := attempts.Limiter(l)
		if retry = lim.RetryAfter(now); retry > 0 {
			return l
		}
		lim.Fail(now)
		return store.AttemptLimit(lim)
	})
	if err != nil {
		return err
	}
	if retry == 0 {
		return nil
	}
	a.metrics.attempts.WithLabelValues("locked").Inc()
	a.opts.API.AuditClient(cl, "Refused sign-in code", t.ID, userID, "locked")
	return &Refusal{Status: contract.StatusGeneralError, RetryAfter: retry, Retry: true,
		Message: fmt.Sprintf("Too many wrong codes. Try again in %s.", minutes(retry))}
}

// factorAccepted clears the user's failed attempts after a right code.
func (a *API) factorAccepted(ctx context.Context, userID string) error {
	a.metrics.attempts.WithLabelValues("accepted").Inc()
	_, err := a.opts.Store.UpdateAttemptLimit(ctx, userID, func(store.AttemptLimit) store.AttemptLimit { return store.AttemptLimit{} })
	return err
}

func contactWord(ch delivery.Channel) string {
	if ch == delivery.SMS {
		return "phone number"
	}
	return "email address"
}

// minutes words a wait for people: "1 minute", "12 minutes".
func minutes(d time.Duration) string {
	m := max(int((d+time.Minute-1)/time.Minute), 1)
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}
