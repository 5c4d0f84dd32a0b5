package kubectl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// resolveUser turns USER into a user id: an email (with @) or a phone number (starting
// with +) is looked up in tenant; anything else is a user id.
func resolveUser(ctx context.Context, core Core, tenant, user string) (string, error) {
	var q url.Values
	switch {
	case strings.Contains(user, "@"):
		q = query("email", user)
	case strings.HasPrefix(user, "+"):
		q = query("phoneNumber", user)
	default:
		return user, nil
	}
	var list contract.AdminUserList
	if err := core.Do(ctx, "GET", "/admin/v1/tenants/"+url.PathEscape(tenant)+"/users", q, nil, &list); err != nil {
		return "", err
	}
	switch len(list.Users) {
	case 0:
		return "", fmt.Errorf("no user with %s in tenant %q (another tenant? use --tenant)", user, tenant)
	case 1:
		return list.Users[0].UserID, nil
	}
	var ids []string
	for _, u := range list.Users {
		ids = append(ids, u.UserID)
	}
	return "", fmt.Errorf("%d users have %s in tenant %q (%s): name one by its user id", len(list.Users), user, tenant, strings.Join(ids, ", "))
}

// userCmd parses a command on one USER and connects.
func (p *Plugin) userCmd(ctx context.Context, name string, args []string, extra func(c *cmd)) (*cmd, Core, string, error) {
	c := p.newCmd(name)
	tenant := c.fs.String("tenant", "public", "")
	if extra != nil {
		extra(c)
	}
	if err := c.parse(args); err != nil {
		return nil, nil, "", err
	}
	user, err := c.one("USER (a user id, an email or a phone number)")
	if err != nil {
		return nil, nil, "", err
	}
	core, err := c.core(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	id, err := resolveUser(ctx, core, *tenant, user)
	return c, core, id, err
}

func tw(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func (p *Plugin) usersFind(ctx context.Context, args []string) error {
	c := p.newCmd("users find")
	tenant := c.fs.String("tenant", "public", "")
	email := c.fs.String("email", "", "")
	phone := c.fs.String("phone", "", "")
	userID := c.fs.String("user-id", "", "")
	third := c.fs.String("third-party", "", "")
	limit := c.fs.Int("limit", 20, "")
	cursor := c.fs.String("cursor", "", "")
	all := c.fs.Bool("all", false, "")
	if err := c.parse(args); err != nil {
		return err
	}
	if len(c.args) > 0 {
		return fmt.Errorf("users find takes no arguments, only flags (got %q)", c.args[0])
	}
	q := query("email", *email, "phoneNumber", *phone, "userId", *userID, "limit", fmt.Sprint(*limit), "cursor", *cursor)
	if *third != "" {
		provider, id, ok := strings.Cut(*third, ":")
		if !ok {
			return errors.New("--third-party is PROVIDER:USER_ID, such as google:1234")
		}
		q.Set("thirdPartyId", provider)
		q.Set("thirdPartyUserId", id)
	}
	core, err := c.core(ctx)
	if err != nil {
		return err
	}
	var out contract.AdminUserList
	for {
		var page contract.AdminUserList
		if err := core.Do(ctx, "GET", "/admin/v1/tenants/"+url.PathEscape(*tenant)+"/users", q, nil, &page); err != nil {
			return err
		}
		out.Users = append(out.Users, page.Users...)
		out.NextCursor = page.NextCursor
		if !*all || page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	if out.Users == nil {
		out.Users = []contract.AdminUser{}
	}
	return c.print(out, func(w io.Writer) {
		if len(out.Users) == 0 {
			fmt.Fprintf(w, "No users found in tenant %q.\n", *tenant)
			return
		}
		t := tw(w)
		fmt.Fprintln(t, "USER ID\tEMAILS\tPHONES\tLOGIN METHODS\tJOINED\tDISABLED")
		for _, u := range out.Users {
			var methods []string
			for _, lm := range u.LoginMethods {
				methods = append(methods, lm.RecipeID)
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%v\n", u.UserID, list(u.Emails), list(u.PhoneNumbers), list(methods),
				time.UnixMilli(u.TimeJoined).UTC().Format(time.RFC3339), u.Disabled)
		}
		t.Flush()
		if out.NextCursor != "" {
			fmt.Fprintf(w, "More users: --cursor %s (or --all)\n", out.NextCursor)
		}
	})
}

func (p *Plugin) usersShow(ctx context.Context, args []string) error {
	c, core, id, err := p.userCmd(ctx, "users show", args, nil)
	if err != nil {
		return err
	}
	var d contract.AdminUserDetail
	if err := core.Do(ctx, "GET", "/admin/v1/users/"+url.PathEscape(id), nil, nil, &d); err != nil {
		return err
	}
	return c.print(d, func(w io.Writer) { printUser(w, d) })
}

func printUser(w io.Writer, d contract.AdminUserDetail) {
	t := tw(w)
	fmt.Fprintf(t, "User:\t%s\n", d.UserID)
	fmt.Fprintf(t, "Joined:\t%s\n", time.UnixMilli(d.TimeJoined).UTC().Format(time.RFC3339))
	status := "enabled"
	if d.Disabled {
		status = "DISABLED since " + d.DisabledAt
	}
	fmt.Fprintf(t, "Status:\t%s\n", status)
	fmt.Fprintf(t, "Tenants:\t%s\n", list(d.TenantIDs))
	fmt.Fprintf(t, "Factors set up:\t%s\n", list(d.Factors.SetUp))
	fmt.Fprintf(t, "Own required factors:\t%s\n", list(d.RequiredSecondaryFactors))
	fmt.Fprintf(t, "Recovery codes left:\t%d of %d\n", d.Factors.RecoveryCodes.Unused, d.Factors.RecoveryCodes.Total)
	t.Flush()
	fmt.Fprintln(w, "\nLogin methods:")
	t = tw(w)
	fmt.Fprintln(t, "  RECIPE USER ID\tRECIPE\tTENANT\tEMAIL\tPHONE\tTHIRD PARTY\tVERIFIED")
	for _, lm := range d.LoginMethods {
		tp := ""
		if lm.ThirdPartyID != "" {
			tp = lm.ThirdPartyID + ":" + lm.ThirdPartyUserID
		}
		fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\t%s\t%v\n", lm.RecipeUserID, lm.RecipeID, lm.TenantID, dash(lm.Email), dash(lm.PhoneNumber), dash(tp), lm.Verified)
	}
	t.Flush()
	if len(d.Factors.TOTPDevices) > 0 {
		fmt.Fprintln(w, "\nTOTP devices:")
		t = tw(w)
		fmt.Fprintln(t, "  NAME\tVERIFIED\tCREATED")
		for _, dev := range d.Factors.TOTPDevices {
			fmt.Fprintf(t, "  %s\t%v\t%s\n", dev.Name, dev.Verified, dev.CreatedAt)
		}
		t.Flush()
	}
	if len(d.Factors.Passkeys) > 0 {
		fmt.Fprintln(w, "\nPasskeys:")
		t = tw(w)
		fmt.Fprintln(t, "  NAME\tTENANT\tCREATED\tLAST USED")
		for _, pk := range d.Factors.Passkeys {
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\n", dash(pk.Name), pk.TenantID, pk.CreatedAt, dash(pk.LastUsedAt))
		}
		t.Flush()
	}
	fmt.Fprintln(w, "\nLockouts:")
	t = tw(w)
	fmt.Fprintf(t, "  second factor (TOTP, codes)\t%s\n", lockout(d.Lockouts.SecondFactor))
	for _, l := range d.Lockouts.SignIn {
		fmt.Fprintf(t, "  password sign-in %s (%s)\t%s\n", l.Email, l.TenantID, lockout(l.AdminLockout))
	}
	t.Flush()
	fmt.Fprintln(w, "\nLive sessions:")
	if len(d.Sessions) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	t = tw(w)
	fmt.Fprintln(t, "  HANDLE\tTENANT\tCREATED\tEXPIRES\tCOMPLETED\tMFA DONE")
	for _, s := range d.Sessions {
		var done []string
		for f := range s.Completed {
			done = append(done, f)
		}
		sort.Strings(done)
		fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\t%v\n", s.SessionHandle, s.TenantID, s.CreatedAt, s.ExpiresAt, list(done), s.V)
	}
	t.Flush()
}

func lockout(l contract.AdminLockout) string {
	switch {
	case l.Locked:
		return fmt.Sprintf("LOCKED until %s (%d failures)", l.LockedUntil, l.Failures)
	case l.Failures > 0:
		return fmt.Sprintf("%d failed attempts, not locked", l.Failures)
	}
	return "none"
}

func (p *Plugin) usersResetMFA(ctx context.Context, args []string) error {
	var factors *string
	var keep *bool
	c, core, id, err := p.userCmd(ctx, "users reset-mfa", args, func(c *cmd) {
		factors = c.fs.String("factors", "", "")
		keep = c.fs.Bool("keep-sessions", false, "")
	})
	if err != nil {
		return err
	}
	req := contract.AdminMFAResetRequest{Sessions: contract.ResetSessionsRevoke}
	if *factors != "" {
		for _, f := range strings.Split(*factors, ",") {
			req.Factors = append(req.Factors, strings.TrimSpace(f))
		}
	}
	if *keep {
		req.Sessions = contract.ResetSessionsRefresh
	}
	what := "every secondary factor (TOTP, recovery codes, passkeys, code contacts)"
	if len(req.Factors) > 0 {
		what = strings.Join(req.Factors, ", ")
	}
	sessions := "and sign them out everywhere"
	if *keep {
		sessions = "and keep their sessions (the factors leave their claims at the next refresh)"
	}
	if err := c.confirm(fmt.Sprintf("Remove %s of user %s %s? They will have to set MFA up again at their next sign-in.", what, id, sessions)); err != nil {
		return err
	}
	var out contract.AdminMFAReset
	if err := core.Do(ctx, "POST", "/admin/v1/users/"+url.PathEscape(id)+"/mfa/reset", nil, req, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "Reset MFA of user %s: removed %d TOTP device(s), %d recovery code(s), %d passkey(s), %d contact(s).\n",
			out.UserID, out.RemovedTOTPDevices, out.RemovedRecoveryCodes, out.RemovedPasskeys, len(out.RemovedLoginMethods))
		if out.Sessions == contract.ResetSessionsRevoke {
			fmt.Fprintf(w, "Revoked %d session(s): the user signs in again and sets up a factor.\n", out.RevokedSessions)
		} else {
			fmt.Fprintf(w, "Refreshed %d session(s): the reset factors count no more from their next refresh.\n", out.RefreshedSessions)
		}
	})
}

func (p *Plugin) usersUnlock(ctx context.Context, args []string) error {
	c, core, id, err := p.userCmd(ctx, "users unlock", args, nil)
	if err != nil {
		return err
	}
	var out contract.AdminLockoutsCleared
	if err := core.Do(ctx, "POST", "/admin/v1/users/"+url.PathEscape(id)+"/lockouts/clear", nil, nil, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "Cleared the lockouts of user %s:\n", out.UserID)
		t := tw(w)
		fmt.Fprintf(t, "  second factor (TOTP, codes)\twas %s\n", lockout(out.Cleared.SecondFactor))
		for _, l := range out.Cleared.SignIn {
			fmt.Fprintf(t, "  password sign-in %s (%s)\twas %s\n", l.Email, l.TenantID, lockout(l.AdminLockout))
		}
		t.Flush()
	})
}

