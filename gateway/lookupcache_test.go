package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// The hand-built lookup answer must be exactly what json.Marshal gives.
func TestWriteServiceAnswerMatchesJSON(t *testing.T) {
	s := &Server{}
	t1 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ins := []region.Instance{{ID: "a<&>\"", Service: "web", Address: "10.0.0.1", Port: 80, Weight: 100,
		Status: region.StatusPassing, Tags: []string{"é", "<b>"}, Meta: map[string]string{"k": "\u2028"},
		RegisteredAt: t1, UpdatedAt: t1, ModifyIndex: 3}}
	for _, ins := range [][]region.Instance{ins, nil} {
		list, err := s.lookups.build(newAnswerKey("us-east", "web", region.Filter{}), region.Stamp{Gen: 1, Changed: 3}, ins)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		writeServiceAnswer(rec, "web", encodedAnswer{Region: "us-east", Version: 9, Stale: true, AgeMS: 12, list: list})
		wantIns := ins
		if wantIns == nil {
			wantIns = []region.Instance{} // "instances":[], never null
		}
		want, _ := json.Marshal(serviceResponse{Service: "web",
			freshness: freshness{Region: "us-east", Version: 9, Stale: true, AgeMS: 12}, Instances: wantIns})
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		if cl := rec.Header().Get("Content-Length"); cl != fmt.Sprint(rec.Body.Len()) {
			t.Fatalf("Content-Length %s, body %d bytes", cl, rec.Body.Len())
		}
	}
}

// lookupGateway is a gateway over an in-memory store with a clock the test
// moves.
type lookupGateway struct {
	h     http.Handler
	store *region.MemStore
	cache *region.Cache
	mu    sync.Mutex
	now   time.Time
}

func (g *lookupGateway) clock() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

func (g *lookupGateway) advance(d time.Duration) {
	g.mu.Lock()
	g.now = g.now.Add(d)
	g.mu.Unlock()
}

// newLookupGateway registers n instances of "web" (web-0000...), and
// 1,000-n of "filler" so that every such gateway is at version 1,000,
// through the store and the cache, as the handler's writes do, but
// without HTTP round trips.
func newLookupGateway(tb testing.TB, n int) *lookupGateway {
	tb.Helper()
	g := &lookupGateway{now: benchNow}
	log := slog.New(slog.DiscardHandler)
	g.store = region.NewMemStore(0)
	g.cache = region.NewCache(g.store, region.CacheOptions{Logger: log, Now: g.clock})
	if err := g.cache.Sync(context.Background()); err != nil {
		tb.Fatalf("loading the cache: %v", err)
	}
	g.h = New(Config{Region: "us-east", Store: g.store, Cache: g.cache, Logger: log, Now: g.clock,
		Health: region.NewHealthRunner(g.store, g.cache, region.HealthRunnerOptions{Logger: log, Now: g.clock})}).Handler()
	for i := range n {
		g.put(tb, region.Instance{Service: "web", ID: fmt.Sprintf("web-%04d", i), Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
			Port: 8080, Zone: "a", Tags: []string{"v2"}, Weight: 100, Status: region.StatusPassing})
	}
	for i := n; i < 1000; i++ {
		g.put(tb, region.Instance{Service: "filler", ID: fmt.Sprintf("filler-%04d", i), Address: "10.1.0.1",
			Port: 8080, Weight: 100, Status: region.StatusPassing})
	}
	return g
}

// put writes in as a registration does: store, then the cache.
func (g *lookupGateway) put(tb testing.TB, in region.Instance) {
	tb.Helper()
	in.RegisteredAt, in.UpdatedAt = g.clock(), g.clock()
	ch, err := g.store.Put(context.Background(), in, region.Cond{})
	if err != nil {
		tb.Fatalf("put %s: %v", in.ID, err)
	}
	if !g.cache.Apply(ch) {
		tb.Fatalf("put %s: the cache did not apply v%d", in.ID, ch.Version)
	}
}

func (g *lookupGateway) get(tb testing.TB, target string) serviceResponse {
	tb.Helper()
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: HTTP %d %s", target, rec.Code, rec.Body)
	}
	var resp serviceResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		tb.Fatalf("GET %s: %v in %s", target, err, rec.Body)
	}
	return resp
}

func ids(resp serviceResponse) string {
	var out []string
	for _, in := range resp.Instances {
		out = append(out, in.ID+":"+string(in.Status))
	}
	return strings.Join(out, ",")
}

