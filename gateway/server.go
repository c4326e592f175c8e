package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/meridian-sd/meridian/egress"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/meridiantls"
	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

// Heartbeats takes TTL heartbeats (region.HealthRunner).
type Heartbeats interface {
	Heartbeat(ctx context.Context, k region.Key, hb region.Heartbeat) (region.Instance, error)
}

// Config wires a Server.
type Config struct {
	Region string
	Store  region.Store
	Cache  *region.Cache
	Health Heartbeats
	// Fed serves cross-region reads and /v1/regions; nil when federation
	// is off.
	Fed *federation.Federator
	// Keyring serves /v1/operator/keyring; nil when federation is off.
	Keyring serfmember.KeyManager
	// Routing is the per-service routing policy of /v1/lookup, /v1/pick
	// and /v1/proxy.
	Routing RoutingConfig
	// Proxy tunes /v1/proxy.
	Proxy ProxyConfig
	// Egress refuses proxy targets and registrations at refused IP
	// literals (403); nil refuses nothing. StartAgent always sets one.
	Egress *egress.Policy
	// Forward sends a heartbeat to the gateway that owns the instance's
	// checks; nil (or "" returned) handles it here.
	Forward func(k region.Key) (addr string)
	Logger  *slog.Logger
	// Telemetry says where spans and metrics go; see Telemetry.
	Telemetry Telemetry
	// Node is this gateway's name, recorded on its spans as meridian.node
	// (next to meridian.region): in meridian dev several gateways share
	// one process, and so one OpenTelemetry resource.
	Node string
	// Now is the clock for registration times; time.Now when nil.
	Now func() time.Time
	// MaxWait caps the wait of a blocking query. Default 10m.
	MaxWait time.Duration
	// WriteTimeout bounds one write to the store. Default 5s.
	WriteTimeout time.Duration
	// Limits bounds connections, deadlines and write rates per client.
	Limits Limits
	// TLS, when set, makes gateway-to-gateway calls mutual TLS: see
	// tls.go.
	TLS *meridiantls.Gateway
	// ACL authorizes every route (see acl.go); nil allows everything.
	ACL *ACLs
}

// Server is the HTTP API of one region's gateway.
type Server struct {
	cfg     Config
	drain   context.Context // done when the server is shutting down
	stop    context.CancelFunc
	metrics *metrics
	tel     Telemetry
	// spanAttrs (region, node) go on every span the server starts.
	spanAttrs []attribute.KeyValue
	tracer    trace.Tracer
	tracesOff bool         // a no-op tracer provider: spans only carry a caller's context
	fwd       *http.Client // forwards heartbeats to other gateways
	mux       *http.ServeMux
	handler   http.Handler // mux behind the per-request limits
	lookups   lookupCache
	routes    routeCache
	pickers   pickers
	proxy     *proxy
	watches   catalogWatches // federation_watch.go
	// consulTags caches /v1/catalog/services (consul_api.go).
	consulTags consulTagsCache
	decisions  decisionLog // recent routing decisions (decisions.go)
	plain      plainPolicy // the default policy without overrides (routing.go)
	fast       fastRoutes  // fastroutes.go
}

// Default and maximum waits of blocking queries.
const (
	DefaultWait = 5 * time.Minute
	MaxWait     = 10 * time.Minute
)

