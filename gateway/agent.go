package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/meridiantls"
	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/region/redisstore"

	"github.com/meridian-sd/meridian/region/probe"

	"github.com/meridian-sd/meridian/federation/serfmember"

	"github.com/meridian-sd/meridian/federation/redisreplica"

	"github.com/meridian-sd/meridian/federation/httpsync"
)

// AgentConfig configures one region gateway process.
type AgentConfig struct {
	Region   string // region name (a DNS label)
	HTTPAddr string // listen address, e.g. 127.0.0.1:8700 (port 0 picks one)
	// HTTPAdvertise is the host:port other gateways use for this one's
	// HTTP API (advertised in its Serf tags); the listener's address when
	// empty. Needed when HTTPAddr binds all interfaces (0.0.0.0:8700).
	HTTPAdvertise string
	// RedisURL selects the store (see redisstore.RedisOptions). Empty starts an
	// embedded miniredis whose data does not survive a restart.
	RedisURL string
	LogMax   int           // change log length; region.DefaultLogMax when 0
	CatchUp  time.Duration // cache catch-up period; 1s when 0
	Logger   *slog.Logger
	// Seed seeds the health checker's and federation's jitter; 0 picks one.
	Seed uint64

	// Federation. SerfBind "" turns it off (a lone region gateway).
	SerfBind      string   // host:port for Serf (port 0 picks one)
	SerfAdvertise string   // host:port others should reach Serf at
	Join          []string // gateways to join, retried with backoff
	NodeName      string   // unique node name; a default is made up
	GossipProfile string   // wan (default), lan or local
	// RegionReapAfter drops a replica whose region had no alive gateway
	// for this long (default 72h).
	RegionReapAfter time.Duration
	// NewMembership builds the gossip pool; serfmember.NewSerfMembership
	// when nil (tests inject in-memory transports through it).
	NewMembership func(serfmember.SerfConfig) (federation.Membership, error)
	// Routing is the per-service routing policy (meridian agent --routing).
	Routing RoutingConfig
	// Proxy tunes /v1/proxy.
	Proxy ProxyConfig
	// Limits bounds connections, deadlines and write rates per client.
	Limits Limits
	// EgressAllow and EgressDeny adjust the egress policy of /v1/proxy
	// and health checks (--egress-allow, --egress-deny; see package
	// egress). EgressReserved are more host:port addresses never dialled,
	// next to this gateway's own listeners and store (meridian dev: the
	// other gateways of the process).
	EgressAllow, EgressDeny []netip.Prefix
	EgressReserved          []string
	// FetchClient carries sync fetches; a default when nil (tests inject
	// faults through its transport).
	FetchClient *http.Client
	// Telemetry says where spans and metrics go (the HTTP API, Redis
	// commands, sync fetches, health checks); see Telemetry. The meridian
	// command passes what observability.Setup built.
	Telemetry Telemetry
	// TLS turns on HTTPS for the API and mutual TLS between gateways
	// (--tls-cert, --tls-key, --tls-ca, --tls-verify-incoming).
	TLS meridiantls.Config
	// Encrypt is the gossip encryption key (base64 of 16, 24 or 32 bytes;
	// --encrypt) and KeyringFile Serf's keyring file (--keyring-file):
	// see serfmember.LoadKeyring. Both empty: gossip is not encrypted.
	Encrypt     string
	KeyringFile string
	// ACL configures tokens and the default policy (--acl-*).
	ACL ACLConfig
	// DNS is the DNS interface (--dns, --dns-ttl, --dns-domain,
	// --dns-token); off when DNS.Addr is empty. See dns.go.
	DNS DNSConfig
	// OnStoreLoss is what the gateway does when its store lost data
	// (--on-store-loss): region.LossRestore (when empty) writes the
	// catalog it holds back, region.LossAccept adopts the store as it is.
	OnStoreLoss string
	// MemoryCheck is how often the gateway checks whether it holds much
	// more heap than it uses while quiet, to return it to the OS (see
	// memrelease.go); 2s when 0, never when negative.
	MemoryCheck time.Duration
}

