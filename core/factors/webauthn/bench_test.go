package webauthn_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twofold-dev/twofold/core/factors/webauthn/softauthn"
)

// post sends one FDI request and returns the answer's body.
func post(b *testing.B, client *http.Client, url string, body any) []byte {
	raw, _ := json.Marshal(body)
	resp, err := client.Post(url, "application/json", bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"status":"OK"`)) {
		b.Fatalf("%s = %d %s", url, resp.StatusCode, out)
	}
	return out
}

func optionsID(b *testing.B, raw []byte) string {
	var o struct {
		ID string `json:"webauthnGeneratedOptionsId"`
	}
	json.Unmarshal(raw, &o)
	return o.ID
}

// BenchmarkRegistrationThroughHTTP is a passkey sign-up end to end: register options, then
// the sign-up the core verifies and stores, through a real HTTP server on SQLite. The
// authenticator's work (a new P-256 key and its answer) is outside the timer.
func BenchmarkRegistrationThroughHTTP(b *testing.B) {
	c := newCore(b, nil)
	srv := httptest.NewServer(c.Srv)
	defer srv.Close()
	a, client := softauthn.New(origin), srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		opts := post(b, client, srv.URL+"/auth/webauthn/options/register", map[string]string{"email": fmt.Sprintf("user%d@example.com", i)})
		b.StopTimer()
		answer, _, err := a.Create(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		post(b, client, srv.URL+"/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": optionsID(b, opts), "credential": answer})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signups/s")
}

// BenchmarkAssertionThroughHTTP is a passkey sign-in end to end: sign-in options, then the
// sign-in the core verifies (signature, sign count compare-and-set) and answers with a new
// session. The authenticator's signature is outside the timer.
func BenchmarkAssertionThroughHTTP(b *testing.B) {
	c := newCore(b, nil)
	srv := httptest.NewServer(c.Srv)
	defer srv.Close()
	a, client := softauthn.New(origin), srv.Client()
	opts := post(b, client, srv.URL+"/auth/webauthn/options/register", map[string]string{"email": "bench@example.com"})
	answer, cred, err := a.Create(opts)
	if err != nil {
		b.Fatal(err)
	}
	post(b, client, srv.URL+"/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": optionsID(b, opts), "credential": answer})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		opts := post(b, client, srv.URL+"/auth/webauthn/options/signin", map[string]string{})
		b.StopTimer()
		assertion, err := a.Get(opts, cred)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		post(b, client, srv.URL+"/auth/webauthn/signin", map[string]any{"webauthnGeneratedOptionsId": optionsID(b, opts), "credential": assertion})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signins/s")
}
