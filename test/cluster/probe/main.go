// Command probe is the one binary in the cluster smoke test's image (test/cluster). It has no
// shell to exec into, so each job is a subcommand whose result shows in the pod's log or over
// HTTP:
//
//	probe serve -listen :8080 -text TEXT          answer every request with TEXT
//	probe serve -listen :9090 -proxy URL          forward every request to URL (a sidecar)
//	probe lookup -timeout 30s NAME                print "NAME IP..." once NAME resolves
//	probe dial -timeout 3s HOST:PORT...           print "HOST:PORT connected|refused|timeout"
//	probe get -timeout 3s -header 'K: V' URL...   print "URL STATUS BODY" (the body's first line)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

// ProxyHeader is set by `probe serve -proxy` on the answers it forwards, so a client can tell
// a request went through the sidecar.
const ProxyHeader = "X-Probe-Proxy"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe serve|lookup|dial|get ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "lookup":
		err = lookup(os.Args[2:])
	case "dial":
		err = dial(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want serve, lookup, dial or get)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fl.String("listen", ":8080", "address to listen on")
	text := fl.String("text", "", "the body of every answer")
	proxy := fl.String("proxy", "", "forward requests to this URL instead of answering")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch {
	case *proxy != "" && *text != "":
		return errors.New("-text and -proxy exclude each other")
	case *proxy != "":
		u, err := url.Parse(*proxy)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-proxy %q is not a URL", *proxy)
		}
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.ModifyResponse = func(r *http.Response) error {
			r.Header.Set(ProxyHeader, "sidecar")
			return nil
		}
		h = rp
	default:
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, *text)
		})
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

func lookup(args []string) error {
	fl := flag.NewFlagSet("lookup", flag.ContinueOnError)
	timeout := fl.Duration("timeout", 30*time.Second, "how long to keep trying")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("want exactly one name to look up")
	}
	name := fl.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The pure Go resolver, so the answer comes from the pod's resolv.conf (CoreDNS) alone.
	r := &net.Resolver{PreferGo: true}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		addrs, err := r.LookupHost(ctx, name)
		if err == nil {
			sort.Strings(addrs)
			fmt.Printf("%s %s\n", name, strings.Join(addrs, " "))
			return nil
		}
		fmt.Fprintf(os.Stderr, "lookup %s: %v\n", name, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not resolve within %s", name, *timeout)
		case <-tick.C:
		}
	}
}

// dial tries a TCP connection to each address and prints what happened: connected, refused (a
// host answered with a reset, so the packet got there) or timeout (nothing answered: dropped).
func dial(args []string) error {
	fl := flag.NewFlagSet("dial", flag.ContinueOnError)
	timeout := fl.Duration("timeout", 3*time.Second, "how long to wait for each connection")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("want at least one HOST:PORT")
	}
	for _, addr := range fl.Args() {
		conn, err := net.DialTimeout("tcp", addr, *timeout)
		outcome := "connected"
		switch {
		case err == nil:
			conn.Close()
		case errors.Is(err, syscall.ECONNREFUSED):
			outcome = "refused"
		case isTimeout(err):
			outcome = "timeout"
		default:
			outcome = "error: " + err.Error()
		}
		fmt.Printf("%s %s\n", addr, outcome)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// headers collects repeated -header 'Name: value' flags.
type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

// get sends a GET to each URL and prints "URL STATUS BODY", the body cut to its first line, or
// "URL refused|timeout|error: ..." when no answer came. It follows no redirect.
func get(args []string) error {
	fl := flag.NewFlagSet("get", flag.ContinueOnError)
	timeout := fl.Duration("timeout", 3*time.Second, "how long to wait for each answer")
	var hdrs headers
	fl.Var(&hdrs, "header", "a request header, 'Name: value' (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("want at least one URL")
	}
	client := &http.Client{
		Timeout:       *timeout,
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, u := range fl.Args() {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("%q is not a URL: %w", u, err)
		}
		for _, h := range hdrs {
			name, value, ok := strings.Cut(h, ":")
			if !ok {
				return fmt.Errorf("-header %q is not 'Name: value'", h)
			}
			req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		resp, err := client.Do(req)
		switch {
		case err == nil:
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
			fmt.Printf("%s %d %s\n", u, resp.StatusCode, first)
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Printf("%s refused\n", u)
		case isTimeout(err):
			fmt.Printf("%s timeout\n", u)
		default:
			fmt.Printf("%s error: %v\n", u, err)
		}
	}
	return nil
}