func (p *Plugin) usersSetDisabled(ctx context.Context, args []string, disable bool) error {
	name := "users enable"
	if disable {
		name = "users disable"
	}
	c, core, id, err := p.userCmd(ctx, name, args, nil)
	if err != nil {
		return err
	}
	action := "enable"
	if disable {
		action = "disable"
		if err := c.confirm(fmt.Sprintf("Disable user %s? They cannot sign in until enabled, and their sessions end now.", id)); err != nil {
			return err
		}
	}
	var out contract.AdminUserStatus
	if err := core.Do(ctx, "POST", "/admin/v1/users/"+url.PathEscape(id)+"/"+action, nil, nil, &out); err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		if disable {
			fmt.Fprintf(w, "Disabled user %s and revoked %d session(s).\n", out.UserID, out.RevokedSessions)
		} else {
			fmt.Fprintf(w, "Enabled user %s.\n", out.UserID)
		}
	})
}

func (p *Plugin) usersDelete(ctx context.Context, args []string) error {
	var wait *time.Duration
	c, core, id, err := p.userCmd(ctx, "users delete", args, func(c *cmd) {
		wait = c.fs.Duration("wait", 6*time.Second, "")
	})
	if err != nil {
		return err
	}
	var d contract.AdminUserDetail
	if err := core.Do(ctx, "GET", "/admin/v1/users/"+url.PathEscape(id), nil, nil, &d); err != nil {
		return err
	}
	if err := c.confirm(fmt.Sprintf("Erase user %s (%s) and everything kept about them? This cannot be undone.", id, list(append(d.Emails, d.PhoneNumbers...)))); err != nil {
		return err
	}
	// Disabling revokes the sessions while their rows still exist, so the sidecars learn of
	// the revocations at their next poll; the erasure then removes the rows.
	var st contract.AdminUserStatus
	if err := core.Do(ctx, "POST", "/admin/v1/users/"+url.PathEscape(id)+"/disable", nil, nil, &st); err != nil {
		return err
	}
	if st.RevokedSessions > 0 && *wait > 0 {
		fmt.Fprintf(c.p.Err, "Revoked %d session(s); waiting %s for the sidecars to learn of it...\n", st.RevokedSessions, *wait)
		sleep := c.p.Sleep
		if sleep == nil {
			sleep = time.Sleep
		}
		sleep(*wait)
	}
	var out contract.AdminUserDeleted
	if err := core.Do(ctx, "DELETE", "/admin/v1/users/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return err
	}
	out.RevokedSessions += st.RevokedSessions
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "Erased user %s: %d login method(s), %d session(s) revoked first.\n", out.UserID, out.LoginMethods, out.RevokedSessions)
	})
}

