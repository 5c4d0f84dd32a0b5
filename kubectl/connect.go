package kubectl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/twofold-dev/twofold/contract"
)

// Labels the chart puts on the core's Service.
const (
	labelPartOf    = "app.kubernetes.io/part-of"
	labelComponent = "app.kubernetes.io/component"
	labelInstance  = "app.kubernetes.io/instance"
)

// Core is a way to reach a core's admin API.
type Core interface {
	// Do sends one admin request (path starts with /admin/v1) and decodes a 2xx answer into
	// out (when not nil); another status is an *APIError.
	Do(ctx context.Context, method, path string, query url.Values, body, out any) error
	// Describe says how the core is reached, for error messages.
	Describe() string
}

// APIError is the admin API's error answer.
type APIError struct {
	Status  int
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Field, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// decodeAnswer turns an answer into out or an *APIError.
func decodeAnswer(status int, body []byte, out any) error {
	if status < 200 || status > 299 {
		e := &APIError{Status: status}
		if json.Unmarshal(body, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(body))
			if e.Message == "" {
				e.Message = http.StatusText(status)
			}
		}
		return e
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode the core's answer: %w", err)
	}
	return nil
}

// directCore reaches the core at a URL (--core-url): tests, port-forwards, a core outside
// the cluster.
type directCore struct {
	base string
	key  string
	hc   *http.Client
}

func (d *directCore) Describe() string { return d.base }

func (d *directCore) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := strings.TrimSuffix(d.base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach the core at %s: %w", d.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	return decodeAnswer(resp.StatusCode, b, out)
}

// proxyCore reaches the core through the Kubernetes API server's service proxy with the
// user's kubeconfig, so the cluster's RBAC decides who may (create and get on
// services/proxy). The API server consumes Authorization, so the admin key travels in
// contract.HeaderAdminKey.
type proxyCore struct {
	rest      rest.Interface
	namespace string
	service   string
	port      string
	key       string
}

func (p *proxyCore) Describe() string {
	return fmt.Sprintf("service %s/%s (port %s) through the Kubernetes API server", p.namespace, p.service, p.port)
}

func (p *proxyCore) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req := p.rest.Verb(method).Namespace(p.namespace).Resource("services").Name(p.service+":"+p.port).
		SubResource("proxy").Suffix(path).SetHeader(contract.HeaderAdminKey, p.key)
	for k, vs := range query {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		req = req.Body(b).SetHeader("Content-Type", "application/json")
	}
	res := req.Do(ctx)
	var status int
	res.StatusCode(&status)
	raw, err := res.Raw()
	if status == 0 && err != nil {
		return fmt.Errorf("reach the core through the Kubernetes API server: %w", err)
	}
	// The API server's own refusals (RBAC, a missing Service) are Status objects.
	if status == http.StatusForbidden || (err != nil && !isCoreError(raw)) {
		if detail := strings.TrimSpace(string(raw)); detail != "" && len(detail) < 512 && !strings.Contains(err.Error(), detail) {
			err = fmt.Errorf("%w: %s", err, detail)
		}
		return fmt.Errorf("the Kubernetes API server refused the request to %s: %w", p.Describe(), err)
	}
	return decodeAnswer(status, raw, out)
}

// isCoreError reports whether an error body is the core's {"message": ...} and not a
// Kubernetes Status.
func isCoreError(b []byte) bool {
	var v struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	return json.Unmarshal(b, &v) == nil && v.Kind == "" && v.Message != ""
}

// Connection are the flags that say how to reach the core.
type Connection struct {
	Kubeconfig string
	Context    string
	// Namespace is where Twofold is installed.
	Namespace string
	// Release picks one of several installations in Namespace.
	Release string
	// AdminKeySecret is the Secret (name, or name/key) holding the admin key to use; by
	// default the chart's <release>-admin-key/admin-key, found next to the core's Service.
	AdminKeySecret string
	// CoreURL and AdminKeyFile bypass the cluster: the core's URL and a file holding the key.
	CoreURL      string
	AdminKeyFile string
}

// RestConfig loads the user's kubeconfig as kubectl does (KUBECONFIG, ~/.kube/config,
// in-cluster), with --kubeconfig and --context.
func (c Connection) RestConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load the kubeconfig: %w", err)
	}
	return cfg, nil
}

// Connect returns the core: directly with --core-url, otherwise found in the cluster.
func (c Connection) Connect(ctx context.Context) (Core, error) {
	if c.CoreURL != "" {
		if c.AdminKeyFile == "" {
			return nil, errors.New("--core-url needs --admin-key-file, a file holding the admin key")
		}
		b, err := os.ReadFile(c.AdminKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read the admin key: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			return nil, fmt.Errorf("the admin key file %s is empty", c.AdminKeyFile)
		}
		return &directCore{base: c.CoreURL, key: key, hc: &http.Client{Timeout: 30 * time.Second}}, nil
	}
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return c.Discover(ctx, cs)
}

// Discover finds the chart's core Service in the namespace and reads the admin key from its
// Secret, and returns a core reached through the service proxy.
func (c Connection) Discover(ctx context.Context, cs kubernetes.Interface) (Core, error) {
	ns := c.Namespace
	selector := labelPartOf + "=twofold," + labelComponent + "=core"
	if c.Release != "" {
		selector += "," + labelInstance + "=" + c.Release
	}
	svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("find the Twofold core's Service in namespace %q: %w", ns, err)
	}
	switch len(svcs.Items) {
	case 0:
		return nil, fmt.Errorf("no Twofold core Service (labels %s) in namespace %q: name the namespace Twofold is installed in with --twofold-namespace, or reach the core with --core-url", selector, ns)
	case 1:
	default:
		var releases []string
		for _, s := range svcs.Items {
			releases = append(releases, s.Labels[labelInstance])
		}
		return nil, fmt.Errorf("namespace %q holds %d Twofold installations (%s): choose one with --release", ns, len(svcs.Items), strings.Join(releases, ", "))
	}
	svc := svcs.Items[0]
	port := servicePort(svc)
	if port == "" {
		return nil, fmt.Errorf("the Service %s/%s has no port", ns, svc.Name)
	}
	name, key := c.AdminKeySecret, "admin-key"
	if name == "" {
		name = strings.TrimSuffix(svc.Name, "-core") + "-admin-key"
	}
	if n, k, ok := strings.Cut(name, "/"); ok {
		name, key = n, k
	}
	secret, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the admin key from Secret %s/%s (choose another with --admin-key-secret NAME[/KEY]): %w", ns, name, err)
	}
	value := strings.TrimSpace(string(secret.Data[key]))
	if value == "" {
		return nil, fmt.Errorf("the Secret %s/%s has no key %q", ns, name, key)
	}
	return &proxyCore{rest: cs.CoreV1().RESTClient(), namespace: ns, service: svc.Name, port: port, key: value}, nil
}

// servicePort names the Service's port as the service proxy wants it: the port named http,
// or else the first.
func servicePort(svc corev1.Service) string {
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			return p.Name
		}
	}
	if len(svc.Spec.Ports) == 0 {
		return ""
	}
	if p := svc.Spec.Ports[0]; p.Name != "" {
		return p.Name
	}
	return fmt.Sprint(svc.Spec.Ports[0].Port)
}
