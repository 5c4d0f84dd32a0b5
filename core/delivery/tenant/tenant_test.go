package tenant

import (
	"errors"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/delivery/smtp"
	"github.com/twofold-dev/twofold/core/delivery/twilio"
	"github.com/twofold-dev/twofold/core/delivery/webhook"
)

func TestFromConfig(t *testing.T) {
	smtpCfg := &contract.Email{SMTP: &contract.SMTP{Host: "smtp.example.com", Port: 587, From: "Acme <no-reply@example.com>", TLS: "starttls"}}
	tests := []struct {
		name      string
		cfg       contract.TenantConfig
		wantEmail any
		wantSMS   any
		wantApp   string
		wantErr   error
	}{
		{name: "no delivery settings give no senders"},
		{
			name: "smtp and twilio give an email and an SMS sender named after the app",
			cfg: contract.TenantConfig{Email: smtpCfg, Branding: &contract.Branding{AppName: "Acme"},
				SMS: &contract.SMS{Provider: "twilio", Twilio: &contract.Twilio{AccountSID: "AC1", AuthToken: "t", From: "+15550000000"}}},
			wantEmail: &smtp.Sender{}, wantSMS: &twilio.Sender{}, wantApp: "Acme",
		},
		{
			name:    "a webhook gives a webhook SMS sender",
			cfg:     contract.TenantConfig{SMS: &contract.SMS{Provider: "webhook", Webhook: &contract.SMSWebhook{URL: "https://hooks.example.com/sms", Secret: "s"}}},
			wantSMS: &webhook.Sender{},
		},
		{
			name:    "a webhook without a secret is refused",
			cfg:     contract.TenantConfig{SMS: &contract.SMS{Provider: "webhook", Webhook: &contract.SMSWebhook{URL: "https://hooks.example.com/sms"}}},
			wantErr: delivery.ErrInvalidConfig,
		},
		{
			name:    "a twilio provider without settings is refused",
			cfg:     contract.TenantConfig{SMS: &contract.SMS{Provider: "twilio"}},
			wantErr: delivery.ErrInvalidConfig,
		},
		{
			name:    "an unknown provider is refused",
			cfg:     contract.TenantConfig{SMS: &contract.SMS{Provider: "pigeon"}},
			wantErr: delivery.ErrInvalidConfig,
		},
		{
			name:    "smtp credentials in clear to a remote host are refused",
			cfg:     contract.TenantConfig{Email: &contract.Email{SMTP: &contract.SMTP{Host: "smtp.example.com", Port: 25, From: "a@example.com", TLS: "none", Username: "u"}}},
			wantErr: delivery.ErrInvalidConfig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromConfig(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FromConfig error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			check := func(ch delivery.Channel, want any) {
				got, err := s.For(ch)
				if want == nil {
					if !errors.Is(err, ErrNotConfigured) {
						t.Errorf("For(%s) = %T, %v; want ErrNotConfigured", ch, got, err)
					}
					return
				}
				if err != nil || typeName(got) != typeName(want) {
					t.Errorf("For(%s) = %T, %v; want %T", ch, got, err, want)
				}
			}
			check(delivery.Email, tt.wantEmail)
			check(delivery.SMS, tt.wantSMS)
			if s.Templates.AppName != tt.wantApp {
				t.Errorf("app name %q, want %q", s.Templates.AppName, tt.wantApp)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *smtp.Sender:
		return "smtp"
	case *twilio.Sender:
		return "twilio"
	case *webhook.Sender:
		return "webhook"
	}
	return "other"
}
