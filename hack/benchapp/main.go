// Command benchapp is the tiny app behind the proxies in hack/bench-sidecar.sh: it answers
// every request with a short fixed body, so the benchmark measures the hops, not the app.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to serve on")
	flag.Parse()
	body := []byte(`{"hello":"world"}`)
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Addr: *listen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{length}
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}
