package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/observability"
	"github.com/meridian-sd/meridian/region"
)

// metrics are the gateway's OpenTelemetry instruments. Through the
// Prometheus reader they read as (every series has a region label, the
// gateway's region):
//
//	meridian_http_requests_total{route,method,code}        requests by route
//	meridian_http_request_duration_seconds{route}          request latency (blocking queries included)
//	meridian_store_writes_total{op,result}                  registry writes
//	meridian_lookups_total{api,result,failover}             lookups: api lookup|pick|proxy|service|dns, result ok|empty|error
//	meridian_lookup_duration_seconds{api}                   time to answer a lookup (after any blocking wait; proxy: routing only)
//	meridian_catalog_version, meridian_cache_age_seconds, meridian_store_up
//	meridian_instances{service,status}                      this region's instances
//	meridian_registry_instances{catalog_region}             instances per catalog held: this region's and each replica
//	meridian_replica_staleness_seconds{catalog_region}      time since a replica's last successful sync
//	meridian_replica_version{catalog_region}, meridian_replica_stale{catalog_region}
//	meridian_gossip_members{member_region,status}           gateways in the gossip pool by status
//	meridian_http_refused_total{reason}                     connections and requests refused by a limit
//
// The federation package adds meridian_sync_* (fetch durations, bytes,
// changes) and the region package meridian_health_check* (probe results).
type metrics struct {
	opts          optCache
	region        attribute.KeyValue
	requests      *counterVec // metrics_counters.go
	latency       *histVec    // metrics_histograms.go
	writes        metric.Int64Counter
	lookups       *lookupCounters
	lookupLatency *histVec
	refusals      metric.Int64Counter
}

// latencyBuckets are the request latency histogram's bounds, in seconds.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 300}

// lookupLatencyBuckets are the lookup latency histogram's bounds, in seconds.
var lookupLatencyBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}