// Validate checks the configuration, naming the field.
func (c *AgentConfig) Validate() error {
	if err := region.ValidateService(c.Region); err != nil {
		return fmt.Errorf("region: %q is not a DNS label (lowercase a-z, 0-9, '-', 1-63 characters)", c.Region)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http: %q is not host:port: %w", c.HTTPAddr, err)
	}
	if c.HTTPAdvertise != "" {
		if h, _, err := net.SplitHostPort(c.HTTPAdvertise); err != nil || h == "" {
			return fmt.Errorf("http-advertise: %q is not host:port", c.HTTPAdvertise)
		}
	}
	if c.SerfBind != "" {
		if _, _, err := net.SplitHostPort(c.SerfBind); err != nil {
			return fmt.Errorf("serf-bind: %q is not host:port: %w", c.SerfBind, err)
		}
	}
	switch c.GossipProfile {
	case "", "wan", "lan", "local":
	default:
		return fmt.Errorf("gossip-profile: %q is not wan, lan or local", c.GossipProfile)
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join: %q is not host:port: %w", j, err)
		}
	}
	if c.Encrypt != "" {
		if _, err := serfmember.ParseKey(c.Encrypt); err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
	}
	if c.SerfBind == "" && (c.Encrypt != "" || c.KeyringFile != "") {
		return fmt.Errorf("encrypt, keyring-file: gossip encryption needs federation (serf-bind is empty)")
	}
	if err := c.Routing.Validate(); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	if c.RegionReapAfter < 0 {
		return fmt.Errorf("region-reap-after: must not be negative")
	}
	if _, err := region.ParseOnStoreLoss(c.OnStoreLoss); err != nil {
		return fmt.Errorf("on-store-loss: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if err := c.ACL.Validate(); err != nil {
		return err
	}
	if err := c.DNS.Validate(); err != nil {
		return err
	}
	if c.ACL.PrimaryRegion != "" && c.ACL.PrimaryRegion != c.Region && c.SerfBind == "" {
		return fmt.Errorf("primary-region: %s is another region, so tokens replicate from it over federation; set --serf-bind", c.ACL.PrimaryRegion)
	}
	return c.TLS.Validate()
}

// Agent is a running region gateway: store, cache, health checks, the HTTP
// API and, when on, federation.
type Agent struct {
	cfg      AgentConfig
	Store    region.Store
	Cache    *region.Cache
	Health   *region.HealthRunner
	Server   *Server
	Fed      *federation.Federator // nil when federation is off
	Members  federation.Membership // nil when federation is off
	ACL      *ACLs
	DNS      *DNSServer // nil when DNS is off
	mini     *miniredis.Miniredis
	http     *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	shards   *federation.Shards   // check ownership among this region's alive gateways
	tls      *meridiantls.Gateway // nil: plain HTTP
}

