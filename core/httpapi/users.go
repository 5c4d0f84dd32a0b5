// FDI's user object, the shape sign-in, sign-up and account answers carry.

package httpapi

import (
	"slices"

	"github.com/twofold-dev/twofold/core/store"
)

// userJSON is FDI's user object.
type userJSON struct {
	ID            string            `json:"id"`
	TimeJoined    int64             `json:"timeJoined"`
	IsPrimaryUser bool              `json:"isPrimaryUser"`
	TenantIDs     []string          `json:"tenantIds"`
	Emails        []string          `json:"emails"`
	PhoneNumbers  []string          `json:"phoneNumbers"`
	ThirdParty    []thirdPartyJSON  `json:"thirdParty"`
	LoginMethods  []loginMethodJSON `json:"loginMethods"`
	// WebAuthn lists the user's passkeys; only users with a webauthn login method have it.
	WebAuthn *webauthnJSON `json:"webauthn,omitempty"`
}

type webauthnJSON struct {
	CredentialIDs []string `json:"credentialIds"`
}

type thirdPartyJSON struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
}

type loginMethodJSON struct {
	RecipeID     string          `json:"recipeId"`
	RecipeUserID string          `json:"recipeUserId"`
	Verified     bool            `json:"verified"`
	TenantIDs    []string        `json:"tenantIds"`
	TimeJoined   int64           `json:"timeJoined"`
	Email        string          `json:"email,omitempty"`
	PhoneNumber  string          `json:"phoneNumber,omitempty"`
	ThirdParty   *thirdPartyJSON `json:"thirdParty,omitempty"`
	WebAuthn     *webauthnJSON   `json:"webauthn,omitempty"`
}

func addUnique(list []string, v string) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// UserJSON converts a user to FDI's user object.
func UserJSON(u store.User) any { return toUserJSON(u) }

func toUserJSON(u store.User) userJSON {
	out := userJSON{ID: u.ID, TimeJoined: u.TimeJoined.UnixMilli(), IsPrimaryUser: u.IsPrimary,
		TenantIDs: []string{}, Emails: []string{}, PhoneNumbers: []string{}, ThirdParty: []thirdPartyJSON{}, LoginMethods: []loginMethodJSON{}}
	for _, lm := range u.LoginMethods {
		j := loginMethodJSON{RecipeID: lm.RecipeID, RecipeUserID: lm.RecipeUserID, Verified: lm.Verified,
			TenantIDs: []string{lm.TenantID}, TimeJoined: lm.TimeJoined.UnixMilli(), Email: lm.Email, PhoneNumber: lm.PhoneNumber}
		if lm.ThirdPartyID != "" {
			tp := thirdPartyJSON{ID: lm.ThirdPartyID, UserID: lm.ThirdPartyUserID}
			j.ThirdParty = &tp
			out.ThirdParty = append(out.ThirdParty, tp)
		}
		if lm.RecipeID == store.RecipeWebAuthn {
			ids := append([]string{}, lm.WebAuthnCredentialIDs...)
			j.WebAuthn = &webauthnJSON{CredentialIDs: ids}
			if out.WebAuthn == nil {
				out.WebAuthn = &webauthnJSON{CredentialIDs: []string{}}
			}
			out.WebAuthn.CredentialIDs = append(out.WebAuthn.CredentialIDs, ids...)
		}
		out.TenantIDs = addUnique(out.TenantIDs, lm.TenantID)
		out.Emails = addUnique(out.Emails, lm.Email)
		out.PhoneNumbers = addUnique(out.PhoneNumbers, lm.PhoneNumber)
		out.LoginMethods = append(out.LoginMethods, j)
	}
	return out
}
