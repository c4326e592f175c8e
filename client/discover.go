package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
)

// LookupResult is a gateway's routing answer for a service
// (GET /v1/lookup/{service}), as the client holds it.
type LookupResult struct {
	Service    string
	FromRegion string // the answering gateway's region
	// Endpoints in order of preference, each with its region and priority.
	// Shared with other callers: treat as read-only.
	Endpoints []failover.Endpoint
	// Shares is the fraction of traffic per region, PriorityShares per
	// priority level.
	Shares         map[string]float64
	PriorityShares []float64
	Failover       bool // some traffic leaves the caller's region
	Panic          bool // health was ignored (below the panic threshold)
	Explanation    string
	// StaleRegions are the regions whose data the gateway knows to be
	// stale.
	StaleRegions []string
	// Index is the gateway's catalog version the answer is from.
	Index uint64

	// Stale is true when the client's last attempt to refresh the answer
	// failed (no gateway answered): the answer is the last one received.
	Stale bool
	// Age is, when Stale, the time since the answer was received; zero
	// while the watcher is connected.
	Age time.Duration
	// Err is why the last refresh failed, when Stale.
	Err error
}

// lookupWire is the body of GET /v1/lookup/{service}.
type lookupWire struct {
	Service    string `json:"service"`
	FromRegion string `json:"from_region"`
	failover.Decision
}

// watch is the cached answer for one service and the state of its
// background watcher.
type watch struct {
	service  string
	ready    chan struct{} // closed when the first fetch ended
	firstErr error         // the first fetch's error (the watch was dropped)

	mu       sync.Mutex
	res      LookupResult
	okAt     time.Time // when res was received
	err      error     // the last refresh's error; nil when it succeeded
	lastSeen map[string]bool
}

// Endpoints returns the service's endpoints, in order of preference. The
// first call for a service asks a gateway and starts a watcher that keeps
// the answer current; later calls answer from memory. While no gateway
// answers, the last answer keeps being returned (see Lookup for its age).
func (c *Client) Endpoints(ctx context.Context, service string) ([]failover.Endpoint, error) {
	res, err := c.Lookup(ctx, service)
	if err != nil {
		return nil, err
	}
	return slices.Clone(res.Endpoints), nil
}

// Lookup returns the routing answer for service, with its staleness. It
// fails only when the client never had an answer for the service.
//
// The watcher's blocking queries wake on changes to the local region's
// catalog (the X-Meridian-Index); changes seen only in other regions'
// replicas reach the client when the query's wait (WatchWait) ends.
func (c *Client) Lookup(ctx context.Context, service string) (LookupResult, error) {
	if err := region.ValidateService(service); err != nil {
		return LookupResult{}, fmt.Errorf("looking up %q: %w", service, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return LookupResult{}, ErrClosed
	}
	w := c.watches[service]
	if w != nil {
		c.mu.Unlock()
		select {
		case <-w.ready:
		case <-ctx.Done():
			return LookupResult{}, ctx.Err()
		}
		if w.firstErr != nil {
			return LookupResult{}, w.firstErr
		}
		return w.snapshot(time.Now()), nil
	}
	w = &watch{service: service, ready: make(chan struct{})}
	c.watches[service] = w
	c.mu.Unlock()

	res, err := c.fetchLookup(ctx, service, 0, false)
	if err != nil {
		c.mu.Lock()
		delete(c.watches, service)
		c.mu.Unlock()
		w.firstErr = fmt.Errorf("looking up %s: %w", service, err)
		close(w.ready)
		return LookupResult{}, w.firstErr
	}
	w.set(c, res, time.Now())
	close(w.ready)
	c.goBackground(func() { c.watchLoop(w) })
	return w.snapshot(time.Now()), nil
}

// fetchLookup asks a gateway for the service's routing answer; with block,
// a blocking query that returns once the catalog passes index or after
// WatchWait.
func (c *Client) fetchLookup(ctx context.Context, service string, index uint64, block bool) (LookupResult, error) {
	q := url.Values{}
	if c.cfg.Zone != "" {
		q.Set("zone", c.cfg.Zone)
	}
	if c.cfg.Policy != "" {
		q.Set("policy", c.cfg.Policy)
	}
	timeout := c.cfg.RequestTimeout
	if block {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", c.cfg.WatchWait.String())
		timeout += c.cfg.WatchWait + c.cfg.WatchWait/16
	}
	path := "/v1/lookup/" + url.PathEscape(service)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.gatewayDo(ctx, http.MethodGet, path, nil, timeout)
	if err != nil {
		return LookupResult{}, err
	}
	defer resp.Body.Close()
	var wire lookupWire
	if err := json.NewDecoder(resp.Body).Decode(&wire); err != nil {
		return LookupResult{}, fmt.Errorf("reading the lookup answer of %s: %w", service, err)
	}
	res := LookupResult{
		Service: wire.Service, FromRegion: wire.FromRegion, Endpoints: wire.Endpoints,
		Shares: wire.Shares, PriorityShares: wire.PriorityShares, Failover: wire.Failover, Panic: wire.Panic,
		Explanation: wire.Explanation, StaleRegions: wire.StaleRegions,
	}
	if res.Service == "" {
		res.Service = service
	}
	res.Index, _ = strconv.ParseUint(resp.Header.Get("X-Meridian-Index"), 10, 64)
	return res, nil
}

// watchLoop keeps w current with blocking queries until the client
// closes. When no gateway answers it backs off (full jitter, up to
// BackoffMax) and keeps the last answer; when a query returns with the
// index unchanged it backs off too, so a gateway that does not block is
// not polled in a tight loop.
func (c *Client) watchLoop(w *watch) {
	log := c.log.With("service", w.service)
	w.mu.Lock()
	index := w.res.Index
	w.mu.Unlock()
	fails, idle := 0, 0
	for c.ctx.Err() == nil {
		res, err := c.fetchLookup(c.ctx, w.service, index, index > 0)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			if w.fail(err) {
				log.Warn("discovery: no gateway answered; serving the last answer", "err", err)
			}
			if !sleep(c.ctx, c.backoff(fails)) {
				return
			}
			fails++
			continue
		}
		if fails > 0 {
			log.Info("discovery: gateway answering again", "gateway", c.Gateway(), "index", res.Index)
		}
		fails = 0
		w.set(c, res, time.Now())
		if res.Index == index {
			if !sleep(c.ctx, c.backoff(idle)) {
				return
			}
			idle++
		} else {
			idle = 0
		}
		index = res.Index
	}
}

// set stores a fresh answer and forgets the breaker and load state of
// endpoints that left it.
func (w *watch) set(c *Client, res LookupResult, now time.Time) {
	seen := make(map[string]bool, len(res.Endpoints))
	for i := range res.Endpoints {
		seen[res.Endpoints[i].Ref()] = true
	}
	w.mu.Lock()
	old := w.lastSeen
	w.res, w.okAt, w.err, w.lastSeen = res, now, nil, seen
	w.mu.Unlock()
	for ref := range old {
		if !seen[ref] {
			c.forget(ref)
		}
	}
}

// fail records a failed refresh; true when the previous one succeeded.
func (w *watch) fail(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	first := w.err == nil
	w.err = err
	return first
}

// snapshot returns the answer with its staleness at now.
func (w *watch) snapshot(now time.Time) LookupResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.res
	if w.err != nil {
		r.Stale, r.Age, r.Err = true, max(now.Sub(w.okAt), 0), w.err
	}
	return r
}
