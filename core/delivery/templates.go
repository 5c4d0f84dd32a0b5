package delivery

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"text/template"
	"time"
)

// DefaultAppName names the app in messages when the tenant has no branding.
const DefaultAppName = "Twofold"

// Templates writes the messages of one tenant, naming its app.
type Templates struct {
	// AppName is the tenant's branding app name; empty means DefaultAppName.
	AppName string
}

type templateData struct {
	AppName string
	Code    string
	Link    string
	Expires string
}

type kind struct {
	subject, text *template.Template
	html          *htmltemplate.Template
}

func newKind(name, subject, text, html string) kind {
	return kind{
		subject: template.Must(template.New(name + ".subject").Parse(subject)),
		text:    template.Must(template.New(name + ".text").Parse(text)),
		html:    htmltemplate.Must(htmltemplate.New(name + ".html").Parse(htmlLayout + html)),
	}
}

const htmlLayout = `{{define "open"}}<!DOCTYPE html><html><body style="font-family:sans-serif;line-height:1.5">{{end}}` +
	`{{define "close"}}<p style="color:#666;font-size:small">If you did not ask for this, you can ignore this message.</p></body></html>{{end}}`

var (
	signInEmail = newKind("sign-in",
		`Your {{.AppName}} sign-in {{if .Code}}code{{else}}link{{end}}`,
		`{{if .Code}}Your sign-in code is {{.Code}}

{{end}}{{if .Link}}{{if .Code}}Or open this link{{else}}Open this link{{end}} to sign in to {{.AppName}}:
{{.Link}}

{{end}}It expires in {{.Expires}}. If you did not ask to sign in to {{.AppName}}, you can ignore this message.
`,
		`{{template "open"}}{{if .Code}}<p>Your sign-in code is</p><p style="font-size:28px;font-weight:bold;letter-spacing:4px">{{.Code}}</p>{{end}}`+
			`{{if .Link}}<p><a href="{{.Link}}">Sign in to {{.AppName}}</a></p>{{end}}<p>It expires in {{.Expires}}.</p>{{template "close"}}`)
	signInSMS = template.Must(template.New("sign-in.sms").Parse(
		`{{if .Code}}Your {{.AppName}} sign-in code is {{.Code}}.{{if .Link}} Or sign in at {{.Link}}{{end}}{{else}}Sign in to {{.AppName}}: {{.Link}}{{end}} It expires in {{.Expires}}.`))
	verifyEmail = newKind("email-verification",
		`Verify your {{.AppName}} email address`,
		`Open this link to verify your email address for {{.AppName}}:
{{.Link}}

If you did not create an account with {{.AppName}}, you can ignore this message.
`,
		`{{template "open"}}<p><a href="{{.Link}}">Verify your email address for {{.AppName}}</a></p>{{template "close"}}`)
	resetPassword = newKind("password-reset",
		`Reset your {{.AppName}} password`,
		`Open this link to choose a new password for {{.AppName}}:
{{.Link}}

It expires in {{.Expires}}. If you did not ask for a password reset, you can ignore this message; your password stays as it is.
`,
		`{{template "open"}}<p><a href="{{.Link}}">Choose a new password for {{.AppName}}</a></p><p>It expires in {{.Expires}}.</p>{{template "close"}}`)
	recoverPasskey = newKind("passkey-recovery",
		`Create a new {{.AppName}} passkey`,
		`Open this link to create a new passkey for your {{.AppName}} account:
{{.Link}}

It expires in {{.Expires}}. If you did not ask for this, you can ignore this message; your passkeys stay as they are.
`,
		`{{template "open"}}<p><a href="{{.Link}}">Create a new passkey for your {{.AppName}} account</a></p><p>It expires in {{.Expires}}.</p>{{template "close"}}`)
)

func (t Templates) data(code, link string, lifetime time.Duration) templateData {
	name := strings.Join(strings.Fields(t.AppName), " ")
	if name == "" {
		name = DefaultAppName
	}
	return templateData{AppName: name, Code: code, Link: link, Expires: humanDuration(lifetime)}
}

// humanDuration writes whole minutes or hours: "15 minutes", "1 hour".
func humanDuration(d time.Duration) string {
	unit, n := "minute", int64(d/time.Minute)
	if d >= time.Hour && d%time.Hour == 0 {
		unit, n = "hour", int64(d/time.Hour)
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// SignIn writes the message carrying a passwordless sign-in code, a magic link, or both
// (give an empty string for the one not sent), by email or SMS.
func (t Templates) SignIn(ch Channel, to, code, link string, lifetime time.Duration) (Message, error) {
	if code == "" && link == "" {
		return Message{}, fmt.Errorf("%w: a sign-in message needs a code or a link", ErrInvalidMessage)
	}
	d := t.data(code, link, lifetime)
	switch ch {
	case Email:
		m, err := render(signInEmail, d)
		m.Channel, m.To, m.Code, m.Link = Email, to, code, link
		return m, err
	case SMS:
		var b bytes.Buffer
		if err := signInSMS.Execute(&b, d); err != nil {
			return Message{}, fmt.Errorf("render sign-in SMS: %w", err)
		}
		return Message{Channel: SMS, To: to, Text: b.String(), Code: code, Link: link}, nil
	}
	return Message{}, fmt.Errorf("%w: unknown channel %q", ErrInvalidMessage, string(ch))
}

// EmailVerification writes the email with the link that verifies an address.
func (t Templates) EmailVerification(to, link string) (Message, error) {
	if link == "" {
		return Message{}, fmt.Errorf("%w: an email verification message needs a link", ErrInvalidMessage)
	}
	m, err := render(verifyEmail, t.data("", link, 0))
	m.Channel, m.To, m.Link = Email, to, link
	return m, err
}

// PasswordReset writes the email with the link to choose a new password.
func (t Templates) PasswordReset(to, link string, lifetime time.Duration) (Message, error) {
	if link == "" {
		return Message{}, fmt.Errorf("%w: a password reset message needs a link", ErrInvalidMessage)
	}
	m, err := render(resetPassword, t.data("", link, lifetime))
	m.Channel, m.To, m.Link = Email, to, link
	return m, err
}

// PasskeyRecovery writes the email with the link to create a new passkey for an account whose
// passkeys are lost.
func (t Templates) PasskeyRecovery(to, link string, lifetime time.Duration) (Message, error) {
	if link == "" {
		return Message{}, fmt.Errorf("%w: a passkey recovery message needs a link", ErrInvalidMessage)
	}
	m, err := render(recoverPasskey, t.data("", link, lifetime))
	m.Channel, m.To, m.Link = Email, to, link
	return m, err
}

func render(k kind, d templateData) (Message, error) {
	var subject, text, html bytes.Buffer
	if err := k.subject.Execute(&subject, d); err != nil {
		return Message{}, fmt.Errorf("render %s: %w", k.subject.Name(), err)
	}
	if err := k.text.Execute(&text, d); err != nil {
		return Message{}, fmt.Errorf("render %s: %w", k.text.Name(), err)
	}
	if err := k.html.Execute(&html, d); err != nil {
		return Message{}, fmt.Errorf("render %s: %w", k.html.Name(), err)
	}
	return Message{Subject: subject.String(), Text: text.String(), HTML: html.String()}, nil
}
