package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/internal/redistest"
)

// startVolatileRedis starts a real redis-server without persistence: Kill
// and Restart bring it back empty, as a production Redis without
// appendonly would come back from a crash.
func startVolatileRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t, redistest.WithArgs("--appendonly", "no", "--save", ""))
}

// wipeRedis kills a volatile redis-server and restarts it empty (the
// gateways may write to it at once, so emptiness is checked on the
// configuration: no append-only file, no RDB snapshots).
func wipeRedis(t *testing.T, srv *redistest.Server) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	save, err2 := c.ConfigGet(ctx, "save").Result()
	if err != nil || err2 != nil || aof["appendonly"] != "no" || save["save"] != "" {
		t.Fatalf("redis persistence: appendonly %v save %v (%v %v); want none", aof, save, err, err2)
	}
	srv.Kill(t)
	srv.Restart(t)
}

// syncLog is a concurrency-safe log sink for a gateway's slog output.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *syncLog) logger() *slog.Logger        { return slog.New(slog.NewTextHandler(l, nil)) }

// lines returns the log lines at level that contain s.
func (l *syncLog) lines(level, s string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, "level="+level) && strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

func registerAll(t *testing.T, base, svc string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		call(t, "PUT", base+"/v1/services/"+svc+"/instances/"+id, `{"address":"10.0.0.5","port":80}`).want(t, 200)
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// poller reads a URL until stopped and records the lowest instance count
// and every time X-Meridian-Index went down.
type poller struct {
	stop     chan struct{}
	done     chan struct{}
	polls    atomic.Int64
	minCount atomic.Int64
	mu       sync.Mutex
	backward []string
}

func startPoller(t *testing.T, url string, index func(response) uint64) *poller {
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
	p.minCount.Store(1 << 30)
	go func() {
		defer close(p.done)
		var last uint64
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-p.stop:
				return
			default:
			}
			r := call(t, "GET", url, "")
			if r.code != 200 {
				continue
			}
			p.polls.Add(1)
			if n := int64(len(instanceIDs(r))); n < p.minCount.Load() {
				p.minCount.Store(n)
			}
			v := index(r)
			if v < last {
				p.mu.Lock()
				p.backward = append(p.backward, fmt.Sprintf("v%d after v%d", v, last))
				p.mu.Unlock()
			}
			last = max(last, v)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { p.halt() })
	return p
}

func (p *poller) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func headerIndex(r response) uint64 {
	v, _ := strconv.ParseUint(r.header.Get("X-Meridian-Index"), 10, 64)
	return v
}

func bodyVersion(r response) uint64 {
	f, _ := r.body["version"].(float64)
	return uint64(f)
}

