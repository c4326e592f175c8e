package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/failover"

	"github.com/meridian-sd/meridian/region/probe"
)

// ProxyConfig tunes /v1/proxy.
type ProxyConfig struct {
	DialTimeout           time.Duration // default 2s
	ResponseHeaderTimeout time.Duration // default 30s
	MaxRetries            int           // other endpoints tried after a connection error (default 2, at most maxProxyRetries)
	// MaxInFlight caps the requests this gateway proxies at once (each
	// has at most one dial in flight); more are answered 503 with
	// Retry-After at once. Default 512.
	MaxInFlight int
	// Outlier ejection (Envoy's outlier_detection): Consecutive 5xx or
	// connection failures eject an endpoint for BaseEjection x the number of
	// times it was ejected, at most MaxEjection, and never more than
	// MaxEjectionPercent of a service's endpoints (at least one).
	Consecutive        int           // default 5
	BaseEjection       time.Duration // default 30s
	MaxEjection        time.Duration // default 300s
	MaxEjectionPercent float64       // default 50
}

func (c ProxyConfig) withDefaults() ProxyConfig {
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = 30 * time.Second
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 2
	}
	c.MaxRetries = min(c.MaxRetries, maxProxyRetries)
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 512
	}
	if c.Consecutive <= 0 {
		c.Consecutive = 5
	}
	if c.BaseEjection <= 0 {
		c.BaseEjection = 30 * time.Second
	}
	if c.MaxEjection <= 0 {
		c.MaxEjection = 300 * time.Second
	}
	if c.MaxEjectionPercent <= 0 {
		c.MaxEjectionPercent = 50
	}
	return c
}

// maxProxyBody is how much of an idempotent request's body is buffered so
// it can be sent again to another endpoint.
const maxProxyBody = 1 << 20

// maxProxyRetries bounds ProxyConfig.MaxRetries: one proxied request
// makes at most maxProxyRetries+1 attempts.
const maxProxyRetries = 8

// proxy forwards /v1/proxy/{service}/{path...} to picked endpoints.
type proxy struct {
	s        *Server
	cfg      ProxyConfig
	base     *http.Transport
	outliers outliers
	inFlight chan struct{} // one token per request being proxied
}

