// Package kubectl is kubectl-twofold, the kubectl plugin that answers a Twofold operator's
// day-to-day tickets over the core's admin API (docs/operations.md): find, show, reset,
// unlock, disable and erase users, revoke sessions, explain a user's requirement, list a
// user's audit events from the core's log, and show the AuthTenants beside what the core
// holds.
//
// It reaches the core through the Kubernetes API server's service proxy with the user's
// kubeconfig, so kubectl's RBAC decides who may use it: the chart's core Service and the
// admin key's Secret in the namespace Twofold is installed in (--twofold-namespace). For
// tests and direct access, --core-url and --admin-key-file bypass the cluster.
package kubectl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/version"
)

// Plugin runs one command line. Its fields are what a test replaces.
type Plugin struct {
	In       io.Reader
	Out, Err io.Writer
	// Connect reaches the core; Connection.Connect when nil.
	Connect func(ctx context.Context, c Connection) (Core, error)
	// AuthTenants lists the AuthTenants; read with the kubeconfig when nil.
	AuthTenants func(ctx context.Context, c Connection, namespace string) ([]AuthTenant, error)
	// Sleep waits (users delete waits for the sidecars' poll); time.Sleep when nil.
	Sleep func(time.Duration)
}

// Main runs kubectl-twofold with args (without the program name) and returns the exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	p := &Plugin{In: in, Out: out, Err: errOut}
	return p.Run(context.Background(), args)
}

const usage = `kubectl twofold: administer Twofold users from kubectl.

Commands:
  users find (--email E | --phone P | --user-id ID | --third-party PROVIDER:ID) [--tenant T] [--all]
  users show USER
  users reset-mfa USER [--factors totp,recovery-code,...] [--keep-sessions] [--yes]
  users unlock USER
  users disable USER [--yes]
  users enable USER
  users delete USER [--yes] [--wait 6s]
  sessions revoke (--user USER | SESSION_HANDLE) [--yes]
  explain USER [--tenant T] [--path /admin --method POST]
  audit USER [--since 24h] [--log-file PATH]   the user's audit events from the core's log
  tenants [--namespace NS | -A]
  admin-keys list | create NAME | revoke NAME [--yes]
  version

USER is a user id, a recipe user id, or an email or phone number (found in --tenant, public by
default). Flags of every command:
  -o, --output table|json|yaml     how to print (table)
  --twofold-namespace NS           where Twofold is installed (twofold-system, or $TWOFOLD_NAMESPACE)
  --release NAME                   one of several installations in that namespace
  --admin-key-secret NAME[/KEY]    the Secret holding the admin key (<release>-admin-key/admin-key)
  --kubeconfig PATH, --context NAME
  --core-url URL --admin-key-file PATH   reach a core directly instead (tests, port-forwards)
`

// cmd is one parsed command line.
type cmd struct {
	p      *Plugin
	fs     *flag.FlagSet
	conn   Connection
	output string
	yes    bool
	args   []string
}

