package hostedui

import "testing"

func TestSafeRedirect(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a path is kept", "/orders", "/orders"},
		{"a path with a query is kept", "/orders?page=2&sort=%2Fdate", "/orders?page=2&sort=%2Fdate"},
		{"an empty target goes home", "", "/"},
		{"a protocol-relative URL goes home", "//evil.example/x", "/"},
		{"a backslash after the slash goes home", "/\\evil.example", "/"},
		{"a backslash anywhere goes home", "/a\\b", "/"},
		{"an absolute URL goes home", "https://evil.example/", "/"},
		{"a javascript URL goes home", "javascript:alert(1)", "/"},
		{"a relative path goes home", "evil.example", "/"},
		{"encoded slashes that decode to // go home", "/%2F%2Fevil.example", "/"},
		{"an encoded backslash goes home", "/%5Cevil.example", "/"},
		{"a tab that browsers strip goes home", "/\t/evil.example", "/"},
		{"a newline goes home", "/a\nLocation: x", "/"},
		{"an encoded newline goes home", "/a%0d%0aSet-Cookie:x", "/"},
		{"bad percent-encoding goes home", "/a%zz", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SafeRedirect(tc.in); got != tc.want {
				t.Fatalf("SafeRedirect(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