func newProxy(s *Server, cfg ProxyConfig) *proxy {
	cfg = cfg.withDefaults()
	// Every dial, after DNS resolution, goes through the egress policy.
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second, ControlContext: probe.EgressControl(s.cfg.Egress)}
	return &proxy{s: s, cfg: cfg, outliers: outliers{m: map[string]*outlier{}}, inFlight: make(chan struct{}, cfg.MaxInFlight),
		base: &http.Transport{DialContext: d.DialContext, ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
			MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
}

func endpointID(ep failover.Endpoint) string { return ep.Region + "/" + ep.Service + "/" + ep.ID }

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

type proxyCtxKey struct{}

// proxyRequest is what the transport needs to know about one request.
type proxyRequest struct {
	service   string
	lb        string // picker: p2c (default) or X-Meridian-LB
	endpoints []failover.Endpoint
	// firstLevel: endpoints[:firstLevel] is the level drawn for this request
	firstLevel int
	body       []byte // buffered body of an idempotent request, for retries
	retryable  bool
}

func (p *proxy) handle(w http.ResponseWriter, r *http.Request) {
	if p.s.loading(w) {
		return
	}
	if !p.admit(w, r) {
		return
	}
	defer func() { <-p.inFlight }()
	service := r.PathValue("service")
	// Routing knobs come from headers (X-Meridian-Zone, X-Meridian-Policy,
	// X-Meridian-LB), so the backend's query string is passed on untouched.
	rq := r.Clone(r.Context())
	rq.URL.RawQuery = ""
	if z := r.Header.Get("X-Meridian-Zone"); z != "" {
		rq.URL.RawQuery = "zone=" + z
	}
	if pol := r.Header.Get("X-Meridian-Policy"); pol != "" {
		if rq.URL.RawQuery != "" {
			rq.URL.RawQuery += "&"
		}
		rq.URL.RawQuery += "policy=" + pol
	}
	start := time.Now()
	_, d, err := p.s.route(rq)
	p.s.metrics.lookup(r.Context(), "proxy", lookupResult(d, err), d.Failover, time.Since(start))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if len(d.Endpoints) == 0 {
		writeError(w, http.StatusServiceUnavailable, "service", "no endpoint of "+service+": "+d.Explanation)
		return
	}
	// The level this request goes to (by the decision's shares) comes
	// first; the other levels' endpoints are there for retries.
	first := p.s.pickers.level(d, "p2c", "")
	eps := append([]failover.Endpoint(nil), first...)
	for _, ep := range d.Endpoints {
		if ep.Priority != first[0].Priority {
			eps = append(eps, ep)
		}
	}
	lb := r.Header.Get("X-Meridian-LB")
	if lb == "" {
		lb = "p2c"
	}
	if _, err := p.s.pickers.get(service, lb); err != nil {
		writeStoreError(w, err)
		return
	}
	preq := &proxyRequest{service: service, lb: lb, endpoints: eps, firstLevel: len(first), retryable: idempotent(r)}
	if preq.retryable && r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxProxyBody+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "body", "reading the request body: "+err.Error())
			return
		}
		if len(b) > maxProxyBody {
			// Too large to replay: stream it, without retries.
			preq.retryable = false
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
		} else {
			preq.body = b
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
	}

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "meridian-endpoint" // chosen per attempt by the transport
			pr.Out.URL.Path = "/" + r.PathValue("path")
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = r.URL.RawQuery
			pr.Out.Host = ""
			pr.SetXForwarded()
			p.s.cfg.ACL.stripToken(r, pr.Out.Header) // the service never sees a Meridian secret
			stripControlHeaders(pr.Out.Header)
			addVia(pr.Out.Header)
			// W3C trace context: ReverseProxy copies the caller's
			// traceparent and tracestate like any end-to-end header;
			// RoundTrip replaces them with each attempt's span context
			// when tracing is on.
		},
		Transport: p,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "", "proxying to "+service+": "+err.Error())
		},
	}
	rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyCtxKey{}, preq)))
}

