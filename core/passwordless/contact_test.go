package passwordless

import (
	"errors"
	"strings"
	"testing"
)

func TestNormaliseEmail(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "an address is lower-cased", in: "Ada.Lovelace@Example.COM", want: "ada.lovelace@example.com"},
		{name: "surrounding spaces are trimmed", in: "  ada@example.com\t", want: "ada@example.com"},
		{name: "a plus tag is kept", in: "ada+mfa@example.com", want: "ada+mfa@example.com"},
		{name: "an empty address is refused", in: "   ", wantErr: "empty"},
		{name: "an address without an at sign is refused", in: "ada.example.com", wantErr: "plain address"},
		{name: "an address with a display name is refused", in: "Ada <ada@example.com>", wantErr: "plain address"},
		{name: "an address with an inner space is refused", in: "ada lovelace@example.com", wantErr: "plain address"},
		{name: "an address with a line break is refused", in: "ada@example.com\r\nBcc: eve@example.com", wantErr: "plain address"},
		{name: "an address whose domain has no dot is refused", in: "ada@localhost", wantErr: "no domain with a dot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormaliseEmail(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidEmail) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("NormaliseEmail(%q) = %q, %v; want ErrInvalidEmail mentioning %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormaliseEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalisePhone(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		region  string
		want    string
		wantErr string
	}{
		{name: "an E.164 number is kept", in: "+14155550100", want: "+14155550100"},
		{name: "spaces, dashes and brackets are removed", in: " +1 (415) 555-0100 ", want: "+14155550100"},
		{name: "a UK number with its trunk zero is normalised", in: "+44 (0)20 7946 0958", want: "+442079460958"},
		{name: "a national number is read in the default region", in: "020 7946 0958", region: "GB", want: "+442079460958"},
		{name: "a lower-case region is accepted", in: "030 123456", region: "de", want: "+4930123456"},
		{name: "a national number without a default region is refused", in: "020 7946 0958", wantErr: "must start with +"},
		{name: "an empty number is refused", in: "  ", wantErr: "empty"},
		{name: "letters are refused", in: "call me maybe", region: "US", wantErr: "not a number"},
		{name: "an unknown country code is refused", in: "+999 1234567", wantErr: "country code"},
		{name: "a number too short for its country is refused", in: "+1 415 555", wantErr: "not a number in use in"},
		{name: "a number with an unassigned area code is refused", in: "+1 099 555 0100", wantErr: "not a number in use in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalisePhone(tt.in, tt.region)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidPhoneNumber) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("NormalisePhone(%q, %q) = %q, %v; want ErrInvalidPhoneNumber mentioning %q", tt.in, tt.region, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalisePhone(%q, %q) = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
			}
		})
	}
}
