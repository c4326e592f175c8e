package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/observability"
)

func cmdAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("config", "", "YAML file of flag values (keys are flag names); env MERIDIAN_CONFIG")
	regionName := fs.String("region", "", "this gateway's region, a DNS label (required)")
	httpAddr := fs.String("http", "127.0.0.1:8700", "HTTP listen address")
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
	if *regionName == "" {
		return fmt.Errorf("--region is required (or MERIDIAN_REGION)")
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
		Region:  *regionName, HTTPAddr: *httpAddr, RedisURL: *redisURL,
		LogMax: *logMax, CatchUp: *catchUp, Logger: log,
		SerfBind: *serfBind, SerfAdvertise: *serfAdvertise, Join: join, NodeName: *nodeName,
		GossipProfile: *profile, RegionReapAfter: *reapAfter,
	})
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
