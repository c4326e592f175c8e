package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// get sends GET path to service through c and returns the status and body
// ("" and the error when it failed).
func get(t *testing.T, c *Client, service, path string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, c, service, req)
}

func roundTrip(t *testing.T, c *Client, service string, req *http.Request) (int, string, error) {
	t.Helper()
	resp, err := c.Do(testCtx(t), service, req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// noBreaker keeps breakers out of tests about retries.
var noBreaker = BreakerConfig{ConsecutiveFailures: 1 << 30, MinRequests: 1 << 30}

func TestDoRewritesURL(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	b := newBackend(t, "b1")
	st.add("web", "w1", b.port())
	c := newClient(t, testConfig(gw.URL()))
	req, _ := http.NewRequest(http.MethodPut, "https://web.service/v1/items/7?x=1&y=2", strings.NewReader("payload"))
	code, body, err := roundTrip(t, c, "web", req)
	if err != nil || code != 200 || body != "b1 PUT /v1/items/7?x=1&y=2" {
		t.Fatalf("Do = %d %q %v", code, body, err)
	}
	if got := b.gotBodies(); len(got) != 1 || got[0] != "payload" {
		t.Errorf("backend got bodies %q, want one \"payload\"", got)
	}
}

// A GET to an endpoint that refuses connections is retried on the other
// one; every request succeeds.
func TestDoRetriesAnotherEndpoint(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	live := newBackend(t, "live")
	st.add("web", "a-dead", closedPort(t))
	st.add("web", "b-live", live.port())
	cfg := testConfig(gw.URL())
	cfg.LB = failover.PickerRoundRobin
	cfg.Breaker = noBreaker
	c := newClient(t, cfg)
	for i := range 10 {
		code, body, err := get(t, c, "web", "/hello")
		if err != nil || code != 200 || body != "live GET /hello" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if n := live.hits.Load(); n != 10 {
		t.Errorf("live endpoint hits = %d, want 10", n)
	}
}

// Without an Idempotency-Key a POST is sent once, whatever happens; with
// one it is retried on the other endpoint with its body replayed.
func TestDoRetriesOnlyIdempotent(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	b1, b2 := newBackend(t, "b1"), newBackend(t, "b2")
	b1.status.Store(http.StatusServiceUnavailable)
	b2.status.Store(http.StatusServiceUnavailable)
	st.add("web", "w1", b1.port())
	st.add("web", "w2", b2.port())
	cfg := testConfig(gw.URL())
	cfg.Breaker = noBreaker
	c := newClient(t, cfg)
	hits := func() int64 { return b1.hits.Load() + b2.hits.Load() }

	req, _ := http.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"n":1}`))
	code, _, err := roundTrip(t, c, "web", req)
	if err != nil || code != 503 || hits() != 1 {
		t.Fatalf("POST: %d %v after %d attempts; want the 503 after 1 attempt", code, err, hits())
	}

	req, _ = http.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"n":2}`))
	req.Header.Set("Idempotency-Key", "k2")
	code, _, err = roundTrip(t, c, "web", req)
	if err != nil || code != 503 || hits() != 1+3 {
		t.Fatalf("POST with an Idempotency-Key: %d %v after %d attempts; want the 503 after 3", code, err, hits()-1)
	}
	if b1.hits.Load() == 0 || b2.hits.Load() == 0 {
		t.Errorf("retries stayed on one endpoint: hits %d and %d", b1.hits.Load(), b2.hits.Load())
	}
	for _, b := range []*backend{b1, b2} {
		for i, body := range b.gotBodies() {
			if body != `{"n":1}` && body != `{"n":2}` {
				t.Errorf("%s request %d: body %q, want the replayed one", b.name, i, body)
			}
		}
	}

	// A body that cannot be replayed is not retried even with a key.
	req, _ = http.NewRequest(http.MethodPut, "/orders", io.NopCloser(strings.NewReader("x")))
	before := hits()
	if code, _, err := roundTrip(t, c, "web", req); err != nil || code != 503 || hits() != before+1 {
		t.Errorf("PUT without GetBody: %d %v after %d attempts; want 1", code, err, hits()-before)
	}

	// A POST to a closed port: one attempt, an error.
	st2 := newFakeState()
	gw2 := st2.serve(t)
	st2.add("api", "dead", closedPort(t))
	live := newBackend(t, "live")
	st2.add("api", "live", live.port())
	cfg = testConfig(gw2.URL())
	cfg.LB = failover.PickerRoundRobin
	c2 := newClient(t, cfg)
	req, _ = http.NewRequest(http.MethodPost, "/x", strings.NewReader("y"))
	if _, _, err := roundTrip(t, c2, "api", req); err == nil || live.hits.Load() != 0 {
		t.Errorf("POST to a refusing endpoint: err %v, live hits %d; want the error and no retry", err, live.hits.Load())
	}
}

// With every request failing, the budget caps retries near ratio x
// requests + the minimum, far below MaxRetries x requests.
func TestRetryBudgetCapsRetries(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	b1, b2 := newBackend(t, "b1"), newBackend(t, "b2")
	b1.status.Store(http.StatusServiceUnavailable)
	b2.status.Store(http.StatusServiceUnavailable)
	st.add("web", "w1", b1.port())
	st.add("web", "w2", b2.port())
	cfg := testConfig(gw.URL())
	cfg.Breaker = noBreaker
	cfg.RetryBudget = 0.1
	cfg.MinRetriesPerSecond = 1
	cfg.RetryWindow = 5 * time.Second
	cfg.BackoffMax = 2 * time.Millisecond
	c := newClient(t, cfg)
	const requests = 100
	for range requests {
		if code, _, err := get(t, c, "web", "/"); err != nil || code != 503 {
			t.Fatalf("got %d %v, want the 503", code, err)
		}
	}
	retries := b1.hits.Load() + b2.hits.Load() - requests
	// 10% of 100 plus 1/s x 5s; without the budget it would be 200.
	if retries < 10 || retries > 15 {
		t.Errorf("retries for %d failing requests = %d, want 10-15 (10%% + 5)", requests, retries)
	}
}

