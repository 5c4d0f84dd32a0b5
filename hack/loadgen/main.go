// Command loadgen sends requests at a fixed rate (open loop: the schedule does not wait for
// answers, unlike wrk) and reports latency percentiles. hack/bench-sidecar.sh uses it for
// the 1,000 req/s latency runs, because wrk2 is not packaged in Debian.
//
// Two latencies are recorded per request: service time, from the moment a worker sends the
// request, and scheduled time, from the moment the schedule said it was due (which also
// counts queueing when every worker is busy, avoiding coordinated omission).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	target := flag.String("url", "http://127.0.0.1:18080/", "URL to request")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 20*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured lead-in at the same rate")
	workers := flag.Int("connections", 32, "concurrent connections")
	tokenFile := flag.String("token-file", "", "file with a bearer token to send")
	var hdrs headers
	flag.Var(&hdrs, "header", `extra header "Name: value" (repeatable)`)
	flag.Parse()

	req, err := http.NewRequest(http.MethodGet, *target, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hdrs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			log.Fatalf("header %q: want Name: value", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: *workers,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}

	type sample struct{ service, scheduled time.Duration }
	interval := time.Second / time.Duration(*rate)
	total := int((*warmup + *duration) / interval)
	begin := time.Now().Add(10 * time.Millisecond)
	measuredFrom := begin.Add(*warmup)
	jobs := make(chan time.Time, total)
	results := make([][]sample, *workers)
	failures := make([]map[string]int, *workers)
	var wg sync.WaitGroup
	for w := range *workers {
		failures[w] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for due := range jobs {
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				end := time.Now()
				if due.Before(measuredFrom) {
					continue
				}
				switch {
				case err != nil:
					failures[w][err.Error()]++
				case resp.StatusCode != http.StatusOK:
					failures[w][fmt.Sprint("status ", resp.StatusCode)]++
				}
				results[w] = append(results[w], sample{end.Sub(start), end.Sub(due)})
			}
		}()
	}
	for i := range total {
		due := begin.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		jobs <- due
	}
	close(jobs)
	wg.Wait()

	var service, scheduled []time.Duration
	for _, rs := range results {
		for _, s := range rs {
			service = append(service, s.service)
			scheduled = append(scheduled, s.scheduled)
		}
	}
	slices.Sort(service)
	slices.Sort(scheduled)
	errs := 0
	for _, f := range failures {
		for k, v := range f {
			errs += v
			fmt.Fprintf(os.Stderr, "loadgen: %d x %s\n", v, k)
		}
	}
	fmt.Printf("requests=%d errors=%d rate=%d service_p50_ms=%.3f service_p90_ms=%.3f service_p99_ms=%.3f service_max_ms=%.3f scheduled_p50_ms=%.3f scheduled_p99_ms=%.3f\n",
		len(service), errs, *rate,
		ms(pct(service, 50)), ms(pct(service, 90)), ms(pct(service, 99)), ms(pct(service, 100)),
		ms(pct(scheduled, 50)), ms(pct(scheduled, 99)))
}

// pct returns the p-th percentile of sorted s (nearest rank).
func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[int(float64(len(s)-1)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
