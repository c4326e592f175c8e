package gateway

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// RoutingConfig is the routing policy per service (from the agent's
// --routing file); queries may override any field.
type RoutingConfig struct {
	Default  failover.Policy            `yaml:"default"`
	Services map[string]failover.Policy `yaml:"services"`
}

// Validate checks every policy, naming the service.
func (c *RoutingConfig) Validate() error {
	if err := c.Default.WithDefaults().Validate(); err != nil {
		return &region.FieldError{Field: "default", Msg: err.Error()}
	}
	for name, p := range c.Services {
		if err := region.ValidateService(name); err != nil {
			return &region.FieldError{Field: "services." + name, Msg: err.Error()}
		}
		if err := p.WithDefaults().Validate(); err != nil {
			return &region.FieldError{Field: "services." + name, Msg: err.Error()}
		}
	}
	return nil
}

// policyFor returns the service's policy with the query's overrides:
// policy=local|ordered|nearest, regions=a,b, nearest_n=, overprovisioning=,
// panic_threshold=, staleness_bound=, zone_preference=.
func (s *Server) policyFor(service string, q url.Values) (failover.Policy, error) {
	p := s.cfg.Routing.Default
	sp, ok := s.cfg.Routing.Services[service]
	if ok {
		p = sp
	} else if len(q) == 0 {
		// The usual lookup: the default policy, resolved once.
		if pp := s.plain.p.Load(); pp != nil {
			return *pp, nil
		}
		p, err := s.resolvePolicy(p, nil)
		if err == nil {
			s.plain.p.Store(&p)
		}
		return p, err
	}
	return s.resolvePolicy(p, q)
}

// plainPolicy keeps the default routing policy, defaults filled and
// validated, for lookups without overrides (the configuration is fixed
// once the server is made).
type plainPolicy struct {
	p atomic.Pointer[failover.Policy]
}

// resolvePolicy is policyFor from the service's configured policy p.
func (s *Server) resolvePolicy(p failover.Policy, q url.Values) (failover.Policy, error) {
	bad := func(field, msg string) error { return &region.FieldError{Field: field, Msg: msg} }
	if v := q.Get("policy"); v != "" {
		p.Mode = failover.Mode(v)
	}
	if v := q.Get("regions"); v != "" {
		p.Regions = strings.Split(v, ",")
	}
	if v := q.Get("nearest_n"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, bad("nearest_n", "must be an integer, got "+strconv.Quote(v))
		}
		p.NearestN = n
	}
	// Field by field rather than through pointers into p, which would
	// move p to the heap on every request.
	if v := q.Get("overprovisioning"); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return p, bad("overprovisioning", "must be a number, got "+strconv.Quote(v))
		}
		p.Overprovisioning = x
	}
	if v := q.Get("panic_threshold"); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return p, bad("panic_threshold", "must be a number, got "+strconv.Quote(v))
		}
		p.PanicThreshold = x
	}
	if v := q.Get("staleness_bound"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return p, bad("staleness_bound", "must be a duration such as 30s, got "+strconv.Quote(v))
		}
		p.StalenessBound = d
	}
	if v := q.Get("zone_preference"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p, bad("zone_preference", "must be true or false, got "+strconv.Quote(v))
		}
		p.ZonePreference = zonePreference(b)
	}
	if p.ZonePreference == nil {
		p.ZonePreference = zonePreference(true) // WithDefaults would allocate it
	}
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		field := "policy"
		if fe, ok := err.(*region.FieldError); ok {
			return p, fe
		}
		return p, bad(field, err.Error())
	}
	return p, nil
}

// zonePreferenceOn and zonePreferenceOff back the ZonePreference of the
// policies policyFor returns, shared by every request: nothing writes
// through a Policy's ZonePreference.
var zonePreferenceOn, zonePreferenceOff = true, false

// zonePreference returns a shared pointer to b.
func zonePreference(b bool) *bool {
	if b {
		return &zonePreferenceOn
	}
	return &zonePreferenceOff
}

// views builds the router's input for a service: the local region from the
// cache, the others from their replicas, and each one's stamp for the
// service (what routeFingerprint compares).
// Without instances, it is what routeFingerprint needs and costs no copy
// (nor a clock read: a fresh view's Age is left zero).
func (s *Server) views(service string, instances bool) ([]failover.RegionView, []region.Stamp) {
	return s.appendViews(nil, nil, service, instances)
}

