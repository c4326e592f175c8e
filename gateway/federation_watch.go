package gateway

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meridian-sd/meridian/federation"
)

// catalogWatches counts and bounds the watches (blocking sync requests,
// federation.CatalogPath with &wait=) a gateway holds: in all
// (Limits.MaxCatalogWatches) and per client IP
// (Limits.MaxCatalogWatchesPerClient). A client is its IP, not its token:
// every gateway of a federation sends the same replication token.
type catalogWatches struct {
	mu       sync.Mutex
	total    int
	byClient map[string]int

	requests atomic.Int64 // sync requests served, watches or not
	watches  atomic.Int64 // watches received (refused ones too)
	waited   atomic.Int64 // watches that waited for a change
	refused  atomic.Int64 // watches refused by a bound
}

// acquire takes one watch slot for client; false when a bound is reached.
func (c *catalogWatches) acquire(client string, l Limits) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (l.MaxCatalogWatches > 0 && c.total >= l.MaxCatalogWatches) ||
		(l.MaxCatalogWatchesPerClient > 0 && c.byClient[client] >= l.MaxCatalogWatchesPerClient) {
		return false
	}
	if c.byClient == nil {
		c.byClient = map[string]int{}
	}
	c.total++
	c.byClient[client]++
	return true
}

func (c *catalogWatches) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.byClient[client]--; c.byClient[client] <= 0 {
		delete(c.byClient, client)
	}
}

// waitCatalog is the waiting half of a watch: it parses &wait=, takes a
// slot, and while this gateway's catalog is at since holds the request
// until the catalog moves, the wait (capped at MaxWait, plus up to 1/16 of
// jitter, as Consul's blocking queries) passes, or the server drains. A
// catalog at another version answers at once: behind since (this gateway's
// cache lags the store, or the region was reset) the store's answer says
// what the watcher needs. It returns false when it wrote an error.
func (s *Server) waitCatalog(w http.ResponseWriter, r *http.Request, since uint64) bool {
	s.watches.watches.Add(1)
	v := r.URL.Query().Get("wait")
	wait, err := time.ParseDuration(v)
	if err != nil || wait < 0 {
		writeError(w, http.StatusBadRequest, "wait", "must be a duration such as 5m, got "+strconv.Quote(v))
		return false
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	if !s.watches.acquire(client, s.cfg.Limits) {
		s.watches.refused.Add(1)
		s.metrics.refused(r.Context(), "catalog_watches")
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "", "too many catalog watches held for this client or in all "+
			"(at most "+strconv.Itoa(s.cfg.Limits.MaxCatalogWatchesPerClient)+" per client IP, "+
			strconv.Itoa(s.cfg.Limits.MaxCatalogWatches)+" in all); retry later")
		return false
	}
	defer s.watches.release(client)
	wait = min(wait, s.cfg.MaxWait)
	w.Header().Set(federation.WatchHeader, wait.String())
	if wait == 0 || !s.cfg.Cache.Loaded() || s.cfg.Cache.Version() != since {
		return true
	}
	s.watches.waited.Add(1)
	wait += rand.N(wait/16 + 1)
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	stop := context.AfterFunc(s.drain, cancel)
	s.cfg.Cache.Wait(ctx, since)
	stop()
	cancel()
	return true
}

// register adds the watch instruments (Prometheus names):
//
//	meridian_federation_watches{region}               watches held now
//	meridian_federation_watch_requests_total{region}  watch requests received
//
// Refusals count in meridian_http_refused_total{reason="catalog_watches"}.
func (c *catalogWatches) register(mp metric.MeterProvider, regionName string) {
	m := mp.Meter(instrumentationName)
	held, _ := m.Int64ObservableGauge("meridian.federation.watches", metric.WithUnit("{watch}"),
		metric.WithDescription("Watches (blocking sync requests of other regions' gateways, the push path) this gateway holds now."))
	received, _ := m.Int64ObservableCounter("meridian.federation.watch.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Watch requests this gateway received (answered, refused or failed)."))
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("region", regionName)))
	m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		c.mu.Lock()
		n := c.total
		c.mu.Unlock()
		o.ObserveInt64(held, int64(n), attrs)
		o.ObserveInt64(received, c.watches.Load(), attrs)
		return nil
	}, held, received)
}
