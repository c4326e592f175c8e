package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/gateway"
)

// TestDevBackendsBehindTheProxy: meridian dev's demo backends answer
// through a real gateway's /v1/proxy (the proxy demo of its "Try:" list),
// and a backend whose port is taken is skipped with a warning.
func TestDevBackendsBehindTheProxy(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	backends := []*devBackend{
		{service: "web", id: "web-1", region: "us-east", addr: "127.0.0.1:0"},
		{service: "web", id: "web-2", region: "us-east", addr: taken.Addr().String()},
	}
	startDevBackends(backends, log)
	defer stopDevBackends(context.Background(), backends)
	if backends[1].srv != nil || !strings.Contains(logs.String(), "demo backend not started") {
		t.Fatalf("a backend on a taken port: srv %v, log %s", backends[1].srv, logs.String())
	}
	a, err := gateway.StartAgent(gateway.AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		EgressAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	}()
	// Reads answer 503 until the agent has loaded its catalog (writes are
	// accepted before): wait for it as `meridian dev` users would retry.
	for deadline := time.Now().Add(5 * time.Second); !a.Cache.Freshness().Loaded; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not load its catalog in 5s")
		}
	}
	host, port, _ := net.SplitHostPort(backends[0].addr)
	if err := devPut(a.URL()+"/v1/services/web/instances/web-1", fmt.Sprintf(`{"address":%q,"port":%s}`, host, port), ""); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(a.URL() + "/v1/proxy/web/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"message":"hello from web/web-1 in us-east"`) {
		t.Fatalf("proxy to the demo backend: %d %s", resp.StatusCode, body)
	}
}
