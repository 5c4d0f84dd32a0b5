package coretest

import (
	"net/url"
	"testing"
)

// TokenOf returns the token query parameter of an emailed link, checking that the link is to
// page of the hosted UI DeliveryTenant configures (https://app.acme.test/auth) for tenantID.
func TokenOf(t testing.TB, link, page, tenantID string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != "https://app.acme.test/auth/"+page || u.Query().Get("tenantId") != tenantID || u.Query().Get("token") == "" {
		t.Fatalf("link = %q, want https://app.acme.test/auth/%s?token=...&tenantId=%s", link, page, tenantID)
	}
	return u.Query().Get("token")
}

// RedirectURI is the redirect URI the tests' third-party sign-ins name.
const RedirectURI = "https://app.example/auth/callback/idp"

// EmailForm is a formFields body with only an email, as a password reset request sends.
func EmailForm(email string) map[string]any {
	return map[string]any{"formFields": []map[string]any{{"id": "email", "value": email}}}
}

// ResetBody is the body of a password reset with token and the new password.
func ResetBody(token, password string) map[string]any {
	return map[string]any{"method": "token", "token": token, "formFields": []map[string]any{{"id": "password", "value": password}}}
}