// New returns a server. Call Handler to serve it.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = MaxWait
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	cfg.Limits.fill()
	tel, err := cfg.Telemetry.resolve()
	if err != nil {
		cfg.Logger.Error("metrics are off", "err", err)
		tel.MeterProvider, tel.Producers = metricnoop.NewMeterProvider(), nil
	}
	s := &Server{cfg: cfg, tel: tel, metrics: newMetrics(tel.MeterProvider, tel.Producers, &cfg), mux: http.NewServeMux()}
	s.watches.register(tel.MeterProvider, cfg.Region)
	s.spanAttrs = []attribute.KeyValue{attrRegion.String(cfg.Region)}
	if cfg.Node != "" {
		s.spanAttrs = append(s.spanAttrs, attrNode.String(cfg.Node))
	}
	s.tracer = tel.TracerProvider.Tracer(instrumentationName)
	_, s.tracesOff = tel.TracerProvider.(tracenoop.TracerProvider)
	var fwdTransport http.RoundTripper = peerTransport(cfg.TLS)
	if cfg.ACL != nil {
		fwdTransport = tokenTransport{base: fwdTransport, token: cfg.ACL.replToken}
	}
	s.fwd = s.tracedClient(fwdTransport, "heartbeat.forward")
	s.fwd.Timeout = 5 * time.Second
	s.drain, s.stop = context.WithCancel(context.Background())
	// Every route says what a request needs (acl.go): open, a known
	// token (identified), or a permission; a route is never unguarded
	// by omission.
	route := func(pattern, name string, acc access, h http.HandlerFunc) {
		ih := s.instrument(pattern, name, s.guard(acc, h))
		s.mux.HandleFunc(pattern, ih)
		s.fast.add(pattern, ih) // fastroutes.go
	}
	route("/v1/services", "services", identified, s.handleServices) // lists only readable services
	route("/v1/services/{service}", "service", serviceRead, s.handleService)
	route("/v1/services/{service}/instances/{id}", "instance", serviceReadWrite, s.handleInstance)
	route("/v1/services/{service}/instances/{id}/heartbeat", "heartbeat", serviceWrite, s.handleHeartbeat)
	route("/v1/health", "health", openRoute, s.handleHealth) // open, as Consul's health endpoints
	route("/v1/regions", "regions", operatorRead, s.handleRegions)
	route("/v1/regions/{region}", "region", operatorReadWrite, s.handleRegion)
	route("/v1/operator/keyring", "operator_keyring", operatorReadWrite, s.handleKeyring)
	route(federation.CatalogPath, "federation_catalog", operatorRead, s.handleCatalog)
	route("/v1/lookup/{service}", "lookup", serviceRead, s.handleLookup)
	route("/v1/pick/{service}", "pick", serviceRead, s.handlePick)
	s.proxy = newProxy(s, cfg.Proxy)
	route("/v1/proxy/{service}/{path...}", "proxy", serviceRead, s.proxy.handle)
	s.aclRoutes(route)
	s.consulRoutes(route)                                              // consul_api.go
	route("/v1/decisions", "decisions", identified, s.handleDecisions) // lists only readable services' decisions
	s.uiRoutes(route)                                                  // the status page (ui.go)
	if tel.MetricsHandler != nil {
		s.mux.Handle("/metrics", tel.MetricsHandler) // open, as Consul's agent metrics with ACLs default-allow
	}
	route("/", "unknown", openRoute, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", "no such endpoint: "+r.URL.Path)
	})
	s.fast.seal()
	s.handler = s.withLimits(jsonMux{mux: s.mux, catchAll: true, fast: &s.fast}) // httperrors.go: the mux's own errors in JSON
	return s
}

// Drain makes blocking queries return now, so a graceful shutdown does not
// wait out their timeouts.
func (s *Server) Drain() { s.stop() }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Mux returns the server's mux, for later packages to add routes to.
// Routes added here bypass the ACL check of New's routes: authorize them.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// pathKey validates the {service} and {id} path segments.
func pathKey(r *http.Request) (region.Key, error) {
	k := region.Key{Service: pathValue(r, "service"), ID: r.PathValue("id")} // fastroutes.go
	if err := region.ValidateService(k.Service); err != nil {
		return k, err
	}
	if k.ID != "" {
		if err := region.ValidateID(k.ID); err != nil {
			return k, err
		}
	}
	return k, nil
}

// readBody reads at most MaxBodyBytes; more is ErrBodyTooLarge.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > region.MaxBodyBytes {
		return nil, region.ErrBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, region.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, region.ErrBodyTooLarge
	}
	if err != nil {
		return nil, &region.FieldError{Field: "body", Msg: "reading the request body: " + err.Error()}
	}
	return b, nil
}

