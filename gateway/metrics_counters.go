package gateway

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// counterVec is a monotonic counter counted in atomic integers, one per
// attribute combination, and exported through an observable counter of
// the name, unit and description the synchronous counter had: an
// observable counter is a cumulative monotonic sum as well, so /metrics
// and OTLP read the same series and values. The synchronous Add resolves
// and deduplicates its attribute set and finds its series in the SDK on
// every call, even with the set pre-built (metric.WithAttributeSet);
// counted here, a request costs one atomic add once its series is known.
//
// The combinations are bounded by their callers (routes x methods x status
// codes, APIs x results x failover), so series are never dropped.
type counterVec struct {
	series seriesSet[counterSeries]
}

// seriesSet is a vector's series by attribute combination, kept in
// creation order (the order they are reported in).
type seriesSet[S any] struct {
	mu    sync.RWMutex
	byKey map[optKey]*S
	order []*S
}

// get returns the series of k, made by create when it is new.
func (m *seriesSet[S]) get(k optKey, create func() *S) *S {
	m.mu.RLock()
	s := m.byKey[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.byKey[k]; s == nil {
		if m.byKey == nil {
			m.byKey = map[optKey]*S{}
		}
		s = create()
		m.byKey[k] = s
		m.order = append(m.order, s)
	}
	return s
}

// all returns the series made so far, in creation order. Later gets only
// append beyond its length, so the caller may read it without the lock.
func (m *seriesSet[S]) all() []*S {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.order
}

// counterSeries is one attribute combination of a counterVec.
type counterSeries struct {
	n   atomic.Int64
	opt metric.ObserveOption // its attribute set, built once
}

// add adds n to the series.
func (s *counterSeries) add(n int64) { s.n.Add(n) }

// newCounterVec makes the observable counter name on m and registers the
// callback that reports every series of the returned vector.
func newCounterVec(m metric.Meter, name string, opts ...metric.Int64ObservableCounterOption) *counterVec {
	v := &counterVec{}
	// Instrument errors come only from invalid names or units, fixed by
	// the callers; the SDK returns a working instrument alongside them.
	c, _ := m.Int64ObservableCounter(name, opts...)
	m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range v.series.all() {
			o.ObserveInt64(c, s.n.Load(), s.opt)
		}
		return nil
	}, c)
	return v
}

// get returns the series of k, making it with the attributes kvs (the
// combination k names) when it is new.
func (v *counterVec) get(k optKey, kvs ...attribute.KeyValue) *counterSeries {
	return v.series.get(k, func() *counterSeries {
		return &counterSeries{opt: metric.WithAttributeSet(attribute.NewSet(kvs...))}
	})
}

// routeCounter is a route's view of meridian.http.requests: the series its
// requests last counted in is remembered, so the usual request (the same
// method and status as the one before) finds it without a map lookup.
type routeCounter struct {
	vec    *counterVec
	region attribute.KeyValue
	route  string
	last   atomic.Pointer[routeSeries]
}

type routeSeries struct {
	method string
	code   int
	s      *counterSeries
}

// add counts one request of method answered with code.
func (c *routeCounter) add(method string, code int) {
	if l := c.last.Load(); l != nil && l.code == code && l.method == method {
		l.s.add(1)
		return
	}
	s := c.vec.get(optKey{a: "request", b: c.route, c: method, n: code},
		c.region, attribute.String("route", c.route), attribute.String("method", method), attribute.String("code", strconv.Itoa(code)))
	c.last.Store(&routeSeries{method: method, code: code, s: s})
	s.add(1)
}

// lookupAPIs are the APIs meridian.lookups counts (metrics.lookup's api);
// their series are found by index. Another name works too, through the
// vector's map.
var lookupAPIs = [...]string{"lookup", "pick", "proxy", "service", "dns"}

// lookupResults are metrics.lookup's results.
var lookupResults = [...]string{"ok", "empty", "error"}

func lookupAPIIndex(api string) int {
	for i, a := range lookupAPIs {
		if a == api {
			return i
		}
	}
	return -1
}

func lookupResultIndex(result string) int {
	for i, r := range lookupResults {
		if r == result {
			return i
		}
	}
	return -1
}

// lookupCounters are the series of meridian.lookups and the attribute
// options of meridian.lookup.duration for the known APIs and results.
type lookupCounters struct {
	vec     *counterVec
	region  attribute.KeyValue
	series  [len(lookupAPIs)][len(lookupResults)][2]atomic.Pointer[counterSeries]
	latency [len(lookupAPIs)]*histSeries // meridian.lookup.duration's, set by newMetrics
}

func newLookupCounters(vec *counterVec, region attribute.KeyValue) *lookupCounters {
	return &lookupCounters{vec: vec, region: region}
}

// add counts one lookup.
func (c *lookupCounters) add(api, result string, failover bool) {
	ai, ri := lookupAPIIndex(api), lookupResultIndex(result)
	var slot *atomic.Pointer[counterSeries]
	if ai >= 0 && ri >= 0 {
		slot = &c.series[ai][ri][boolIndex(failover)]
		if s := slot.Load(); s != nil {
			s.add(1)
			return
		}
	}
	s := c.vec.get(optKey{a: "lookup", b: api, c: result, flag: failover},
		c.region, attribute.String("api", api), attribute.String("result", result), attribute.Bool("failover", failover))
	if slot != nil {
		slot.Store(s)
	}
	s.add(1)
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
