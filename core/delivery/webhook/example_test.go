package webhook_test

import (
	"log"
	"net/http"
	"time"

	"github.com/twofold-dev/twofold/core/delivery/webhook"
)

// A receiver checks every request before acting on it.
func ExampleVerifyRequest() {
	secret := "the tenant's sms.webhook.secret"
	http.HandleFunc("/twofold/sms", func(w http.ResponseWriter, r *http.Request) {
		p, err := webhook.VerifyRequest(r, secret, time.Now(), webhook.DefaultTolerance)
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		log.Printf("Sending %s message %s to %s", p.Channel, p.ID, p.To)
		w.WriteHeader(http.StatusNoContent)
	})
}
