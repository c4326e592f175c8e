package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// Heartbeats keep a TTL instance passing on a real gateway, well past its
// TTL; when the gateway loses the instance (deleted behind the client's
// back), the next heartbeat's 404 registers it again; Close deregisters.
func TestRegisterHeartbeatsAndReregisters(t *testing.T) {
	t.Parallel()
	gw := startGateway(t)
	c, err := New(testConfig(gw.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg, err := c.Register(testCtx(t), Registration{Service: "web", ID: "web-1", Address: "127.0.0.1", Port: 8080,
		Zone: "a", Tags: []string{"v2"}, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if in := reg.Instance(); in.Status != region.StatusPassing || in.Check == nil || in.Check.TTL.Std() != time.Second {
		t.Fatalf("registered instance = %+v, want passing with a 1s TTL check", in)
	}

	// Several TTLs later it is still passing, thanks to the heartbeats
	// (every TTL/3: at least 5 within 2.5s on a quiet machine; a loaded
	// one gets up to 10s to send them).
	start := time.Now()
	time.Sleep(2500 * time.Millisecond)
	for reg.st.heartbeats.Load() < 5 && time.Since(start) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if n := reg.st.heartbeats.Load(); n < 5 {
		t.Errorf("heartbeats in %v with a 1s TTL = %d, want at least 5 (every TTL/3)", time.Since(start).Round(time.Millisecond), n)
	}
	in, ok := gatewayInstance(t, gw.URL(), "web", "web-1")
	if !ok || in.Status != region.StatusPassing {
		t.Fatalf("after %v: instance %+v (found %v), want passing", time.Since(start).Round(time.Millisecond), in, ok)
	}

	req, _ := http.NewRequest(http.MethodDelete, gw.URL()+"/v1/services/web/instances/web-1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 2*time.Second, "the instance to be registered again", func() bool {
		_, ok := gatewayInstance(t, gw.URL(), "web", "web-1")
		return ok && reg.st.reregistered.Load() >= 1
	})
	if in, _ := gatewayInstance(t, gw.URL(), "web", "web-1"); in.Zone != "a" || len(in.Tags) != 1 || in.Tags[0] != "v2" {
		t.Errorf("registered again as %+v, want the same zone and tags", in)
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := gatewayInstance(t, gw.URL(), "web", "web-1"); ok {
		t.Error("instance still registered after Close")
	}
	if _, err := c.Register(testCtx(t), Registration{Service: "web", ID: "web-2", Address: "127.0.0.1", Port: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Register after Close: err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDeregister(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	c := newClient(t, testConfig(gw.URL()))
	reg, err := c.Register(testCtx(t), Registration{Service: "api", ID: "a1", Address: "10.0.0.1", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if !st.has("api", "a1") {
		t.Fatal("not registered")
	}
	if err := reg.Deregister(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st.has("api", "a1") {
		t.Fatal("still registered after Deregister")
	}
	if err := reg.Deregister(testCtx(t)); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
	if n := st.count("deregister"); n != 1 {
		t.Errorf("DELETE requests = %d, want 1", n)
	}
	hb := st.count("heartbeat")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := st.count("deregister"); n != 1 {
		t.Errorf("Close deregistered again: DELETE requests = %d, want 1", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := st.count("heartbeat"); n != hb {
		t.Errorf("heartbeats after Deregister: %d, then %d", hb, n)
	}
}

// Bad registrations fail at once, naming the field: locally when the
// client can tell, or with the gateway's 400.
func TestRegisterRejected(t *testing.T) {
	t.Parallel()
	gw := startGateway(t)
	c := newClient(t, testConfig(gw.Addr()))
	for _, tc := range []struct {
		reg   Registration
		field string
	}{
		{Registration{Service: "Web", ID: "1", Address: "127.0.0.1", Port: 80}, "service"},
		{Registration{Service: "web", ID: "a/b", Address: "127.0.0.1", Port: 80}, "id"},
		{Registration{Service: "web", ID: "1", Address: "", Port: 80}, "address"},
		{Registration{Service: "web", ID: "1", Address: "127.0.0.1", Port: 0}, "port"},
		{Registration{Service: "web", ID: "1", Address: "127.0.0.1", Port: 80, TTL: time.Millisecond}, "ttl"},
		{Registration{Service: "web", ID: "1", Address: "127.0.0.1", Port: 80, Weight: 5000}, "weight"},
		{Registration{Service: "web", ID: "1", Address: "127.0.0.1", Port: 80, Tags: []string{""}}, "tags[0]"},
	} {
		start := time.Now()
		_, err := c.Register(testCtx(t), tc.reg)
		if err == nil {
			t.Errorf("%+v: registered, want an error naming %s", tc.reg, tc.field)
			continue
		}
		if got := region.FieldOf(err); got != tc.field {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Field != tc.field {
				t.Errorf("%+v: err = %v, want one naming field %q", tc.reg, err, tc.field)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%+v: took %s to fail; a 4xx must not be retried", tc.reg, d)
		}
	}
}

// Register keeps trying while no gateway answers, until ctx ends.
func TestRegisterNoGateway(t *testing.T) {
	t.Parallel()
	c := newClient(t, testConfig("127.0.0.1:"+strconv.Itoa(closedPort(t))))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Register(ctx, Registration{Service: "web", ID: "1", Address: "127.0.0.1", Port: 80})
	if err == nil || !strings.Contains(err.Error(), "registering web/1") {
		t.Fatalf("err = %v, want a registration error", err)
	}
}

func TestHeartbeatJitter(t *testing.T) {
	c := newClient(t, testConfig("127.0.0.1:1"))
	const every = 300 * time.Millisecond
	lo, hi := every, every
	for range 1000 {
		d := c.jitter(every)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < every*9/10 || hi > every*11/10 || hi-lo < every/10 {
		t.Errorf("jitter of %s spans [%s, %s], want about [%s, %s]", every, lo, hi, every*9/10, every*11/10)
	}
}
