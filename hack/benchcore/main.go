// Command benchcore serves the core's wire protocol towards sidecars (JWKS and enforcement
// feed, see sidecar/fakecore) for hack/bench-sidecar.sh, with a policy that requires totp,
// and writes a day-long access token that meets it to -token-out.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to serve on")
	tenant := flag.String("tenant", "public", "tenant id")
	issuer := flag.String("issuer", "http://127.0.0.1:18081/auth", "token issuer")
	tokenOut := flag.String("token-out", "", "file to write an access token to")
	flag.Parse()
	core, err := fakecore.New(*tenant, *issuer)
	if err != nil {
		log.Fatal(err)
	}
	err = core.Update(func(e *contract.Enforcement) {
		e.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}}
		e.MFA.MaxFactorAgeSeconds = 86400
		e.MFA.Routes = []contract.Route{
			{PathPrefix: "/admin", Methods: []string{"POST"}, Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, MaxFactorAgeSeconds: 300},
			{PathPrefix: "/healthz", Public: true},
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	if *tokenOut != "" {
		now := time.Now().Unix()
		tok := core.Mint(fakecore.Token{
			Sub: "bench-user", TenantID: *tenant, SessionHandle: "bench-session", Iss: *issuer,
			Iat: now, Exp: now + 86400,
			MFA: mfa.Claim{C: mfa.Completed{mfa.EmailPassword: now, mfa.TOTP: now}, V: true},
		})
		if err := os.WriteFile(*tokenOut, []byte(tok), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Addr: *listen, Handler: core, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
