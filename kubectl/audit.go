package kubectl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// AuditEvent is one line of the core's audit log (docs/audit.md, "The log line"), as the
// audit command prints it.
type AuditEvent struct {
	Time    string         `json:"time"`
	Type    string         `json:"type"`
	Message string         `json:"message"`
	Outcome string         `json:"outcome"`
	Tenant  string         `json:"tenant,omitempty"`
	User    string         `json:"user,omitempty"`
	Factor  string         `json:"factor,omitempty"`
	Actor   string         `json:"actor"`
	IP      string         `json:"ip,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	// Pod is the core replica that logged it.
	Pod string `json:"pod,omitempty"`
}

// auditFields are the log line's own fields; the rest are the event's details.
var auditFields = map[string]bool{"level": true, "ts": true, "logger": true, "caller": true, "msg": true, "tenant": true,
	"user": true, "ip": true, "outcome": true, "factor": true, "type": true, "actor": true, "id": true, "forwardedFor": true}

// ParseAuditLog reads the audit events of a core's log that concern the user (by id, or
// by one of emails for refused sign-ins, which name the email and not the user) at or after
// since.
func ParseAuditLog(r io.Reader, pod, userID string, emails []string, since time.Time) ([]AuditEvent, error) {
	var out []AuditEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if i := strings.IndexByte(string(line), '{'); i > 0 {
			line = line[i:] // a prefix such as a container runtime's timestamp
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil || m["logger"] != "core.audit" {
			continue
		}
		ts, _ := m["ts"].(float64)
		at := time.Unix(0, int64(ts*1e9)).UTC()
		if at.Before(since) {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		e := AuditEvent{Time: at.Format(time.RFC3339), Type: str("type"), Message: str("msg"), Outcome: str("outcome"),
			Tenant: str("tenant"), User: str("user"), Factor: str("factor"), Actor: str("actor"), IP: str("ip"), Pod: pod}
		for k, v := range m {
			if !auditFields[k] {
				if e.Details == nil {
					e.Details = map[string]any{}
				}
				e.Details[k] = v
			}
		}
		mine := userID != "" && e.User == userID
		if email, _ := e.Details["email"].(string); !mine && email != "" {
			for _, x := range emails {
				mine = mine || strings.EqualFold(x, email)
			}
		}
		if mine {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// coreLogs reads the logs of every core Pod of the installation since sinceSeconds ago.
func (c Connection) coreLogs(ctx context.Context, cs kubernetes.Interface, since time.Duration) (map[string]io.ReadCloser, error) {
	selector := labelPartOf + "=twofold," + labelComponent + "=core"
	if c.Release != "" {
		selector += "," + labelInstance + "=" + c.Release
	}
	pods, err := cs.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list the core's Pods in namespace %q: %w", c.Namespace, err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("no Twofold core Pods in namespace %q", c.Namespace)
	}
	secs := int64(since.Seconds()) + 1
	out := map[string]io.ReadCloser{}
	for _, p := range pods.Items {
		rc, err := cs.CoreV1().Pods(c.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "core", SinceSeconds: &secs}).Stream(ctx)
		if err != nil {
			for _, r := range out {
				r.Close()
			}
			return nil, fmt.Errorf("read the logs of %s (the audit trail is the core's log; a SIEM behind the audit webhook keeps it longer): %w", p.Name, err)
		}
		out[p.Name] = rc
	}
	return out, nil
}

func (p *Plugin) audit(ctx context.Context, args []string) error {
	var since *time.Duration
	var logFile *string
	c, core, id, err := p.userCmd(ctx, "audit", args, func(c *cmd) {
		since = c.fs.Duration("since", 24*time.Hour, "")
		logFile = c.fs.String("log-file", "", "")
	})
	if err != nil {
		return err
	}
	var emails []string
	var u struct {
		Emails []string `json:"emails"`
	}
	// An erased user is not found: search by the id alone then.
	if err := core.Do(ctx, "GET", "/admin/v1/users/"+url.PathEscape(id), nil, nil, &u); err == nil {
		emails = u.Emails
	}
	from := time.Now().Add(-*since)
	sources := map[string]io.ReadCloser{}
	if *logFile != "" {
		f, err := os.Open(*logFile)
		if err != nil {
			return err
		}
		sources[*logFile] = f
	} else {
		cfg, err := c.conn.RestConfig()
		if err != nil {
			return err
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		if sources, err = c.conn.coreLogs(ctx, cs, *since); err != nil {
			return err
		}
	}
	var events []AuditEvent
	for pod, r := range sources {
		evs, err := ParseAuditLog(r, pod, id, emails, from)
		r.Close()
		if err != nil {
			return fmt.Errorf("read the log of %s: %w", pod, err)
		}
		events = append(events, evs...)
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time < events[j].Time })
	if events == nil {
		events = []AuditEvent{}
	}
	return c.print(map[string]any{"userId": id, "since": from.UTC().Format(time.RFC3339), "events": events}, func(w io.Writer) {
		if len(events) == 0 {
			fmt.Fprintf(w, "No audit events of user %s since %s.\n", id, from.UTC().Format(time.RFC3339))
			return
		}
		t := tw(w)
		fmt.Fprintln(t, "TIME\tEVENT\tOUTCOME\tFACTOR\tTENANT\tIP\tBY")
		for _, e := range events {
			by := e.Actor
			if k, ok := e.Details["by"].(string); ok {
				by = "admin key " + k
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time, e.Message, e.Outcome, dash(e.Factor), dash(e.Tenant), dash(e.IP), by)
		}
		t.Flush()
	})
}