// Cached answers change with every change of the service, at once, and
// the per-request fields (version, stale, age_ms) are never cached.
func TestServiceAnswersFollowChanges(t *testing.T) {
	g := newLookupGateway(t, 2)
	check := func(target, want string) serviceResponse {
		t.Helper()
		for range 2 { // the second answer comes from the cache
			if got := ids(g.get(t, target)); got != want {
				t.Fatalf("GET %s: got %s, want %s", target, got, want)
			}
		}
		return g.get(t, target)
	}
	check("/v1/services/web", "web-0000:passing,web-0001:passing")
	check("/v1/services/web?passing=true&tag=v2", "web-0000:passing,web-0001:passing")
	checkLookup(t, g, "web-0000,web-0001")
	check("/v1/services/web?tag=v3", "")

	// A registration.
	g.put(t, region.Instance{Service: "web", ID: "web-0002", Address: "10.0.0.9", Port: 80, Tags: []string{"v3"}, Weight: 1, Status: region.StatusPassing})
	check("/v1/services/web", "web-0000:passing,web-0001:passing,web-0002:passing")
	check("/v1/services/web?tag=v3", "web-0002:passing")
	checkLookup(t, g, "web-0000,web-0001,web-0002")

	// A health change.
	var crit region.Instance
	g.cache.Read(func(c *region.Catalog) { crit, _ = c.Get(region.Key{Service: "web", ID: "web-0000"}) })
	crit.Status = region.StatusCritical
	g.put(t, crit)
	check("/v1/services/web", "web-0000:critical,web-0001:passing,web-0002:passing")
	check("/v1/services/web?passing=true", "web-0001:passing,web-0002:passing")
	checkLookup(t, g, "web-0001,web-0002")

	// A write to another service changes the version, not web's list.
	before := g.get(t, "/v1/services/web")
	g.put(t, region.Instance{Service: "api", ID: "api-1", Address: "10.0.0.10", Port: 80, Weight: 1, Status: region.StatusPassing})
	after := check("/v1/services/web", "web-0000:critical,web-0001:passing,web-0002:passing")
	if after.Version != before.Version+1 {
		t.Fatalf("version %d after a write to api, want %d", after.Version, before.Version+1)
	}

	// A deregistration.
	ch, err := g.store.Delete(context.Background(), region.Key{Service: "web", ID: "web-0002"}, region.Cond{})
	if err != nil || !g.cache.Apply(ch) {
		t.Fatalf("delete: %v", err)
	}
	check("/v1/services/web?tag=v3", "")
	checkLookup(t, g, "web-0001")

	// Staleness flips with the clock, on a cached list.
	fresh := check("/v1/services/web?passing=true", "web-0001:passing")
	g.advance(time.Hour)
	stale := g.get(t, "/v1/services/web?passing=true")
	if fresh.Stale || !stale.Stale || stale.AgeMS != fresh.AgeMS+time.Hour.Milliseconds() || ids(stale) != ids(fresh) {
		t.Fatalf("fresh %+v then stale %+v", fresh.freshness, stale.freshness)
	}
}

// checkLookup checks the endpoints of GET /v1/lookup/web, twice (the
// second from the route cache).
func checkLookup(t *testing.T, g *lookupGateway, want string) {
	t.Helper()
	for range 2 {
		rec := httptest.NewRecorder()
		g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/lookup/web", nil))
		var resp lookupResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 {
			t.Fatalf("lookup: HTTP %d %v %s", rec.Code, err, rec.Body)
		}
		var got []string
		for _, e := range resp.Endpoints {
			got = append(got, e.ID)
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("lookup endpoints %v, want %s", got, want)
		}
	}
}

// Blocking queries still wake on a change and answer it.
func TestServiceAnswerBlockingQuery(t *testing.T) {
	g := newLookupGateway(t, 1)
	v := g.get(t, "/v1/services/web").Version
	done := make(chan serviceResponse, 1)
	go func() {
		rec := httptest.NewRecorder()
		g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/services/web?index=%d&wait=5s", v), nil))
		var resp serviceResponse
		json.Unmarshal(rec.Body.Bytes(), &resp)
		done <- resp
	}()
	time.Sleep(20 * time.Millisecond)
	g.put(t, region.Instance{Service: "web", ID: "web-0001", Address: "10.0.0.3", Port: 80, Weight: 1, Status: region.StatusPassing})
	select {
	case resp := <-done:
		if resp.Version != v+1 || ids(resp) != "web-0000:passing,web-0001:passing" {
			t.Fatalf("blocking query answered v%d %s", resp.Version, ids(resp))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not return after the change")
	}
}

// lookupAllocs is testing.AllocsPerRun of one GET through the whole
// handler. The recorder's body is grown beforehand, so what is counted is
// the gateway's work, not bytes.Buffer growing to the answer's size.
func lookupAllocs(tb testing.TB, h http.Handler, target string) (float64, int) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	buf := make([]byte, 0, 1<<20)
	n := 0
	allocs := testing.AllocsPerRun(200, func() {
		rec := httptest.NewRecorder()
		rec.Body = bytes.NewBuffer(buf[:0])
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			tb.Fatalf("GET %s: HTTP %d %s", target, rec.Code, rec.Body)
		}
		n = rec.Body.Len()
	})
	return allocs, n
}

