package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/meridian-sd/meridian/egress"
	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/internal/gctune"
	"github.com/meridian-sd/meridian/observability"
)

func cmdAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("config", "", "YAML file of flag values (keys are flag names); env MERIDIAN_CONFIG")
	regionName := fs.String("region", "", "this gateway's region, a DNS label (required)")
	httpAddr := fs.String("http", "127.0.0.1:8700", "HTTP listen address")
	httpAdvertise := fs.String("http-advertise", "", "host:port other gateways use to reach this one's HTTP API (default: the --http address; set it when --http is 0.0.0.0:PORT)")
	redisURL := fs.String("redis", "", "Redis URL: redis://host:port/db, a cluster with ?addr=h:p&addr=..., sentinel with ?master_name=M; empty runs an embedded in-memory store")
	logMax := fs.Int("log-max", 0, "changes kept in the region's change log (default 10000)")
	catchUp := fs.Duration("catch-up", time.Second, "how often the cache reads the change log without a notification")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long a graceful shutdown waits for requests in flight")
	serfBind := fs.String("serf-bind", "127.0.0.1:7946", "Serf gossip bind address (empty: no federation)")
	serfAdvertise := fs.String("serf-advertise", "", "Serf address other gateways should use (default: the bind address)")
	var join listFlag
	fs.Var(&join, "join", "gateways to join, host:port[,host:port] (retried with backoff until one answers)")
	nodeName := fs.String("node-name", "", "unique gateway name in the gossip pool (default: made up from host and region)")
	profile := fs.String("gossip-profile", "wan", "gossip timing: wan, lan, or local (fast; development and tests)")
	routingFile := fs.String("routing", "", "YAML file of routing policies: default: {mode: local}, services: {web: {mode: nearest, nearest_n: 2}}")
	reapAfter := fs.Duration("region-reap-after", 72*time.Hour, "drop a region's replica after this long without any alive gateway of it")
	maxConns := fs.Int("max-connections", 0, "cap on open HTTP connections, excess closed at once (default: 80% of the file-descriptor limit; -1: no cap)")
	maxConnsClient := fs.Int("max-connections-per-client", 200, "cap on open HTTP connections from one client IP (-1: no cap)")
	maxInstances := fs.Int("max-instances", 200_000, "cap on the region's instances; a new registration past it answers 507 (-1: no cap)")
	maxInstancesService := fs.Int("max-instances-per-service", 20_000, "cap on one service's instances; a new registration past it answers 507 (-1: no cap)")
	writeRate := fs.Float64("write-rate", 500, "writes (register, deregister, heartbeat...) per second one client (ACL token, else IP) may make; past it 429 with Retry-After (-1: no limit)")
	encrypt := fs.String("encrypt", "", "gossip encryption key, base64 of 16, 24 or 32 bytes (meridian keyring generate); every gateway of the pool needs it")
	keyringFile := fs.String("keyring-file", "", "Serf keyring file (JSON array of base64 keys, primary first): loaded at startup when it exists (it wins over --encrypt), created from --encrypt otherwise, rewritten on every keyring change")
	egressAllow := fs.String("egress-allow", "", "CIDRs the proxy and health checks may dial although refused by default (loopback, link-local/metadata, multicast), e.g. 127.0.0.0/8; never this gateway's own ports or its store")
	onStoreLoss := fs.String("on-store-loss", "restore", "when the store lost data (Redis restarted empty): restore (write the catalog this gateway holds back) or accept (serve the store as it is)")
	egressDeny := fs.String("egress-deny", "", "CIDRs the proxy and health checks never dial, e.g. 10.20.0.0/16 (beats --egress-allow)")
	aclPolicy := fs.String("acl-default-policy", "allow", "allow (ACLs off: requests without a token may do everything) or deny (every API request needs a token with the right rules)")
	aclInitial := fs.String("acl-initial-token", "", "a management token secret (8-256 characters) that may do everything, to bootstrap; env MERIDIAN_ACL_INITIAL_TOKEN")
	aclPrimary := fs.String("primary-region", "", "the region where ACL tokens are created and stored, replicated to every other region (default: this gateway's region)")
	aclRepl := fs.String("acl-replication-token", "", "token this gateway sends on its own requests to other gateways (catalog sync, ACL replication, heartbeat forwarding); default: the initial token; env MERIDIAN_ACL_REPLICATION_TOKEN")
	dnsAddr := fs.String("dns", "", "DNS listen address for UDP and TCP, e.g. 127.0.0.1:8600 (empty: no DNS): web.service.meridian answers A/AAAA/SRV as /v1/lookup routes")
	dnsTTL := fs.Duration("dns-ttl", 5*time.Second, "TTL of DNS answers, also the negative-caching TTL in the SOA (0: the default)")
	dnsDomain := fs.String("dns-domain", "meridian.", "the DNS zone served; names outside it are REFUSED")
	dnsToken := fs.String("dns-token", "", "ACL token whose read rules DNS answers follow (default: the anonymous token); env MERIDIAN_DNS_TOKEN")
	gcFloor := fs.Int("gc-floor-mb", gctune.Default>>20, "keep the GC's heap goal at least this many MiB above the live heap (fewer collections on a small heap; 0: plain GOGC; an explicit GOGC env wins)")
	tf := addTelemetryFlags(fs)
	tlsf := addTLSFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: meridian agent --region NAME [flags]\nEvery flag can also come from MERIDIAN_<FLAG> (e.g. MERIDIAN_REDIS) or a --config YAML file.")
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := resolveFlags(fs); err != nil {
		return err
	}
	log, err := observability.NewLogger(os.Stderr, *level, *format)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	if *gcFloor < 0 {
		return fmt.Errorf("--gc-floor-mb must be 0 or more, got %d", *gcFloor)
	}
	defer gctune.Start(uint64(*gcFloor) << 20).Stop()
	if *regionName == "" {
		return fmt.Errorf("--region is required (or MERIDIAN_REGION)")
	}
	tcfg := tf.config()
	tcfg.Region, tcfg.NodeName = *regionName, *nodeName
	tel, err := observability.Setup(context.Background(), tcfg)
	if err != nil {
		return err
	}
	// Flushes the last spans (the file exporter writes them here) on
	// every way out, graceful shutdown included.
	defer shutdownTelemetry(log, tel)
	logTelemetry(log, tel, tcfg)
	allow, err := egress.ParsePrefixes(*egressAllow)
	if err != nil {
		return fmt.Errorf("--egress-allow: %w", err)
	}
	deny, err := egress.ParsePrefixes(*egressDeny)
	if err != nil {
		return fmt.Errorf("--egress-deny: %w", err)
	}
	var routing gateway.RoutingConfig
	if *routingFile != "" {
		b, err := os.ReadFile(*routingFile)
		if err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&routing); err != nil {
			return fmt.Errorf("routing file %s: %w", *routingFile, err)
		}
	}
	a, err := gateway.StartAgent(gateway.AgentConfig{
		Routing: routing,
		Region:  *regionName, HTTPAddr: *httpAddr, RedisURL: *redisURL, HTTPAdvertise: *httpAdvertise,
		LogMax: *logMax, CatchUp: *catchUp, Logger: log,
		SerfBind: *serfBind, SerfAdvertise: *serfAdvertise, Join: join, NodeName: *nodeName,
		GossipProfile: *profile, RegionReapAfter: *reapAfter,
		Limits: gateway.Limits{MaxConnections: *maxConns, MaxConnectionsPerClient: *maxConnsClient, WriteRate: *writeRate,
			MaxInstances: *maxInstances, MaxInstancesPerService: *maxInstancesService},
		Encrypt: *encrypt, KeyringFile: *keyringFile, OnStoreLoss: *onStoreLoss,
		EgressAllow: allow, EgressDeny: deny,
		Telemetry: gatewayTelemetry(tel),
		TLS:       tlsf.config(),
		ACL: gateway.ACLConfig{DefaultPolicy: *aclPolicy, InitialToken: *aclInitial, PrimaryRegion: *aclPrimary,
			ReplicationToken: *aclRepl},
		DNS: gateway.DNSConfig{Addr: *dnsAddr, TTL: *dnsTTL, Domain: *dnsDomain, Token: *dnsToken},
	})
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	s := <-sig
	for ; s == syscall.SIGHUP; s = <-sig {
		if err := a.ReloadTLS(); err != nil {
			log.Error("reloading TLS files on SIGHUP; keeping the loaded ones", "err", err)
		}
	}
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// telemetryFlags are the tracing and metrics flags of agent and dev.
type telemetryFlags struct {
	exporter, file, endpoint *string
	sampleRate               *float64
	metricsOTLP              *bool
}