// Five consecutive failures open an endpoint's breaker; it is then
// skipped; when every breaker is open Do fails fast; after OpenTimeout a
// probe goes through and closes it again.
func TestBreakerOpensAndSkips(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	bad, good := newBackend(t, "bad"), newBackend(t, "good")
	bad.status.Store(http.StatusInternalServerError)
	st.add("web", "a-bad", bad.port())
	st.add("web", "b-good", good.port())
	cfg := testConfig(gw.URL())
	cfg.LB = failover.PickerRoundRobin
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 5, OpenTimeout: time.Second}
	c := newClient(t, cfg)
	const badRef = "us-east/web/a-bad"
	for range 30 {
		get(t, c, "web", "/")
	}
	if n := bad.hits.Load(); n != 5 {
		t.Errorf("bad endpoint hits = %d, want 5 (then the breaker opens)", n)
	}
	if s := c.BreakerState(badRef); s != "open" {
		t.Errorf("bad endpoint breaker = %s, want open", s)
	}
	for range 10 {
		if ep, err := c.Pick(testCtx(t), "web", ""); err != nil || ep.ID != "b-good" {
			t.Fatalf("Pick = %s %v, want b-good while a-bad's breaker is open", ep.ID, err)
		}
	}

	// Every breaker open: Pick still answers, Do fails fast.
	good.status.Store(http.StatusInternalServerError)
	for range 5 {
		get(t, c, "web", "/")
	}
	if s := c.BreakerState("us-east/web/b-good"); s != "open" {
		t.Fatalf("good endpoint breaker = %s, want open", s)
	}
	if _, err := c.Pick(testCtx(t), "web", ""); err != nil {
		t.Errorf("Pick with every breaker open: %v, want an endpoint anyway", err)
	}
	hits := bad.hits.Load() + good.hits.Load()
	if _, _, err := get(t, c, "web", "/"); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("Do with every breaker open: err = %v, want ErrCircuitOpen", err)
	}
	if n := bad.hits.Load() + good.hits.Load(); n != hits {
		t.Errorf("Do with every breaker open reached an endpoint")
	}

	// Half-open after OpenTimeout: a successful probe closes it.
	bad.status.Store(http.StatusOK)
	time.Sleep(time.Second)
	waitFor(t, 2*time.Second, "the bad endpoint's breaker to close", func() bool {
		get(t, c, "web", "/")
		return c.BreakerState(badRef) == "closed"
	})
}

// The p2c picker learns latencies from Do and sends most requests to the
// fast endpoint.
func TestDoReportsLatencyToP2C(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	fast := newBackend(t, "fast")
	slow := newBackend(t, "slow")
	slow.delay.Store(int64(20 * time.Millisecond))
	st.add("web", "fast", fast.port())
	st.add("web", "slow", slow.port())
	c := newClient(t, testConfig(gw.URL()))
	for range 40 {
		if code, _, err := get(t, c, "web", "/"); err != nil || code != 200 {
			t.Fatal(code, err)
		}
	}
	if f, s := fast.hits.Load(), slow.hits.Load(); f < 3*s {
		t.Errorf("p2c sent %d requests to the fast endpoint and %d to the slow one; want most to the fast one", f, s)
	}
}

func TestDoErrors(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	c := newClient(t, testConfig(gw.URL()))
	if _, _, err := get(t, c, "web", "/"); !errors.Is(err, ErrNoEndpoints) {
		t.Errorf("no endpoints: err = %v, want ErrNoEndpoints", err)
	}
	b := newBackend(t, "b")
	b.delay.Store(int64(300 * time.Millisecond))
	st.add("api", "a1", b.port())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	if _, err := c.Do(ctx, "api", req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: err = %v", err)
	}
	if s := c.BreakerState("us-east/api/a1"); s != "closed" {
		t.Errorf("a cancelled request moved the breaker to %s", s)
	}
	c.Close()
	if _, _, err := get(t, c, "web", "/"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

// With the hash picker, requests with the same key go to the same
// endpoint.
func TestDoPickKey(t *testing.T) {
	t.Parallel()
	st := newFakeState()
	gw := st.serve(t)
	var bs []*backend
	for _, id := range []string{"w1", "w2", "w3"} {
		b := newBackend(t, id)
		bs = append(bs, b)
		st.add("web", id, b.port())
	}
	cfg := testConfig(gw.URL())
	cfg.LB = failover.PickerHash
	c := newClient(t, cfg)
	for _, key := range []string{"user-1", "user-2", "user-3", "user-4"} {
		first := ""
		for range 5 {
			req, _ := http.NewRequest(http.MethodGet, "/", nil)
			resp, err := c.Do(WithPickKey(testCtx(t), key), "web", req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			name, _, _ := strings.Cut(string(body), " ")
			if first == "" {
				first = name
			} else if name != first {
				t.Errorf("key %s went to %s, then to %s", key, first, name)
			}
			ep, err := c.Pick(testCtx(t), "web", key)
			if err != nil || ep.ID != first {
				t.Errorf("Pick(%s) = %s %v, want %s as Do", key, ep.ID, err, first)
			}
		}
	}
}
