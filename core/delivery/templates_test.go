package delivery

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignIn(t *testing.T) {
	const link = "https://app.example.com/auth/verify?preAuthSessionId=p&tenantId=public#l"
	tests := []struct {
		name        string
		tpl         Templates
		ch          Channel
		code, link  string
		wantSubject string
		wantText    []string
		wantHTML    []string
		notText     []string
	}{
		{
			name: "an email code names the app and says the code and its lifetime", tpl: Templates{AppName: "Acme"}, ch: Email, code: "012345",
			wantSubject: "Your Acme sign-in code",
			wantText:    []string{"Your sign-in code is 012345", "expires in 15 minutes", "sign in to Acme"},
			wantHTML:    []string{">012345<", "expires in 15 minutes"},
			notText:     []string{"http"},
		},
		{
			name: "an email magic link carries the link", tpl: Templates{AppName: "Acme"}, ch: Email, link: link,
			wantSubject: "Your Acme sign-in link",
			wantText:    []string{"Open this link to sign in to Acme:\n" + link},
			wantHTML:    []string{`href="https://app.example.com/auth/verify?preAuthSessionId=p&amp;tenantId=public#l"`},
			notText:     []string{"code is"},
		},
		{
			name: "an email with both carries the code and the link", tpl: Templates{AppName: "Acme"}, ch: Email, code: "999999", link: link,
			wantSubject: "Your Acme sign-in code",
			wantText:    []string{"Your sign-in code is 999999", "Or open this link", link},
		},
		{
			name: "an SMS code is one short line", tpl: Templates{AppName: "Acme"}, ch: SMS, code: "000042",
			wantText: []string{"Your Acme sign-in code is 000042. It expires in 15 minutes."},
		},
		{
			name: "an SMS magic link carries the link", tpl: Templates{AppName: "Acme"}, ch: SMS, link: link,
			wantText: []string{"Sign in to Acme: " + link + " It expires in 15 minutes."},
		},
		{
			name: "without an app name the default is used", tpl: Templates{}, ch: SMS, code: "123456",
			wantText: []string{"Your Twofold sign-in code is 123456."},
		},
		{
			name: "line breaks in the app name are folded into spaces", tpl: Templates{AppName: "Acme\r\nBcc: eve@example.com"}, ch: Email, code: "123456",
			wantSubject: "Your Acme Bcc: eve@example.com sign-in code",
		},
		{
			name: "HTML in the app name is escaped in the HTML body", tpl: Templates{AppName: "<b>Acme</b>"}, ch: Email, link: link,
			wantHTML: []string{"&lt;b&gt;Acme&lt;/b&gt;"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.tpl.SignIn(tt.ch, "ada@example.com", tt.code, tt.link, 15*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if m.Channel != tt.ch || m.To != "ada@example.com" || m.Code != tt.code || m.Link != tt.link {
				t.Errorf("message = %+v", m)
			}
			if tt.wantSubject != "" && m.Subject != tt.wantSubject {
				t.Errorf("subject = %q, want %q", m.Subject, tt.wantSubject)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(m.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, m.Text)
				}
			}
			for _, w := range tt.notText {
				if strings.Contains(m.Text, w) {
					t.Errorf("text contains %q:\n%s", w, m.Text)
				}
			}
			for _, w := range tt.wantHTML {
				if !strings.Contains(m.HTML, w) {
					t.Errorf("HTML lacks %q:\n%s", w, m.HTML)
				}
			}
			if tt.ch == SMS && (m.HTML != "" || m.Subject != "") {
				t.Errorf("SMS has a subject or HTML: %+v", m)
			}
		})
	}
}

func TestSignInRefusesAMessageWithNothingToSend(t *testing.T) {
	if _, err := (Templates{}).SignIn(Email, "a@b.co", "", "", time.Minute); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("err = %v, want ErrInvalidMessage", err)
	}
	if _, err := (Templates{}).SignIn("pigeon", "a@b.co", "123456", "", time.Minute); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("err = %v, want ErrInvalidMessage", err)
	}
}

func TestAccountEmails(t *testing.T) {
	const link = "https://app.example.com/auth/reset-password?token=t&tenantId=public"
	verify, err := Templates{AppName: "Acme"}.EmailVerification("ada@example.com", link)
	if err != nil {
		t.Fatal(err)
	}
	if verify.Subject != "Verify your Acme email address" || !strings.Contains(verify.Text, link) || !strings.Contains(verify.HTML, "Verify your email address for Acme") {
		t.Errorf("verification email = %+v", verify)
	}
	reset, err := Templates{AppName: "Acme"}.PasswordReset("ada@example.com", link, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if reset.Subject != "Reset your Acme password" || !strings.Contains(reset.Text, link) || !strings.Contains(reset.Text, "expires in 1 hour") {
		t.Errorf("reset email = %+v", reset)
	}
	if _, err := (Templates{}).PasswordReset("a@b.co", "", time.Hour); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("reset without link: %v", err)
	}
	recover, err := Templates{AppName: "Acme"}.PasskeyRecovery("ada@example.com", link, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if recover.Subject != "Create a new Acme passkey" || !strings.Contains(recover.Text, link) || !strings.Contains(recover.HTML, "Create a new passkey for your Acme account") {
		t.Errorf("passkey recovery email = %+v", recover)
	}
	if _, err := (Templates{}).PasskeyRecovery("a@b.co", "", time.Hour); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("passkey recovery without link: %v", err)
	}
	if _, err := (Templates{}).EmailVerification("a@b.co", ""); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("verification without link: %v", err)
	}
}

func TestHTMLBodiesRefuseScriptLinks(t *testing.T) {
	m, err := Templates{}.SignIn(Email, "a@b.co", "", "javascript:alert(1)", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "javascript:") {
		t.Errorf("HTML contains a javascript: link:\n%s", m.HTML)
	}
}

func TestProviderErrorWrapsErrSendFailed(t *testing.T) {
	err := error(&ProviderError{Provider: "twilio", StatusCode: 400, Code: "21211", Message: "invalid To"})
	if !errors.Is(err, ErrSendFailed) {
		t.Error("ProviderError does not wrap ErrSendFailed")
	}
	if got := err.Error(); got != "twilio: message delivery failed: provider answered 400: invalid To (code 21211)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestCheckMessage(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		ok   bool
	}{
		{name: "a complete email passes", m: Message{Channel: Email, To: "a@b.co", Text: "hi"}, ok: true},
		{name: "an SMS to an email sender is refused", m: Message{Channel: SMS, To: "+1", Text: "hi"}},
		{name: "a message without recipient is refused", m: Message{Channel: Email, Text: "hi"}},
		{name: "a message without text is refused", m: Message{Channel: Email, To: "a@b.co"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMessage(tt.m, Email)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidMessage)) {
				t.Errorf("CheckMessage = %v", err)
			}
		})
	}
}
