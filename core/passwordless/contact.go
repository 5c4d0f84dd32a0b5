package passwordless

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Errors for contacts that cannot receive codes.
var (
	// ErrInvalidEmail means the input is not a plain email address.
	ErrInvalidEmail = errors.New("invalid email address")
	// ErrInvalidPhoneNumber means the input is not a valid phone number.
	ErrInvalidPhoneNumber = errors.New("invalid phone number")
)

// NormaliseEmail trims surrounding spaces and lower-cases the address, as SuperTokens does, so
// one mailbox is one login method. It accepts a bare address only, not "Name <addr>".
func NormaliseEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidEmail)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", fmt.Errorf("%w: %q is not a plain address like name@example.com", ErrInvalidEmail, s)
	}
	if at := strings.LastIndexByte(s, '@'); !strings.Contains(s[at+1:], ".") {
		return "", fmt.Errorf("%w: %q has no domain with a dot", ErrInvalidEmail, s)
	}
	return s, nil
}

// NormalisePhone parses a phone number and returns it in E.164 form (+14155550100). A number
// without a leading + is read as a national number of defaultRegion (an ISO 3166 code such as
// "GB"); with an empty defaultRegion it must start with + and the country code.
func NormalisePhone(s, defaultRegion string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidPhoneNumber)
	}
	region := strings.ToUpper(defaultRegion)
	if !strings.HasPrefix(s, "+") && region == "" {
		return "", fmt.Errorf("%w: %q must start with + and the country code", ErrInvalidPhoneNumber, s)
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidPhoneNumber, s, err)
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", fmt.Errorf("%w: %q is not a number in use in %s", ErrInvalidPhoneNumber, s, regionName(n))
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

func regionName(n *phonenumbers.PhoneNumber) string {
	if r := phonenumbers.GetRegionCodeForNumber(n); r != "" && r != "ZZ" {
		return r
	}
	return fmt.Sprintf("country code +%d", n.GetCountryCode())
}
