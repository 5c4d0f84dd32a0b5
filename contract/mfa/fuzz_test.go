package mfa

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzRequirementGrammar feeds arbitrary JSON to the requirement grammar an administrator (or
// the admin API's caller) writes. Whatever is accepted must validate the same after a round
// trip, and the next set the engine and the sidecars compute from it only ever names factors
// the requirement names, so no input can make an unknown or empty factor satisfy it.
func FuzzRequirementGrammar(f *testing.F) {
	for _, s := range []string{`["totp"]`, `[{"oneOf":["totp","otp-email"]}]`, `[{"allOfInAnyOrder":["totp","otp-phone"]},"otp-email"]`,
		`[{"oneOf":[]}]`, `[{"oneOf":["totp"],"allOfInAnyOrder":["x"]}]`, `[""]`, `[null]`, `{}`, `[{"nope":["totp"]}]`, `[[["totp"]]]`} {
		f.Add(s, "totp")
	}
	f.Fuzz(func(t *testing.T, raw, done string) {
		var r Requirement
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("a valid requirement %s does not encode: %v", raw, err)
		}
		var again Requirement
		if err := json.Unmarshal(b, &again); err != nil || again.Validate() != nil {
			t.Fatalf("%s encoded as %s does not read back as valid: %v", raw, b, err)
		}
		c := Completed{done: 1}
		next := r.NextSet(c)
		for _, f := range next {
			if !slices.Contains(r.Factors(), f) {
				t.Fatalf("next set %v of %s names %q, which the requirement does not", next, raw, f)
			}
		}
		if r.Satisfied(Completed{}) != (len(r) == 0) {
			t.Fatalf("requirement %s is satisfied by no factors: %v", raw, r.Satisfied(Completed{}))
		}
	})
}
