// Command plainproxy is the baseline of hack/bench-sidecar.sh: a plain httputil.ReverseProxy
// hop with the sidecar's tuned idle pool and buffer pool but without any checks, so the
// difference is the cost of enforcement. By default it is the floor the sidecar is measured
// against: Go's default flushing and the X-Forwarded-* headers, which the apps behind a
// sidecar need (the client's address, and the host and scheme the client used, since the app
// itself is only reached on localhost). -cheapest drops X-Forwarded-* too: the cheapest hop
// there is. -identity-headers adds the four identity headers, fixed, to separate their cost
// from the cost of the checks; -flush-interval -1 flushes after every write, as the sidecar
// once did.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/twofold-dev/twofold/sidecar/proxy"
)

// Values as long as the ones the sidecar sends in hack/bench-sidecar.sh.
var (
	userID   = []string{"bench-user"}
	tenantID = []string{"public"}
	session  = []string{"bench-session"}
	factors  = []string{"emailpassword,totp"}
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18082", "address to serve on")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "app URL")
	identity := flag.Bool("identity-headers", false,
		"also send four fixed X-Twofold-* headers like the sidecar's, to measure what the headers alone cost")
	cheapest := flag.Bool("cheapest", false, "no X-Forwarded-* headers: the cheapest plain hop")
	flush := flag.Duration("flush-interval", 0, "ReverseProxy's FlushInterval: 0 is Go's default flushing, -1 a flush after every write")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			if !*cheapest {
				pr.SetXForwarded()
			}
			if *identity {
				h := pr.Out.Header
				h["X-Twofold-User-Id"] = userID
				h["X-Twofold-Tenant-Id"] = tenantID
				h["X-Twofold-Session"] = session
				h["X-Twofold-Factors"] = factors
			}
		},
		Transport:     proxy.NewTransport(),
		FlushInterval: *flush,
		BufferPool:    proxy.NewBufferPool(),
	}
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.ListenAndServe())
}
