package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/meridian-sd/meridian/region"
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
	Logger *slog.Logger
	// Now is the clock for registration times; time.Now when nil.
	Now func() time.Time
	// MaxWait caps the wait of a blocking query. Default 10m.
	MaxWait time.Duration
	// WriteTimeout bounds one write to the store. Default 5s.
	WriteTimeout time.Duration
}

// Server is the HTTP API of one region's gateway.
type Server struct {
	cfg     Config
	drain   context.Context // done when the server is shutting down
	stop    context.CancelFunc
	metrics *metrics
	mux     *http.ServeMux
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
	s := &Server{cfg: cfg, metrics: newMetrics(cfg.Region, cfg.Cache), mux: http.NewServeMux()}
	s.drain, s.stop = context.WithCancel(context.Background())
	route := func(pattern, name string, h http.HandlerFunc) {
		s.mux.HandleFunc(pattern, s.metrics.instrument(name, h))
	}
	route("/v1/services", "services", s.handleServices)
	route("/v1/services/{service}", "service", s.handleService)
	route("/v1/services/{service}/instances/{id}", "instance", s.handleInstance)
	route("/v1/services/{service}/instances/{id}/heartbeat", "heartbeat", s.handleHeartbeat)
	route("/v1/health", "health", s.handleHealth)
	s.mux.Handle("/metrics", s.metrics.handler())
	route("/", "unknown", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", "no such endpoint: "+r.URL.Path)
	})
	return s
}

// Drain makes blocking queries return now, so a graceful shutdown does not
// wait out their timeouts.
func (s *Server) Drain() { s.stop() }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux returns the server's mux, for later packages to add routes to.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// pathKey validates the {service} and {id} path segments.
func pathKey(r *http.Request) (region.Key, error) {
	k := region.Key{Service: r.PathValue("service"), ID: r.PathValue("id")}
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
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	ch, err := s.cfg.Store.Put(ctx, in, region.Cond{})
	if err != nil {
		s.metrics.writes.WithLabelValues("register", "unavailable").Inc()
		s.cfg.Logger.Warn("register failed", "instance", k.String(), "err", err)
		writeStoreError(w, err)
		return
	}
	s.metrics.writes.WithLabelValues("register", "ok").Inc()
	s.cfg.Cache.Apply(ch)
	s.cfg.Logger.Info("registered", "instance", k.String(), "address", in.Address, "port", in.Port, "version", ch.Version)
	w.Header().Set("X-Meridian-Index", strconv.FormatUint(ch.Version, 10))
	writeJSON(w, http.StatusOK, ch.Instance)
}

func (s *Server) deregister(w http.ResponseWriter, r *http.Request, k region.Key) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	ch, err := s.cfg.Store.Delete(ctx, k, region.Cond{})
	if errors.Is(err, region.ErrNotFound) {
		s.metrics.writes.WithLabelValues("deregister", "not_found").Inc()
		writeError(w, http.StatusNotFound, "id", "instance "+k.String()+" is not registered")
		return
	}
	if err != nil {
		s.metrics.writes.WithLabelValues("deregister", "unavailable").Inc()
		s.cfg.Logger.Warn("deregister failed", "instance", k.String(), "err", err)
		writeStoreError(w, err)
		return
	}
	s.metrics.writes.WithLabelValues("deregister", "ok").Inc()
	s.cfg.Cache.Apply(ch)
	s.cfg.Logger.Info("deregistered", "instance", k.String(), "version", ch.Version)
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
	Services []region.ServiceSummary `json:"services"`
}

func (s *Server) handleServices(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	resp := servicesResponse{freshness: s.freshness()}
	s.cfg.Cache.Read(func(c *region.Catalog) {
		resp.Version = c.Version()
		resp.Services = c.Services()
	})
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
func (s *Server) parseQuery(r *http.Request) (f region.Filter, index uint64, wait time.Duration, err error) {
	q := r.URL.Query()
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
	if !methods(w, r, http.MethodGet) {
		return
	}
	k, err := pathKey(r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	f, index, wait, err := s.parseQuery(r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if r.URL.Query().Has("index") && wait > 0 {
		// Spread the wake-ups of many watchers, as Consul does (wait/16).
		wait += rand.N(wait/16 + 1)
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		stop := context.AfterFunc(s.drain, cancel)
		s.cfg.Cache.Wait(ctx, index)
		stop()
		cancel()
	}
	resp := serviceResponse{Service: k.Service, freshness: s.freshness()}
	s.cfg.Cache.Read(func(c *region.Catalog) {
		resp.Version = c.Version()
		resp.Instances = c.Instances(k.Service, f)
	})
	w.Header().Set("X-Meridian-Index", strconv.FormatUint(resp.Version, 10))
	writeJSON(w, http.StatusOK, resp)
}

type healthResponse struct {
	Status string         `json:"status"`
	Region string         `json:"region"`
	Checks map[string]any `json:"checks"`
}

// handleHealth reports the gateway's own health: healthy (store reachable,
// cache current), degraded (store unreachable but reads served from the
// cache), unhealthy (nothing to serve: the store was never read).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	f := s.cfg.Cache.Freshness()
	store := map[string]any{"status": "pass"}
	if f.StoreErr != nil {
		store = map[string]any{"status": "fail", "error": f.StoreErr.Error()}
	}
	cache := map[string]any{"status": "pass", "version": f.Version, "age_ms": f.Age.Milliseconds(), "stale": f.Stale}
	resp := healthResponse{Region: s.cfg.Region, Checks: map[string]any{"store": store, "cache": cache}}
	code := http.StatusOK
	switch {
	case !f.Loaded:
		cache["status"] = "fail"
		resp.Status = "unhealthy"
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