// TestStoreLossRestoresCatalog: Redis restarts empty under a gateway. The
// gateway logs the loss at ERROR, counts it, wakes blocking queries, and
// writes its catalog back above the last version; readers never see the
// index go down or an instance go missing; a registration made right after
// the loss is kept.
func TestStoreLossRestoresCatalog(t *testing.T) {
	srv := startVolatileRedis(t)
	var logs syncLog
	a := startAgent(t, AgentConfig{RedisURL: srv.URL(), Logger: logs.logger()})
	u := a.URL()
	const n = 30
	registerAll(t, u, "web", names("w", n)...)
	before := a.Cache.Version()

	blocked := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		call(t, "GET", fmt.Sprintf("%s/v1/services/web?index=%d&wait=60s", u, before), "")
		blocked <- time.Since(start)
	}()
	p := startPoller(t, u+"/v1/services/web", headerIndex)
	waitFor(t, 5*time.Second, "the poller to start", func() bool { return p.polls.Load() > 3 })

	wipeRedis(t, srv)
	// A registration right after the loss, through the gateway (the first
	// try may meet a connection the restart broke).
	var late response
	waitFor(t, 10*time.Second, "a registration after the loss", func() bool {
		late = call(t, "PUT", u+"/v1/services/web/instances/late", `{"address":"10.0.0.6","port":80}`)
		return late.code == 200
	})
	if v := headerIndex(late); v <= before || fmt.Sprint(late.body["modify_index"]) != fmt.Sprint(v) {
		t.Fatalf("registration after the loss answered at v%d (modify_index %v), want above v%d: the restore carries it", v, late.body["modify_index"], before)
	}
	waitFor(t, 10*time.Second, "the catalog to be restored", func() bool {
		l, ok := a.Cache.StoreLoss()
		return ok && l.Restored
	})
	select {
	case d := <-blocked:
		if d > 20*time.Second {
			t.Fatalf("blocking query held for %s", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a blocking query on the version before the loss was not woken")
	}
	time.Sleep(200 * time.Millisecond) // a few more polls after the restore
	p.halt()

	r := call(t, "GET", u+"/v1/services/web", "").want(t, 200)
	if ids := instanceIDs(r); len(ids) != n+1 || !strings.Contains(fmt.Sprint(ids), "late") {
		t.Fatalf("after the restore: %d instances %v, want the %d registered before and late", len(ids), ids, n)
	}
	if v := headerIndex(r); v <= before {
		t.Fatalf("X-Meridian-Index after the restore %d, want above %d", v, before)
	}
	if len(p.backward) > 0 || p.minCount.Load() < n {
		t.Fatalf("over %d polls: index went back %v; fewest instances seen %d, want >= %d", p.polls.Load(), p.backward, p.minCount.Load(), n)
	}
	errs := logs.lines("ERROR", "store data loss")
	if len(errs) != 1 || !strings.Contains(errs[0], fmt.Sprintf("seen_version=%d", before)) {
		t.Fatalf("want one ERROR line naming the loss and v%d, got %q\n%s", before, errs, logs.String())
	}
	h := call(t, "GET", u+"/v1/health", "").want(t, 200)
	loss, _ := h.body["checks"].(map[string]any)["store_loss"].(map[string]any)
	if h.body["status"] != "healthy" || loss["status"] != "pass" || loss["restored"] != true || loss["restored_by_self"] != true {
		t.Fatalf("health after the restore: %s", h.raw)
	}
	m := call(t, "GET", u+"/metrics", "")
	if !strings.Contains(m.raw, "meridian_store_data_loss_total{") || !regexpLine(m.raw, "meridian_store_data_loss_total{", " 1") {
		t.Fatalf("metrics lack meridian_store_data_loss_total 1:\n%s", grepLines(m.raw, "data_loss"))
	}
	// The store goes on from the restored version.
	w := call(t, "PUT", u+"/v1/services/web/instances/after", `{"address":"10.0.0.7","port":80}`).want(t, 200)
	if v := headerIndex(w); v != headerIndex(r)+1 {
		t.Fatalf("write after the restore at v%d, want v%d", v, headerIndex(r)+1)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func regexpLine(s, prefix, suffix string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

// TestStoreLossDegradedUntilRestored: while the catalog cannot be written
// back (the emptied Redis refuses writes: min-replicas-to-write with no
// replica), /v1/health says
// degraded with the reason, reads answer the cached catalog marked stale,
// and the sync endpoint hands out the cached catalog, never the empty one.
// Once Redis takes writes again the catalog is restored.
func TestStoreLossDegradedUntilRestored(t *testing.T) {
	srv := startVolatileRedis(t)
	a := startAgent(t, AgentConfig{RedisURL: srv.URL()})
	u := a.URL()
	registerAll(t, u, "web", names("w", 10)...)
	before := a.Cache.Version()

	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	// The data goes (an operator's FLUSHALL), and writes are refused, in
	// one transaction so the gateway never finds the empty store writable.
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.FlushAll(ctx)
		p.ConfigSet(ctx, "min-replicas-to-write", "1")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var h response
	waitFor(t, 10*time.Second, "health to report the loss", func() bool {
		h = call(t, "GET", u+"/v1/health", "")
		return h.body["status"] == "degraded"
	})
	store, _ := h.body["checks"].(map[string]any)["store"].(map[string]any)
	if store["status"] != "fail" || !strings.Contains(fmt.Sprint(store["error"]), "store data loss") {
		t.Fatalf("health during the loss: %s", h.raw)
	}
	r := call(t, "GET", u+"/v1/services/web", "").want(t, 200)
	if len(instanceIDs(r)) != 10 || r.body["stale"] != true || headerIndex(r) != before {
		t.Fatalf("read during the loss: %s (index %s), want the 10 cached instances at v%d, stale", r.raw, r.header.Get("X-Meridian-Index"), before)
	}
	for _, since := range []uint64{0, before - 2, before} {
		s := call(t, "GET", fmt.Sprintf("%s/v1/federation/catalog?since=%d", u, since), "").want(t, 200)
		if bodyVersion(s) != before {
			t.Fatalf("sync endpoint since=%d during the loss: %s, want the cached catalog at v%d", since, s.raw, before)
		}
		if list, _ := s.body["instances"].([]any); s.body["full"] != true || len(list) != 10 {
			t.Fatalf("sync endpoint since=%d during the loss: %s, want all 10 cached instances", since, s.raw)
		}
	}
	time.Sleep(500 * time.Millisecond) // several catch-ups: the loss is logged and counted once
	if got := a.Cache.StoreLosses(); got != 1 {
		t.Fatalf("losses counted %d, want 1", got)
	}

	if err := c.ConfigSet(ctx, "min-replicas-to-write", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "health to be healthy again", func() bool {
		return call(t, "GET", u+"/v1/health", "").body["status"] == "healthy"
	})
	r = call(t, "GET", u+"/v1/services/web", "").want(t, 200)
	if len(instanceIDs(r)) != 10 || r.body["stale"] != false || headerIndex(r) <= before {
		t.Fatalf("read after the restore: %s, want 10 instances, fresh, above v%d", r.raw, before)
	}
}

// TestStoreLossTwoGatewaysRestoreOnce: two gateways of a region share a
// Redis that restarts empty; one restores the catalog, the other adopts
// it, and both end on the same version with every instance.
func TestStoreLossTwoGatewaysRestoreOnce(t *testing.T) {
	srv := startVolatileRedis(t)
	reg := fmt.Sprintf("r%08x", rand.Uint32())
	a := startAgent(t, AgentConfig{Region: reg, RedisURL: srv.URL()})
	b := startAgent(t, AgentConfig{Region: reg, RedisURL: srv.URL()})
	registerAll(t, a.URL(), "web", names("w", 20)...)
	waitFor(t, 5*time.Second, "b to follow a", func() bool { return b.Cache.Version() == a.Cache.Version() })
	before := a.Cache.Version()
	wipeRedis(t, srv)
	waitFor(t, 10*time.Second, "both gateways to hold the restored catalog", func() bool {
		return a.Cache.Version() > before && a.Cache.Version() == b.Cache.Version() &&
			!a.Cache.Freshness().LossPending && !b.Cache.Freshness().LossPending
	})
	restorers := 0
	for _, g := range []*Agent{a, b} {
		if l, ok := g.Cache.StoreLoss(); ok && l.RestoredBySelf {
			restorers++
		}
		if ids := instanceIDs(call(t, "GET", g.URL()+"/v1/services/web", "")); len(ids) != 20 {
			t.Fatalf("%d instances after the restore, want 20", len(ids))
		}
	}
	if restorers != 1 {
		t.Fatalf("%d gateways restored the catalog, want exactly 1", restorers)
	}
	// Nothing more happens: the other gateway does not restore again.
	time.Sleep(500 * time.Millisecond)
	if a.Cache.Version() != b.Cache.Version() || a.Cache.StoreLosses()+b.Cache.StoreLosses() > 2 {
		t.Fatalf("after settling: versions %d %d, losses %d %d", a.Cache.Version(), b.Cache.Version(), a.Cache.StoreLosses(), b.Cache.StoreLosses())
	}
}

// TestStoreLossAccept: with --on-store-loss accept the gateway adopts the
// emptied store, says so at ERROR and in /v1/health.
func TestStoreLossAccept(t *testing.T) {
	srv := startVolatileRedis(t)
	var logs syncLog
	a := startAgent(t, AgentConfig{RedisURL: srv.URL(), Logger: logs.logger(), OnStoreLoss: "accept"})
	u := a.URL()
	registerAll(t, u, "web", names("w", 5)...)
	wipeRedis(t, srv)
	waitFor(t, 10*time.Second, "a registration after the loss", func() bool {
		return call(t, "PUT", u+"/v1/services/web/instances/late", `{"address":"10.0.0.6","port":80}`).code == 200
	})
	waitFor(t, 10*time.Second, "the gateway to serve the store as it is", func() bool {
		return fmt.Sprint(instanceIDs(call(t, "GET", u+"/v1/services/web", ""))) == "[late]"
	})
	if len(logs.lines("ERROR", "accepted")) != 1 {
		t.Fatalf("want one ERROR line saying the loss was accepted:\n%s", logs.String())
	}
	h := call(t, "GET", u+"/v1/health", "").want(t, 200)
	loss, _ := h.body["checks"].(map[string]any)["store_loss"].(map[string]any)
	if loss["status"] != "warn" || loss["policy"] != "accept" {
		t.Fatalf("health after an accepted loss: %s", h.raw)
	}
	if _, err := StartAgent(AgentConfig{Region: "x", HTTPAddr: "127.0.0.1:0", OnStoreLoss: "ignore"}); err == nil || !strings.Contains(err.Error(), "on-store-loss") {
		t.Fatalf("OnStoreLoss ignore: %v, want an error naming on-store-loss", err)
	}
}

// TestStoreLossFederation: a region's Redis restarts empty. Until its
// gateway restores the catalog, the other region keeps its replica: it is
// never emptied nor moved to a lower version, and the restored catalog
// (with a registration made after the loss) then arrives.
func TestStoreLossFederation(t *testing.T) {
	skipShort(t, "two regions over real Serf; restore logic has single-gateway tests")
	srv := startVolatileRedis(t)
	use := fmt.Sprintf("use-%06x", rand.Uint32()&0xffffff)
	// The us gateway reads its store only when told (no catch-up timer), so
	// the loss stays undetected for a while and the other region's syncs
	// (every 2s on the local profile) meet the emptied store.
	us := startFedNodeWith(t, func(c *AgentConfig) { c.CatchUp = time.Hour }, use, use+"-1", srv.URL())
	eu := startFedNode(t, "eu-west", "eu-1", "", us.serfAddr())
	const n = 15
	registerAll(t, us.URL(), "web", names("w", n)...)
	before := us.Cache.Version()
	waitFor(t, 20*time.Second, "eu-west to hold us's catalog", func() bool {
		r := lookup(t, eu, "web", use)
		return r.code == 200 && len(instanceIDs(r)) == n && bodyVersion(r) == before
	})
	p := startPoller(t, eu.URL()+"/v1/services/web?region="+use, bodyVersion)

	wipeRedis(t, srv)
	// Let eu-west's anti-entropy syncs reach the emptied store.
	time.Sleep(5 * time.Second)
	r := lookup(t, eu, "web", use).want(t, 200)
	if len(instanceIDs(r)) != n || bodyVersion(r) != before {
		t.Fatalf("eu-west's replica of %s during the loss: %s, want v%d with %d instances", use, r.raw, before, n)
	}
	us.Cache.Kick()
	waitFor(t, 10*time.Second, "a registration after the loss", func() bool {
		return call(t, "PUT", us.URL()+"/v1/services/web/instances/late", `{"address":"10.0.0.6","port":80}`).code == 200
	})
	waitFor(t, 20*time.Second, "eu-west to receive the restored catalog", func() bool {
		r := lookup(t, eu, "web", use)
		return r.code == 200 && len(instanceIDs(r)) == n+1 && bodyVersion(r) > before
	})
	p.halt()
	if len(p.backward) > 0 || p.minCount.Load() < n || p.polls.Load() < 10 {
		t.Fatalf("eu-west over %d polls: version went back %v; fewest instances %d, want >= %d", p.polls.Load(), p.backward, p.minCount.Load(), n)
	}
}

// TestStoreLossAcceptFederation: a region that accepts a store loss goes
// back to a lower version; the other region accepts that reset after its
// anti-entropy period and says so at ERROR.
func TestStoreLossAcceptFederation(t *testing.T) {
	skipShort(t, "two regions over real Serf; restore logic has single-gateway tests")
	srv := startVolatileRedis(t)
	use := fmt.Sprintf("use-%06x", rand.Uint32()&0xffffff)
	us := startFedNodeWith(t, func(c *AgentConfig) { c.OnStoreLoss = "accept" }, use, use+"-1", srv.URL())
	var euLog syncLog
	eu := startFedNodeWith(t, func(c *AgentConfig) { c.Logger = euLog.logger() }, "eu-west", "eu-1", "", us.serfAddr())
	registerAll(t, us.URL(), "web", names("w", 5)...)
	waitFor(t, 20*time.Second, "eu-west to hold us's catalog", func() bool {
		return len(instanceIDs(lookup(t, eu, "web", use))) == 5
	})
	wipeRedis(t, srv)
	waitFor(t, 10*time.Second, "a registration after the loss", func() bool {
		return call(t, "PUT", us.URL()+"/v1/services/web/instances/late", `{"address":"10.0.0.6","port":80}`).code == 200
	})
	waitFor(t, 20*time.Second, "eu-west to accept the region's reset", func() bool {
		return fmt.Sprint(instanceIDs(lookup(t, eu, "web", use))) == "[late]"
	})
	if lines := euLog.lines("ERROR", "catalog went back"); len(lines) != 1 || !strings.Contains(lines[0], "region="+use) {
		t.Fatalf("eu-west's ERROR lines about the reset: %q", lines)
	}
}
