package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// Client talks to a region's gateways: it registers instances and keeps
// them alive, discovers services and balances requests over them. It is
// safe for concurrent use. Close it to deregister its instances and stop
// its goroutines.
type Client struct {
	cfg      Config
	log      *slog.Logger
	http     *http.Client
	ownHTTP  bool     // http was made here: Close closes its idle connections
	gateways []string // base URLs
	cur      atomic.Int64

	gwHTTP *http.Client // requests to gateways: http, or a TLS client of Config.TLS

	rngMu sync.Mutex
	rng   *rand.Rand // jitter, backoff, priority levels

	picker   failover.Picker
	p2c      *failover.P2C // the picker when LB is p2c, for load reports
	breakers *breakers
	budget   *retryBudget

	ctx    context.Context // done on Close: stops heartbeats and watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	regs    map[*regState]*Registration
	watches map[string]*watch
}

// New returns a client of cfg.Gateways. It does not contact them yet.
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("meridian client: %w", err)
	}
	c := &Client{cfg: cfg, log: cfg.Logger, http: cfg.HTTPClient,
		regs: map[*regState]*Registration{}, watches: map[string]*watch{}}
	for _, g := range cfg.Gateways {
		u, _ := gatewayURL(g) // checked by Validate
		c.gateways = append(c.gateways, u)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "meridian-client")
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.MaxIdleConnsPerHost = 32
		c.http = &http.Client{Transport: t}
		c.ownHTTP = true
	}
	c.gwHTTP = c.http
	if cfg.TLS != nil {
		c.gwHTTP = gatewayTLSClient(cfg.TLS)
	}
	seed := cfg.Rand
	if seed == nil {
		seed = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	// The picker locks its generator itself; the client has its own.
	c.rng = rand.New(rand.NewPCG(seed.Uint64(), seed.Uint64()))
	picker, err := failover.NewPicker(cfg.LB, rand.New(rand.NewPCG(seed.Uint64(), seed.Uint64())))
	if err != nil {
		return nil, fmt.Errorf("meridian client: lb: %w", err)
	}
	c.picker = picker
	c.p2c, _ = picker.(*failover.P2C)
	c.breakers = newBreakers(cfg.Breaker, c.log)
	c.budget = newRetryBudget(cfg.RetryBudget, cfg.MinRetriesPerSecond, cfg.RetryWindow)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close deregisters every instance registered through the client (waiting
// at most RequestTimeout), stops the heartbeats and watchers and returns
// the deregistration errors. Later calls return nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	regs := make([]*Registration, 0, len(c.regs))
	for _, r := range c.regs {
		regs = append(regs, r)
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	errs := make([]error, len(regs))
	var wg sync.WaitGroup
	for i, r := range regs {
		wg.Go(func() { errs[i] = r.Deregister(ctx) })
	}
	wg.Wait()
	c.cancel()
	c.wg.Wait()
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
	if c.gwHTTP != c.http {
		c.gwHTTP.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// isClosed reports whether Close was called.
func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// goBackground starts f as a background goroutine of the client, unless
// the client is closed.
func (c *Client) goBackground(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Go(f)
	return true
}

// float64 draws from the client's generator.
func (c *Client) float64() float64 {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.Float64()
}

// jitter returns d ± 10%.
func (c *Client) jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*c.float64()))
}

// backoff draws the full-jitter backoff of retry n.
func (c *Client) backoff(n int) time.Duration {
	return backoff(c.cfg.BackoffBase, c.cfg.BackoffMax, n, c.float64())
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Gateway returns the base URL of the gateway requests currently go to.
func (c *Client) Gateway() string { return c.gateways[c.cur.Load()] }

// gatewayDo sends a request to the current gateway, moving on to the next
// ones on a connection error or a 5xx answer, and remembers the gateway
// that answered. A 2xx or 3xx answer is returned (its body must be closed);
// a 4xx answer is returned as an *APIError. When no gateway answers, the
// error joins what each one did. Each attempt gets timeout.
func (c *Client) gatewayDo(ctx context.Context, method, pathQuery string, body []byte, timeout time.Duration) (*http.Response, error) {
	n := len(c.gateways)
	start := int(c.cur.Load())
	errs := make([]error, 0, n)
	for i := range n {
		idx := (start + i) % n
		gw := c.gateways[idx]
		resp, err := c.sendGateway(ctx, gw, method, pathQuery, body, timeout)
		if ctx.Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, ctx.Err()
		}
		if err == nil && resp.StatusCode < 500 {
			if idx != start && c.cur.CompareAndSwap(int64(start), int64(idx)) {
				c.log.Warn("switched gateway", "from", c.gateways[start], "to", gw, "reason", errors.Join(errs...))
			}
			if resp.StatusCode >= 400 {
				return nil, readAPIError(gw, resp)
			}
			return resp, nil
		}
		if err == nil {
			err = readAPIError(gw, resp)
		}
		errs = append(errs, err)
	}
	return nil, &unavailableError{errs: errs}
}

// unavailableError: no gateway answered.
type unavailableError struct{ errs []error }

func (e *unavailableError) Error() string {
	return fmt.Sprintf("no gateway answered (%d tried): %v", len(e.errs), errors.Join(e.errs...))
}

func (e *unavailableError) Unwrap() []error { return e.errs }

// permanent reports whether err is a gateway's 4xx answer, which trying
// again will not change.
func permanent(err error) bool {
	var ae *APIError
	var ue *unavailableError
	return errors.As(err, &ae) && !errors.As(err, &ue) && ae.StatusCode < 500
}

// gatewayTLSClient is the HTTP client of requests to gateways under TLS.
func gatewayTLSClient(tc *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = 32
	t.TLSClientConfig = tc.Clone()
	return &http.Client{Transport: t}
}

// sendGateway sends one request to one gateway. The attempt's timeout
// lasts until the response body is closed.
func (c *Client) sendGateway(ctx context.Context, gw, method, pathQuery string, body []byte, timeout time.Duration) (*http.Response, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, gw+pathQuery, rd)
	if err != nil {
		cancel()
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "meridian-go-client")
	if c.cfg.Token != "" {
		req.Header.Set("X-Meridian-Token", c.cfg.Token)
	}
	resp, err := c.gwHTTP.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody ends a request's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