// StartAgent opens the store, starts following it, starts health checks,
// joins the federation and serves HTTP. It returns once the listener is
// open; the cache loads in the background (reads answer stale until then).
func StartAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("region", cfg.Region)
	redisstore.RouteRedisLogs(cfg.Logger)
	tel, err := cfg.Telemetry.resolve()
	if err != nil {
		return nil, err
	}
	cfg.Telemetry = tel
	a := &Agent{cfg: cfg}
	if a.tls, err = loadTLS(cfg, log); err != nil {
		return nil, err
	}
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
	store, err := redisstore.NewRedisStore(redisstore.RedisOptions{URL: redisURL, Region: cfg.Region, LogMax: cfg.LogMax,
		TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider})
	if err != nil {
		a.closeStore()
		return nil, err
	}
	a.Store = store
	if a.ACL, err = NewACLs(cfg.ACL, cfg.Region, store.Client(), log.With("component", "acl")); err != nil {
		a.closeStore()
		return nil, err
	}
	if a.ACL.DefaultAllow() {
		log.Warn("ACLs are off (--acl-default-policy allow): requests without a token may do everything", "acl_primary", a.ACL.Primary())
	} else {
		log.Info("ACLs are on (--acl-default-policy deny): every API request needs a token", "acl_primary", a.ACL.Primary(),
			"initial_token", cfg.ACL.InitialToken != "")
	}
	a.Cache = region.NewCache(store, region.CacheOptions{CatchUp: cfg.CatchUp, Logger: log.With("component", "cache"),
		OnStoreLoss: region.OnStoreLoss(cfg.OnStoreLoss)})
	// Each group-commit round trip lands in the cache once, in version
	// order, before its writers are answered (read-your-writes).
	store.OnCommit(func(chs []region.Change) { a.Cache.Apply(chs...) })
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		a.closeStore()
		return nil, fmt.Errorf("listening on %s: %w%s", cfg.HTTPAddr, err, bindHint(err, "--http"))
	}
	a.listener = ln

	hopt := region.HealthRunnerOptions{
		Logger: log.With("component", "health"), Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider, Region: cfg.Region,
	}
	if cfg.SerfBind != "" {
		advertise := ln.Addr().String()
		if cfg.HTTPAdvertise != "" {
			advertise = cfg.HTTPAdvertise
		}
		if err := a.startFederation(store, advertise, seed, log); err != nil {
			ln.Close()
			a.closeStore()
			return nil, err
		}
		hopt.Owns = a.owns
	}
	pol, err := a.egressPolicy(redisURL, ln.Addr(), log)
	if err != nil {
		if a.Members != nil {
			a.Members.Shutdown()
		}
		ln.Close()
		a.closeStore()
		return nil, fmt.Errorf("egress policy: %w", err)
	}
	log.Info("egress policy", "policy", pol.String())
	hopt.Probes = probe.NewTransport(probe.Prober{Client: probe.NewEgressProbeClient(pol), Egress: pol}, 0)
	a.Health = region.NewHealthRunner(store, a.Cache, hopt)
	scfg := Config{Region: cfg.Region, Store: store, Cache: a.Cache, Health: a.Health, Fed: a.Fed,
		Routing: cfg.Routing, Proxy: cfg.Proxy, Limits: cfg.Limits, Logger: log.With("component", "http"),
		Telemetry: tel, Node: cfg.NodeName, TLS: a.tls, Egress: pol, ACL: a.ACL}
	if a.Fed != nil {
		scfg.Node = a.Members.LocalName()
		scfg.Forward = a.checkOwnerAddr
		scfg.Keyring, _ = a.Members.(serfmember.KeyManager)
		a.Fed.OnMembership(a.peersChanged)
	}
	a.Server = New(scfg)
	// The connection caps sit under everything else on the listener, so
	// an excess connection costs one accept and one close.
	ln = a.Server.limitListener(ln)
	lim := a.Server.cfg.Limits
	a.http = &http.Server{Handler: a.Server.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ReadTimeout: lim.ReadTimeout, WriteTimeout: lim.WriteTimeout,
		ErrorLog: slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug)}

	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.Cache.Run(ctx) }()
	go func() { defer a.wg.Done(); a.Health.Run(ctx) }()
	go func() {
		defer a.wg.Done()
		if err := a.serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	var aclBase *http.Client
	if a.tls != nil {
		aclBase = &http.Client{Transport: a.tls.PeerTransport()}
		a.ACL.scheme, a.ACL.checkPeer = "https", a.tls.CheckPeer
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		client := withToken(aclBase, a.ACL.replToken, 0)
		a.ACL.Run(ctx, a.Fed, client, rand.New(rand.NewPCG(seed^0x2545f4914f6cdd1d, seed)))
	}()
	if a.Fed != nil {
		// Sync fetches report to this gateway's telemetry, tagged with
		// its region.
		fctx := httpsync.WithSyncTelemetry(ctx, &httpsync.SyncTelemetry{
			TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider,
			Propagator: tel.Propagator, Region: cfg.Region,
		})
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.Fed.Run(fctx) }()
		a.startWatcher(fctx)
	}
	if every := cmp.Or(cfg.MemoryCheck, releaseCheckEvery); every > 0 {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); newMemReleaser(log.With("component", "memory")).run(ctx, every) }()
	}
	if cfg.DNS.Addr != "" {
		if a.DNS, err = StartDNS(a.Server, cfg.DNS, log.With("component", "dns")); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.Shutdown(ctx)
			return nil, err
		}
	}
	log.Info("gateway serving", "http", ln.Addr().String(), "tls", a.tls != nil, "store", redactURL(redisURL))
	return a, nil
}

