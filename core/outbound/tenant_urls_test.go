package outbound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/outbound"
)

// attackerDNS answers for the attacker's own names, as the attacker's DNS server would.
type attackerDNS map[string]netip.Addr

func (d attackerDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := d[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// internalService stands for what an attacker wants the core to reach: the cloud metadata
// service, the Kubernetes API, another tenant's service. It counts what reaches it.
type internalService struct {
	*httptest.Server
	hits atomic.Int32
	port string
}

func newInternalService(t *testing.T) *internalService {
	s := &internalService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"AccessKeyId":"internal-credentials"}`)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

func TestATenantCannotSaveAURLThatPointsTheCoreAtAnInternalService(t *testing.T) {
	h := coretest.New(t, coretest.WithOutbound(outbound.Policy{}))
	internal := newInternalService(t)
	oidc := func(field, u string) string {
		extra := ""
		issuer := "https://idp.example.com"
		if field == "issuer" {
			issuer = u
		} else {
			extra = fmt.Sprintf(`,%q:%q`, field, u)
		}
		return fmt.Sprintf(`{"thirdPartyProviders":[{"id":"idp","type":"oidc","issuer":%q,"clientId":"c"%s}]}`, issuer, extra)
	}
	tests := []struct {
		name, config, field, reason string
	}{
		{"an OIDC issuer on loopback", oidc("issuer", internal.URL), "thirdPartyProviders[0].issuer", "loopback"},
		{"an OIDC issuer named localhost", oidc("issuer", "http://localhost:"+internal.port), "thirdPartyProviders[0].issuer", "loopback"},
		{"a token endpoint at the cloud metadata service", oidc("tokenEndpoint", "http://169.254.169.254/latest/meta-data/iam/"), "thirdPartyProviders[0].tokenEndpoint", "link-local"},
		{"a userinfo endpoint at the Kubernetes API", oidc("userInfoEndpoint", "https://kubernetes.default.svc/api/v1/secrets"), "thirdPartyProviders[0].userInfoEndpoint", ".svc"},
		{"a Twilio base URL at a private address", `{"sms":{"provider":"twilio","twilio":{"accountSid":"AC1","authToken":"t","from":"+15005550006","baseURL":"http://10.0.0.5:8080"}}}`, "sms.twilio.baseURL", "private"},
		{"an SMS webhook at a CGNAT address", `{"sms":{"provider":"webhook","webhook":{"url":"http://100.64.1.1/hook","secret":"s"}}}`, "sms.webhook.url", "CGNAT"},
		{"an SMS webhook at a unique local IPv6 address", `{"sms":{"provider":"webhook","webhook":{"url":"http://[fd12::1]/hook","secret":"s"}}}`, "sms.webhook.url", "unique local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			r := h.AdminDo("PUT", "/admin/v1/tenants/acme", tt.config)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("PUT = %d %s, want 400", r.Status, r.Body)
			}
			m := r.JSON(t)
			msg, _ := m["message"].(string)
			if !strings.Contains(string(r.Body), tt.field) || !strings.Contains(msg, tt.reason) || !strings.Contains(msg, "-outbound-allow") {
				t.Fatalf("refusal %s does not name %s, say why (%s) and how an operator allows it", r.Body, tt.field, tt.reason)
			}
			if h.Snapshot() != before {
				t.Fatal("a refused configuration changed the store")
			}
		})
	}
	if n := internal.hits.Load(); n != 0 {
		t.Fatalf("the internal service received %d requests", n)
	}
}

func TestAProviderNameThatResolvesToAnInternalAddressIsNotCalled(t *testing.T) {
	internal := newInternalService(t)
	dns := attackerDNS{"idp.attacker.example": netip.MustParseAddr("127.0.0.1"), "sms.attacker.example": netip.MustParseAddr("127.0.0.1")}
	h := coretest.New(t, coretest.WithOutbound(outbound.Policy{Resolver: dns}))
	// The names look public, so the configuration is saved; the addresses decide at dial time.
	h.PutTenantJSON("acme", fmt.Sprintf(`{"firstFactors":["emailpassword","thirdparty"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":"http://idp.attacker.example:%s","clientId":"c","clientSecret":"s"}]}`, internal.port))
	t.Run("authorisationurl does not fetch the discovery document", func(t *testing.T) {
		r := h.Do("GET", "/auth/acme/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil)
		coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
	})
	t.Run("signinup does not fetch the discovery document", func(t *testing.T) {
		r := h.Do("POST", "/auth/acme/signinup", map[string]any{"thirdPartyId": "idp", "redirectURIInfo": map[string]any{
			"redirectURIOnProviderDashboard": coretest.RedirectURI, "redirectURIQueryParams": map[string]string{"code": "c"}}})
		m := coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
		if strings.Contains(m["message"].(string), "127.0.0.1") {
			t.Fatalf("message %q tells the caller which address the name resolved to", m["message"])
		}
	})
	t.Run("an SMS webhook is not called", func(t *testing.T) {
		h.DeliveryTenant("sms", fmt.Sprintf(`"sms":{"provider":"webhook","webhook":{"url":"http://sms.attacker.example:%s/hook","secret":"s"}}`, internal.port),
			`"firstFactors":["otp-phone"]`)
		r := h.Do("POST", "/auth/sms/signinup/code", map[string]string{"phoneNumber": "+14155550100"})
		coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
	})
	if n := internal.hits.Load(); n != 0 {
		t.Fatalf("the internal service received %d requests", n)
	}
}

func TestADiscoveryDocumentThatRedirectsToAnInternalServiceIsNotFollowed(t *testing.T) {
	internal := newInternalService(t)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:"+internal.port+"/latest/meta-data/", http.StatusFound)
	}))
	t.Cleanup(idp.Close)
	_, port, _ := net.SplitHostPort(idp.Listener.Addr().String())
	// The provider is allowed by its name only; the internal service shares its address.
	p := outbound.Policy{Allow: outbound.MustParseAllowList("idp.example.test"), Resolver: attackerDNS{"idp.example.test": netip.MustParseAddr("127.0.0.1")}}
	h := coretest.New(t, coretest.WithOutbound(p))
	h.PutTenantJSON("acme", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":"http://idp.example.test:%s","clientId":"c"}]}`, port))
	r := h.Do("GET", "/auth/acme/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil)
	coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
	if n := internal.hits.Load(); n != 0 {
		t.Fatalf("the redirect reached the internal service %d times", n)
	}
}

// misbehavingIdP answers discovery (or, once discovered, the token endpoint) with whatever the
// test asks for.
func misbehavingIdP(t *testing.T, discovery, token http.HandlerFunc) *httptest.Server {
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if discovery != nil {
			discovery(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/jwks"})
	})
	if token != nil {
		mux.HandleFunc("POST /token", token)
	}
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestWhatAProviderAnswersIsNeverEchoedToTheCaller(t *testing.T) {
	const secret = "internal-debug-token-4f1c9"
	fail := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"server_error","error_description":"upstream said %s"}`, secret)
		}
	}
	tests := []struct {
		name      string
		discovery http.HandlerFunc
		token     http.HandlerFunc
		want      string
	}{
		{"a discovery document that is an error page", fail(http.StatusInternalServerError), nil, "the OIDC provider's discovery document could not be read"},
		{"a discovery document that is not JSON", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "<html>%s</html>", secret) }, nil,
			"the OIDC provider's discovery document could not be read"},
		{"a discovery document larger than the core reads", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":%q,"padding":"%s"}`, secret, strings.Repeat("x", 2<<20))
		}, nil, "the OIDC provider's discovery document could not be read"},
		{"a token endpoint that refuses the code", nil, fail(http.StatusBadRequest), "the provider did not accept the authorization code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := coretest.New(t)
			idp := misbehavingIdP(t, tt.discovery, tt.token)
			h.PutTenantJSON("acme", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
				{"id":"idp","type":"oidc","issuer":%q,"clientId":"c","clientSecret":"s"}]}`, idp.URL))
			r := h.Do("POST", "/auth/acme/signinup", map[string]any{"thirdPartyId": "idp", "redirectURIInfo": map[string]any{
				"redirectURIOnProviderDashboard": coretest.RedirectURI, "redirectURIQueryParams": map[string]string{"code": "c"}}})
			m := coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
			if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), "upstream") {
				t.Fatalf("the answer %s echoes the provider's body", r.Body)
			}
			if !strings.Contains(m["message"].(string), tt.want) {
				t.Fatalf("message = %q, want it to say %q", m["message"], tt.want)
			}
			r = h.Do("GET", "/auth/acme/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil)
			if strings.Contains(string(r.Body), secret) {
				t.Fatalf("authorisationurl %s echoes the provider's body", r.Body)
			}
		})
	}
}