// appendViews is views appending to out and stamps, so that a caller
// probing for the fingerprint can pass buffers on its stack.
func (s *Server) appendViews(out []failover.RegionView, stamps []region.Stamp, service string, instances bool) ([]failover.RegionView, []region.Stamp) {
	fr := s.cfg.Cache.Freshness()
	local := failover.RegionView{Name: s.cfg.Region, Version: fr.Version, Stale: fr.Stale, Reachable: true}
	var localStamp region.Stamp
	s.cfg.Cache.Read(func(c *region.Catalog) {
		local.Version = c.Version() // the version these instances are at
		localStamp = c.ServiceStamp(service)
		if instances {
			local.Instances = c.Instances(service, region.Filter{})
		}
	})
	out = append(out, local)
	stamps = append(stamps, localStamp)
	if s.cfg.Fed == nil {
		return out, stamps
	}
	// The clock is read only for an age that matters: a view with
	// instances reports its age, a probe compares only stale views' ages.
	var now time.Time
	ageOf := func(lastSync time.Time) time.Duration {
		if now.IsZero() {
			now = s.cfg.Now()
		}
		return max(now.Sub(lastSync), 0)
	}
	mem := s.cfg.Fed.Membership()
	first := len(out)
	// The remote regions and the names of their alive gateways, in
	// buffers on the stack (this runs on every lookup); alive[cuts[i-1]:
	// cuts[i]] are the i-th region's gateways.
	var rbuf [8]federation.RemoteReplica
	var abuf [16]string
	var cbuf [8]int
	alive, cuts := abuf[:0], cbuf[:0]
	s.cfg.Fed.Read(func(c *federation.Core) {
		for _, v := range c.AppendRemoteReplicas(rbuf[:0]) {
			rv := failover.RegionView{Name: v.Name, Version: v.Replica.Version(), Stale: v.Stale, Reachable: v.Reachable}
			if instances || v.Stale {
				rv.Age = ageOf(v.Replica.LastSync)
			}
			if instances {
				rv.Instances = v.Replica.Catalog.Instances(service, region.Filter{})
			}
			out = append(out, rv)
			stamps = append(stamps, v.Replica.Catalog.ServiceStamp(service))
			alive = c.AppendAliveGateways(alive, v.Name)
			cuts = append(cuts, len(alive))
		}
	})
	remote := out[first:]
	from := 0
	for i := range remote {
		for _, n := range alive[from:cuts[i]] {
			if d, ok := mem.RTT(n); ok && (!remote[i].HasRTT || d < remote[i].RTT) {
				remote[i].RTT, remote[i].HasRTT = d, true
			}
		}
		from = cuts[i]
	}
	return out, stamps
}

// lookupResponse is the body of GET /v1/lookup/{service}.
type lookupResponse struct {
	Service    string `json:"service"`
	FromRegion string `json:"from_region"`
	failover.Decision
}

// route answers the routing decision for a request's service and query.
func (s *Server) route(r *http.Request) (string, failover.Decision, error) {
	service, e, err := s.routeEntry(r)
	if err != nil {
		return service, failover.Decision{}, err
	}
	return service, e.d, nil
}

// routeEntry is route with the cache entry, whose encoded lookup body is
// shared by every lookup the decision answers.
func (s *Server) routeEntry(r *http.Request) (string, *routeEntry, error) {
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	return s.routeEntryQuery(r, q)
}

// routeEntryQuery is routeEntry with r's query already parsed (nil when
// it has none).
func (s *Server) routeEntryQuery(r *http.Request, q url.Values) (string, *routeEntry, error) {
	service := pathValue(r, "service") // fastroutes.go
	if err := region.ValidateService(service); err != nil {
		return service, nil, err
	}
	p, err := s.policyFor(service, q)
	if err != nil {
		return service, nil, err
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return service, nil, &region.FieldError{Field: "limit", Msg: "must be a non-negative integer, got " + strconv.Quote(v)}
		}
	}
	zone := q.Get("zone")
	if zone != "" {
		if err := region.ValidateZone(zone); err != nil {
			return service, nil, err
		}
	}
	req := failover.Request{Service: service, FromRegion: s.cfg.Region, FromZone: zone, Tags: q["tag"], Policy: p, Limit: limit}
	e := s.decide(req)
	views, d := e.views, e.d
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(routeAttributes(views, req, d)...)
	}
	return service, e, nil
}

