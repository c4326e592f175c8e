// Package httpsync carries the federation sync protocol over HTTP(S):
// the fetch client (FetchWith, Transport) with its traces and metrics.
package httpsync

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/federation"
)

// Fetch asks the gateway at addr for region's catalog since a version and
// returns the result, the full catalog built (off any lock) when the answer
// is a snapshot.
//
// Each fetch is a client span "federation.sync" whose W3C trace context
// travels in the request headers, so the serving gateway's span joins the
// same trace, and it is counted in the meridian.sync.* metrics. Both go
// where the SyncTelemetry attached to ctx says (WithSyncTelemetry), else to
// the OpenTelemetry globals.
func Fetch(ctx context.Context, c *http.Client, addr, regionName string, since uint64) (res federation.SyncResult, err error) {
	return FetchWith(ctx, c, FetchOptions{}, addr, regionName, since)
}

// FetchOptions say how sync fetches reach a gateway.
type FetchOptions struct {
	// Scheme is "http" (when empty) or "https".
	Scheme string
	// CheckPeer, when set, vets every answer before it is read: the
	// connection state of the response (nil over plain HTTP) must show a
	// gateway allowed to serve regionName's catalog. An error fails the
	// fetch.
	CheckPeer func(addr, regionName string, cs *tls.ConnectionState) error
}

// FetchWith is Fetch with options (HTTPS, the per-region peer check).
func FetchWith(ctx context.Context, c *http.Client, o FetchOptions, addr, regionName string, since uint64) (res federation.SyncResult, err error) {
	return fetchCatalog(ctx, c, o, addr, regionName, since, 0)
}

// WatchWith is a watch (see federation.CatalogPath): FetchWith with
// &wait=wait, so the gateway answers when its catalog moves past since or
// wait passes. ctx must allow for the wait: the client's own Timeout, if
// any, must be longer than wait + wait/16. It is a client span
// "federation.watch" and counts in meridian.sync.bytes and
// meridian.sync.changes, not in meridian.sync.duration (a watch lasts as
// long as nothing changes).
func WatchWith(ctx context.Context, c *http.Client, o FetchOptions, addr, regionName string, since uint64, wait time.Duration) (federation.SyncResult, error) {
	return fetchCatalog(ctx, c, o, addr, regionName, since, max(wait, time.Millisecond))
}

// fetchCatalog is a fetch (wait 0) or a watch.
func fetchCatalog(ctx context.Context, c *http.Client, o FetchOptions, addr, regionName string, since uint64, wait time.Duration) (res federation.SyncResult, err error) {
	tel := syncTelemetryFrom(ctx)
	ins := tel.instruments()
	start := time.Now()
	spanName := "federation.sync"
	if wait > 0 {
		spanName = "federation.watch"
	}
	ctx, span := ins.tracer.Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("meridian.sync.peer_region", regionName),
			attribute.String("meridian.sync.peer_gateway", addr),
			attribute.Int64("meridian.sync.version_from", int64(since)),
			attribute.String("meridian.region", tel.Region),
		))
	var body countingReader
	defer func() {
		mode := "delta"
		if res.Full {
			mode = "full"
		}
		changes := len(res.Changes)
		if res.Full && res.Catalog != nil {
			changes = res.Catalog.Len()
		}
		result := "ok"
		if err != nil {
			result = "error"
			mode = "none"
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else {
			span.SetAttributes(
				attribute.Int64("meridian.sync.version_to", int64(res.Version)),
				attribute.Bool("meridian.sync.full", res.Full),
				attribute.Int("meridian.sync.changes", changes),
			)
		}
		span.SetAttributes(attribute.Int64("meridian.sync.bytes", body.n))
		span.End()
		attrs := metric.WithAttributeSet(attribute.NewSet(
			attribute.String("region", tel.Region),
			attribute.String("peer_region", regionName),
			attribute.String("mode", mode),
			attribute.String("result", result),
		))
		// The span's context is on ctx: exemplars link the two.
		if wait == 0 {
			ins.duration.Record(ctx, time.Since(start).Seconds(), attrs)
		}
		ins.bytes.Add(ctx, body.n, attrs)
		ins.changes.Add(ctx, int64(changes), attrs)
	}()

	scheme := o.Scheme
	if scheme == "" {
		scheme = "http"
	}
	q := "since=" + strconv.FormatUint(since, 10)
	if wait > 0 {
		q += "&wait=" + wait.String()
	}
	u := (&url.URL{Scheme: scheme, Host: addr, Path: federation.CatalogPath, RawQuery: q}).String()
	reqCtx := ctx
	if wait > 0 && o.CheckPeer != nil {
		// A watch is vetted as soon as it has a connection, not when the
		// answer comes: a gateway that may not serve the region must not
		// hold the watch for its whole wait.
		var cancel context.CancelCauseFunc
		reqCtx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		reqCtx = httptrace.WithClientTrace(reqCtx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if tc, ok := info.Conn.(*tls.Conn); ok {
				cs := tc.ConnectionState()
				if err := o.CheckPeer(addr, regionName, &cs); err != nil {
					cancel(err)
				}
			}
		}})
	}
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, u, nil)
	if err != nil {
		return federation.SyncResult{}, err
	}
	tel.propagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.Do(req)
	if err != nil {
		if cause := context.Cause(reqCtx); cause != nil && cause != reqCtx.Err() && ctx.Err() == nil {
			return federation.SyncResult{}, cause
		}
		return federation.SyncResult{}, err
	}
	defer resp.Body.Close()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if o.CheckPeer != nil {
		if err := o.CheckPeer(addr, regionName, resp.TLS); err != nil {
			return federation.SyncResult{}, err
		}
	}
	body.r = resp.Body
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(&body, 512))
		return federation.SyncResult{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	if wait > 0 && resp.Header.Get(federation.WatchHeader) == "" {
		return federation.SyncResult{}, fmt.Errorf("gateway %s does not hold watches (no %s header: an older version?)", addr, federation.WatchHeader)
	}
	cr, built, err := decodeAnswer(&body)
	if err != nil {
		return federation.SyncResult{}, fmt.Errorf("decoding catalog of %s: %w", regionName, err)
	}
	res, err = cr.Result(regionName) // a full answer's catalog is empty: its instances are in built
	if err != nil {
		return federation.SyncResult{}, fmt.Errorf("gateway %s %w", addr, err)
	}
	if res.Full && built != nil {
		res.Catalog = built.Catalog(cr.Version)
	}
	return res, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// SyncTelemetry says where Fetch sends its spans and metrics. Nil fields
// fall back to the OpenTelemetry globals (otel.GetTracerProvider,
// otel.GetMeterProvider, otel.GetTextMapPropagator).
type SyncTelemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// Region is the fetching gateway's region, the "region" attribute of
	// the sync metrics.
	Region string

	once sync.Once
	ins  *syncInstruments
}

