package totp

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"strconv"
	"strings"

	"github.com/pquerna/otp"
)

// ErrInvalidAccount means the account name for the otpauth label is empty.
var ErrInvalidAccount = errors.New("invalid TOTP account name")

// URI returns the otpauth:// key URI that authenticator apps scan:
//
//	otpauth://totp/<issuer>:<account>?secret=...&issuer=...&digits=6&period=30
//
// account is the user's email or phone number. Issuer and account are percent-encoded (a
// space becomes %20, never +, which some apps would show literally); the algorithm parameter
// is added only when it is not SHA1, the default every app assumes.
func (c Config) URI(secret, account string) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	if strings.TrimSpace(account) == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidAccount)
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(escape(c.Issuer, "@"))
	b.WriteString(":")
	b.WriteString(escape(account, "@"))
	b.WriteString("?secret=")
	b.WriteString(secretEncoding.EncodeToString(key))
	b.WriteString("&issuer=")
	b.WriteString(escape(c.Issuer, ""))
	b.WriteString("&digits=")
	b.WriteString(strconv.Itoa(c.Digits))
	b.WriteString("&period=")
	b.WriteString(strconv.FormatInt(int64(c.Period.Seconds()), 10))
	if c.Algorithm != SHA1 {
		b.WriteString("&algorithm=")
		b.WriteString(string(c.Algorithm))
	}
	return b.String(), nil
}

// escape percent-encodes everything but RFC 3986 unreserved characters and those in keep.
func escape(s, keep string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
			ch == '-' || ch == '.' || ch == '_' || ch == '~' || strings.IndexByte(keep, ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// QRCodePNG renders an otpauth:// uri (from URI) as a square QR code PNG of size x size pixels (at least 64).
func QRCodePNG(uri string, size int) ([]byte, error) {
	if size < 64 {
		return nil, fmt.Errorf("QR code size must be at least 64 pixels, got %d", size)
	}
	if !strings.HasPrefix(uri, "otpauth://") {
		return nil, fmt.Errorf("QR code content must be an otpauth:// URI")
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return nil, fmt.Errorf("parse otpauth URI: %w", err)
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode QR code PNG: %w", err)
	}
	return buf.Bytes(), nil
}
