package proxy

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
)

// benchEnv is a proxy with keys and feed from a fake core, and a token for it.
type benchEnv struct {
	p     *Proxy
	core  *fakecore.Core
	token string
	app   *httptest.Server
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	core, err := fakecore.New("public", "https://core.test/auth")
	if err != nil {
		b.Fatal(err)
	}
	// The policy hack/benchcore serves: a requirement, a maximum factor age and routes, so
	// the per-request policy check does its full work.
	if err := core.Update(func(e *contract.Enforcement) {
		e.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}}
		e.MFA.MaxFactorAgeSeconds = 86400
		e.MFA.Routes = []contract.Route{
			{PathPrefix: "/admin", Methods: []string{"POST"}, Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, MaxFactorAgeSeconds: 300},
			{PathPrefix: "/healthz", Public: true},
		}
	}); err != nil {
		b.Fatal(err)
	}
	coreSrv := httptest.NewServer(core)
	b.Cleanup(coreSrv.Close)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	b.Cleanup(app.Close)
	p, err := New(Options{
		CoreURL: coreSrv.URL, Upstream: app.URL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	now := time.Now().Unix()
	tok := core.Mint(fakecore.Token{
		Sub: "user-1", TenantID: "public", SessionHandle: "handle-1", Iss: "https://core.test/auth",
		Iat: now, Exp: now + 3600, MFA: mfa.Claim{C: mfa.Completed{mfa.EmailPassword: now, mfa.TOTP: now}, V: true},
	})
	return &benchEnv{p: p, core: core, token: tok, app: app}
}

// BenchmarkDecisionCached is the steady state: the token was verified before, so a request
// costs the cache lookup and the policy check.
func BenchmarkDecisionCached(b *testing.B) {
	e := newBenchEnv(b)
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Cookie", "theme=dark; sAccessToken="+e.token)
	if d := e.p.decide(r); d.outcome != OutcomeAllowed {
		b.Fatalf("outcome %v: %v", d.outcome, d.reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := e.p.decide(r); d.outcome != OutcomeAllowed {
			b.Fatal(d.reason)
		}
	}
}

// BenchmarkVerifyCold is a first sight of a token: parse, RS256 verify, decode claims.
func BenchmarkVerifyCold(b *testing.B) {
	e := newBenchEnv(b)
	pol := e.p.feed.load()
	now := time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		e.p.cache.remove(e.token)
		if _, err := e.p.verify(context.Background(), e.token, pol, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSAVerifyBaseline is the crypto library's own cost for the same check, the
// yardstick for BenchmarkVerifyCold.
func BenchmarkRSAVerifyBaseline(b *testing.B) {
	k, err := fakecore.NewKey("k")
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(nil, k.Private, crypto.SHA256, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&k.Private.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// plainProxy is a plain httputil.ReverseProxy hop with the sidecar's transport and buffer
// pool, without any checks; forwarded adds the X-Forwarded-* headers and flush is its
// FlushInterval. hack/plainproxy serves the same.
func plainProxy(upstream *url.URL, forwarded bool, flush time.Duration) *httputil.ReverseProxy {
	return plainProxyWith(upstream, forwarded, flush, nil)
}

// plainProxyWith is plainProxy that also sends the fixed headers extra.
func plainProxyWith(upstream *url.URL, forwarded bool, flush time.Duration, extra http.Header) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = upstream.Scheme
			pr.Out.URL.Host = upstream.Host
			if forwarded {
				pr.SetXForwarded()
			}
			for k, v := range extra {
				pr.Out.Header[k] = v
			}
		},
		Transport:     NewTransport(),
		FlushInterval: flush,
		BufferPool:    &bufferPool{},
	}
}

// browserHeaders are what a browser's fetch sends besides the token (hack/bench-sidecar.sh
// sends the same): more than the 8 entries Go keeps in a small map, as real requests have.
var browserHeaders = http.Header{
	"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"},
	"Accept":          {"application/json, text/plain, */*"},
	"Accept-Language": {"en-US,en;q=0.9"},
	"Accept-Encoding": {"gzip, deflate, br, zstd"},
	"Referer":         {"http://app.example.com/orders"},
	"Origin":          {"http://app.example.com"},
	"Sec-Fetch-Mode":  {"cors"},
	"Sec-Fetch-Site":  {"same-origin"},
	"Sec-Fetch-Dest":  {"empty"},
}

// benchHop sends each request through h as the server would hand it over: a new request with
// its own header map, sized for the headers it arrived with.
func benchHop(b *testing.B, h http.Handler, token string) {
	b.Helper()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header = make(http.Header, len(browserHeaders)+1)
			for k, v := range browserHeaders {
				r.Header[k] = v
			}
			r.Header["Authorization"] = []string{"Bearer " + token}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// The BenchmarkHop* benchmarks forward the same request to the same app in-process; their
// ratios are the sidecar's overhead on a real round trip. BenchmarkHopPlainProxy keeps the
// sidecar's old choices (a flush after every write, X-Forwarded-*), BenchmarkHopPlainCheapest
// is the cheapest hop (Go's default flushing, no X-Forwarded-*), and
// BenchmarkHopPlainForwarded the cheapest hop that still tells the app who the client is.
func BenchmarkHopPlainProxy(b *testing.B) {
	e := newBenchEnv(b)
	u, _ := url.Parse(e.app.URL)
	benchHop(b, plainProxy(u, true, -1), e.token)
}

func BenchmarkHopPlainCheapest(b *testing.B) {
	e := newBenchEnv(b)
	u, _ := url.Parse(e.app.URL)
	benchHop(b, plainProxy(u, false, 0), e.token)
}

func BenchmarkHopPlainForwarded(b *testing.B) {
	e := newBenchEnv(b)
	u, _ := url.Parse(e.app.URL)
	benchHop(b, plainProxy(u, true, 0), e.token)
}

// identityHeaders are four identity headers as long as the sidecar's.
var identityHeaders = http.Header{
	contract.HeaderUserID:   {"4f0c3e1a-5b7d-4c1e-9a2b-6d8e0f1a2b3c"},
	contract.HeaderTenantID: {"public"},
	contract.HeaderSession:  {"PhZUMiUZWhnLQanS2mYiurzijWxfTx40"},
	contract.HeaderFactors:  {"emailpassword,totp"},
}

// BenchmarkHopPlainIdentity is BenchmarkHopPlainForwarded sending identityHeaders: what the
// headers cost the hop and the app, without the checks.
func BenchmarkHopPlainIdentity(b *testing.B) {
	e := newBenchEnv(b)
	u, _ := url.Parse(e.app.URL)
	benchHop(b, plainProxyWith(u, true, 0, identityHeaders), e.token)
}

func BenchmarkHopSidecar(b *testing.B) {
	e := newBenchEnv(b)
	benchHop(b, e.p, e.token)
}

// The BenchmarkServed* benchmarks put each hop behind a real HTTP server, as in a pod: a
// keep-alive client sends a browser's request to the hop over loopback, the hop forwards it to
// the app. Unlike the BenchmarkHop* ones they include the server side of the hop's client
// connection (reading the request, the read deadlines, writing the response).
func BenchmarkServedPlainForwarded(b *testing.B) {
	e := newBenchEnv(b)
	u, _ := url.Parse(e.app.URL)
	benchServed(b, plainProxy(u, true, 0), e.token, 0)
}

func BenchmarkServedPlainIdentity(b *testing.B) {
	e := newBenchEnv(b)
	u, _ := url.Parse(e.app.URL)
	benchServed(b, plainProxyWith(u, true, 0, identityHeaders), e.token, 0)
}

// BenchmarkServedSidecar serves the sidecar with its default read timeout, as cmd/sidecar does.
func BenchmarkServedSidecar(b *testing.B) {
	e := newBenchEnv(b)
	benchServed(b, e.p, e.token, time.Minute)
}

func benchServed(b *testing.B, h http.Handler, token string, readTimeout time.Duration) {
	b.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", srv.URL+"/orders", nil)
		for k, v := range browserHeaders {
			req.Header[k] = v
		}
		req.Header["Authorization"] = []string{"Bearer " + token}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
