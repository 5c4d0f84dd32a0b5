package totp

import (
	"bytes"
	"errors"
	"image/png"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

func TestURI(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		account string
		want    string
	}{
		{
			name:    "an email account gives the SuperTokens-shaped URI",
			cfg:     Config{Issuer: "Acme", Digits: 6, Period: 30 * time.Second, Skew: 1, Algorithm: SHA1},
			account: "ada@example.com",
			want:    "otpauth://totp/Acme:ada@example.com?secret=" + rfcSeed1 + "&issuer=Acme&digits=6&period=30",
		},
		{
			name:    "a phone account keeps its plus sign encoded",
			cfg:     DefaultConfig(),
			account: "+14155550100",
			want:    "otpauth://totp/Twofold:%2B14155550100?secret=" + rfcSeed1 + "&issuer=Twofold&digits=6&period=30",
		},
		{
			name:    "spaces and reserved characters in the issuer and account are percent-encoded",
			cfg:     Config{Issuer: "Acme & Co/EU", Digits: 6, Period: 30 * time.Second, Skew: 1, Algorithm: SHA1},
			account: "a:b?c#d@example.com",
			want:    "otpauth://totp/Acme%20%26%20Co%2FEU:a%3Ab%3Fc%23d@example.com?secret=" + rfcSeed1 + "&issuer=Acme%20%26%20Co%2FEU&digits=6&period=30",
		},
		{
			name:    "a non-default algorithm, digits and period are written out",
			cfg:     Config{Issuer: "Acme", Digits: 8, Period: 60 * time.Second, Skew: 1, Algorithm: SHA256},
			account: "ada@example.com",
			want:    "otpauth://totp/Acme:ada@example.com?secret=" + rfcSeed1 + "&issuer=Acme&digits=8&period=60&algorithm=SHA256",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.URI(rfcSeed1, tt.account)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("URI =\n  %s\nwant\n  %s", got, tt.want)
			}
			// An otpauth parser reads back what we meant.
			key, err := otp.NewKeyFromURL(got)
			if err != nil {
				t.Fatal(err)
			}
			if key.Issuer() != tt.cfg.Issuer || key.AccountName() != tt.account || key.Secret() != rfcSeed1 {
				t.Errorf("parsed issuer %q account %q secret %q", key.Issuer(), key.AccountName(), key.Secret())
			}
			if key.Period() != uint64(tt.cfg.Period.Seconds()) || key.Digits().Length() != tt.cfg.Digits {
				t.Errorf("parsed period %d digits %d", key.Period(), key.Digits().Length())
			}
		})
	}
}

func TestURIRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		account string
		wantErr error
	}{
		{name: "an empty account is refused", secret: rfcSeed1, account: " ", wantErr: ErrInvalidAccount},
		{name: "a secret that is not base32 is refused", secret: "not base32!", account: "a@b.c", wantErr: ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DefaultConfig().URI(tt.secret, tt.account); !errors.Is(err, tt.wantErr) {
				t.Errorf("URI error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestQRCodePNGIsASquarePNGOfTheRequestedSize(t *testing.T) {
	uri, err := DefaultConfig().URI(rfcSeed1, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	data, err := QRCodePNG(uri, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Errorf("image is %dx%d, want 256x256", b.Dx(), b.Dy())
	}
	other, err := QRCodePNG(uri+"0", 256)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(data, other) {
		t.Error("different URIs gave the same image")
	}
}

func TestQRCodePNGRefusesBadInput(t *testing.T) {
	if _, err := QRCodePNG("https://example.com", 256); err == nil {
		t.Error("a non-otpauth URI was rendered")
	}
	if _, err := QRCodePNG("otpauth://totp/A:b?secret="+rfcSeed1, 10); err == nil {
		t.Error("a 10 pixel image was rendered")
	}
}
