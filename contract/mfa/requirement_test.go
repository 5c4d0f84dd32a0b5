package mfa

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func req(t *testing.T, s string) Requirement {
	t.Helper()
	var r Requirement
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("validate %s: %v", s, err)
	}
	return r
}

func TestNextSet(t *testing.T) {
	tests := []struct {
		name      string
		req       string
		completed Completed
		want      []string
	}{
		{"an empty requirement is satisfied by the first factor alone", `[]`, Completed{"emailpassword": 1}, nil},
		{"a single factor not yet completed is next", `["totp"]`, Completed{"emailpassword": 1}, []string{"totp"}},
		{"a single completed factor satisfies its item", `["totp"]`, Completed{"totp": 2}, nil},
		{"ordered items are satisfied one after another", `["totp", "otp-phone"]`, Completed{"totp": 2}, []string{"otp-phone"}},
		{"a later item does not count while an earlier one is open", `["totp", "otp-phone"]`, Completed{"otp-phone": 2}, []string{"totp"}},
		{"oneOf offers every member while none is completed", `[{"oneOf": ["totp", "otp-email"]}]`, Completed{}, []string{"totp", "otp-email"}},
		{"oneOf is satisfied by any member", `[{"oneOf": ["totp", "otp-email"]}]`, Completed{"otp-email": 3}, nil},
		{"allOfInAnyOrder offers only the members still missing", `[{"allOfInAnyOrder": ["totp", "otp-email", "otp-phone"]}]`, Completed{"otp-email": 3}, []string{"totp", "otp-phone"}},
		{"allOfInAnyOrder is satisfied when every member is completed", `[{"allOfInAnyOrder": ["totp", "otp-email"]}]`, Completed{"otp-email": 3, "totp": 4}, nil},
		{"a group after a satisfied factor becomes next", `["totp", {"oneOf": ["otp-email", "recovery-code"]}]`, Completed{"totp": 4}, []string{"otp-email", "recovery-code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(t, tt.req)
			got := r.NextSet(tt.completed)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("NextSet = %v, want %v", got, tt.want)
			}
			if r.Satisfied(tt.completed) != (len(tt.want) == 0) {
				t.Fatalf("Satisfied disagrees with NextSet")
			}
		})
	}
}

func TestRequirementJSONRoundTrips(t *testing.T) {
	in := `["totp",{"oneOf":["otp-email","otp-phone"]},{"allOfInAnyOrder":["webauthn","recovery-code"]}]`
	out, err := json.Marshal(req(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("round trip = %s, want %s", out, in)
	}
}

func TestInvalidRequirementsAreRefusedWithAReason(t *testing.T) {
	tests := []struct {
		name, req, want string
	}{
		{"an unknown factor id", `["sms"]`, `unknown factor "sms"`},
		{"thirdparty as a secondary factor", `["thirdparty"]`, `"thirdparty", which cannot be a secondary factor`},
		{"an empty oneOf group", `[{"oneOf": []}]`, "empty group"},
		{"a factor named twice in a group", `[{"allOfInAnyOrder": ["totp", "totp"]}]`, `names "totp" twice`},
		{"an object with both group kinds", `[{"oneOf": ["totp"], "allOfInAnyOrder": ["otp-email"]}]`, "exactly one of"},
		{"an unknown group kind", `[{"anyOf": ["totp"]}]`, `unknown item key "anyOf"`},
		{"a number instead of an item", `[3]`, "must be a factor id or an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Requirement
			err := json.Unmarshal([]byte(tt.req), &r)
			if err == nil {
				err = r.Validate()
			}
			if err == nil || !errors.Is(err, ErrInvalidRequirement) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestFreshDropsFactorsOlderThanTheMaximumAge(t *testing.T) {
	now := time.Unix(10_000, 0)
	c := Completed{"emailpassword": 1_000, "totp": 9_500}
	got := c.Fresh(now, time.Hour)
	if _, ok := got["emailpassword"]; ok {
		t.Fatalf("a factor completed 2.5 hours ago survived a 1-hour maximum age: %v", got)
	}
	if _, ok := got["totp"]; !ok {
		t.Fatalf("a factor completed 500 s ago was dropped: %v", got)
	}
	if len(c.Fresh(now, 0)) != 2 {
		t.Fatalf("a zero maximum age must keep every factor")
	}
}

func TestDefaultRequirementIsAnyOneOfTheUnion(t *testing.T) {
	r := DefaultRequirement([]string{"totp"}, []string{"otp-email", "totp"})
	if len(r) != 1 || !slices.Equal(r[0].OneOf, []string{"totp", "otp-email"}) {
		t.Fatalf("DefaultRequirement = %+v", r)
	}
	if DefaultRequirement(nil, nil) != nil {
		t.Fatalf("nothing required must give an empty requirement")
	}
}

func TestSetupRule(t *testing.T) {
	setUp := map[string]bool{"totp": true}
	isSetUp := func(f string) bool { return setUp[f] }
	tests := []struct {
		name   string
		factor string
		next   []string
		v      bool
		want   error
	}{
		{"any factor may be set up once the requirement is met", "otp-phone", nil, true, nil},
		{"a factor in the next set may be set up when none of the set is set up", "otp-email", []string{"otp-email", "otp-phone"}, false, nil},
		{"a factor outside the next set is refused", "otp-phone", []string{"otp-email"}, false, ErrSetupNotInNextSet},
		{"a new factor is refused when the user can already complete the next set", "otp-email", []string{"totp", "otp-email"}, false, ErrSetupAlreadySatisfiable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CanSetUp(tt.factor, tt.next, tt.v, isSetUp); !errors.Is(err, tt.want) {
				t.Fatalf("CanSetUp = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRecoveryCodeStandIn(t *testing.T) {
	tests := []struct {
		name      string
		req       string
		completed Completed
		hasCodes  bool
		want      []string
	}{
		{"a user with unused codes is offered recovery-code next to a single factor", `["totp"]`, Completed{}, true, []string{"totp", "recovery-code"}},
		{"a user without codes is offered only the factor", `["totp"]`, Completed{}, false, []string{"totp"}},
		{"a used code satisfies a single-factor item", `["totp"]`, Completed{"recovery-code": 1}, true, nil},
		{"a used code satisfies a oneOf group", `[{"oneOf":["totp","otp-phone"]}]`, Completed{"recovery-code": 1}, false, nil},
		{"a used code stands in for one item only", `["totp","otp-email"]`, Completed{"recovery-code": 1}, true, []string{"otp-email"}},
		{"a used code replaces the last missing member of an allOfInAnyOrder group", `[{"allOfInAnyOrder":["totp","otp-phone"]}]`, Completed{"totp": 1, "recovery-code": 2}, false, nil},
		{"a used code does not replace two missing members", `[{"allOfInAnyOrder":["totp","otp-phone"]}]`, Completed{"recovery-code": 2}, true, []string{"totp", "otp-phone"}},
		{"a requirement naming recovery-code gets no stand-in", `["totp","recovery-code"]`, Completed{"recovery-code": 1}, true, []string{"totp"}},
		{"the stand-in is not offered where it names recovery-code", `[{"oneOf":["totp","recovery-code"]}]`, Completed{}, true, []string{"totp", "recovery-code"}},
		{"an empty requirement is satisfied", `[]`, Completed{}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := req(t, tt.req).NextSetWithRecovery(tt.completed, tt.hasCodes); !slices.Equal(got, tt.want) {
				t.Fatalf("NextSetWithRecovery = %v, want %v", got, tt.want)
			}
		})
	}
}