// startFederation joins the gossip pool and builds the federator.
func (a *Agent) startFederation(store *redisstore.RedisStore, httpAddr string, seed uint64, log *slog.Logger) error {
	cfg := a.cfg
	newMem := cfg.NewMembership
	if newMem == nil {
		newMem = func(c serfmember.SerfConfig) (federation.Membership, error) { return serfmember.NewSerfMembership(c) }
	}
	kr, err := loadKeyring(cfg.Encrypt, cfg.KeyringFile, log)
	if err != nil {
		return err
	}
	mem, err := newMem(serfmember.SerfConfig{
		NodeName: cfg.NodeName, Region: cfg.Region, HTTPAddr: httpAddr,
		BindAddr: cfg.SerfBind, AdvertiseAddr: cfg.SerfAdvertise, Profile: cfg.GossipProfile,
		Join: cfg.Join, Logger: log, Keys: kr.Keys, KeyringFile: cfg.KeyringFile,
	})
	if err != nil {
		return fmt.Errorf("joining the gossip pool: %w%s", err, bindHint(err, "--serf-bind"))
	}
	a.Members = mem
	a.shards = federation.NewShards(mem.LocalName())
	core := federation.DefaultCoreConfig(cfg.Region, mem.LocalName())
	if cfg.GossipProfile == "local" {
		core = federation.LocalCoreConfig(cfg.Region, mem.LocalName())
	}
	if cfg.RegionReapAfter > 0 {
		core.ReapAfter = cfg.RegionReapAfter
	}
	fetchClient, fetchOpts := a.fetchClient(core.FetchTimeout)
	fedLog := log.With("component", "federation")
	fed, err := federation.NewFederator(federation.FederatorConfig{
		Core: core, Membership: mem,
		Transport: &httpsync.Transport{Client: withToken(fetchClient, a.ACL.replToken, core.FetchTimeout), Opts: fetchOpts,
			OnError: (&httpsync.RefusalLog{Logger: fedLog}).Observe},
		Replicas: redisreplica.New(store.Client(), cfg.Region),
		Logger:   fedLog,
		Rand:     rand.New(rand.NewPCG(seed^0x5851f42d4c957f2d, seed)),
	})
	if err != nil {
		mem.Shutdown()
		return err
	}
	a.Fed = fed
	// Gossip this region's catalog version as it moves.
	a.Cache.OnChange(func([]region.Change, bool) { mem.SetVersion(a.Cache.Version()) })
	return nil
}

// peersChanged moves check ownership when this region's gateways change.
func (a *Agent) peersChanged() {
	alive := a.Fed.LocalGateways()
	if a.shards.Update(alive) {
		a.cfg.Logger.Info("health checks sharded", "region", a.cfg.Region, "gateways", strings.Join(a.shards.Names(), ","))
		a.Health.Resync()
	}
}

// owner returns the gateway that runs an instance's checks.
func (a *Agent) owner(k region.Key) (federation.Member, bool) {
	return a.shards.Owner(k.String())
}

// owns: this gateway runs the checks of k (also while it knows no peers).
func (a *Agent) owns(k region.Key) bool {
	m, ok := a.owner(k)
	return !ok || m.Name == a.Members.LocalName()
}

// checkOwnerAddr returns the HTTP address of the gateway that owns k's
// checks when that is another gateway, "" when it is this one.
func (a *Agent) checkOwnerAddr(k region.Key) string {
	m, ok := a.owner(k)
	if !ok || m.Name == a.Members.LocalName() {
		return ""
	}
	return m.HTTPAddr
}

// Addr returns the HTTP listen address.
func (a *Agent) Addr() string { return a.listener.Addr().String() }

// URL returns the API's base URL (https:// when TLS is on).
func (a *Agent) URL() string {
	if a.tls != nil {
		return "https://" + a.Addr()
	}
	return "http://" + a.Addr()
}

// Shutdown leaves the gossip pool, stops accepting requests, waits for
// in-flight ones (blocking queries end early) up to ctx's deadline, then
// stops the background work.
func (a *Agent) Shutdown(ctx context.Context) error {
	if a.Members != nil {
		if err := a.Members.Leave(); err != nil {
			a.cfg.Logger.Warn("leaving the gossip pool", "err", err)
		}
	}
	return a.stop(ctx)
}

// Kill stops the agent without leaving the gossip pool, as a crash would
// (for tests: the others must detect it as failed).
func (a *Agent) Kill() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a.stop(ctx)
}

func (a *Agent) stop(ctx context.Context) error {
	a.Server.Drain()
	if a.DNS != nil {
		a.DNS.Shutdown(ctx)
	}
	err := a.http.Shutdown(ctx)
	if a.Members != nil {
		a.Members.Shutdown()
	}
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
