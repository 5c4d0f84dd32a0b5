package accountapi

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// metrics count what the send limits and deliveries decide.
type metrics struct {
	codes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		codes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "codes_sent_total",
			Help: "Sign-in codes and magic links by channel and outcome: sent, limited (a contact's or user's send limit refused it) or failed (delivery failed).",
		}, []string{"channel", "outcome"}),
	}
	reg.MustRegister(m.codes)
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
		Message: fmt.Sprintf("Too many codes were sent to this %s. Try again in %s.", contactWord(ch), Minutes(left))}
}

func contactWord(ch delivery.Channel) string {
	if ch == delivery.SMS {
		return "phone number"
	}
	return "email address"
}

// Minutes words a wait for people: "1 minute", "12 minutes".
func Minutes(d time.Duration) string {
	m := max(int((d+time.Minute-1)/time.Minute), 1)
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}