// lookupResult names a lookup's outcome for meridian.lookups.
func lookupResult(d failover.Decision, err error) string {
	switch {
	case err != nil:
		return "error"
	case len(d.Endpoints) == 0:
		return "empty"
	}
	return "ok"
}

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.loading(w) {
		return
	}
	// Without a query string there is nothing to parse (the common case).
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	if q.Has("index") {
		index, err := strconv.ParseUint(q.Get("index"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "index", "must be a catalog version (an unsigned integer)")
			return
		}
		wait := DefaultWait
		if v := q.Get("wait"); v != "" {
			if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
				writeError(w, http.StatusBadRequest, "wait", "must be a duration such as 30s, got "+strconv.Quote(v))
				return
			}
		}
		wait = min(wait, s.cfg.MaxWait)
		wait += rand.N(wait/16 + 1)
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		stop := context.AfterFunc(s.drain, cancel)
		s.cfg.Cache.Wait(ctx, index)
		stop()
		cancel()
	}
	start := lookupStart(w, q.Has("index"))
	answerDate.set(w.Header(), start) // dateheader.go
	service, e, err := s.routeEntryQuery(r, q)
	if err != nil {
		s.metrics.lookup(r.Context(), "lookup", "error", false, time.Since(start))
		writeStoreError(w, err)
		return
	}
	d := e.d
	body, err := e.lookupBody(func() ([]byte, error) {
		b, err := json.Marshal(lookupResponse{Service: service, FromRegion: s.cfg.Region, Decision: d})
		return append(b, '\n'), err
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "encoding response failed")
		return
	}
	setAnswerHeaders(w.Header(), s.cfg.Cache.Version(), len(body))
	w.Write(body)
	s.metrics.lookup(metricsContext(w, r), "lookup", lookupResult(d, nil), d.Failover, lookupSince(w, start))
}

// maxPickers bounds the pickers kept (services x load balancers in use).
const maxPickers = 4096

// pickers keeps one picker per (service, lb) so round robin and p2c state
// carry from one request to the next.
type pickers struct {
	mu  sync.Mutex
	m   map[string]failover.Picker
	rng *rand.Rand
}

func (p *pickers) get(service, lb string) (failover.Picker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := service + "\x00" + lb
	if pk, ok := p.m[key]; ok {
		return pk, nil
	}
	if p.m == nil || len(p.m) >= maxPickers {
		// Past the cap, start over: a picker holds only balancing state
		// (a round-robin position, load estimates) that rebuilds itself.
		p.m = map[string]failover.Picker{}
	}
	if p.rng == nil {
		p.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	pk, err := failover.NewPicker(lb, rand.New(rand.NewPCG(p.rng.Uint64(), p.rng.Uint64())))
	if err != nil {
		return nil, &region.FieldError{Field: "lb", Msg: err.Error()}
	}
	p.m[key] = pk
	return pk, nil
}

// level draws the priority level a request goes to, in proportion to the
// decision's shares (consistent hashing draws it from the key, so a key
// stays on one level).
func (p *pickers) level(d failover.Decision, lb, key string) []failover.Endpoint {
	var u float64
	if lb == "hash" && key != "" {
		h := fnv.New64a()
		h.Write([]byte(key))
		u = float64(h.Sum64()>>11) / (1 << 53)
	} else {
		p.mu.Lock()
		if p.rng == nil {
			p.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		}
		u = p.rng.Float64()
		p.mu.Unlock()
	}
	return d.Level(u)
}

type pickResponse struct {
	Service    string            `json:"service"`
	FromRegion string            `json:"from_region"`
	Endpoint   failover.Endpoint `json:"endpoint"`
	Failover   bool              `json:"failover"`
}

func (s *Server) handlePick(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.loading(w) {
		return
	}
	start := time.Now()
	service, d, err := s.route(r)
	if err != nil {
		s.metrics.lookup(r.Context(), "pick", "error", false, time.Since(start))
		writeStoreError(w, err)
		return
	}
	lb := r.URL.Query().Get("lb")
	if lb == "" {
		lb = "round_robin"
	}
	if len(d.Endpoints) == 0 {
		// No picker state for a service with nothing to pick: a client
		// asking for unique names must not grow the gateway's memory.
		s.metrics.lookup(r.Context(), "pick", "empty", d.Failover, time.Since(start))
		writeError(w, http.StatusServiceUnavailable, "service", "no endpoint of "+service+" to pick: "+d.Explanation)
		return
	}
	pk, err := s.pickers.get(service, lb)
	if err != nil {
		s.metrics.lookup(r.Context(), "pick", "error", false, time.Since(start))
		writeStoreError(w, err)
		return
	}
	key := r.URL.Query().Get("key")
	ep, ok := pk.Pick(s.pickers.level(d, lb, key), key)
	if !ok {
		s.metrics.lookup(r.Context(), "pick", "empty", d.Failover, time.Since(start))
		writeError(w, http.StatusServiceUnavailable, "service", "no endpoint of "+service+" to pick: "+d.Explanation)
		return
	}
	failover := ep.Region != s.cfg.Region
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(attribute.String("meridian.pick.endpoint", endpointID(ep)), attribute.Bool("meridian.pick.failover", failover))
	}
	writeJSON(w, http.StatusOK, pickResponse{Service: service, FromRegion: s.cfg.Region, Endpoint: ep, Failover: failover})
	s.metrics.lookup(r.Context(), "pick", "ok", failover, time.Since(start))
}
