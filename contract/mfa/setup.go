package mfa

import (
	"errors"
	"slices"
)

// Reasons SuperTokens gives when a factor setup is refused; clients match on these strings.
var (
	// ErrSetupNotInNextSet refuses setting up a factor outside the next unsatisfied set.
	ErrSetupNotInNextSet = errors.New("Not allowed to setup factor that is not in the next set of unsatisfied factors")
	// ErrSetupAlreadySatisfiable refuses a setup when the user could complete the next set
	// with a factor already set up: setting up another one would let a password thief enrol
	// their own device.
	ErrSetupAlreadySatisfiable = errors.New("Completed factors in the session does not satisfy the MFA requirements for auth")
)

// ClaimNotSatisfiedMessage is the reason a protected API gives when st-mfa.v is false.
const ClaimNotSatisfiedMessage = "MFA requirement for auth is not satisfied"

// CanSetUp applies SuperTokens' setup rule: setting up factor is allowed when the requirement
// is met (v), or when factor is in the next set and no factor of that set is set up yet.
func CanSetUp(factor string, next []string, v bool, isSetUp func(factor string) bool) error {
	if v || len(next) == 0 {
		return nil
	}
	if slices.ContainsFunc(next, isSetUp) {
		return ErrSetupAlreadySatisfiable
	}
	if !slices.Contains(next, factor) {
		return ErrSetupNotInNextSet
	}
	return nil
}