// newMetrics makes the instruments on mp and registers the gauges, read
// from the cache and federator at collection time.
func newMetrics(mp metric.MeterProvider, producers *observability.Producers, cfg *Config) *metrics {
	m := mp.Meter(instrumentationName)
	g := &metrics{region: attribute.String("region", cfg.Region)}
	// Instrument errors come only from invalid names or units, fixed here;
	// the SDK returns a working instrument alongside them anyway.
	g.requests = newCounterVec(m, "meridian.http.requests", metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests by route, method and status code."))
	g.latency = newHistVec(m, producers, "meridian.http.request.duration", "s",
		"HTTP request latency by route (blocking queries included).", latencyBuckets)
	g.writes, _ = m.Int64Counter("meridian.store.writes", metric.WithUnit("{write}"),
		metric.WithDescription("Writes to the region's store by operation and result (ok, not_found, unavailable)."))
	g.lookups = newLookupCounters(newCounterVec(m, "meridian.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups by API (lookup, pick, proxy, service), result (ok, empty, error) and whether traffic left the region (failover).")), g.region)
	g.lookupLatency = newHistVec(m, producers, "meridian.lookup.duration", "s",
		"Time to answer a lookup, after any blocking wait (proxy: the routing decision only).", lookupLatencyBuckets)
	for i, api := range lookupAPIs {
		g.lookups.latency[i] = g.lookupLatency.get(optKey{a: "lookup-latency", b: api}, g.region, attribute.String("api", api))
	}

	g.refusals, _ = m.Int64Counter("meridian.http.refused", metric.WithUnit("{refusal}"),
		metric.WithDescription("Connections and requests refused by a limit (max_connections, max_connections_per_client, write_rate, catalog_watches)."))

	version, _ := m.Int64ObservableGauge("meridian.catalog.version", metric.WithUnit("{version}"),
		metric.WithDescription("The cached catalog version of this region."))
	age, _ := m.Float64ObservableGauge("meridian.cache.age", metric.WithUnit("s"),
		metric.WithDescription("Seconds since the cache last read the store."))
	up, _ := m.Int64ObservableGauge("meridian.store.up",
		metric.WithDescription("1 when the last read of the store succeeded."))
	instances, _ := m.Int64ObservableGauge("meridian.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Registered instances of this region by service and status."))
	registry, _ := m.Int64ObservableGauge("meridian.registry.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances per catalog this gateway holds: its own region's and each replica's (catalog_region)."))
	staleness, _ := m.Float64ObservableGauge("meridian.replica.staleness", metric.WithUnit("s"),
		metric.WithDescription("Seconds since each replica's last successful sync (0 for this region)."))
	repVersion, _ := m.Int64ObservableGauge("meridian.replica.version", metric.WithUnit("{version}"),
		metric.WithDescription("Catalog version of each replica (and of this region)."))
	repStale, _ := m.Int64ObservableGauge("meridian.replica.stale",
		metric.WithDescription("1 when a replica may be out of date (unreachable region, behind the advertised version, or failed last fetch)."))
	members, _ := m.Int64ObservableGauge("meridian.gossip.members", metric.WithUnit("{gateway}"),
		metric.WithDescription("Gateways in the gossip pool by region and status (alive, suspect, failed, left)."))

	cache, fed, now := cfg.Cache, cfg.Fed, cfg.Now
	registerStoreLossMetrics(m, cache, g.region)
	regionOnly := metric.WithAttributeSet(attribute.NewSet(g.region))
	m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		f := cache.Freshness()
		o.ObserveInt64(version, int64(f.Version), regionOnly)
		o.ObserveFloat64(age, f.Age.Seconds(), regionOnly)
		storeUp := int64(1)
		if f.StoreErr != nil {
			storeUp = 0
		}
		o.ObserveInt64(up, storeUp, regionOnly)
		var sums []region.ServiceSummary
		var local int
		cache.Read(func(c *region.Catalog) { sums, local = c.Services(), c.Len() })
		for _, s := range sums {
			svc := attribute.String("service", s.Name)
			o.ObserveInt64(instances, int64(s.Passing), metric.WithAttributes(g.region, svc, attribute.String("status", "passing")))
			o.ObserveInt64(instances, int64(s.Warning), metric.WithAttributes(g.region, svc, attribute.String("status", "warning")))
			o.ObserveInt64(instances, int64(s.Critical), metric.WithAttributes(g.region, svc, attribute.String("status", "critical")))
		}
		own := metric.WithAttributes(g.region, attribute.String("catalog_region", cfg.Region))
		o.ObserveInt64(registry, int64(local), own)
		o.ObserveFloat64(staleness, 0, own)
		o.ObserveInt64(repVersion, int64(f.Version), own)
		o.ObserveInt64(repStale, boolInt(f.Stale), own)
		if fed == nil {
			return nil
		}
		type replicaStat struct {
			name       string
			size       int
			age        time.Duration
			version    uint64
			stale      bool
			hasReplica bool
		}
		type memberStat struct {
			region string
			counts map[federation.MemberStatus]int
		}
		var reps []replicaStat
		var mems []memberStat
		t := now()
		fed.Read(func(c *federation.Core) {
			for _, v := range c.Regions() {
				ms := memberStat{region: v.Name, counts: map[federation.MemberStatus]int{}}
				for _, gw := range v.Gateways {
					ms.counts[gw.Status]++
				}
				mems = append(mems, ms)
				if v.Local {
					continue
				}
				rs := replicaStat{name: v.Name, stale: v.Stale}
				if v.Replica != nil {
					rs.hasReplica = true
					rs.size, rs.version, rs.age = v.Replica.Catalog.Len(), v.Replica.Version(), max(t.Sub(v.Replica.LastSync), 0)
				}
				reps = append(reps, rs)
			}
		})
		for _, r := range reps {
			at := metric.WithAttributes(g.region, attribute.String("catalog_region", r.name))
			o.ObserveInt64(repStale, boolInt(r.stale), at)
			if !r.hasReplica {
				continue
			}
			o.ObserveInt64(registry, int64(r.size), at)
			o.ObserveFloat64(staleness, r.age.Seconds(), at)
			o.ObserveInt64(repVersion, int64(r.version), at)
		}
		for _, ms := range mems {
			for _, st := range []federation.MemberStatus{federation.StatusAlive, federation.StatusSuspect, federation.StatusFailed, federation.StatusLeft} {
				n, seen := ms.counts[st]
				if !seen && st == federation.StatusSuspect {
					continue // only models that see suspicion report it
				}
				o.ObserveInt64(members, int64(n), metric.WithAttributes(g.region,
					attribute.String("member_region", ms.region), attribute.String("status", st.String())))
			}
		}
		return nil
	}, version, age, up, instances, registry, staleness, repVersion, repStale, members)
	return g
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// instrument wraps h (served at pattern, named route in the metrics): a
// server span per request (Server.serverSpan), counted and timed.
func (s *Server) instrument(pattern, route string, h http.HandlerFunc) http.HandlerFunc {
	m := s.metrics
	latency := m.latency.get(optKey{a: "request-latency", b: route}, m.region, attribute.String("route", route))
	requests := &routeCounter{vec: m.requests, region: m.region, route: route}
	names := newSpanNames(pattern)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, span := s.serverSpan(r, names)
		sw := statusWriters.Get().(*statusWriter)
		*sw = statusWriter{ResponseWriter: w, code: http.StatusOK, start: start, spanless: !span.SpanContext().IsValid()}
		h(sw, r)
		endServerSpan(span, sw.code)
		elapsed := sw.elapsed
		if elapsed == 0 {
			elapsed = time.Since(start)
		}
		latency.record(metricsContext(sw, r), elapsed.Seconds())
		requests.add(spanMethod(r.Method), sw.code)
		// Handlers never keep their writer past their return (net/http's
		// rule for the writer it hands them), so it serves the next
		// request; one allocation fewer per request.
		*sw = statusWriter{}
		statusWriters.Put(sw)
	}
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// refused counts one connection or request refused by a limit.
func (m *metrics) refused(ctx context.Context, reason string) {
	k := optKey{a: "refused", b: reason}
	o, ok := m.opts.load(k)
	if !ok {
		o = m.opts.store(k, m.region, attribute.String("reason", reason))
	}
	m.refusals.Add(ctx, 1, o)
}