type syncTelemetryKey struct{}

// WithSyncTelemetry returns a context whose fetches report to t. A gateway
// attaches it to the context its Federator runs in, so that gateways in
// one process (meridian dev, tests) keep their telemetry apart.
func WithSyncTelemetry(ctx context.Context, t *SyncTelemetry) context.Context {
	return context.WithValue(ctx, syncTelemetryKey{}, t)
}

// globalSync is the telemetry of fetches without WithSyncTelemetry; it
// resolves the globals on every use, so it follows otel.Set*.
var globalSync = &SyncTelemetry{}

func syncTelemetryFrom(ctx context.Context) *SyncTelemetry {
	if t, ok := ctx.Value(syncTelemetryKey{}).(*SyncTelemetry); ok && t != nil {
		return t
	}
	return globalSync
}

func (t *SyncTelemetry) propagator() propagation.TextMapPropagator {
	if t.Propagator != nil {
		return t.Propagator
	}
	return otel.GetTextMapPropagator()
}

// syncInstruments are Fetch's tracer and metric instruments.
type syncInstruments struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	bytes    metric.Int64Counter
	changes  metric.Int64Counter
}

const instrumentationName = "github.com/meridian-sd/meridian/federation"

func (t *SyncTelemetry) instruments() *syncInstruments {
	if t == globalSync {
		return newSyncInstruments(otel.GetTracerProvider(), otel.GetMeterProvider())
	}
	t.once.Do(func() {
		tp, mp := t.TracerProvider, t.MeterProvider
		if tp == nil {
			tp = otel.GetTracerProvider()
		}
		if mp == nil {
			mp = otel.GetMeterProvider()
		}
		t.ins = newSyncInstruments(tp, mp)
	})
	return t.ins
}

func newSyncInstruments(tp trace.TracerProvider, mp metric.MeterProvider) *syncInstruments {
	m := mp.Meter(instrumentationName)
	ins := &syncInstruments{tracer: tp.Tracer(instrumentationName)}
	// Instrument errors only come from invalid names or units, fixed here;
	// the SDK returns a working instrument alongside them anyway.
	ins.duration, _ = m.Float64Histogram("meridian.sync.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of catalog fetches from other regions' gateways, by peer region, mode (full, delta; none on error) and result."),
		metric.WithExplicitBucketBoundaries(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
	ins.bytes, _ = m.Int64Counter("meridian.sync.bytes", metric.WithUnit("By"),
		metric.WithDescription("Response bytes read by catalog fetches from other regions' gateways."))
	ins.changes, _ = m.Int64Counter("meridian.sync.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Changes (delta) or instances (full) received by catalog fetches."))
	return ins
}
