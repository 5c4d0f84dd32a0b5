package passwordless

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// The limits SuperTokens applies and clients are told about.
const (
	// CodeLifetime is how long a code can be consumed after it was created.
	CodeLifetime = 15 * time.Minute
	// MaxAttempts is the number of wrong user input codes after which the flow restarts.
	MaxAttempts = 5
)

// FlowType says which kind of code the user receives, with SuperTokens' names.
type FlowType string

// Flow types.
const (
	FlowUserInputCode             FlowType = "USER_INPUT_CODE"
	FlowMagicLink                 FlowType = "MAGIC_LINK"
	FlowUserInputCodeAndMagicLink FlowType = "USER_INPUT_CODE_AND_MAGIC_LINK"
)

func (f FlowType) userInputCode() bool {
	return f == FlowUserInputCode || f == FlowUserInputCodeAndMagicLink
}

func (f FlowType) magicLink() bool {
	return f == FlowMagicLink || f == FlowUserInputCodeAndMagicLink
}

// Errors callers branch on.
var (
	// ErrRestartFlow means the device is unknown to this device id; the client must start
	// again (RESTART_FLOW_ERROR).
	ErrRestartFlow = errors.New("restart the passwordless flow")
	// ErrInvalidInput is wrapped by errors about a malformed request: a bad flow type, a
	// contact that is not exactly one email or phone number, or a Consume input that is not
	// exactly one of a user input code (with device id) and a link code.
	ErrInvalidInput = errors.New("invalid passwordless input")
)

// Contact is where codes are sent: exactly one of Email and PhoneNumber, normalised with
// NormaliseEmail or NormalisePhone.
type Contact struct {
	Email       string
	PhoneNumber string
}

// Device is one passwordless sign-in attempt, as the store persists it.
type Device struct {
	// PreAuthSessionID identifies the device; it is the SHA-256 of the device id.
	PreAuthSessionID string
	Contact
	// Flow says which codes are generated.
	Flow FlowType
	// FailedAttempts counts wrong or expired user input codes across all the device's codes.
	FailedAttempts int
	// Codes are the codes sent so far, oldest first; resending adds one.
	Codes []Code
}

// Code is one code sent to the user, as the store persists it.
type Code struct {
	// ID identifies the code; it is random but not secret.
	ID string
	// UserInputCodeHash is the HMAC of the six digits keyed with the device id; empty when
	// the flow has no user input code.
	UserInputCodeHash string
	// LinkCodeHash is the SHA-256 of the link code; empty when the flow has no magic link.
	LinkCodeHash string
	// CreatedAt starts the code's lifetime.
	CreatedAt time.Time
}

// Secrets are what a new code gives out: the device id goes to the client that started the
// flow, the user input code and link code to the user. None of them is ever stored.
type Secrets struct {
	DeviceID string
	// UserInputCode is empty for FlowMagicLink.
	UserInputCode string
	// LinkCode is empty for FlowUserInputCode.
	LinkCode string
}

// NewDevice starts a flow: a new device with its first code.
func NewDevice(contact Contact, flow FlowType, now time.Time) (Device, Secrets, error) {
	if (contact.Email == "") == (contact.PhoneNumber == "") {
		return Device{}, Secrets{}, fmt.Errorf("%w: contact needs exactly one of email and phone number", ErrInvalidInput)
	}
	if !flow.userInputCode() && !flow.magicLink() {
		return Device{}, Secrets{}, fmt.Errorf("%w: unknown flow type %q", ErrInvalidInput, string(flow))
	}
	deviceID, err := randomToken(secretBytes)
	if err != nil {
		return Device{}, Secrets{}, err
	}
	d := Device{PreAuthSessionID: PreAuthSessionID(deviceID), Contact: contact, Flow: flow}
	_, secrets, err := d.addCode(deviceID, now)
	if err != nil {
		return Device{}, Secrets{}, err
	}
	return d, secrets, nil
}

// Resend adds a new code to the device (POST /signinup/code/resend); earlier codes stay valid
// until they expire. A device id that does not belong to the device gives ErrRestartFlow.
func (d *Device) Resend(deviceID string, now time.Time) (Code, Secrets, error) {
	if !equal(PreAuthSessionID(deviceID), d.PreAuthSessionID) {
		return Code{}, Secrets{}, ErrRestartFlow
	}
	return d.addCode(deviceID, now)
}

func (d *Device) addCode(deviceID string, now time.Time) (Code, Secrets, error) {
	id, err := randomToken(codeIDBytes)
	if err != nil {
		return Code{}, Secrets{}, err
	}
	c := Code{ID: id, CreatedAt: now}
	s := Secrets{DeviceID: deviceID}
	if d.Flow.userInputCode() {
		if s.UserInputCode, err = newUserInputCode(); err != nil {
			return Code{}, Secrets{}, err
		}
		c.UserInputCodeHash = hashUserInputCode(deviceID, s.UserInputCode)
	}
	if d.Flow.magicLink() {
		if s.LinkCode, err = randomToken(secretBytes); err != nil {
			return Code{}, Secrets{}, err
		}
		c.LinkCodeHash = hashLinkCode(s.LinkCode)
	}
	d.Codes = append(d.Codes, c)
	return c, s, nil
}

