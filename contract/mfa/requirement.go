package mfa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Item is one entry of a Requirement. Exactly one of its fields is set.
type Item struct {
	// Factor is a single factor that must be completed.
	Factor string
	// OneOf is satisfied when any one of its factors is completed.
	OneOf []string
	// AllOfInAnyOrder is satisfied when all of its factors are completed, in any order.
	AllOfInAnyOrder []string
}

// Requirement is an ordered list of items; items are satisfied in order.
type Requirement []Item

// Completed maps a factor id to the unix time (seconds) at which the session completed it.
type Completed map[string]int64

// Claim is the st-mfa access-token claim: the completed factors and whether the requirement
// is met.
type Claim struct {
	C Completed `json:"c"`
	V bool      `json:"v"`
}

// ClaimKey is the access-token payload key of the MFA claim.
const ClaimKey = "st-mfa"

// ErrInvalidRequirement is wrapped by every validation error of a requirement.
var ErrInvalidRequirement = errors.New("invalid MFA requirement")

// MarshalJSON writes a factor item as a plain string and a group as {"oneOf": [...]} or
// {"allOfInAnyOrder": [...]}.
func (it Item) MarshalJSON() ([]byte, error) {
	switch {
	case it.Factor != "":
		return json.Marshal(it.Factor)
	case it.OneOf != nil:
		return json.Marshal(struct {
			OneOf []string `json:"oneOf"`
		}{it.OneOf})
	case it.AllOfInAnyOrder != nil:
		return json.Marshal(struct {
			AllOfInAnyOrder []string `json:"allOfInAnyOrder"`
		}{it.AllOfInAnyOrder})
	}
	return nil, fmt.Errorf("%w: empty item", ErrInvalidRequirement)
}

// UnmarshalJSON accepts a factor id string or an object with exactly one of oneOf and
// allOfInAnyOrder.
func (it *Item) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*it = Item{Factor: s}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("%w: an item must be a factor id or an object with oneOf or allOfInAnyOrder", ErrInvalidRequirement)
	}
	if len(obj) != 1 {
		return fmt.Errorf("%w: an item object must have exactly one of oneOf and allOfInAnyOrder", ErrInvalidRequirement)
	}
	var out Item
	for k, v := range obj {
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return fmt.Errorf("%w: %s must be a list of factor ids", ErrInvalidRequirement, k)
		}
		if list == nil {
			list = []string{}
		}
		switch k {
		case "oneOf":
			out.OneOf = list
		case "allOfInAnyOrder":
			out.AllOfInAnyOrder = list
		default:
			return fmt.Errorf("%w: unknown item key %q (want oneOf or allOfInAnyOrder)", ErrInvalidRequirement, k)
		}
	}
	*it = out
	return nil
}

// members returns the factor ids the item names.
func (it Item) members() []string {
	switch {
	case it.Factor != "":
		return []string{it.Factor}
	case it.OneOf != nil:
		return it.OneOf
	default:
		return it.AllOfInAnyOrder
	}
}

// Validate checks that every item is well formed and names known secondary factors without
// duplicates inside a group.
func (r Requirement) Validate() error {
	for i, it := range r {
		set := 0
		for _, ok := range []bool{it.Factor != "", it.OneOf != nil, it.AllOfInAnyOrder != nil} {
			if ok {
				set++
			}
		}
		if set != 1 {
			return fmt.Errorf("%w: item %d must be exactly one of a factor id, oneOf or allOfInAnyOrder", ErrInvalidRequirement, i)
		}
		m := it.members()
		if len(m) == 0 {
			return fmt.Errorf("%w: item %d is an empty group", ErrInvalidRequirement, i)
		}
		seen := map[string]bool{}
		for _, f := range m {
			if !IsFactor(f) {
				return fmt.Errorf("%w: item %d names unknown factor %q", ErrInvalidRequirement, i, f)
			}
			if !IsSecondaryFactor(f) {
				return fmt.Errorf("%w: item %d names %q, which cannot be a secondary factor", ErrInvalidRequirement, i, f)
			}
			if seen[f] {
				return fmt.Errorf("%w: item %d names %q twice", ErrInvalidRequirement, i, f)
			}
			seen[f] = true
		}
	}
	return nil
}