// write counts one store write.
func (m *metrics) write(ctx context.Context, op, result string) {
	k := optKey{a: "write", b: op, c: result}
	o, ok := m.opts.load(k)
	if !ok {
		o = m.opts.store(k, m.region, attribute.String("op", op), attribute.String("result", result))
	}
	m.writes.Add(ctx, 1, o)
}

// lookup counts one lookup and its duration.
func (m *metrics) lookup(ctx context.Context, api, result string, failover bool, d time.Duration) {
	m.lookups.add(api, result, failover)
	if i := lookupAPIIndex(api); i >= 0 {
		m.lookups.latency[i].record(ctx, d.Seconds())
		return
	}
	m.lookupLatency.get(optKey{a: "lookup-latency", b: api}, m.region, attribute.String("api", api)).record(ctx, d.Seconds())
}

// optKey names one combination of attribute values of a measurement.
type optKey struct {
	a, b, c string
	n       int
	flag    bool
}

// optCache keeps the attribute sets of measurements made on every request,
// built once: building a set sorts and hashes its attributes, which would
// otherwise cost more than the handler it measures. The combinations are
// few (routes x methods x codes, APIs x results), and the cache is bounded
// anyway.
type optCache struct {
	mu sync.RWMutex
	m  map[optKey]metric.MeasurementOption
}

const optCacheMax = 4096

func (c *optCache) load(k optKey) (metric.MeasurementOption, bool) {
	c.mu.RLock()
	o, ok := c.m[k]
	c.mu.RUnlock()
	return o, ok
}

func (c *optCache) store(k optKey, kvs ...attribute.KeyValue) metric.MeasurementOption {
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	c.mu.Lock()
	if c.m == nil || len(c.m) >= optCacheMax {
		c.m = make(map[optKey]metric.MeasurementOption)
	}
	c.m[k] = o
	c.mu.Unlock()
	return o
}

type statusWriter struct {
	http.ResponseWriter
	code int
	// start is when instrument began the request; elapsed, when set (by
	// lookupSince), the time from start to the handler's last clock
	// reading: instrument's latency reuses both rather than read the
	// clock again.
	start   time.Time
	elapsed time.Duration
	// spanless: the request has no span context (tracing off and no
	// caller's traceparent), so its measurements can have no exemplar's
	// trace: metricsContext skips the walk up its context.
	spanless bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
