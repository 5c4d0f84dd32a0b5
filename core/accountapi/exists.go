package accountapi

import (
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

// The FDI existence checks of passwordless login methods: GET /passwordless/email/exists and
// /passwordless/phoneNumber/exists.

func (a *API) emailExists(w http.ResponseWriter, r *http.Request) {
	a.contactExists(w, r, "email", func(v string) (passwordless.Contact, error) {
		e, err := passwordless.NormaliseEmail(v)
		return passwordless.Contact{Email: e}, err
	})
}

func (a *API) phoneExists(w http.ResponseWriter, r *http.Request) {
	a.contactExists(w, r, "phoneNumber", func(v string) (passwordless.Contact, error) {
		p, err := passwordless.NormalisePhone(v, "")
		return passwordless.Contact{PhoneNumber: p}, err
	})
}

// contactExists answers whether the tenant has a passwordless login method for the contact
// in query parameter param; a contact that cannot be normalised does not exist.
func (a *API) contactExists(w http.ResponseWriter, r *http.Request, param string, normalise func(string) (passwordless.Contact, error)) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	v := r.URL.Query().Get(param)
	if v == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the %s as a GET param", param)
		return
	}
	c, err := normalise(v)
	if err != nil {
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": false})
		return
	}
	var users []store.User
	if c.Email != "" {
		users, err = a.opts.Store.UsersByEmail(r.Context(), t.ID, c.Email)
	} else {
		users, err = a.opts.Store.UsersByPhone(r.Context(), t.ID, c.PhoneNumber)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	exists := slices.ContainsFunc(users, func(u store.User) bool { return HasPasswordlessLogin(u, t.ID, c) })
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": exists})
}
