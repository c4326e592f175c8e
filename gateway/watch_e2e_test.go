package gateway

import (
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/federation/serfmember"
	"github.com/meridian-sd/meridian/internal/redistest"
)

// watchNode is a gateway of the push-path tests: real HTTP and real Serf
// over 127.0.0.1 with the wan profile (version tags published at most once
// a second), an embedded store unless redisURL is given.
type watchNode struct {
	*Agent
	region string
	name   string
}

func startWatchNode(tb testing.TB, tweak func(*AgentConfig), regionName, name, redisURL string, join ...string) *watchNode {
	tb.Helper()
	cfg := AgentConfig{
		Region: regionName, RedisURL: redisURL, NodeName: name, SerfBind: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		GossipProfile: "wan", Join: join, Logger: quietLogger(), CatchUp: 100 * time.Millisecond,
		NewMembership: func(c serfmember.SerfConfig) (federation.Membership, error) {
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
			if err != nil {
				return nil, err
			}
			c.Transport = nt
			c.AdvertiseAddr = fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())
			return serfmember.NewSerfMembership(c)
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := StartAgent(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n := &watchNode{Agent: a, region: regionName, name: name}
	// Kill, not Shutdown: a graceful leave on the wan profile waits out
	// the leave's propagation (seconds), which these tests do not need.
	tb.Cleanup(a.Kill)
	waitForTB(tb, 5*time.Second, name+"'s cache to load", func() bool { return a.Cache.Freshness().Loaded })
	return n
}

func (n *watchNode) serfAddr() string { return n.Members.(*serfmember.SerfMembership).BindAddr() }

// replicaVersion is the version of regionName's replica in n (0: none).
func (n *watchNode) replicaVersion(regionName string) uint64 {
	var v uint64
	n.Fed.Read(func(c *federation.Core) {
		if r := c.Replica(regionName); r != nil {
			v = r.Version()
		}
	})
	return v
}

// advertised is the version n's gossip shows for regionName.
func (n *watchNode) advertised(regionName string) uint64 {
	var v uint64
	n.Fed.Read(func(c *federation.Core) { v = c.View(regionName).Advertised })
	return v
}

// held is how many watches n's server holds now.
func (n *watchNode) held() int {
	n.Server.watches.mu.Lock()
	defer n.Server.watches.mu.Unlock()
	return n.Server.watches.total
}

func waitForTB(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// registerAt PUTs an instance and returns the catalog version that acked it
// (X-Meridian-Index).
func registerAt(tb testing.TB, c *http.Client, n *watchNode, service, id string, port int) uint64 {
	tb.Helper()
	v, err := tryRegister(c, n, service, id, port)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func tryRegister(c *http.Client, n *watchNode, service, id string, port int) (uint64, error) {
	req, _ := http.NewRequest(http.MethodPut, n.URL()+"/v1/services/"+service+"/instances/"+id,
		strings.NewReader(fmt.Sprintf(`{"address":"10.9.0.1","port":%d}`, port)))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("register %s/%s in %s: HTTP %d", service, id, n.region, resp.StatusCode)
	}
	v, err := strconv.ParseUint(resp.Header.Get("X-Meridian-Index"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("register %s/%s: X-Meridian-Index %q", service, id, resp.Header.Get("X-Meridian-Index"))
	}
	return v, nil
}

// visibleAfter waits until n's replica of regionName reaches version and
// returns how long that took from start (poll every 100µs, up to limit).
func visibleAfter(n *watchNode, regionName string, version uint64, start time.Time, limit time.Duration) (time.Duration, bool) {
	for {
		if n.replicaVersion(regionName) >= version {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func uniqueRegion(prefix string) string {
	return fmt.Sprintf("%s-%06x", prefix, rand.Uint32()&0xffffff)
}

// watching waits until every node holds a replica of every other region
// at its current version, and every node's server holds one watch from
// each other region: the push path is up.
func watching(tb testing.TB, nodes ...*watchNode) {
	tb.Helper()
	waitForTB(tb, 15*time.Second, "every gateway to watch every other region", func() bool {
		for _, n := range nodes {
			if n.held() != len(nodes)-1 {
				return false
			}
			for _, o := range nodes {
				if o != n && n.replicaVersion(o.region) < o.Cache.Version() {
					return false
				}
			}
		}
		return true
	})
}

// TestWatchPushesChangesAcrossRegions: three regions on the wan profile
// (version tags published at most once a second, gossip every 500ms), 20
// registrations in a row in one region, each waited for in the other two:
// every one arrives in well under what a gossiped tag and a pull could do
// (and 20 in a row could not all ride on tags published once a second).
// Each gateway's server holds exactly one watch per other region: O(regions)
// connections.
func TestWatchPushesChangesAcrossRegions(t *testing.T) {
	t0 := time.Now()
	ra, rb, rc := uniqueRegion("wa"), uniqueRegion("wb"), uniqueRegion("wc")
	a := startWatchNode(t, nil, ra, ra+"-1", "")
	b := startWatchNode(t, nil, rb, rb+"-1", "", a.serfAddr())
	c := startWatchNode(t, nil, rc, rc+"-1", "", a.serfAddr(), b.serfAddr())
	watching(t, a, b, c)
	t.Logf("watching after %s", time.Since(t0))

	client := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	ahead := 0 // times the replica was ahead of the tag the gossip showed
	start := time.Now()
	for i := range 20 {
		src, dsts := b, []*watchNode{a, c}
		if i%2 == 1 {
			src, dsts = c, []*watchNode{a, b}
		}
		v := registerAt(t, client, src, "web", fmt.Sprintf("w%d", i%4), 1000+i)
		acked := time.Now()
		for _, d := range dsts {
			el, ok := visibleAfter(d, src.region, v, acked, 3*time.Second)
			if !ok {
				t.Fatalf("write %d (v%d in %s) not in %s's replica after %s", i, v, src.region, d.region, el)
			}
			if d.advertised(src.region) < v {
				ahead++
			}
			lat = append(lat, el)
		}
	}
	total := time.Since(start)
	slices.Sort(lat)
	t.Logf("40 propagations in %s: p50 %s, max %s; replica ahead of gossip %d times", total, lat[len(lat)/2], lat[len(lat)-1], ahead)
	if max := lat[len(lat)-1]; max > 300*time.Millisecond {
		t.Errorf("slowest propagation %s, want < 300ms (a tag published once a second plus a pull cannot do that 40 times)", max)
	}
	if total > 3*time.Second {
		t.Errorf("40 propagations took %s, want < 3s", total)
	}
	if ahead == 0 {
		t.Errorf("the replicas were never ahead of the gossiped version: changes came by the pull, not the push path")
	}
	// Between an answer and the next watch (WatchMinInterval) a server
	// may hold one less for a moment.
	waitForTB(t, 2*time.Second, "each server to hold one watch per other region", func() bool {
		return a.held() == 2 && b.held() == 2 && c.held() == 2
	})
	for range 10 {
		for _, n := range []*watchNode{a, b, c} {
			if h := n.held(); h > 2 {
				t.Fatalf("%s holds %d watches, want at most 2 (one per other region)", n.name, h)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Every watch answer is contact: the replica is fresh, not stale.
	r := call(t, "GET", a.URL()+"/v1/services/web?region="+rb, "").want(t, 200)
	if r.body["stale"] != false {
		t.Errorf("a's answer for %s: %s, want stale false", rb, r.raw)
	}
}

// TestWatchRotatesWhenWatchedGatewayDies: region B has two gateways on one
// real redis-server; A watches one of them. When that one dies, A's watch
// moves to the other (before gossip, on the wan profile, even marks it
// failed), and B's writes keep arriving in one round trip.
func TestWatchRotatesWhenWatchedGatewayDies(t *testing.T) {
	shared := redistest.FromEnv(t)
	ra, rb := uniqueRegion("wa"), uniqueRegion("wb")
	a := startWatchNode(t, nil, ra, ra+"-1", "")
	b1 := startWatchNode(t, nil, rb, rb+"-1", shared, a.serfAddr())
	b2 := startWatchNode(t, nil, rb, rb+"-2", shared, a.serfAddr(), b1.serfAddr())
	waitForTB(t, 15*time.Second, "a to watch one of b's gateways", func() bool {
		return b1.held()+b2.held() >= 1 && a.replicaVersion(rb) >= b1.Cache.Version()
	})
	watched, other := b1, b2
	if b2.held() > 0 {
		watched, other = b2, b1
	}
	client := &http.Client{Timeout: 5 * time.Second}
	v := registerAt(t, client, other, "api", "x", 1)
	if el, ok := visibleAfter(a, rb, v, time.Now(), 2*time.Second); !ok || el > 300*time.Millisecond {
		t.Fatalf("before the kill: a write through the unwatched gateway took %s to arrive (ok %v)", el, ok)
	}

	killed := time.Now()
	watched.Kill()
	waitForTB(t, 5*time.Second, "a's watch to move to "+other.name, func() bool { return other.held() >= 1 })
	moved := time.Since(killed)
	status := ""
	a.Fed.Read(func(c *federation.Core) {
		for _, m := range c.View(rb).Gateways {
			if m.Name == watched.name {
				status = m.Status.String()
			}
		}
	})
	t.Logf("watch moved to %s %s after %s died (gossip shows it %s)", other.name, moved, watched.name, status)
	for i := range 5 {
		v := registerAt(t, client, other, "api", "x", 2+i)
		if el, ok := visibleAfter(a, rb, v, time.Now(), 2*time.Second); !ok || el > 300*time.Millisecond {
			t.Fatalf("after the kill: write %d took %s to arrive (ok %v), want < 300ms", i, el, ok)
		}
	}
}

// TestWatchBatchesWriteBursts: a burst of about 1,000 writes/s in B costs
// A at most one watch request per WatchMinInterval (10ms) — counted on B's
// server — and A's replica still ends at B's last version within moments.
func TestWatchBatchesWriteBursts(t *testing.T) {
	ra, rb := uniqueRegion("wa"), uniqueRegion("wb")
	a := startWatchNode(t, nil, ra, ra+"-1", "")
	b := startWatchNode(t, func(c *AgentConfig) { c.Limits.WriteRate = -1 }, rb, rb+"-1", "", a.serfAddr())
	watching(t, a, b)

	const writers, maxWrites, burst = 8, 1000, time.Second
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	before := b.Server.watches.watches.Load()
	reqBefore := b.Server.watches.requests.Load()
	var done atomic.Int64
	var last atomic.Uint64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// ~1,000/s in all: each writer paces itself to 125/s.
			for i := 0; done.Load() < maxWrites && time.Since(start) < burst; i++ {
				next := start.Add(time.Duration(i) * writers * time.Millisecond)
				time.Sleep(time.Until(next))
				v, err := tryRegister(client, b, "burst", fmt.Sprintf("w%d-%d", w, i%10), 1+i)
				if err != nil {
					t.Error(err)
					return
				}
				done.Add(1)
				for {
					old := last.Load()
					if v <= old || last.CompareAndSwap(old, v) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	el, ok := visibleAfter(a, rb, last.Load(), time.Now(), 3*time.Second)
	if !ok {
		t.Fatalf("a's replica did not reach b's last write v%d within 3s after the burst", last.Load())
	}
	watches := b.Server.watches.watches.Load() - before
	reqs := b.Server.watches.requests.Load() - reqBefore
	n := done.Load()
	t.Logf("%d writes in %s (%.0f/s); b's server got %d watch requests (%d sync requests in all); a caught up %s after the last ack",
		n, elapsed, float64(n)/elapsed.Seconds(), watches, reqs, el)
	if rate := float64(n) / elapsed.Seconds(); rate < 150 {
		// Batching shows only when writes come faster than one per
		// WatchMinInterval (100/s); -race on a busy machine writes slower.
		t.Skipf("only %.0f writes/s in the burst: too slow for batching to show", rate)
	}
	// One per 10ms over the burst and the catch-up, plus a few.
	if limit := int64((elapsed+el)/(10*time.Millisecond)) + 5; watches > limit {
		t.Errorf("%d watch requests for %d writes in %s: want at most %d (one per 10ms)", watches, n, elapsed, limit)
	}
	if reqs > n/5 {
		t.Errorf("%d sync requests for %d writes: want far fewer requests than writes", reqs, n)
	}
}

// TestCatalogWatchEndpoint: the server side of a watch. It waits while the
// catalog is at since and answers as soon as it moves, with the change; it
// answers an empty delta when the wait passes; a bad wait is a 400; past
// the per-client bound a watch is refused with 429 and a JSON error.
func TestCatalogWatchEndpoint(t *testing.T) {
	a := startAgent(t, AgentConfig{Region: "us-east", Limits: Limits{MaxCatalogWatchesPerClient: 2}})
	u := "http://" + a.Addr() + federation.CatalogPath
	call(t, "PUT", "http://"+a.Addr()+"/v1/services/web/instances/w0", `{"address":"10.0.0.1","port":80}`).want(t, 200)
	v := a.Cache.Version() // since=0 asks for a snapshot: watch from v1

	start := time.Now()
	r := call(t, "GET", fmt.Sprintf("%s?since=%d&wait=150ms", u, v), "").want(t, 200)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("an empty watch answered after %s, want after its 150ms wait", el)
	}
	if r.body["full"] != false || fmt.Sprint(r.body["changes"]) != "[]" || r.body["version"] != float64(v) {
		t.Errorf("timed-out watch: %s, want the empty delta at v%d", r.raw, v)
	}
	if h := r.header.Get(federation.WatchHeader); h != "150ms" {
		t.Errorf("%s: %q, want the wait granted, 150ms", federation.WatchHeader, h)
	}

	call(t, "GET", u+"?since=0&wait=soon", "").want(t, 400)

	// Two watches held (the bound); the third is refused.
	got := make(chan response, 2)
	for range 2 {
		go func() { got <- call(t, "GET", fmt.Sprintf("%s?since=%d&wait=30s", u, v), "") }()
	}
	waitFor(t, 5*time.Second, "two watches to be held", func() bool {
		a.Server.watches.mu.Lock()
		defer a.Server.watches.mu.Unlock()
		return a.Server.watches.total == 2
	})
	r = call(t, "GET", fmt.Sprintf("%s?since=%d&wait=30s", u, v), "").want(t, 429)
	if !strings.Contains(r.raw, `"error"`) || r.header.Get("Retry-After") == "" {
		t.Errorf("refused watch: %s (Retry-After %q), want a JSON error and Retry-After", r.raw, r.header.Get("Retry-After"))
	}
	// A write answers both at once, with the change.
	written := time.Now()
	call(t, "PUT", "http://"+a.Addr()+"/v1/services/web/instances/w1", `{"address":"10.0.0.1","port":80}`).want(t, 200)
	for range 2 {
		r := <-got
		r.want(t, 200)
		if !strings.Contains(r.raw, `"id":"w1"`) || r.body["version"] != float64(v+1) {
			t.Errorf("watch answer: %s, want the registration of w1 at v%d", r.raw, v+1)
		}
	}
	if el := time.Since(written); el > time.Second {
		t.Errorf("watches answered %s after the write, want at once", el)
	}
	// A watch behind the catalog answers at once.
	start = time.Now()
	call(t, "GET", fmt.Sprintf("%s?since=%d&wait=30s", u, v), "").want(t, 200)
	if el := time.Since(start); el > time.Second {
		t.Errorf("a watch behind the catalog answered after %s, want at once", el)
	}
}

// TestWatchOverMutualTLS: watches run over mutual TLS with the same peer
// check as fetches. A gateway that claims region R in gossip but whose
// certificate names another region is never the source of R's watched
// changes; the watch settles on R's real gateway, and R's writes arrive in
// one round trip.
func TestWatchOverMutualTLS(t *testing.T) {
	skipShort(t, "three gateways over real Serf and mutual TLS; TestWatchPushesChangesAcrossRegions stays as the quick cross-region smoke")
	p := newTestPKI(t)
	real, obsRegion := uniqueRegion("sec"), uniqueRegion("obs")
	logs := &logBuffer{}
	withTLS := func(certRegion string, log *slog.Logger) func(*AgentConfig) {
		return func(c *AgentConfig) {
			c.TLS = p.gateway(certRegion, false)
			if log != nil {
				c.Logger = log
			}
		}
	}
	// The observer's rotation over the region's gateways (sorted: rogue-1
	// first) starts at a hash of its name: pick a name that starts at the
	// rogue, so the peer check has something to refuse.
	obsName := obsRegion + "-1"
	for i := 2; watchOffset(obsName)%2 != 0; i++ {
		obsName = fmt.Sprintf("%s-%d", obsRegion, i)
	}
	obs := startWatchNode(t, withTLS(obsRegion, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))),
		obsRegion, obsName, "")
	rogue := startWatchNode(t, withTLS("eu-west", nil), real, "rogue-1", "", obs.serfAddr())
	anon := p.client(false, "")
	registerAt(t, anon, rogue, "web", "hijack-1", 80)
	shared := redistest.FromEnv(t)
	good := startWatchNode(t, withTLS(real, nil), real, real+"-1", shared, obs.serfAddr(), rogue.serfAddr())
	registerAt(t, anon, good, "web", "real-0", 80)
	deadline := time.Now().Add(15 * time.Second)
	for !(good.held() == 1 && obs.replicaVersion(real) >= good.Cache.Version()) {
		if time.Now().After(deadline) {
			var werr string
			obs.Fed.Read(func(c *federation.Core) { werr = c.WatchError(real) })
			t.Fatalf("the observer's watch did not settle on the real gateway: good holds %d, rogue got %d; replica v%d, real v%d; watch error %q\n%s",
				good.held(), rogue.Server.watches.watches.Load(), obs.replicaVersion(real), good.Cache.Version(), werr, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 5 {
		v := registerAt(t, anon, good, "web", fmt.Sprintf("real-%d", i+1), 80)
		if el, ok := visibleAfter(obs, real, v, time.Now(), 2*time.Second); !ok || el > 300*time.Millisecond {
			t.Fatalf("write %d over mutual TLS took %s to arrive (ok %v), want < 300ms", i, el, ok)
		}
	}
	r := mustCall(t, anon, "GET", obs.URL()+"/v1/services/web?region=*", "")
	if strings.Contains(r.raw, "hijack-1") || !strings.Contains(r.raw, "real-5") {
		t.Fatalf("observer's answer: %s, want real-5 and never the rogue's hijack-1", r.raw)
	}
	// The observer's first watch went to the rogue and was refused when
	// it had a connection, before the request was sent: the rogue's server
	// never saw it, and cannot hold it.
	if n := strings.Count(logs.String(), "not watching a gateway"); n != 1 {
		t.Errorf("the refused watch was logged %d times, want once:\n%s", n, logs.String())
	}
	if n := rogue.Server.watches.watches.Load(); n != 0 {
		t.Errorf("the rogue received %d watch requests, want 0 (refused before sending)", n)
	}
}

// watchOffset is federation.Core's selfOffset: where a gateway's rotation
// over a region's gateways starts.
func watchOffset(self string) int {
	h := fnv.New32a()
	h.Write([]byte(self))
	return int(h.Sum32() % 1024)
}

// tokenRT adds an ACL token to every request.
type tokenRT struct{ token string }

func (t tokenRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(TokenHeader, t.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestWatchUnderACLs: a watch needs operator read, as a fetch does: an
// anonymous one is refused at once (not after its wait), and gateways
// watch each other with their replication token.
func TestWatchUnderACLs(t *testing.T) {
	const secret = "watch-acl-secret-0123456789"
	withACL := func(c *AgentConfig) {
		c.ACL = ACLConfig{DefaultPolicy: "deny", InitialToken: secret}
		c.Limits.WriteRate = -1
	}
	ra, rb := uniqueRegion("wa"), uniqueRegion("wb")
	a := startWatchNode(t, withACL, ra, ra+"-1", "")
	b := startWatchNode(t, withACL, rb, rb+"-1", "", a.serfAddr())
	authed := &http.Client{Timeout: 5 * time.Second, Transport: tokenRT{secret}}
	registerAt(t, authed, b, "web", "b0", 80)

	start := time.Now()
	r := call(t, "GET", fmt.Sprintf("%s%s?since=%d&wait=30s", b.URL(), federation.CatalogPath, b.Cache.Version()), "")
	r.want(t, http.StatusUnauthorized)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("an anonymous watch was refused after %s, want at once", el)
	}
	if !strings.Contains(r.raw, `"error"`) {
		t.Errorf("refused watch: %s, want a JSON error", r.raw)
	}
	watching(t, a, b)
	for i := range 5 {
		v := registerAt(t, authed, b, "web", fmt.Sprintf("b%d", i+1), 80)
		if el, ok := visibleAfter(a, rb, v, time.Now(), 2*time.Second); !ok || el > 300*time.Millisecond {
			t.Fatalf("write %d under ACLs took %s to arrive (ok %v), want < 300ms", i, el, ok)
		}
	}
}
