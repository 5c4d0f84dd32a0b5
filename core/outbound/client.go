package outbound

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// This file builds the HTTP client every outbound call uses: the policy's dialer, bounded
// time and bounded answers.

// ClientOptions shape a client; zero values take the defaults.
type ClientOptions struct {
	// MaxRedirects is how many redirects are followed, each checked like the first request;
	// zero follows none and hands the 3xx answer back as it is.
	MaxRedirects int
	// MaxBodyBytes bounds how much of any answer is read; DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// Timeout bounds a whole exchange, redirects and body included; DefaultTimeout when zero.
	Timeout time.Duration
}

// Client returns an HTTP client that reaches only what the policy allows.
func (p Policy) Client(o ClientOptions) *http.Client {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            p.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    DefaultTLSTimeout,
		ResponseHeaderTimeout:  DefaultHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	maxRedirects := o.MaxRedirects
	return &http.Client{
		Transport: limitBody{next: tr, max: o.MaxBodyBytes},
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects == 0 {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("outbound: stopped after %d redirects", maxRedirects)
			}
			if err := p.CheckURL(req.URL.String()); err != nil {
				return fmt.Errorf("outbound: redirect to %s: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}

// limitBody makes every answer's body fail with ErrBodyTooLarge past max bytes, so no
// caller, ours or a library's, reads an unbounded answer.
type limitBody struct {
	next http.RoundTripper
	max  int64
}

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, fmt.Errorf("outbound: %s %s: %w (%d bytes announced, %d read at most)", req.Method, req.URL.Redacted(), ErrBodyTooLarge, resp.ContentLength, l.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: l.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