func (p *Plugin) sessionsRevoke(ctx context.Context, args []string) error {
	c := p.newCmd("sessions revoke")
	user := c.fs.String("user", "", "")
	tenant := c.fs.String("tenant", "public", "")
	if err := c.parse(args); err != nil {
		return err
	}
	if (*user == "") == (len(c.args) == 0) || len(c.args) > 1 {
		return errors.New("give either --user USER (every session of the user) or one SESSION_HANDLE")
	}
	core, err := c.core(ctx)
	if err != nil {
		return err
	}
	if *user != "" {
		id, err := resolveUser(ctx, core, *tenant, *user)
		if err != nil {
			return err
		}
		if err := c.confirm(fmt.Sprintf("Sign user %s out of every session?", id)); err != nil {
			return err
		}
		var out struct {
			Revoked int `json:"revoked"`
		}
		if err := core.Do(ctx, "POST", "/admin/v1/users/"+url.PathEscape(id)+"/sessions/revoke", nil, nil, &out); err != nil {
			return err
		}
		return c.print(map[string]any{"userId": id, "revoked": out.Revoked}, func(w io.Writer) {
			fmt.Fprintf(w, "Revoked %d session(s) of user %s.\n", out.Revoked, id)
		})
	}
	handle := c.args[0]
	if err := c.confirm(fmt.Sprintf("Revoke session %s?", handle)); err != nil {
		return err
	}
	if err := core.Do(ctx, "DELETE", "/admin/v1/sessions/"+url.PathEscape(handle), nil, nil, nil); err != nil {
		return err
	}
	return c.print(map[string]any{"sessionHandle": handle, "revoked": 1}, func(w io.Writer) {
		fmt.Fprintf(w, "Revoked session %s.\n", handle)
	})
}

