package passwordless

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
)

var t0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

func newDevice(t *testing.T, flow FlowType) (Device, Secrets) {
	t.Helper()
	d, s, err := NewDevice(Contact{Email: "ada@example.com"}, flow, t0)
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

// otherCode returns a six-digit code that is not code.
func otherCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func TestNewDevice(t *testing.T) {
	tests := []struct {
		name         string
		flow         FlowType
		wantUserCode bool
		wantLink     bool
	}{
		{name: "a user input code flow gives six digits and no link", flow: FlowUserInputCode, wantUserCode: true},
		{name: "a magic link flow gives a link code and no digits", flow: FlowMagicLink, wantLink: true},
		{name: "the combined flow gives both", flow: FlowUserInputCodeAndMagicLink, wantUserCode: true, wantLink: true},
	}
	digits := regexp.MustCompile(`^[0-9]{6}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, s := newDevice(t, tt.flow)
			if len(d.Codes) != 1 || d.Codes[0].CreatedAt != t0 || d.Flow != tt.flow || d.Email != "ada@example.com" {
				t.Fatalf("device = %+v", d)
			}
			if d.PreAuthSessionID != PreAuthSessionID(s.DeviceID) || d.PreAuthSessionID == s.DeviceID {
				t.Error("preAuthSessionId is not the hash of the device id")
			}
			if raw, err := b64.DecodeString(s.DeviceID); err != nil || len(raw) != 32 {
				t.Errorf("device id %q is not 32 base64url bytes", s.DeviceID)
			}
			c := d.Codes[0]
			if got := digits.MatchString(s.UserInputCode); got != tt.wantUserCode || (c.UserInputCodeHash != "") != tt.wantUserCode {
				t.Errorf("user input code %q, hash %q", s.UserInputCode, c.UserInputCodeHash)
			}
			if (s.LinkCode != "") != tt.wantLink || (c.LinkCodeHash != "") != tt.wantLink {
				t.Errorf("link code %q, hash %q", s.LinkCode, c.LinkCodeHash)
			}
			if tt.wantLink {
				if raw, err := b64.DecodeString(s.LinkCode); err != nil || len(raw) < 32 {
					t.Errorf("link code %q is not at least 32 base64url bytes", s.LinkCode)
				}
			}
			// Nothing secret is stored in clear.
			stored := d.PreAuthSessionID + c.ID + c.UserInputCodeHash + c.LinkCodeHash
			for _, secret := range []string{s.DeviceID, s.UserInputCode, s.LinkCode} {
				if secret != "" && strings.Contains(stored, secret) {
					t.Errorf("secret %q appears in the stored device", secret)
				}
			}
		})
	}
}

func TestNewDeviceRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		contact Contact
		flow    FlowType
	}{
		{name: "a contact with neither email nor phone is refused", contact: Contact{}, flow: FlowUserInputCode},
		{name: "a contact with both email and phone is refused", contact: Contact{Email: "a@b.co", PhoneNumber: "+14155550100"}, flow: FlowUserInputCode},
		{name: "an unknown flow type is refused", contact: Contact{Email: "a@b.co"}, flow: "SMOKE_SIGNAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := NewDevice(tt.contact, tt.flow, t0); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("NewDevice error = %v, want ErrInvalidInput", err)
			}
		})
	}
}

func TestUserInputCodesAreUniformSixDigitStrings(t *testing.T) {
	const n = 20000
	var firstDigit [10]int
	for range n {
		c, err := newUserInputCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q is not six digits", c)
		}
		firstDigit[c[0]-'0']++
	}
	// Leading zeros are kept, so every first digit appears about n/10 times.
	for d, got := range firstDigit {
		if got < n/10*8/10 || got > n/10*12/10 {
			t.Errorf("first digit %d appeared %d times in %d codes, want about %d", d, got, n, n/10)
		}
	}
}

func TestConsume(t *testing.T) {
	type step struct {
		at   time.Duration
		in   func(s Secrets) Input
		want Outcome
	}
	right := func(s Secrets) Input { return Input{DeviceID: s.DeviceID, UserInputCode: s.UserInputCode} }
	wrongCode := func(s Secrets) Input { return Input{DeviceID: s.DeviceID, UserInputCode: otherCode(s.UserInputCode)} }
	link := func(s Secrets) Input { return Input{LinkCode: s.LinkCode} }
	incorrect := func(n int) Outcome {
		return Outcome{Status: StatusIncorrectCode, FailedAttempts: n, MaxAttempts: MaxAttempts}
	}
	okCode := Outcome{Status: StatusOK, Method: MethodUserInputCode}
	okLink := Outcome{Status: StatusOK, Method: MethodLinkCode}
	restart := Outcome{Status: StatusRestartFlow}
	tests := []struct {
		name  string
		flow  FlowType
		steps []step
	}{
		{name: "the right code is accepted", flow: FlowUserInputCode, steps: []step{{in: right, want: okCode}}},
		{
			name: "the right code with surrounding spaces is accepted", flow: FlowUserInputCode,
			steps: []step{{in: func(s Secrets) Input { return Input{DeviceID: s.DeviceID, UserInputCode: " " + s.UserInputCode + "\n"} }, want: okCode}},
		},
		{name: "a wrong code counts one failed attempt", flow: FlowUserInputCode, steps: []step{{in: wrongCode, want: incorrect(1)}}},
		{
			name: "a code that is not digits counts as a wrong code", flow: FlowUserInputCode,
			steps: []step{{in: func(s Secrets) Input { return Input{DeviceID: s.DeviceID, UserInputCode: "abcdef"} }, want: incorrect(1)}},
		},
		{
			name: "the right code after four wrong ones is accepted", flow: FlowUserInputCode,
			steps: []step{{in: wrongCode, want: incorrect(1)}, {in: wrongCode, want: incorrect(2)}, {in: wrongCode, want: incorrect(3)}, {in: wrongCode, want: incorrect(4)}, {in: right, want: okCode}},
		},
		{
			name: "the fifth wrong code restarts the flow", flow: FlowUserInputCode,
			steps: []step{{in: wrongCode, want: incorrect(1)}, {in: wrongCode, want: incorrect(2)}, {in: wrongCode, want: incorrect(3)}, {in: wrongCode, want: incorrect(4)}, {in: wrongCode, want: restart}},
		},
		{name: "the right code one second before expiry is accepted", flow: FlowUserInputCode, steps: []step{{at: CodeLifetime - time.Second, in: right, want: okCode}}},
		{
			name: "the right code at expiry is reported expired and counts an attempt", flow: FlowUserInputCode,
			steps: []step{{at: CodeLifetime, in: right, want: Outcome{Status: StatusExpiredCode, FailedAttempts: 1, MaxAttempts: MaxAttempts}}},
		},
		{
			name: "an expired code as the fifth attempt restarts the flow", flow: FlowUserInputCode,
			steps: []step{{in: wrongCode, want: incorrect(1)}, {in: wrongCode, want: incorrect(2)}, {in: wrongCode, want: incorrect(3)}, {in: wrongCode, want: incorrect(4)}, {at: CodeLifetime, in: right, want: restart}},
		},
		{
			name: "a wrong code after expiry is reported incorrect", flow: FlowUserInputCode,
			steps: []step{{at: time.Hour, in: wrongCode, want: incorrect(1)}},
		},
		{
			name: "another device's id restarts the flow without counting", flow: FlowUserInputCode,
			steps: []step{{in: func(s Secrets) Input { return Input{DeviceID: s.DeviceID + "x", UserInputCode: s.UserInputCode} }, want: restart}},
		},
		{name: "a link code is accepted in a magic link flow", flow: FlowMagicLink, steps: []step{{in: link, want: okLink}}},
		{name: "a link code is accepted in the combined flow", flow: FlowUserInputCodeAndMagicLink, steps: []step{{in: link, want: okLink}}},
		{name: "the user input code is accepted in the combined flow", flow: FlowUserInputCodeAndMagicLink, steps: []step{{in: right, want: okCode}}},
		{name: "an expired link code restarts the flow", flow: FlowMagicLink, steps: []step{{at: CodeLifetime, in: link, want: restart}}},
		{
			name: "an unknown link code restarts the flow", flow: FlowMagicLink,
			steps: []step{{in: func(s Secrets) Input { return Input{LinkCode: s.LinkCode + "A"} }, want: restart}},
		},
		{
			name: "a user input code in a magic link flow restarts the flow", flow: FlowMagicLink,
			steps: []step{{in: func(s Secrets) Input { return Input{DeviceID: s.DeviceID, UserInputCode: "123456"} }, want: restart}},
		},
		{
			name: "a link code in a user input code flow restarts the flow", flow: FlowUserInputCode,
			steps: []step{{in: func(s Secrets) Input { return Input{LinkCode: s.DeviceID} }, want: restart}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, s := newDevice(t, tt.flow)
			for i, st := range tt.steps {
				got, err := d.Consume(st.in(s), t0.Add(st.at))
				if err != nil {
					t.Fatalf("step %d: %v", i+1, err)
				}
				if got != st.want {
					t.Fatalf("step %d: Consume = %+v (%s), want %+v (%s)", i+1, got, got.Status, st.want, st.want.Status)
				}
				if got.Done() != (got.Status == StatusOK || got.Status == StatusRestartFlow) {
					t.Errorf("step %d: Done = %v for %s", i+1, got.Done(), got.Status)
				}
			}
		})
	}
}

func TestConsumeRefusesMalformedInput(t *testing.T) {
	d, s := newDevice(t, FlowUserInputCodeAndMagicLink)
	tests := []struct {
		name string
		in   Input
	}{
		{name: "an empty input is refused", in: Input{}},
		{name: "a user input code without a device id is refused", in: Input{UserInputCode: s.UserInputCode}},
		{name: "a device id without a user input code is refused", in: Input{DeviceID: s.DeviceID}},
		{name: "a link code together with a user input code is refused", in: Input{LinkCode: s.LinkCode, DeviceID: s.DeviceID, UserInputCode: s.UserInputCode}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.Consume(tt.in, t0); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("Consume error = %v, want ErrInvalidInput", err)
			}
			if d.FailedAttempts != 0 {
				t.Errorf("FailedAttempts = %d after a malformed request", d.FailedAttempts)
			}
		})
	}
}

func TestADeviceAtTheLimitRestartsEvenWithTheRightCode(t *testing.T) {
	d, s := newDevice(t, FlowUserInputCode)
	d.FailedAttempts = MaxAttempts
	if got, err := d.Consume(Input{DeviceID: s.DeviceID, UserInputCode: s.UserInputCode}, t0); err != nil || got.Status != StatusRestartFlow {
		t.Errorf("Consume = %+v, %v; want RESTART_FLOW_ERROR", got, err)
	}
}

func TestResend(t *testing.T) {
	d, first := newDevice(t, FlowUserInputCode)
	if _, err := d.Consume(Input{DeviceID: first.DeviceID, UserInputCode: otherCode(first.UserInputCode)}, t0); err != nil {
		t.Fatal(err)
	}
	code, second, err := d.Resend(first.DeviceID, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Codes) != 2 || d.Codes[1] != code || second.DeviceID != first.DeviceID {
		t.Fatalf("after resend: %+v, secrets %+v", d.Codes, second)
	}
	if d.FailedAttempts != 1 {
		t.Errorf("resend reset FailedAttempts to %d; failures count across codes", d.FailedAttempts)
	}
	// The first code expires at 15 minutes, the second lives until 25.
	at := t0.Add(20 * time.Minute)
	if got, _ := d.Consume(Input{DeviceID: first.DeviceID, UserInputCode: first.UserInputCode}, at); first.UserInputCode != second.UserInputCode && got.Status != StatusExpiredCode {
		t.Errorf("first code at 20 min: %s, want expired", got.Status)
	}
	if got, _ := d.Consume(Input{DeviceID: first.DeviceID, UserInputCode: second.UserInputCode}, at); got.Status != StatusOK {
		t.Errorf("second code at 20 min: %s, want OK", got.Status)
	}
	if _, _, err := d.Resend(first.DeviceID+"x", t0); !errors.Is(err, ErrRestartFlow) {
		t.Errorf("resend with another device id: %v, want ErrRestartFlow", err)
	}
}

func TestExpired(t *testing.T) {
	d, s := newDevice(t, FlowUserInputCode)
	if _, _, err := d.Resend(s.DeviceID, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d.Expired(t0.Add(CodeLifetime)) {
		t.Error("device expired while its second code is live")
	}
	if !d.Expired(t0.Add(5*time.Minute + CodeLifetime)) {
		t.Error("device not expired after its last code expired")
	}
}

func TestFactorID(t *testing.T) {
	tests := []struct {
		name    string
		contact Contact
		method  Method
		want    string
	}{
		{name: "a code sent by email completes otp-email", contact: Contact{Email: "a@b.co"}, method: MethodUserInputCode, want: mfa.OTPEmail},
		{name: "a code sent by SMS completes otp-phone", contact: Contact{PhoneNumber: "+14155550100"}, method: MethodUserInputCode, want: mfa.OTPPhone},
		{name: "a link sent by email completes link-email", contact: Contact{Email: "a@b.co"}, method: MethodLinkCode, want: mfa.LinkEmail},
		{name: "a link sent by SMS completes link-phone", contact: Contact{PhoneNumber: "+14155550100"}, method: MethodLinkCode, want: mfa.LinkPhone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Device{Contact: tt.contact}).FactorID(tt.method); got != tt.want {
				t.Errorf("FactorID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStatusStringsAreTheSuperTokensStatuses(t *testing.T) {
	want := map[Status]string{StatusOK: "OK", StatusIncorrectCode: "INCORRECT_USER_INPUT_CODE_ERROR", StatusExpiredCode: "EXPIRED_USER_INPUT_CODE_ERROR", StatusRestartFlow: "RESTART_FLOW_ERROR", 0: "Status(0)"}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), w)
		}
	}
}
