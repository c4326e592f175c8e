package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/observability"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

// devRegion is one region of `meridian dev`.
type devRegion struct {
	name, http, serf string
	services         map[string][]string // service -> instance ids
}

var devRegions = []devRegion{
	{"us-east", "127.0.0.1:8701", "127.0.0.1:7801", map[string][]string{"web": {"web-1", "web-2"}, "api": {"api-1"}}},
	{"eu-west", "127.0.0.1:8702", "127.0.0.1:7802", map[string][]string{"web": {"web-1", "web-2"}, "api": {"api-1", "api-2"}}},
	{"ap-south", "127.0.0.1:8703", "127.0.0.1:7803", map[string][]string{"web": {"web-1"}, "db": {"db-1"}}},
}

// cmdDev runs three regions in one process: embedded stores, real Serf over
// 127.0.0.1 (local profile), one HTTP port each, demo services.
func cmdDev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	encrypt := fs.String("encrypt", "", "encrypt the three gateways' gossip with this key (meridian keyring generate)")
	tf := addTelemetryFlags(fs)
	aclPolicy := fs.String("acl-default-policy", "allow", "allow (ACLs off) or deny (every request needs a token); us-east is the ACL primary")
	aclInitial := fs.String("acl-initial-token", "", "management token secret for all three regions (env MERIDIAN_ACL_INITIAL_TOKEN); needed with deny")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *encrypt != "" {
		if _, err := serfmember.ParseKey(*encrypt); err != nil {
			return fmt.Errorf("--encrypt: %w", err)
		}
	}
	if *aclInitial == "" {
		*aclInitial = os.Getenv("MERIDIAN_ACL_INITIAL_TOKEN")
	}
	if *aclPolicy == "deny" && *aclInitial == "" {
		return fmt.Errorf("--acl-default-policy deny needs --acl-initial-token (or MERIDIAN_ACL_INITIAL_TOKEN) to register the demo services")
	}
	log, err := observability.NewLogger(os.Stderr, *level, "text")
	if err != nil {
		return err
	}
	// One process, one OpenTelemetry setup (service.name meridian): the
	// three gateways share its providers and tell themselves apart by the
	// meridian.region and meridian.node attributes of their spans and the
	// region label of their metrics; each /metrics lists all three.
	tcfg := tf.config()
	tel, err := observability.Setup(context.Background(), tcfg)
	if err != nil {
		return err
	}
	defer shutdownTelemetry(log, tel)
	logTelemetry(log, tel, tcfg)
	var agents []*gateway.Agent
	// One embedded store per region, started here so that every gateway's
	// egress policy reserves all of them (and all gateways' ports).
	var stores []*miniredis.Miniredis
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, a := range agents {
			a.Shutdown(ctx)
		}
		for _, m := range stores {
			m.Close()
		}
	}()
	reserved := devGatewayAddrs()
	for range devRegions {
		m, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("starting an embedded store: %w", err)
		}
		stores = append(stores, m)
		reserved = append(reserved, m.Addr())
	}
	log.Info("dev: embedded in-memory stores (miniredis); data will not survive a restart")
	for i, r := range devRegions {
		var join []string // every earlier region, so all know each other at once
		for _, prev := range devRegions[:i] {
			join = append(join, prev.serf)
		}
		a, err := gateway.StartAgent(gateway.AgentConfig{
			Region: r.name, HTTPAddr: r.http, SerfBind: r.serf, Join: join, RedisURL: "redis://" + stores[i].Addr() + "/0",
			NodeName: r.name + "-1", GossipProfile: "local", Logger: log, Encrypt: *encrypt,
			Telemetry:      gatewayTelemetry(tel),
			EgressReserved: reserved, // no gateway dials another's ports or store
			// The demo backends listen on 127.0.0.1: let the proxy and
			// health checks reach loopback (gateways and stores stay
			// reserved above).
			EgressAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			ACL:         gateway.ACLConfig{DefaultPolicy: *aclPolicy, InitialToken: *aclInitial, PrimaryRegion: devRegions[0].name},
		})
		if err != nil {
			return fmt.Errorf("starting region %s: %w (is another meridian dev running?)", r.name, err)
		}
		agents = append(agents, a)
	}
	// Demo services, each with a tiny HTTP backend (devbackends.go) so
	// that pick and proxy lead somewhere, registered through the HTTP API
	// like any service would.
	var backends []*devBackend
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stopDevBackends(ctx, backends)
	}()
	for ri, r := range devRegions {
		k := 0
		for _, svc := range []string{"api", "db", "web"} {
			for j, id := range r.services[svc] {
				backends = append(backends, &devBackend{service: svc, id: id, region: r.name, zone: fmt.Sprintf("%s-%c", r.name, 'a'+rune(j%2)),
					addr: fmt.Sprintf("127.0.0.1:%d", devBackendPort(ri, k))})
				k++
			}
		}
	}
	startDevBackends(backends, log)
	for _, b := range backends {
		host, port, _ := net.SplitHostPort(b.addr)
		r := devRegionNamed(b.region)
		body := fmt.Sprintf(`{"address":%q,"port":%s,"zone":%q,"tags":["demo"]}`, host, port, b.zone)
		if err := devPut("http://"+r.http+"/v1/services/"+b.service+"/instances/"+b.id, body, *aclInitial); err != nil {
			return fmt.Errorf("registering demo %s/%s in %s: %w", b.service, b.id, r.name, err)
		}
	}
	fmt.Print(devBanner())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	log.Info("shutting down the dev federation")
	return nil
}

// devRegionNamed returns the dev region called name.
func devRegionNamed(name string) devRegion {
	for _, r := range devRegions {
		if r.name == name {
			return r
		}
	}
	return devRegion{}
}

// devGatewayAddrs are the HTTP and Serf addresses of all dev gateways.
func devGatewayAddrs() []string {
	var out []string
	for _, r := range devRegions {
		out = append(out, r.http, r.serf)
	}
	return out
}

func devPut(url, body, token string) error {
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set(gateway.TokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func devBanner() string {
	var b strings.Builder
	b.WriteString("\nMeridian dev federation is up: three regions in one process, embedded stores, Serf on 127.0.0.1 (local profile).\n\n")
	for _, r := range devRegions {
		fmt.Fprintf(&b, "  %-9s http://%s   (serf %s)\n", r.name, r.http, r.serf)
	}
	b.WriteString(`
Status page: http://127.0.0.1:8701/ (each region's gateway serves one)

Try:
  curl -s http://127.0.0.1:8701/v1/regions
  curl -s http://127.0.0.1:8701/v1/lookup/web          # routed: us-east's instances first, with the explanation
  curl -s http://127.0.0.1:8701/v1/lookup/db           # db runs only in ap-south: a failover decision
  curl -s http://127.0.0.1:8701/v1/pick/web            # one endpoint, round robin
  curl -s http://127.0.0.1:8701/v1/proxy/web/hello     # proxied to a demo backend: "hello from web/web-1 in us-east"
  curl -s 'http://127.0.0.1:8701/v1/services/web?region=eu-west'
  curl -s 'http://127.0.0.1:8701/v1/services/web?region=*'
  go run ./cmd/meridian services --addr 127.0.0.1:8702
  go run ./cmd/meridian register web web-9 --address 127.0.0.1 --port 9100 --ttl 30s --addr 127.0.0.1:8703
  go run ./cmd/meridian instances web --region ap-south --addr 127.0.0.1:8701
  go run ./cmd/meridian regions --addr 127.0.0.1:8701

Ctrl-C stops all three.
`)
	return b.String()
}
