package client

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

func ids(t *testing.T, c *Client, service string) []string {
	t.Helper()
	eps, err := c.Endpoints(testCtx(t), service)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.ID
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The first lookup asks the gateway; then a watcher follows changes with
// blocking queries (not by polling).
func TestLookupWatches(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	st.add("web", "w1", 9001)
	c := newClient(t, testConfig(gw.URL()))
	res, err := c.Lookup(testCtx(t), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Endpoints) != 1 || res.Endpoints[0].ID != "w1" || res.Endpoints[0].Region != "us-east" ||
		res.FromRegion != "us-east" || res.Index != 1 || res.Stale || res.Explanation != "fake" {
		t.Fatalf("lookup = %+v", res)
	}
	st.add("web", "w2", 9002)
	waitFor(t, 2*time.Second, "the watcher to see w2", func() bool { return equal(ids(t, c, "web"), []string{"w1", "w2"}) })
	st.remove("web", "w1")
	waitFor(t, 2*time.Second, "the watcher to see w1 go", func() bool { return equal(ids(t, c, "web"), []string{"w2"}) })
	if n := st.count("lookup"); n > 6 {
		t.Errorf("%d lookups for 2 changes: the watcher polls instead of blocking", n)
	}
}

// While every gateway is down, discovery keeps serving the last answer,
// marked stale, and Pick still works.
func TestDiscoveryServesCacheWhenGatewaysDown(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw1, gw2 := st.serve(t), st.serve(t)
	st.add("web", "w1", 9001)
	st.add("web", "w2", 9002)
	c := newClient(t, testConfig(gw1.URL(), gw2.URL()))
	if got := ids(t, c, "web"); !equal(got, []string{"w1", "w2"}) {
		t.Fatalf("endpoints = %v", got)
	}
	gw1.kill()
	gw2.kill()
	waitFor(t, 3*time.Second, "the answer to turn stale", func() bool {
		res, err := c.Lookup(testCtx(t), "web")
		return err == nil && res.Stale
	})
	time.Sleep(20 * time.Millisecond)
	eps, err := c.Endpoints(testCtx(t), "web")
	if err != nil || len(eps) != 2 {
		t.Fatalf("Endpoints with the gateways down = %v, %v; want the 2 cached ones and no error", eps, err)
	}
	res, err := c.Lookup(testCtx(t), "web")
	if err != nil || !res.Stale || res.Age <= 0 || res.Err == nil || len(res.Endpoints) != 2 {
		t.Fatalf("Lookup with the gateways down = %+v, %v; want the cached answer, stale, with an age and an error", res, err)
	}
	if _, err := c.Pick(testCtx(t), "web", ""); err != nil {
		t.Errorf("Pick with the gateways down: %v", err)
	}
	// A service never looked up has nothing cached: that is an error.
	if _, err := c.Lookup(testCtx(t), "api"); err == nil {
		t.Error("Lookup of an uncached service with the gateways down: no error")
	}
}

// When the first gateway dies, heartbeats and the watcher move to the
// next one and stay there.
func TestGatewayFailover(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw1, gw2 := st.serve(t), st.serve(t)
	st.add("web", "w1", 9001)
	c := newClient(t, testConfig(gw1.URL(), gw2.URL()))
	if _, err := c.Register(testCtx(t), Registration{Service: "api", ID: "a1", Address: "127.0.0.1", Port: 80, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, c, "web"); !equal(got, []string{"w1"}) {
		t.Fatalf("endpoints = %v", got)
	}
	if c.Gateway() != gw1.URL() {
		t.Fatalf("gateway = %s, want the first one %s", c.Gateway(), gw1.URL())
	}
	gw1.kill()
	hb := st.count("heartbeat")
	waitFor(t, 2*time.Second, "heartbeats through the second gateway", func() bool { return st.count("heartbeat") >= hb+2 })
	if c.Gateway() != gw2.URL() {
		t.Fatalf("gateway = %s, want the second one %s", c.Gateway(), gw2.URL())
	}
	st.add("web", "w2", 9002)
	waitFor(t, 3*time.Second, "the watcher to follow through the second gateway", func() bool {
		return equal(ids(t, c, "web"), []string{"w1", "w2"})
	})
	if res, _ := c.Lookup(testCtx(t), "web"); res.Stale {
		t.Errorf("answer stale after failing over: %+v", res)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st.has("api", "a1") {
		t.Error("Close did not deregister through the second gateway")
	}
}

// A dead first gateway in the list does not stop a client from using a
// real gateway: register, discover through /v1/lookup.
func TestRealGatewayBehindDeadOne(t *testing.T) {
	t.Parallel()
	gw := startGateway(t)
	dead := "127.0.0.1:" + strconv.Itoa(closedPort(t))
	cfg := testConfig(dead, gw.Addr())
	cfg.Zone = "a"
	c := newClient(t, cfg)
	reg, err := c.Register(testCtx(t), Registration{Service: "web", ID: "w1", Address: "127.0.0.1", Port: 9001, Zone: "a", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway() != gw.URL() {
		t.Errorf("gateway = %s, want %s", c.Gateway(), gw.URL())
	}
	if reg.Instance().Status != region.StatusPassing {
		t.Errorf("status = %s, want passing", reg.Instance().Status)
	}
	res, err := c.Lookup(testCtx(t), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Endpoints) != 1 || res.Endpoints[0].ID != "w1" || res.Endpoints[0].Region != "us-east" ||
		res.Endpoints[0].Priority != 0 || res.FromRegion != "us-east" || res.Failover || res.Explanation == "" || res.Index == 0 {
		t.Fatalf("lookup = %+v", res)
	}
	if _, err := c.Register(testCtx(t), Registration{Service: "web", ID: "w2", Address: "127.0.0.1", Port: 9002, Zone: "a", TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the watcher to see w2", func() bool { return len(ids(t, c, "web")) == 2 })
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	c := newClient(t, testConfig("127.0.0.1:"+strconv.Itoa(closedPort(t))))
	if _, err := c.Lookup(testCtx(t), "Not_A_Service"); region.FieldOf(err) != "service" {
		t.Errorf("bad service name: err = %v, want one naming service", err)
	}
	_, err := c.Lookup(testCtx(t), "web")
	var ue *unavailableError
	if !errors.As(err, &ue) {
		t.Errorf("no gateway: err = %v, want no gateway answered", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Lookup(ctx, "web"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	c.Close()
	if _, err := c.Lookup(testCtx(t), "web"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}
