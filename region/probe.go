package region

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// This file is the driver side of health checking: it touches the network.
// The deciding part is Health (health.go), which stays pure.

// ProbeUserAgent is the User-Agent of HTTP health checks.
const ProbeUserAgent = "meridian-health-check"

// NewProbeClient returns the HTTP client health checks use: no keep-alive
// (a gateway probes many instances once per interval, idle connections to
// each would only pile up, and a fresh connection is what is being checked),
// and redirects followed only within the same host (a redirect elsewhere is
// reported as the 3xx it is, so it counts as critical).
func NewProbeClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	tr.Proxy = nil // checks go straight to the instance
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

var defaultProbeClient = sync.OnceValue(NewProbeClient)

// Probe runs one HTTP or TCP check and returns its result.
//
// HTTP: GET target within timeout, with User-Agent ProbeUserAgent. A 2xx
// answer is passing, 429 Too Many Requests warning, anything else, an error
// or a timeout critical. The output is "HTTP GET <target>: <status line>" or
// "HTTP GET <target>: <error>"; the body is never included, so the output
// stays stable from one probe to the next and does not cause store writes.
// A nil client means a shared NewProbeClient.
//
// TCP: dial target within timeout: passing when the connection opens
// ("TCP connect <target>: ok"), critical otherwise, with the error.
func Probe(ctx context.Context, client *http.Client, kind, target string, timeout time.Duration) ProbeResult {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r ProbeResult
	switch kind {
	case "http":
		if client == nil {
			client = defaultProbeClient()
		}
		r = probeHTTP(ctx, client, target, timeout)
	case "tcp":
		r = probeTCP(ctx, target, timeout)
	default:
		r = ProbeResult{Status: StatusCritical, Output: fmt.Sprintf("unknown check kind %q (want http or tcp)", kind)}
	}
	r.Output = healthTruncate(r.Output)
	return r
}

func probeHTTP(ctx context.Context, client *http.Client, target string, timeout time.Duration) ProbeResult {
	fail := func(err error) ProbeResult {
		return ProbeResult{Status: StatusCritical, Output: fmt.Sprintf("HTTP GET %s: %s", target, probeErr(ctx, err, timeout))}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("User-Agent", ProbeUserAgent)
	req.Header.Set("Accept", "text/plain, application/json, */*")
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	// The body is not read: the status code decides, and keep-alive is off,
	// so there is no connection to reuse by draining it.
	resp.Body.Close()
	out := fmt.Sprintf("HTTP GET %s: %s", target, resp.Status)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return ProbeResult{Status: StatusPassing, Output: out}
	case resp.StatusCode == http.StatusTooManyRequests:
		return ProbeResult{Status: StatusWarning, Output: out}
	}
	return ProbeResult{Status: StatusCritical, Output: out}
}

func probeTCP(ctx context.Context, target string, timeout time.Duration) ProbeResult {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return ProbeResult{Status: StatusCritical, Output: fmt.Sprintf("TCP connect %s: %s", target, probeErr(ctx, err, timeout))}
	}
	conn.Close()
	return ProbeResult{Status: StatusPassing, Output: fmt.Sprintf("TCP connect %s: ok", target)}
}

// probeErr describes a probe failure without repeating the target: a
// timeout says so plainly, and url.Error's "Get \"url\": " prefix is
// dropped.
func probeErr(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