// NextSet returns the factors of the first unsatisfied item: the item's factor, all members
// of a oneOf group, or the members of an allOfInAnyOrder group not yet completed. It returns
// nil when the requirement is satisfied.
func (r Requirement) NextSet(c Completed) []string {
	for _, it := range r {
		switch {
		case it.Factor != "":
			if _, ok := c[it.Factor]; !ok {
				return []string{it.Factor}
			}
		case it.OneOf != nil:
			if !slices.ContainsFunc(it.OneOf, func(f string) bool { _, ok := c[f]; return ok }) {
				return slices.Clone(it.OneOf)
			}
		default:
			var missing []string
			for _, f := range it.AllOfInAnyOrder {
				if _, ok := c[f]; !ok {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				return missing
			}
		}
	}
	return nil
}

// names reports whether any item names factor f.
func (r Requirement) names(f string) bool {
	for _, it := range r {
		if it.Factor == f || slices.Contains(it.OneOf, f) || slices.Contains(it.AllOfInAnyOrder, f) {
			return true
		}
	}
	return false
}

// Satisfied reports whether every item is satisfied by c.
func (r Requirement) Satisfied(c Completed) bool { return len(r.NextSet(c)) == 0 }

// Factors returns every factor id the requirement names, sorted, without duplicates.
func (r Requirement) Factors() []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range r {
		for _, f := range it.members() {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Fresh returns the completed factors no older than maxAge at now. A maxAge of zero or less
// keeps every factor.
func (c Completed) Fresh(now time.Time, maxAge time.Duration) Completed {
	if maxAge <= 0 {
		return c
	}
	oldest := now.Add(-maxAge).Unix()
	out := make(Completed, len(c))
	for f, at := range c {
		if at >= oldest {
			out[f] = at
		}
	}
	return out
}

// Names returns the completed factor ids, sorted.
func (c Completed) Names() []string {
	out := make([]string, 0, len(c))
	for f := range c {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// DefaultRequirement is SuperTokens' default: any one of the union of the user's and the
// tenant's required secondary factors, or nothing when both are empty.
func DefaultRequirement(userFactors, tenantFactors []string) Requirement {
	var union []string
	for _, f := range append(slices.Clone(userFactors), tenantFactors...) {
		if !slices.Contains(union, f) {
			union = append(union, f)
		}
	}
	if len(union) == 0 {
		return nil
	}
	return Requirement{{OneOf: union}}
}

// NextSetWithRecovery is NextSet with Twofold's recovery-code stand-in, the rule for a user who
// lost the device of a required factor: unless the requirement names recovery-code itself, a
// completed recovery-code satisfies one item that is still open (a factor, a oneOf group, or an
// allOfInAnyOrder group with exactly one member missing), the first such item in order. When
// offerRecovery is true (the user has unused codes) and no code was used yet, recovery-code is
// added to a next set it could stand in for.
//
// The core computes st-mfa.v with it and the sidecars check the tenant's requirement with it,
// so both sides agree on whether a session is complete.
func (r Requirement) NextSetWithRecovery(c Completed, offerRecovery bool) []string {
	if _, used := c[RecoveryCode]; !used && !offerRecovery {
		return r.NextSet(c) // nothing to stand in or offer; the sidecars' hot path
	}
	standIn := !r.names(RecoveryCode)
	_, spare := c[RecoveryCode]
	spare = spare && standIn
	offer := standIn && offerRecovery && !spare
	for _, it := range r {
		missing := Requirement{it}.NextSet(c)
		if len(missing) == 0 {
			continue
		}
		replaceable := it.AllOfInAnyOrder == nil || len(missing) == 1
		if replaceable && spare {
			spare = false
			continue
		}
		if replaceable && offer {
			return append(missing, RecoveryCode)
		}
		return missing
	}
	return nil
}