func (s *Server) handleInstance(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	k, err := pathKey(r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if s.loading(w) {
			return
		}
		var in region.Instance
		var ok bool
		s.cfg.Cache.Read(func(c *region.Catalog) { in, ok = c.Get(k) })
		if !ok {
			writeError(w, http.StatusNotFound, "id", "instance "+k.String()+" is not registered")
			return
		}
		writeJSON(w, http.StatusOK, in)
	case http.MethodPut:
		s.register(w, r, k)
	case http.MethodDelete:
		s.deregister(w, r, k)
	}
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, k region.Key) {
	body, err := readBody(w, r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	in, err := region.DecodeRegistration(body, k.Service, k.ID, s.cfg.Now())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	in.RegisteredBy = s.registeredBy(r) // never from the body
	if s.refuseEgress(w, in) || s.overCapacity(w, k) {
		return
	}
	id, err := writeID(r, "put", k)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	ch, err := s.registrar().Register(ctx, in, id)
	if err != nil {
		s.metrics.write(ctx, "register", "unavailable")
		writeStoreError(w, err)
		return
	}
	s.metrics.write(ctx, "register", "ok")
	w.Header().Set("X-Meridian-Index", strconv.FormatUint(ch.Version, 10))
	writeInstance(w, ch.Instance)
}

func (s *Server) deregister(w http.ResponseWriter, r *http.Request, k region.Key) {
	id, err := writeID(r, "delete", k)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	ch, err := s.registrar().Deregister(ctx, k, id)
	if errors.Is(err, region.ErrNotFound) {
		s.metrics.write(ctx, "deregister", "not_found")
		writeError(w, http.StatusNotFound, "id", "instance "+k.String()+" is not registered")
		return
	}
	if err != nil {
		s.metrics.write(ctx, "deregister", "unavailable")
		writeStoreError(w, err)
		return
	}
	s.metrics.write(ctx, "deregister", "ok")
	w.Header().Set("X-Meridian-Index", strconv.FormatUint(ch.Version, 10))
	writeJSON(w, http.StatusOK, map[string]any{"deregistered": k.ID, "service": k.Service, "version": ch.Version})
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodPut) {
		return
	}
	k, err := pathKey(r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	hb, err := region.DecodeHeartbeat(body)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if r.Header.Get(forwardedHeader) != "" && !s.requireGateway(w, r, s.cfg.Region, "a forwarded heartbeat") {
		return
	}
	if addr := region.HeartbeatRoute(k, r.Header.Get(forwardedHeader) != "", s.cfg.Forward); addr != "" {
		s.forward(w, r, addr, body)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	in, err := s.cfg.Health.Heartbeat(ctx, k, hb)
	if errors.Is(err, region.ErrNotFound) {
		writeError(w, http.StatusNotFound, "id", "instance "+k.String()+" is not registered")
		return
	}
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// freshness is the staleness part of every read response.
type freshness struct {
	Region  string `json:"region"`
	Version uint64 `json:"version"`
	Stale   bool   `json:"stale"`
	AgeMS   int64  `json:"age_ms"`
}

func (s *Server) freshness() freshness {
	f := s.cfg.Cache.Freshness()
	return freshness{Region: s.cfg.Region, Version: f.Version, Stale: f.Stale, AgeMS: f.Age.Milliseconds()}
}

type servicesResponse struct {
	freshness
	Services []serviceSummary `json:"services"`
}

func (s *Server) handleServices(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.loading(w) {
		return
	}
	resp := servicesResponse{freshness: s.freshness()}
	var local []region.ServiceSummary
	s.cfg.Cache.Read(func(c *region.Catalog) {
		resp.Version = c.Version()
		local = c.Services()
	})
	resp.Services = s.regionCounts(local)
	if s.cfg.ACL != nil {
		readable := resp.Services[:0]
		for _, sum := range resp.Services {
			if s.canRead(r, sum.Name) {
				readable = append(readable, sum)
			}
		}
		resp.Services = readable
	}
	w.Header().Set("X-Meridian-Index", strconv.FormatUint(resp.Version, 10))
	writeJSON(w, http.StatusOK, resp)
}

type serviceResponse struct {
	Service string `json:"service"`
	freshness
	Instances []region.Instance `json:"instances"`
}

// parseQuery reads ?passing=&tag=&zone=&index=&wait=.
// A query with an index (even 0) blocks until the version passes it.
func (s *Server) parseQuery(q url.Values) (f region.Filter, index uint64, wait time.Duration, err error) {
	if p := q.Get("passing"); p != "" {
		if f.Passing, err = strconv.ParseBool(p); err != nil {
			return f, 0, 0, &region.FieldError{Field: "passing", Msg: "must be true or false, got " + strconv.Quote(p)}
		}
	}
	f.Tags = q["tag"]
	f.Zone = q.Get("zone")
	if v := q.Get("index"); v != "" {
		if index, err = strconv.ParseUint(v, 10, 64); err != nil {
			return f, 0, 0, &region.FieldError{Field: "index", Msg: "must be a catalog version (an unsigned integer), got " + strconv.Quote(v)}
		}
		wait = DefaultWait
	}
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return f, 0, 0, &region.FieldError{Field: "wait", Msg: "must be a duration such as 30s, got " + strconv.Quote(v)}
		}
	}
	return f, index, min(wait, s.cfg.MaxWait), nil
}

func (s *Server) handleService(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.loading(w) {
		return
	}
	k, err := pathKey(r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	var q url.Values // nil without a query string: nothing to parse
	if r.URL.RawQuery != "" {
		if q = make(url.Values, maxPlainQueryKeys); !parsePlainQuery(q, r.URL.RawQuery) {
			q = r.URL.Query()
		}
	}
	f, index, wait, err := s.parseQuery(q)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if which := q.Get("region"); which != "" && which != s.cfg.Region {
		if s.cfg.Fed == nil {
			writeError(w, http.StatusNotFound, "region", "federation is off on this gateway: only region "+s.cfg.Region+" is known")
			return
		}
		s.serveRegionLookup(w, k.Service, which, f)
		return
	}
	if q.Has("index") && wait > 0 {
		// Spread the wake-ups of many watchers, as Consul does (wait/16).
		wait += rand.N(wait/16 + 1)
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		stop := context.AfterFunc(s.drain, cancel)
		s.cfg.Cache.Wait(ctx, index)
		stop()
		cancel()
	}
	start := lookupStart(w, q.Has("index") && wait > 0)
	answerDate.set(w.Header(), start) // dateheader.go
	ans, err := s.localEncoded(k.Service, f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "encoding response failed")
		return
	}
	writeServiceAnswer(w, k.Service, ans)
	result := "ok"
	if ans.list.n == 0 {
		result = "empty"
	}
	s.metrics.lookup(metricsContext(w, r), "service", result, false, lookupSince(w, start))
}

type healthResponse struct {
	Status string         `json:"status"`
	Region string         `json:"region"`
	Checks map[string]any `json:"checks"`
}

// handleHealth reports the gateway's own health: healthy (store reachable,
// cache current), degraded (store unreachable but reads served from the
// cache), loading (nothing to serve yet: the store was never read).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	f := s.cfg.Cache.Freshness()
	store := map[string]any{"status": "pass"}
	if f.StoreErr != nil {
		store = map[string]any{"status": "fail", "error": storeErrorText(f.StoreErr)}
	}
	cache := map[string]any{"status": "pass", "version": f.Version, "age_ms": f.Age.Milliseconds(), "stale": f.Stale}
	resp := healthResponse{Region: s.cfg.Region, Checks: map[string]any{"store": store, "cache": cache}}
	storeLossHealth(s.cfg.Cache, resp.Checks)
	code := http.StatusOK
	switch {
	case !f.Loaded:
		cache["status"] = "fail"
		resp.Status = "loading"
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	case f.Stale || f.StoreErr != nil:
		cache["status"] = "warn"
		resp.Status = "degraded"
	default:
		resp.Status = "healthy"
	}
	writeJSON(w, code, resp)
}

// forwardedHeader marks a heartbeat forwarded by another gateway of the
// region, so it is never forwarded twice.
const forwardedHeader = "X-Meridian-Forwarded"

// forward sends a heartbeat to the gateway that owns the instance's checks
// and relays its answer. The request carries this request's trace context
// (a client span "heartbeat.forward"), so the owner's span joins the trace.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, addr string, body []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, s.peerScheme()+"://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forwardedHeader, s.cfg.Region)
	for _, h := range []string{TokenHeader, "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v) // the owner authorizes the client's token again
		}
	}
	resp, err := s.fwd.Do(req)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "", "the gateway that checks this instance ("+addr+") is unreachable: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if s.cfg.TLS != nil {
		if err := s.cfg.TLS.CheckPeer(addr, s.cfg.Region, resp.TLS); err != nil {
			writeError(w, http.StatusBadGateway, "", "the gateway that checks this instance is not one of this region's: "+err.Error())
			return
		}
	}
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
