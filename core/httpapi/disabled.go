package httpapi

import (
	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// MsgUserDisabled is the reason a disabled user's sign-in is refused with.
const MsgUserDisabled = "This account is disabled. Please contact your administrator."

// refuseDisabled refuses the sign-in of a user an admin disabled, after the first factor was
// checked (so the answer tells nothing to someone who does not know the password), and
// records it. session.Manager refuses such a user too, whatever the path; this check gives
// the first-factor paths a clear answer and a "Refused sign-in" event instead of "Signed in".
func (a *API) refuseDisabled(c Client, t tenant.Tenant, u store.User, recipe string) (SignInResult, bool) {
	if u.DisabledAt.IsZero() {
		return SignInResult{}, false
	}
	a.metrics.signIns.WithLabelValues(recipe, "user_disabled").Inc()
	a.auditLine(c, "Refused sign-in", t.ID, u.ID, "user_disabled", "recipe", recipe)
	return SignInResult{Status: contract.StatusSignInNotAllowed, Reason: MsgUserDisabled}, true
}