// A lookup allocates the same whatever the service's size.
func TestLookupAllocsIndependentOfInstances(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops items at random)")
	}
	small, big := newLookupGateway(t, 3), newLookupGateway(t, 1000)
	for _, target := range []string{"/v1/services/web", "/v1/services/web?passing=true", "/v1/services/web?passing=true&tag=v2", "/v1/lookup/web", "/v1/pick/web"} {
		a3, n3 := lookupAllocs(t, small.h, target)
		a1000, n1000 := lookupAllocs(t, big.h, target)
		t.Logf("GET %s: 3 instances %v allocs (%d bytes), 1,000 instances %v allocs (%d bytes)", target, a3, n3, a1000, n1000)
		if target != "/v1/pick/web" && n1000 < 100*n3/3*2 { // a pick answers one endpoint
			t.Fatalf("GET %s: the 1,000-instance answer is only %d bytes (3: %d)", target, n1000, n3)
		}
		if a1000 != a3 {
			t.Errorf("GET %s: %v allocations for 1,000 instances, %v for 3: a lookup allocates per instance", target, a1000, a3)
		}
	}
}

// A cached answer is never served to a token that may not read the
// service; a token that may gets the same answer.
func TestCachedAnswerKeepsACL(t *testing.T) {
	a := startAgent(t, AgentConfig{Logger: quietLogger(), ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}})
	u := a.URL()
	web := createToken(t, u, rootSecret, `{"rules":[{"service":"web","access":"read"}]}`)
	api := createToken(t, u, rootSecret, `{"rules":[{"service":"api","access":"read"}]}`)
	callTok(t, "PUT", u+"/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80}`, rootSecret).want(t, 200)
	for _, target := range []string{"/v1/services/web", "/v1/services/web?passing=true", "/v1/lookup/web"} {
		first := callTok(t, "GET", u+target, "", web.secret).want(t, 200)
		callTok(t, "GET", u+target, "", rootSecret).want(t, 200)
		callTok(t, "GET", u+target, "", api.secret).wantError(t, 403, "needs service:web:read")
		callTok(t, "GET", u+target, "", "").wantError(t, 401, "ACL token required")
		again := callTok(t, "GET", u+target, "", web.secret).want(t, 200)
		if target != "/v1/lookup/web" && ids2(first) != ids2(again) {
			t.Fatalf("GET %s: %s then %s", target, first.raw, again.raw)
		}
	}
}

func ids2(r response) string { return strings.Join(instanceIDs(r), ",") }

// The answer cache keeps its bytes under maxCachedLookupJSON by dropping
// the least recently used lists, not all of them; a list too large for it
// is served but not kept.
func TestLookupCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var c lookupCache
	big := func(size int) []region.Instance {
		return []region.Instance{{ID: "a", Service: "web", Output: strings.Repeat("x", size)}}
	}
	const size = maxCachedLookupJSON * 3 / 16 // five fit
	st := region.Stamp{Gen: 1, Changed: 1}
	key := func(i int) answerKey { return newAnswerKey("us-east", fmt.Sprintf("svc-%d", i), region.Filter{}) }
	for i := 0; i < 5; i++ {
		if _, err := c.build(key(i), st, big(size)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(c.m); got != 5 {
		t.Fatalf("%d lists cached, want 5", got)
	}
	if c.get(key(0), st) == nil { // svc-0 is now the most recently used
		t.Fatal("svc-0 not cached")
	}
	for i := 5; i < 8; i++ {
		if _, err := c.build(key(i), st, big(size)); err != nil {
			t.Fatal(err)
		}
		if c.bytes > maxCachedLookupJSON {
			t.Fatalf("after svc-%d: %d bytes cached, bound %d", i, c.bytes, maxCachedLookupJSON)
		}
	}
	sum := 0
	for _, e := range c.m {
		sum += len(e.json)
	}
	if sum != c.bytes {
		t.Fatalf("bytes %d, entries hold %d", c.bytes, sum)
	}
	for i, want := range map[int]bool{0: true, 1: false, 2: false, 7: true} {
		if got := c.get(key(i), st) != nil; got != want {
			t.Errorf("svc-%d cached %v, want %v", i, got, want)
		}
	}
	huge := newAnswerKey("us-east", "huge", region.Filter{})
	list, err := c.build(huge, st, big(maxCachedLookupJSON/4+1))
	if err != nil || list == nil {
		t.Fatalf("huge list: %v", err)
	}
	if c.get(huge, st) != nil {
		t.Error("a list over a quarter of the bound was kept")
	}
}