func (p *Plugin) explain(ctx context.Context, args []string) error {
	var path, method *string
	c := p.newCmd("explain")
	tenant := c.fs.String("tenant", "public", "")
	path = c.fs.String("path", "", "")
	method = c.fs.String("method", "", "")
	if err := c.parse(args); err != nil {
		return err
	}
	user, err := c.one("USER")
	if err != nil {
		return err
	}
	core, err := c.core(ctx)
	if err != nil {
		return err
	}
	id, err := resolveUser(ctx, core, *tenant, user)
	if err != nil {
		return err
	}
	q := query("path", *path, "method", *method)
	if *tenant != "public" {
		q.Set("tenantId", *tenant)
	}
	var x contract.AdminExplanation
	if err := core.Do(ctx, "GET", "/admin/v1/users/"+url.PathEscape(id)+"/explain", q, nil, &x); err != nil {
		return err
	}
	return c.print(x, func(w io.Writer) {
		fmt.Fprintf(w, "User %s in tenant %q:\n", x.UserID, x.TenantID)
		for _, r := range x.Reasons {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	})
}

func (p *Plugin) adminKeys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("admin-keys needs a command: list, create NAME, revoke NAME")
	}
	c := p.newCmd("admin-keys " + args[0])
	if err := c.parse(args[1:]); err != nil {
		return err
	}
	core, err := c.core(ctx)
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		var out contract.AdminKeyList
		if err := core.Do(ctx, "GET", "/admin/v1/admin-keys", nil, nil, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			t := tw(w)
			fmt.Fprintln(t, "NAME\tSOURCE\tCREATED\tREVOKED")
			for _, k := range out.Keys {
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", k.Name, k.Source, dash(k.CreatedAt), dash(k.RevokedAt))
			}
			t.Flush()
		})
	case "create":
		name, err := c.one("NAME")
		if err != nil {
			return err
		}
		var out contract.AdminKeyCreated
		if err := core.Do(ctx, "POST", "/admin/v1/admin-keys", nil, contract.AdminKeyCreateRequest{Name: name}, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintf(w, "Created admin key %q. It is shown this once; keep it in a Secret:\n%s\n", out.Name, out.Key)
		})
	case "revoke":
		name, err := c.one("NAME")
		if err != nil {
			return err
		}
		if err := c.confirm(fmt.Sprintf("Revoke admin key %q? Whoever uses it loses access at once.", name)); err != nil {
			return err
		}
		var out contract.AdminKeyInfo
		if err := core.Do(ctx, "DELETE", "/admin/v1/admin-keys/"+url.PathEscape(name), nil, nil, &out); err != nil {
			return err
		}
		return c.print(out, func(w io.Writer) { fmt.Fprintf(w, "Revoked admin key %q.\n", out.Name) })
	}
	return fmt.Errorf("unknown command admin-keys %s: use list, create or revoke", args[0])
}
