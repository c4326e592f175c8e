package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/meridian-sd/meridian/egress"

	"github.com/meridian-sd/meridian/region"
)

// This file is the driver side of health checking: it touches the network.
// The deciding part is Health (health.go), which stays pure.

// ProbeUserAgent is the User-Agent of HTTP health checks.
const ProbeUserAgent = "meridian-health-check"

// MaxProbeOutput bounds the output of an HTTP or TCP probe, in bytes (cut on
// a rune boundary). The output never carries bytes from the probed service:
// a status code with Go's text for it, or a fixed description of the error.
const MaxProbeOutput = 256

// EgressControl returns a net.Dialer ControlContext that refuses, before
// the connection is attempted, every resolved ip:port that p refuses (so a
// hostname, or a redirect, that resolves to a refused address is refused
// too). A nil p returns nil: no control.
func EgressControl(p *egress.Policy) func(ctx context.Context, network, address string, c syscall.RawConn) error {
	if p == nil {
		return nil
	}
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &egress.RefusedError{Rule: egress.RuleInvalid}
		}
		return p.Check(ap)
	}
}

// NewProbeClient returns the HTTP client health checks use: no keep-alive
// (a gateway probes many instances once per interval, idle connections to
// each would only pile up, and a fresh connection is what is being checked),
// and redirects followed only within the same host (a redirect elsewhere is
// reported as the 3xx it is, so it counts as critical).
func NewProbeClient() *http.Client { return NewEgressProbeClient(nil) }

// NewEgressProbeClient is NewProbeClient whose every dial, redirects
// included, goes through the egress policy p (nil: none).
func NewEgressProbeClient(p *egress.Policy) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	tr.Proxy = nil // checks go straight to the instance
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: EgressControl(p)}
	tr.DialContext = d.DialContext
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

// Probe runs one HTTP or TCP check and returns its result, with no egress
// policy (see Prober).
func Probe(ctx context.Context, client *http.Client, kind, target string, timeout time.Duration) region.ProbeResult {
	return Prober{Client: client}.Probe(ctx, kind, target, timeout)
}

// Prober runs HTTP and TCP checks under an egress policy.
type Prober struct {
	// Client runs HTTP probes; a shared NewProbeClient when nil. Build it
	// with NewEgressProbeClient(Egress) so that hostnames and redirects
	// are checked too.
	Client *http.Client
	// Egress refuses targets; nil refuses nothing. A target whose host is
	// an IP literal is checked before anything is dialled; a hostname is
	// checked once resolved, by the dialer's control hook.
	Egress *egress.Policy
}

// Probe runs one HTTP or TCP check and returns its result.
//
// HTTP: GET target within timeout, with User-Agent ProbeUserAgent. A 2xx
// answer is passing, 429 Too Many Requests warning, anything else, an error
// or a timeout critical. The output is "HTTP GET <target>: <code> <text>"
// (the text is Go's for the code, not the service's reason phrase) or
// "HTTP GET <target>: <error>"; the body is never read, so the output stays
// stable from one probe to the next and does not cause store writes.
//
// TCP: dial target within timeout: passing when the connection opens
// ("TCP connect <target>: ok"), critical otherwise, with the error.
//
// A target the egress policy refuses is critical with "... refused by
// egress policy", without a dial. Outputs are at most MaxProbeOutput bytes.
func (pr Prober) Probe(ctx context.Context, kind, target string, timeout time.Duration) region.ProbeResult {
	if timeout <= 0 {
		timeout = region.DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r region.ProbeResult
	switch kind {
	case "http":
		client := pr.Client
		if client == nil {
			client = defaultProbeClient()
		}
		if pr.Egress != nil && pr.Egress.CheckURL(target) != nil {
			r = region.ProbeResult{Status: region.StatusCritical, Output: "HTTP GET " + target + ": " + egress.ErrRefused.Error()}
			break
		}
		r = probeHTTP(ctx, client, target, timeout)
	case "tcp":
		if pr.Egress != nil && pr.Egress.CheckHostPort(target) != nil {
			r = region.ProbeResult{Status: region.StatusCritical, Output: "TCP connect " + target + ": " + egress.ErrRefused.Error()}
			break
		}
		r = probeTCP(ctx, EgressControl(pr.Egress), target, timeout)
	default:
		r = region.ProbeResult{Status: region.StatusCritical, Output: fmt.Sprintf("unknown check kind %q (want http or tcp)", kind)}
	}
	r.Output = probeTruncate(r.Output)
	return r
}

func probeHTTP(ctx context.Context, client *http.Client, target string, timeout time.Duration) region.ProbeResult {
	fail := func(err error) region.ProbeResult {
		return region.ProbeResult{Status: region.StatusCritical, Output: fmt.Sprintf("HTTP GET %s: %s", target, probeErr(ctx, err, timeout))}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return region.ProbeResult{Status: region.StatusCritical, Output: fmt.Sprintf("HTTP GET %s: not a valid URL", target)}
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
	out := fmt.Sprintf("HTTP GET %s: %s", target, statusLine(resp.StatusCode))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return region.ProbeResult{Status: region.StatusPassing, Output: out}
	case resp.StatusCode == http.StatusTooManyRequests:
		return region.ProbeResult{Status: region.StatusWarning, Output: out}
	}
	return region.ProbeResult{Status: region.StatusCritical, Output: out}
}

// statusLine is "<code> <Go's text for it>", never the service's own
// reason phrase.
func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

func probeTCP(ctx context.Context, control func(context.Context, string, string, syscall.RawConn) error, target string, timeout time.Duration) region.ProbeResult {
	d := net.Dialer{ControlContext: control}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return region.ProbeResult{Status: region.StatusCritical, Output: fmt.Sprintf("TCP connect %s: %s", target, probeErr(ctx, err, timeout))}
	}
	conn.Close()
	return region.ProbeResult{Status: region.StatusPassing, Output: fmt.Sprintf("TCP connect %s: ok", target)}
}

// probeErr describes a probe failure in a fixed phrase, without repeating
// the target and without any bytes the probed service sent (a malformed
// answer, a certificate's names, a redirect's Location): readers of the
// check see whether and how it failed, nothing more.
func probeErr(ctx context.Context, err error, timeout time.Duration) string {
	var (
		dnsErr  *net.DNSError
		addrErr *net.AddrError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, egress.ErrRefused):
		return egress.ErrRefused.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host"
		}
		return "DNS lookup failed"
	case errors.As(err, &addrErr):
		return "not a valid address"
	case errors.As(err, &certErr), errors.As(err, &recErr):
		return "TLS handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Err != nil && ue.Err.Error() == "stopped after 10 redirects" {
			return "stopped after 10 redirects"
		}
	}
	return "not a valid HTTP answer or connection error"
}

// probeTruncate cuts s to MaxProbeOutput bytes without splitting a rune.
func probeTruncate(s string) string {
	if len(s) <= MaxProbeOutput {
		return s
	}
	s = s[:MaxProbeOutput]
	for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
