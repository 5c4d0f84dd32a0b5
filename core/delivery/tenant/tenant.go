// Package tenant builds a tenant's senders from its TenantConfig (email.smtp, sms.twilio or
// sms.webhook, branding.appName), so the HTTP layer maps configuration to delivery in one
// place. Build the senders again when the tenant's configuration changes; a Builder only
// keeps the HTTP client that the SMS senders share, built from the operator's outbound
// policy so a tenant's Twilio base URL or webhook cannot point the core at an internal
// service.
package tenant

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/delivery/smtp"
	"github.com/twofold-dev/twofold/core/delivery/twilio"
	"github.com/twofold-dev/twofold/core/delivery/webhook"
	"github.com/twofold-dev/twofold/core/outbound"
)

// ErrNotConfigured means the tenant has no sender for the channel; the caller answers that
// the factor is unavailable instead of creating a code nobody can receive.
var ErrNotConfigured = errors.New("delivery channel not configured for the tenant")

// Senders are one tenant's senders and message templates.
type Senders struct {
	// Email is nil when the tenant has no email.smtp.
	Email delivery.Sender
	// SMS is nil when the tenant has no sms provider.
	SMS delivery.Sender
	// Templates name the tenant's app.
	Templates delivery.Templates
}

// Builder builds senders whose HTTP requests follow one outbound policy.
type Builder struct {
	client *http.Client
}

// NewBuilder returns a Builder whose SMS senders share one client of p that follows no
// redirects.
func NewBuilder(p outbound.Policy) *Builder {
	return &Builder{client: p.Client(outbound.ClientOptions{})}
}

// FromConfig builds the senders of c with the default outbound policy, which refuses every
// internal destination. Errors wrap delivery.ErrInvalidConfig.
func FromConfig(c contract.TenantConfig) (Senders, error) {
	return (&Builder{}).FromConfig(c)
}

// FromConfig builds the senders of c. Errors wrap delivery.ErrInvalidConfig.
func (b *Builder) FromConfig(c contract.TenantConfig) (Senders, error) {
	var s Senders
	if c.Branding != nil {
		s.Templates.AppName = c.Branding.AppName
	}
	if c.Email != nil && c.Email.SMTP != nil {
		m := c.Email.SMTP
		sender, err := smtp.New(smtp.Config{Host: m.Host, Port: m.Port, Username: m.Username, Password: m.Password, From: m.From, TLS: smtp.TLSMode(m.TLS)})
		if err != nil {
			return Senders{}, fmt.Errorf("email.smtp: %w", err)
		}
		s.Email = sender
	}
	if c.SMS != nil {
		var err error
		switch c.SMS.Provider {
		case "twilio":
			if c.SMS.Twilio == nil {
				return Senders{}, fmt.Errorf("sms.twilio: %w: missing", delivery.ErrInvalidConfig)
			}
			t := c.SMS.Twilio
			s.SMS, err = twilio.New(twilio.Config{AccountSID: t.AccountSID, AuthToken: t.AuthToken, From: t.From, BaseURL: t.BaseURL, Client: b.client})
		case "webhook":
			if c.SMS.Webhook == nil {
				return Senders{}, fmt.Errorf("sms.webhook: %w: missing", delivery.ErrInvalidConfig)
			}
			s.SMS, err = webhook.New(webhook.Config{URL: c.SMS.Webhook.URL, Secret: c.SMS.Webhook.Secret, Client: b.client})
		default:
			return Senders{}, fmt.Errorf("sms.provider: %w: %q is not twilio or webhook", delivery.ErrInvalidConfig, c.SMS.Provider)
		}
		if err != nil {
			return Senders{}, fmt.Errorf("sms.%s: %w", c.SMS.Provider, err)
		}
	}
	return s, nil
}

// For returns the sender of ch, or an error wrapping ErrNotConfigured.
func (s Senders) For(ch delivery.Channel) (delivery.Sender, error) {
	var sender delivery.Sender
	switch ch {
	case delivery.Email:
		sender = s.Email
	case delivery.SMS:
		sender = s.SMS
	}
	if sender == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotConfigured, ch)
	}
	return sender, nil
}
