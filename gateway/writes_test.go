package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/region"
)

// TestWriteDuringRedisStall: a registration sent while Redis stalls past
// go-redis's read timeout is applied exactly once, and its answer says what
// happened: 200 once Redis answered within the write timeout (the gateway
// asked again with the same write id), or 503 with "outcome": "unknown"
// when it did not — never "nothing was written" for a write that landed.
func TestWriteDuringRedisStall(t *testing.T) {
	srv := redistest.Start(t)
	a := startAgent(t, AgentConfig{RedisURL: srv.URL() + "?read_timeout=200ms&write_timeout=200ms"})
	u := a.URL()
	puts := func() int {
		chs, _, err := a.Store.ChangesSince(context.Background(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ch := range chs {
			if ch.Op == region.OpPut && ch.ID == "w1" {
				n++
			}
		}
		return n
	}

	srv.Pause(t)
	time.AfterFunc(time.Second, func() { srv.Resume(t) })
	call(t, "PUT", u+"/v1/services/web/instances/w1", `{"address":"10.0.0.5","port":80}`).want(t, 200)
	if n := puts(); n != 1 {
		t.Fatalf("registration during a 1s stall: %d put entries in the change log, want 1", n)
	}

	// A stall longer than the write timeout (5s): the outcome is unknown.
	srv.Pause(t)
	resumed := make(chan struct{})
	time.AfterFunc(6*time.Second, func() { srv.Resume(t); close(resumed) })
	r := call(t, "PUT", u+"/v1/services/web/instances/w2", `{"address":"10.0.0.5","port":81}`).want(t, 503)
	<-resumed
	if r.body["outcome"] != "unknown" || strings.Contains(r.raw, "nothing was written") || r.header.Get("Retry-After") == "" {
		t.Fatalf("503 after a lost answer: %s (Retry-After %q), want outcome unknown", r.raw, r.header.Get("Retry-After"))
	}
	if strings.Contains(r.raw, srv.Addr()) {
		t.Fatalf("error body names the store's address: %s", r.raw)
	}

	// The client repeats with an Idempotency-Key: applied once.
	for range 2 {
		req := `{"address":"10.0.0.5","port":82}`
		res := callWithHeader(t, "PUT", u+"/v1/services/web/instances/w3", req, idempotencyHeader, "k-1").want(t, 200)
		if v := res.header.Get("X-Meridian-Index"); v == "" {
			t.Fatal("no X-Meridian-Index")
		}
	}
	chs, _, _ := a.Store.ChangesSince(context.Background(), 0, 1000)
	n := 0
	for _, ch := range chs {
		if ch.ID == "w3" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a write repeated with the same Idempotency-Key: %d changes, want 1", n)
	}
	callWithHeader(t, "PUT", u+"/v1/services/web/instances/w4", `{"address":"10.0.0.5","port":82}`, idempotencyHeader, "bad key!").want(t, 400)
}