// Expired reports whether every code of the device has expired at now, so the store may
// delete it.
func (d Device) Expired(now time.Time) bool {
	for _, c := range d.Codes {
		if !c.expired(now) {
			return false
		}
	}
	return true
}

func (c Code) expired(now time.Time) bool {
	return !now.Before(c.CreatedAt.Add(CodeLifetime))
}

// Input is what the client sends to POST /signinup/code/consume: either DeviceID with
// UserInputCode, or LinkCode from a magic link.
type Input struct {
	DeviceID      string
	UserInputCode string
	LinkCode      string
}

// Method is how a code was consumed; it decides which factor was completed.
type Method int

// Methods.
const (
	MethodUserInputCode Method = iota + 1
	MethodLinkCode
)

// Status is the result of Consume, with SuperTokens' response statuses in mind.
type Status int

// Statuses.
const (
	// StatusOK: the code was right; the device is used up (OK).
	StatusOK Status = iota + 1
	// StatusIncorrectCode: a wrong user input code (INCORRECT_USER_INPUT_CODE_ERROR).
	StatusIncorrectCode
	// StatusExpiredCode: a right user input code past its lifetime
	// (EXPIRED_USER_INPUT_CODE_ERROR).
	StatusExpiredCode
	// StatusRestartFlow: the device is used up or unknown (RESTART_FLOW_ERROR).
	StatusRestartFlow
)

var statusNames = map[Status]string{
	StatusOK: contract.StatusOK, StatusIncorrectCode: contract.StatusIncorrectUserInputCode,
	StatusExpiredCode: contract.StatusExpiredUserInputCode, StatusRestartFlow: contract.StatusRestartFlow,
}

// String returns the SuperTokens response status.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Outcome is what Consume decided.
type Outcome struct {
	Status Status
	// FailedAttempts and MaxAttempts are set for StatusIncorrectCode and StatusExpiredCode
	// (failedCodeInputAttemptCount, maximumCodeInputAttempts).
	FailedAttempts int
	MaxAttempts    int
	// Method is set for StatusOK.
	Method Method
}

// Done reports whether the store must delete the device and its codes: after a success, or
// when the flow must restart.
func (o Outcome) Done() bool {
	return o.Status == StatusOK || o.Status == StatusRestartFlow
}

// Consume checks in against the device at now and updates FailedAttempts. Every code is
// compared in constant time. A wrong or expired user input code counts as a failed attempt
// and the MaxAttempts-th one restarts the flow. A link code that is unknown or expired
// restarts the flow at once: a link cannot be retyped, and guessing one is hopeless. A user
// input code with the wrong device id also restarts the flow, without counting.
func (d *Device) Consume(in Input, now time.Time) (Outcome, error) {
	restart := Outcome{Status: StatusRestartFlow}
	switch {
	case in.LinkCode != "" && (in.DeviceID != "" || in.UserInputCode != ""):
		return Outcome{}, fmt.Errorf("%w: give either a link code or a device id and user input code, not both", ErrInvalidInput)
	case in.LinkCode != "":
		if !d.Flow.magicLink() {
			return restart, nil
		}
		want := hashLinkCode(in.LinkCode)
		if _, live := d.match(func(c Code) bool { return equal(c.LinkCodeHash, want) }, now); !live {
			return restart, nil
		}
		return Outcome{Status: StatusOK, Method: MethodLinkCode}, nil
	case in.DeviceID == "" || in.UserInputCode == "":
		return Outcome{}, fmt.Errorf("%w: a user input code needs the device id", ErrInvalidInput)
	}
	// A device at the limit should have been deleted; refuse it even if it was not.
	if !equal(PreAuthSessionID(in.DeviceID), d.PreAuthSessionID) || !d.Flow.userInputCode() || d.FailedAttempts >= MaxAttempts {
		return restart, nil
	}
	want := hashUserInputCode(in.DeviceID, strings.TrimSpace(in.UserInputCode))
	matched, live := d.match(func(c Code) bool { return equal(c.UserInputCodeHash, want) }, now)
	if live {
		return Outcome{Status: StatusOK, Method: MethodUserInputCode}, nil
	}
	d.FailedAttempts++
	if d.FailedAttempts >= MaxAttempts {
		return restart, nil
	}
	status := StatusIncorrectCode
	if matched {
		status = StatusExpiredCode
	}
	return Outcome{Status: status, FailedAttempts: d.FailedAttempts, MaxAttempts: MaxAttempts}, nil
}

// match compares every code, without stopping at the first hit, and reports whether any
// code matched and whether a matching code is still live.
func (d Device) match(eq func(Code) bool, now time.Time) (matched, live bool) {
	for _, c := range d.Codes {
		if eq(c) {
			matched = true
			live = live || !c.expired(now)
		}
	}
	return matched, live
}

// FactorID names the factor completed by consuming a code of this device with m:
// otp-email, otp-phone, link-email or link-phone.
func (d Device) FactorID(m Method) string {
	switch {
	case m == MethodLinkCode && d.Email != "":
		return mfa.LinkEmail
	case m == MethodLinkCode:
		return mfa.LinkPhone
	case d.Email != "":
		return mfa.OTPEmail
	default:
		return mfa.OTPPhone
	}
}
