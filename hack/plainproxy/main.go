// Command plainproxy is the baseline of hack/bench-sidecar.sh: a plain httputil.ReverseProxy
// hop tuned like the sidecar's (same transport, buffer pool, flushing and X-Forwarded-*
// headers) but without any checks, so the difference is the cost of enforcement.
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

func main() {
	listen := flag.String("listen", "127.0.0.1:18082", "address to serve on")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "app URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			pr.SetXForwarded()
		},
		Transport:     proxy.NewTransport(),
		FlushInterval: -1,
		BufferPool:    proxy.NewBufferPool(),
	}
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.ListenAndServe())
}
