package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/meridian-sd/meridian/region"
)

// AgentConfig configures one region gateway process.
type AgentConfig struct {
	Region   string // region name (a DNS label)
	HTTPAddr string // listen address, e.g. 127.0.0.1:8700 (port 0 picks one)
	// RedisURL selects the store (see region.RedisOptions). Empty starts an
	// embedded miniredis whose data does not survive a restart.
	RedisURL string
	LogMax   int           // change log length; region.DefaultLogMax when 0
	CatchUp  time.Duration // cache catch-up period; 1s when 0
	Logger   *slog.Logger
	// Seed seeds the health checker's jitter; 0 picks a random seed.
	Seed uint64
}

// Validate checks the configuration, naming the field.
func (c *AgentConfig) Validate() error {
	if err := region.ValidateService(c.Region); err != nil {
		return fmt.Errorf("region: %q is not a DNS label (lowercase a-z, 0-9, '-', 1-63 characters)", c.Region)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http: %q is not host:port: %w", c.HTTPAddr, err)
	}
	return nil
}

// Agent is a running region gateway: store, cache, health checks and the
// HTTP API.
type Agent struct {
	cfg      AgentConfig
	Store    region.Store
	Cache    *region.Cache
	Health   *region.HealthRunner
	Server   *Server
	mini     *miniredis.Miniredis
	http     *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// StartAgent opens the store, starts following it, starts health checks and
// serves HTTP. It returns once the listener is open; the cache loads in the
// background (reads answer stale until it has).
func StartAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("region", cfg.Region)
	region.RouteRedisLogs(cfg.Logger)
	a := &Agent{cfg: cfg}
	redisURL := cfg.RedisURL
	if redisURL == "" {
		m, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("starting embedded miniredis: %w", err)
		}
		a.mini = m
		redisURL = "redis://" + m.Addr() + "/0"
		log.Warn("no --redis given: using an embedded in-memory store (miniredis); data will not survive a restart", "addr", m.Addr())
	}
	store, err := region.NewRedisStore(region.RedisOptions{URL: redisURL, Region: cfg.Region, LogMax: cfg.LogMax})
	if err != nil {
		a.closeStore()
		return nil, err
	}
	a.Store = store
	a.Cache = region.NewCache(store, region.CacheOptions{CatchUp: cfg.CatchUp, Logger: log.With("component", "cache")})
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	a.Health = region.NewHealthRunner(store, a.Cache, region.HealthRunnerOptions{
		Logger: log.With("component", "health"), Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	})
	a.Server = New(Config{Region: cfg.Region, Store: store, Cache: a.Cache, Health: a.Health, Logger: log.With("component", "http")})

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		a.closeStore()
		return nil, fmt.Errorf("listening on %s: %w", cfg.HTTPAddr, err)
	}
	a.listener = ln
	a.http = &http.Server{Handler: a.Server.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.Cache.Run(ctx) }()
	go func() { defer a.wg.Done(); a.Health.Run(ctx) }()
	go func() {
		defer a.wg.Done()
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("gateway serving", "http", ln.Addr().String(), "store", redactURL(redisURL))
	return a, nil
}

// Addr returns the HTTP listen address.
func (a *Agent) Addr() string { return a.listener.Addr().String() }

// URL returns the HTTP base URL.
func (a *Agent) URL() string { return "http://" + a.Addr() }

// Shutdown stops accepting requests, waits for in-flight ones (blocking
// queries end early) up to ctx's deadline, then stops the background work.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.Server.Drain()
	err := a.http.Shutdown(ctx)
	a.cancel()
	a.wg.Wait()
	a.closeStore()
	return err
}

func (a *Agent) closeStore() {
	if a.Store != nil {
		a.Store.Close()
	}
	if a.mini != nil {
		a.mini.Close()
	}
}

// redactURL hides a password in a Redis URL for logging.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