func addTelemetryFlags(fs *flag.FlagSet) telemetryFlags {
	return telemetryFlags{
		exporter: fs.String("trace-exporter", "", "where spans go: otlp, file or none (default: otlp when an OTLP endpoint is set here or in OTEL_EXPORTER_OTLP_ENDPOINT, else file when --trace-file is set, else none)"),
		file:     fs.String("trace-file", "", "append spans to this file as OTLP JSON lines (one batch a line; the last batch is written on graceful shutdown)"),
		endpoint: fs.String("otlp-endpoint", "", "OTLP receiver base URL for traces and metrics, e.g. http://127.0.0.1:4318 (Jaeger reads OTLP directly); OTEL_EXPORTER_OTLP_* also apply"),
		sampleRate: fs.Float64("trace-sample-rate", -1, "fraction of new traces sampled, 0 to 1; a caller's traceparent decision is followed (parent-based). "+
			"Negative: OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG, else every trace"),
		metricsOTLP: fs.Bool("metrics-otlp", false, "push metrics over OTLP too (on anyway when an OTLP endpoint is set); /metrics always serves them"),
	}
}

func (f telemetryFlags) config() observability.Config {
	c := observability.DefaultConfig()
	c.TraceExporter, c.TraceFile, c.OTLPEndpoint = *f.exporter, *f.file, *f.endpoint
	c.SampleRate, c.MetricsOTLP = *f.sampleRate, *f.metricsOTLP
	return c
}

func gatewayTelemetry(t *observability.Telemetry) gateway.Telemetry {
	return gateway.Telemetry{TracerProvider: t.TracerProvider, MeterProvider: t.MeterProvider,
		Propagator: t.Propagator, MetricsHandler: t.MetricsHandler, Producers: t.Producers}
}

func logTelemetry(log *slog.Logger, t *observability.Telemetry, c observability.Config) {
	args := []any{"trace_exporter", t.TraceExporter, "metrics", "/metrics"}
	switch t.TraceExporter {
	case observability.ExporterFile:
		args = append(args, "trace_file", c.TraceFile)
	case observability.ExporterOTLP:
		args = append(args, "otlp_endpoint", c.OTLPEndpoint)
	}
	if t.TraceExporter != observability.ExporterNone {
		rate := "from OTEL_TRACES_SAMPLER (default all)"
		if c.SampleRate >= 0 {
			rate = strconv.FormatFloat(c.SampleRate, 'g', -1, 64)
		}
		args = append(args, "sample_rate", rate)
	}
	log.Info("telemetry", args...)
}

// shutdownTelemetry flushes and closes the exporters, with its own
// deadline so that a slow HTTP drain does not eat the flush's time.
func shutdownTelemetry(log *slog.Logger, t *observability.Telemetry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("flushing telemetry", "err", err)
	}
}
