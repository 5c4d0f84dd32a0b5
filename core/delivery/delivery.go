// Package delivery sends the messages of Twofold's factors: sign-in codes and magic links by
// email or SMS, email verification and password reset links. The Sender implementations live
// in subpackages: smtp (email), twilio (SMS through a Twilio-style HTTP API) and webhook (any
// channel, POSTed as signed JSON to the tenant's own service).
//
// Delivery keeps no state and the store persists nothing for it. A caller sends after the code
// has been stored and before answering the client; when Send fails, the caller reports the
// error (GENERAL_ERROR) and leaves the code unconsumed and its attempt count untouched, so the
// user can ask for a resend once the provider works again. Every Send takes a context and
// every implementation has its own timeout as well.
package delivery

import (
	"context"
	"errors"
	"fmt"
)

// Channel is how a message reaches the user.
type Channel string

// Channels.
const (
	Email Channel = "email"
	SMS   Channel = "sms"
)

// Message is one message to one recipient.
type Message struct {
	Channel Channel
	// To is an email address or an E.164 phone number.
	To string
	// Subject is the email subject; unused for SMS.
	Subject string
	// Text is the plain-text body, and the whole of an SMS.
	Text string
	// HTML is the optional HTML alternative of an email.
	HTML string
	// Code is the sign-in code contained in Text, if any, for webhook receivers that format
	// their own messages.
	Code string
	// Link is the link contained in Text, if any, for the same reason.
	Link string
}

// Sender sends messages.
type Sender interface {
	// Send delivers m or returns an error that wraps ErrSendFailed (the provider could not be
	// reached or refused the message) or ErrInvalidMessage (m cannot be sent this way).
	Send(ctx context.Context, m Message) error
}

// Errors callers branch on.
var (
	// ErrSendFailed is wrapped by every failure to hand a message over to the provider:
	// connection errors, timeouts and refusals.
	ErrSendFailed = errors.New("message delivery failed")
	// ErrInvalidMessage is wrapped when a message is incomplete or not for this sender's
	// channel; nothing was sent.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrInvalidConfig is wrapped by errors about a sender's configuration.
	ErrInvalidConfig = errors.New("invalid delivery configuration")
)

// ProviderError is a refusal by the provider: an SMTP reply or a non-2xx HTTP answer. It
// wraps ErrSendFailed.
type ProviderError struct {
	// Provider is smtp, twilio or webhook.
	Provider string
	// StatusCode is the SMTP reply code or the HTTP status.
	StatusCode int
	// Code is the provider's own error code, when it gives one (Twilio's 21211).
	Code string
	// Message is what the provider said, shortened.
	Message string
}

func (e *ProviderError) Error() string {
	s := fmt.Sprintf("%s: %s: provider answered %d", e.Provider, ErrSendFailed, e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Code != "" {
		s += " (code " + e.Code + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrSendFailed) true.
func (e *ProviderError) Unwrap() error { return ErrSendFailed }

// CheckMessage returns an error wrapping ErrInvalidMessage unless m has a recipient, a text
// and a channel among accepted.
func CheckMessage(m Message, accepted ...Channel) error {
	ok := false
	for _, c := range accepted {
		ok = ok || m.Channel == c
	}
	switch {
	case !ok:
		return fmt.Errorf("%w: channel %q is not one of %q", ErrInvalidMessage, string(m.Channel), accepted)
	case m.To == "":
		return fmt.Errorf("%w: no recipient", ErrInvalidMessage)
	case m.Text == "":
		return fmt.Errorf("%w: no text", ErrInvalidMessage)
	}
	return nil
}
