package gateway

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/client"
	"github.com/meridian-sd/meridian/internal/redistest"
)

// TestClientSurvivesGatewayKill runs the Go client against a region with two
// real gateways (shared real Redis, real Serf): the gateway the client uses
// is killed without leaving, and registration, heartbeats, discovery and
// calls keep working through the other one.
func TestClientSurvivesGatewayKill(t *testing.T) {
	skipShort(t, "two gateways, one killed; client unit tests cover failover")
	shared := redistest.FromEnv(t)
	use := fmt.Sprintf("cli-%06x", rand.Uint32()&0xffffff)
	g1 := startFedNode(t, use, use+"-1", shared)
	g2 := startFedNode(t, use, use+"-2", shared, g1.serfAddr())
	waitFor(t, 20*time.Second, "both gateways see each other alive", func() bool {
		return gatewayStatus(t, g1, use, use+"-2") == "alive" && gatewayStatus(t, g2, use, use+"-1") == "alive"
	})

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok "+r.URL.Path)
	}))
	defer backend.Close()
	host, portStr, _ := net.SplitHostPort(backend.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	ctx := context.Background()
	c, err := client.New(client.Config{
		Gateways: []string{g1.URL(), g2.URL()}, Zone: "a", Logger: quietLogger(),
		Rand: rand.New(rand.NewPCG(7, 7)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ttl = 2 * time.Second
	if _, err := c.Register(ctx, client.Registration{Service: "web", ID: "web-1", Address: host, Port: port, Zone: "a", TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	if c.Gateway() != g1.URL() {
		t.Fatalf("client uses %s, want the first gateway %s", c.Gateway(), g1.URL())
	}
	callOK := func() error {
		req, _ := http.NewRequest(http.MethodGet, "/x", nil)
		resp, err := c.Do(ctx, "web", req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "ok /x" {
			return fmt.Errorf("status %d body %q", resp.StatusCode, b)
		}
		return nil
	}
	if err := callOK(); err != nil {
		t.Fatalf("call before the kill: %v", err)
	}

	// The second gateway learns the registration from Redis' notification
	// (milliseconds, longer on a loaded machine): wait for it before the
	// kill, which is what this test is about.
	waitFor(t, 10*time.Second, "the second gateway serves web-1", func() bool {
		insts, _ := call(t, "GET", g2.URL()+"/v1/services/web", "").want(t, 200).body["instances"].([]any)
		return len(insts) == 1
	})

	g1.Kill()

	// For four TTLs the instance must stay passing (heartbeats now reach
	// the second gateway), and every call must succeed.
	end := time.Now().Add(4 * ttl)
	calls := 0
	for time.Now().Before(end) {
		if err := callOK(); err != nil {
			t.Fatalf("call %d after the kill: %v", calls, err)
		}
		calls++
		r := call(t, "GET", g2.URL()+"/v1/services/web", "").want(t, 200)
		insts, _ := r.body["instances"].([]any)
		if len(insts) != 1 || insts[0].(map[string]any)["status"] != "passing" {
			t.Fatalf("after the kill, the surviving gateway serves %v; want web-1 passing", r.body["instances"])
		}
		time.Sleep(250 * time.Millisecond)
	}
	if c.Gateway() != g2.URL() {
		t.Fatalf("client uses %s after the kill, want %s", c.Gateway(), g2.URL())
	}
	waitFor(t, 10*time.Second, "discovery answer fresh again (served by the second gateway)", func() bool {
		res, err := c.Lookup(ctx, "web")
		return err == nil && !res.Stale && len(res.Endpoints) == 1
	})

	// A new registration after the kill goes through the survivor.
	reg2, err := c.Register(ctx, client.Registration{Service: "web", ID: "web-2", Address: host, Port: port, Zone: "a", TTL: ttl})
	if err != nil {
		t.Fatalf("register after the kill: %v", err)
	}
	waitFor(t, 5*time.Second, "web-2 visible on the survivor", func() bool {
		r := call(t, "GET", g2.URL()+"/v1/services/web?passing=true", "")
		return len(instanceIDs(r)) == 2
	})
	if err := reg2.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r := call(t, "GET", g2.URL()+"/v1/services/web", "").want(t, 200)
	if ids := instanceIDs(r); len(ids) != 0 {
		t.Fatalf("after Close, instances %v remain; want none", ids)
	}
	t.Logf("%d calls through the client succeeded while one gateway was dead", calls)
}