// RoundTrip sends one proxied request, trying another endpoint after a
// connection error when the request may be sent twice.
func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	preq, _ := req.Context().Value(proxyCtxKey{}).(*proxyRequest)
	if preq == nil {
		return nil, errors.New("proxy: request without routing")
	}
	pk, err := p.s.pickers.get(preq.service, preq.lb)
	if err != nil {
		return nil, err
	}
	p2c, _ := pk.(*failover.P2C)
	tried := map[string]bool{}
	var lastErr error
	for attempt := 0; attempt <= p.cfg.MaxRetries; attempt++ {
		now := time.Now()
		var cands []failover.Endpoint
		for _, group := range [][]failover.Endpoint{preq.endpoints[:preq.firstLevel], preq.endpoints[preq.firstLevel:]} {
			for _, ep := range group {
				id := endpointID(ep)
				if !tried[id] && !p.outliers.ejected(id, now) {
					cands = append(cands, ep)
				}
			}
			if len(cands) > 0 {
				break // the drawn level while it has candidates
			}
		}
		if len(cands) == 0 {
			for _, ep := range preq.endpoints { // all ejected: better than nothing
				if !tried[endpointID(ep)] {
					cands = append(cands, ep)
				}
			}
		}
		ep, ok := pk.Pick(cands, "")
		if !ok {
			break
		}
		id := endpointID(ep)
		tried[id] = true
		if pol := p.s.cfg.Egress; pol != nil {
			// An IP literal the policy refuses is not even tried; a
			// hostname is checked by the dialer once resolved.
			if err := pol.CheckAddress(ep.Address, ep.Port); err != nil {
				lastErr = fmt.Errorf("%s: %w", id, err)
				continue
			}
		}
		out := req.Clone(req.Context())
		out.URL.Host = net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
		if preq.body != nil {
			out.Body = io.NopCloser(bytes.NewReader(preq.body))
			out.ContentLength = int64(len(preq.body))
		}
		if p2c != nil {
			p2c.Start(id)
		}
		ctx, span := p.s.tracer.Start(req.Context(), "proxy.attempt", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(append(p.s.spanAttrs[:len(p.s.spanAttrs):len(p.s.spanAttrs)],
				attrService.String(preq.service),
				attribute.String("meridian.proxy.endpoint", id),
				attribute.String("meridian.proxy.endpoint_region", ep.Region),
				attribute.Int("meridian.proxy.attempt", attempt),
				attribute.String("server.address", ep.Address),
				attribute.Int("server.port", ep.Port),
				attribute.String("http.request.method", out.Method),
			)...))
		p.s.tel.Propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
		start := time.Now()
		resp, err := p.base.RoundTrip(out)
		elapsed := time.Since(start)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else {
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
			if resp.StatusCode >= 500 {
				span.SetStatus(codes.Error, resp.Status)
			}
		}
		span.End()
		refused := err != nil && isEgressRefusal(err)
		failed := (err != nil && !refused) || (err == nil && resp.StatusCode >= 500)
		if p2c != nil {
			p2c.Done(id)
			if !refused {
				p2c.Observe(time.Now(), id, elapsed, failed)
			}
		}
		if refused {
			// Nothing was sent: another endpoint may be tried whatever
			// the method.
			lastErr = fmt.Errorf("%s (%s): %w", id, out.URL.Host, err)
			continue
		}
		if failed {
			p.outliers.failure(id, preq.service, len(preq.endpoints), time.Now(), p.cfg)
		} else {
			p.outliers.success(id)
		}
		if err == nil {
			return resp, nil
		}
		lastErr = fmt.Errorf("%s (%s): %w", id, out.URL.Host, err)
		if !preq.retryable || req.Context().Err() != nil {
			return nil, lastErr
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no endpoint left to try")
	}
	return nil, lastErr
}

// maxOutliers bounds the endpoints outlier detection keeps state for; past
// it the ones not ejected now are forgotten (a deregistered endpoint's
// entry would otherwise stay for ever).
const maxOutliers = 16384

// prune drops the entries of endpoints that are not ejected now. The
// caller holds o.mu.
func (o *outliers) prune(now time.Time) {
	for id, e := range o.m {
		if !now.Before(e.until) {
			delete(o.m, id)
		}
	}
}

// outliers is passive outlier detection over proxied responses.
type outliers struct {
	mu sync.Mutex
	m  map[string]*outlier
}

type outlier struct {
	service     string
	consecutive int
	ejections   int
	until       time.Time
}

func (o *outliers) ejected(id string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.m[id]
	return e != nil && now.Before(e.until)
}

func (o *outliers) success(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.m[id]; e != nil {
		e.consecutive = 0
	}
}

// failure counts a 5xx or a connection failure and ejects the endpoint
// after cfg.Consecutive in a row, unless that would eject more than the
// allowed share of the service's endpoints.
func (o *outliers) failure(id, service string, endpoints int, now time.Time, cfg ProxyConfig) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.m[id]
	if e == nil {
		if len(o.m) >= maxOutliers {
			o.prune(now)
		}
		e = &outlier{service: service}
		o.m[id] = e
	}
	e.consecutive++
	if e.consecutive < cfg.Consecutive || now.Before(e.until) {
		return
	}
	ejected := 0
	for _, x := range o.m {
		if x.service == service && now.Before(x.until) {
			ejected++
		}
	}
	allowed := max(1, int(float64(endpoints)*cfg.MaxEjectionPercent/100))
	if ejected >= allowed {
		return
	}
	e.ejections++
	e.consecutive = 0
	e.until = now.Add(min(cfg.BaseEjection*time.Duration(e.ejections), cfg.MaxEjection))
}
