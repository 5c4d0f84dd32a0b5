package passwordless

import (
	"errors"
	"testing"
)

func TestMagicLink(t *testing.T) {
	tests := []struct {
		name     string
		domain   string
		basePath string
		tenant   string
		want     string
	}{
		{
			name: "the link has the SuperTokens shape", domain: "https://app.example.com", basePath: "/auth", tenant: "public",
			want: "https://app.example.com/auth/verify?preAuthSessionId=pre_ID-1&tenantId=public#link-CODE_1",
		},
		{
			name: "trailing slashes on the domain and base path are dropped", domain: "https://app.example.com/", basePath: "/auth/", tenant: "public",
			want: "https://app.example.com/auth/verify?preAuthSessionId=pre_ID-1&tenantId=public#link-CODE_1",
		},
		{
			name: "an empty base path puts verify at the root", domain: "http://localhost:3000", basePath: "", tenant: "public",
			want: "http://localhost:3000/verify?preAuthSessionId=pre_ID-1&tenantId=public#link-CODE_1",
		},
		{
			name: "a tenant id with reserved characters is query-escaped", domain: "https://app.example.com", basePath: "/auth", tenant: "a&b=c",
			want: "https://app.example.com/auth/verify?preAuthSessionId=pre_ID-1&tenantId=a%26b%3Dc#link-CODE_1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MagicLink(tt.domain, tt.basePath, tt.tenant, "pre_ID-1", "link-CODE_1")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("MagicLink =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}
}

func TestMagicLinkRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name                              string
		domain, basePath, tenant, pre, lc string
	}{
		{name: "a domain without a scheme is refused", domain: "app.example.com", basePath: "/auth", tenant: "public", pre: "p", lc: "l"},
		{name: "a javascript URL is refused", domain: "javascript:alert(1)", basePath: "", tenant: "public", pre: "p", lc: "l"},
		{name: "a domain with a path is refused", domain: "https://app.example.com/x", basePath: "/auth", tenant: "public", pre: "p", lc: "l"},
		{name: "a domain with a query is refused", domain: "https://app.example.com?x=1", basePath: "/auth", tenant: "public", pre: "p", lc: "l"},
		{name: "a base path without a leading slash is refused", domain: "https://app.example.com", basePath: "auth", tenant: "public", pre: "p", lc: "l"},
		{name: "a base path with a fragment is refused", domain: "https://app.example.com", basePath: "/auth#x", tenant: "public", pre: "p", lc: "l"},
		{name: "an empty tenant id is refused", domain: "https://app.example.com", basePath: "/auth", tenant: "", pre: "p", lc: "l"},
		{name: "an empty preAuthSessionId is refused", domain: "https://app.example.com", basePath: "/auth", tenant: "public", pre: "", lc: "l"},
		{name: "an empty link code is refused", domain: "https://app.example.com", basePath: "/auth", tenant: "public", pre: "p", lc: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := MagicLink(tt.domain, tt.basePath, tt.tenant, tt.pre, tt.lc); !errors.Is(err, ErrInvalidLink) {
				t.Errorf("MagicLink = %q, %v; want ErrInvalidLink", got, err)
			}
		})
	}
}