func (p *Plugin) newCmd(name string) *cmd {
	c := &cmd{p: p, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(io.Discard)
	ns := os.Getenv("TWOFOLD_NAMESPACE")
	if ns == "" {
		ns = "twofold-system"
	}
	c.fs.StringVar(&c.conn.Kubeconfig, "kubeconfig", "", "")
	c.fs.StringVar(&c.conn.Context, "context", "", "")
	c.fs.StringVar(&c.conn.Namespace, "twofold-namespace", ns, "")
	c.fs.StringVar(&c.conn.Release, "release", "", "")
	c.fs.StringVar(&c.conn.AdminKeySecret, "admin-key-secret", "", "")
	c.fs.StringVar(&c.conn.CoreURL, "core-url", "", "")
	c.fs.StringVar(&c.conn.AdminKeyFile, "admin-key-file", "", "")
	c.fs.StringVar(&c.output, "output", "table", "")
	c.fs.StringVar(&c.output, "o", "table", "")
	c.fs.BoolVar(&c.yes, "yes", false, "")
	c.fs.BoolVar(&c.yes, "y", false, "")
	return c
}

// parse parses flags anywhere among the positional arguments, as kubectl does.
func (c *cmd) parse(args []string) error {
	for {
		if err := c.fs.Parse(args); err != nil {
			return err
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		c.args = append(c.args, rest[0])
		args = rest[1:]
	}
	switch c.output {
	case "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output must be table, json or yaml, not %q", c.output)
}

func (c *cmd) core(ctx context.Context) (Core, error) {
	if c.p.Connect != nil {
		return c.p.Connect(ctx, c.conn)
	}
	return c.conn.Connect(ctx)
}

// Run runs one command line and returns the exit code.
func (p *Plugin) Run(ctx context.Context, args []string) int {
	if err := p.run(ctx, args); err != nil {
		if errors.Is(err, errCancelled) {
			fmt.Fprintln(p.Err, "Cancelled: nothing was changed.")
			return 1
		}
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(p.Out, usage)
			return 0
		}
		fmt.Fprintf(p.Err, "error: %v\n", err)
		return 1
	}
	return 0
}

var errCancelled = errors.New("cancelled")

func (p *Plugin) run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	word, rest := args[0], args[1:]
	switch word {
	case "users", "user":
		if len(rest) == 0 {
			return errors.New("users needs a command: find, show, reset-mfa, unlock, disable, enable, delete")
		}
		switch rest[0] {
		case "find":
			return p.usersFind(ctx, rest[1:])
		case "show":
			return p.usersShow(ctx, rest[1:])
		case "reset-mfa":
			return p.usersResetMFA(ctx, rest[1:])
		case "unlock":
			return p.usersUnlock(ctx, rest[1:])
		case "disable":
			return p.usersSetDisabled(ctx, rest[1:], true)
		case "enable":
			return p.usersSetDisabled(ctx, rest[1:], false)
		case "delete":
			return p.usersDelete(ctx, rest[1:])
		}
		return fmt.Errorf("unknown command users %s: use find, show, reset-mfa, unlock, disable, enable or delete", rest[0])
	case "sessions", "session":
		if len(rest) == 0 || rest[0] != "revoke" {
			return errors.New("sessions has one command: revoke (--user USER | SESSION_HANDLE)")
		}
		return p.sessionsRevoke(ctx, rest[1:])
	case "explain":
		return p.explain(ctx, rest)
	case "audit":
		return p.audit(ctx, rest)
	case "tenants", "tenant":
		return p.tenants(ctx, rest)
	case "admin-keys", "admin-key":
		return p.adminKeys(ctx, rest)
	case "version":
		return p.version(ctx, rest)
	}
	return fmt.Errorf("unknown command %q; run kubectl twofold help", word)
}

// print writes v as JSON or YAML, or calls table.
func (c *cmd) print(v any, table func(w io.Writer)) error {
	switch c.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.p.Out, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = c.p.Out.Write(b)
		return err
	}
	table(c.p.Out)
	return nil
}

// confirm asks before a destructive change unless --yes was given.
func (c *cmd) confirm(question string) error {
	if c.yes {
		return nil
	}
	fmt.Fprintf(c.p.Err, "%s [y/N]: ", question)
	line, err := bufio.NewReader(c.p.In).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(c.p.Err, "\nNo answer: pass --yes to confirm without a prompt.")
		return errCancelled
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errCancelled
}

func (c *cmd) one(what string) (string, error) {
	if len(c.args) != 1 {
		return "", fmt.Errorf("give exactly one %s", what)
	}
	return c.args[0], nil
}

func (p *Plugin) version(ctx context.Context, args []string) error {
	c := p.newCmd("version")
	if err := c.parse(args); err != nil {
		return err
	}
	out := map[string]string{"plugin": version.Version}
	core, err := c.core(ctx)
	if err == nil {
		var v contract.AdminVersion
		if err = core.Do(ctx, "GET", "/admin/v1/version", nil, nil, &v); err == nil {
			out["core"] = v.Version
		}
	}
	if err != nil {
		out["core"] = "unreachable: " + err.Error()
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "kubectl-twofold %s\ncore %s\n", out["plugin"], out["core"])
	})
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}
