// Command sampleapp is the small web app that `make demo` and the end-to-end tests put behind
// the Twofold sidecar. It has no auth code of its own: it trusts the identity headers the
// sidecar sets, shows them, and serves a step-up protected /admin page and a public /healthz.
package main

import (
	"encoding/json"
	"flag"
	"html/template"
	"log"
	"net/http"
	"strings"
	"time"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1f}
dt{font-weight:600;margin-top:.6rem}code{background:#f1f3f5;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>{{.Title}}</h1>
<p>This page is served by the sample app. The Twofold sidecar let your request through and told the app who you are:</p>
<dl>
<dt>User id</dt><dd><code id="user-id">{{.UserID}}</code></dd>
<dt>Tenant</dt><dd><code id="tenant-id">{{.TenantID}}</code></dd>
<dt>Session</dt><dd><code id="session">{{.Session}}</code></dd>
<dt>Completed factors</dt><dd><code id="factors">{{.Factors}}</code></dd>
</dl>
<p><a href="/">Home</a> · <a href="/admin">Admin (step-up)</a> · <a href="/auth/account">Account security</a></p>
</body></html>`))

type identity struct {
	Title    string `json:"-"`
	UserID   string `json:"userId"`
	TenantID string `json:"tenantId"`
	Session  string `json:"session"`
	Factors  string `json:"factors"`
}

func identityOf(r *http.Request, title string) identity {
	return identity{
		Title:    title,
		UserID:   r.Header.Get("X-Twofold-User-Id"),
		TenantID: r.Header.Get("X-Twofold-Tenant-Id"),
		Session:  r.Header.Get("X-Twofold-Session"),
		Factors:  r.Header.Get("X-Twofold-Factors"),
	}
}

func handler(title string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := identityOf(r, title)
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := page.Execute(w, id); err != nil {
				log.Printf("rendering: %v", err)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(id)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on; keep it on 127.0.0.1 so only the sidecar reaches it")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/admin", handler("Admin area"))
	mux.HandleFunc("/", handler("Welcome to the sample app"))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("sampleapp listening on http://%s", *listen)
	log.Fatal(srv.ListenAndServe())
}
