package serfmember

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/federation"

	"github.com/meridian-sd/meridian/federation/httpsync"
)

// These tests run the production driver — Federator over real Serf
// (SerfMembership on a MemNetwork), region caches over MemStores, and
// fetches through an in-process HTTP network — in a testing/synctest
// bubble: virtual time, no sockets. Serf is not deterministic, so the
// assertions are bounds in virtual time, taken from the local profile's
// timing (see SerfMembership's doc and detectionBound).

// fedRegions are the regions of a test federation, one gateway each; the
// first is the seed the others join.
var fedRegions = []string{"us-east", "eu-west", "ap-south"}

// fedGateway is one region's gateway as the agent wires it: store, cache,
// Serf membership and federator.
type fedGateway struct {
	region   string
	name     string
	http     string // fake address advertised in the "http" tag
	store    *region.MemStore
	cache    *region.Cache
	tr       *MemTransport
	mem      *SerfMembership
	fed      *federation.Federator
	replicas *federation.MemReplicaStore
	saves    atomic.Int64 // replicas written to the replica store
	clock    atomic.Int64 // the federator's clock reads: a few per turn of its loop

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// countingReplicas counts the saves of a ReplicaStore.
type countingReplicas struct {
	federation.ReplicaStore
	saves *atomic.Int64
}

func (r countingReplicas) Save(ctx context.Context, s federation.ReplicaSnapshot) error {
	r.saves.Add(1)
	return r.ReplicaStore.Save(ctx, s)
}

// stop ends the gateway's goroutines, then Serf (without a leave).
func (g *fedGateway) stop() {
	g.once.Do(func() {
		g.cancel()
		g.wg.Wait()
		g.mem.Shutdown()
	})
}

// ackedWrite is a write a region's store acknowledged.
type ackedWrite struct {
	key     region.Key
	version uint64
}

// fedCluster is a federation of gateways in one bubble.
type fedCluster struct {
	t     *testing.T
	mn    *MemNetwork
	web   *inprocHTTP
	gws   []*fedGateway
	acked map[string][]ackedWrite // by region
}

// startFedCluster starts one gateway per fedRegions (each with one
// instance registered) and waits until every gateway holds every other
// region's replica. edit, when not nil, adjusts each core's configuration.
func startFedCluster(t *testing.T, edit func(*federation.CoreConfig)) *fedCluster {
	t.Helper()
	t.Cleanup(settle) // first, so it runs last: memberlist winds down after the shutdowns
	log, _ := testLogger(t, slog.LevelInfo)
	c := &fedCluster{t: t, mn: NewMemNetwork(), web: newInprocHTTP(), acked: map[string][]ackedWrite{}}
	// A fetch takes a virtual millisecond, as on a LAN. It must take some
	// time: while a replica is ahead of its region's gossiped version the
	// federator fetches again as soon as an answer comes, and with answers
	// that take no time at all the bubble's clock would stop.
	c.web.SetLatency(time.Millisecond)
	var joins []string
	for i, r := range fedRegions {
		g := &fedGateway{region: r, name: "gw-" + r, http: r + "-http:80",
			store: region.NewMemStore(0), replicas: federation.NewMemReplicaStore()}
		c.gws = append(c.gws, g)
		c.put(g, "web", r+"-1")
		tr, err := c.mn.NewTransport("")
		if err != nil {
			t.Fatal(err)
		}
		g.tr = tr
		// Join every earlier gateway: the local profile sends alive gossip
		// only twice.
		g.mem, err = NewSerfMembership(SerfConfig{NodeName: g.name, Region: r, HTTPAddr: g.http,
			Profile: federation.ProfileLocal, Transport: tr, Join: slices.Clone(joins), Logger: log})
		if err != nil {
			t.Fatalf("NewSerfMembership(%s): %v", g.name, err)
		}
		joins = append(joins, tr.Addr())
		g.cache = region.NewCache(g.store, region.CacheOptions{CatchUp: time.Second, Logger: log.With("region", r)})
		core := federation.LocalCoreConfig(r, g.mem.LocalName())
		if edit != nil {
			edit(&core)
		}
		g.fed, err = federation.NewFederator(federation.FederatorConfig{Core: core, Membership: g.mem, Replicas: countingReplicas{g.replicas, &g.saves},
			Transport: &httpsync.Transport{Client: c.web.Client(g.http)}, Logger: log.With("region", r, "component", "federation"),
			Now:  func() time.Time { g.clock.Add(1); return time.Now() },
			Rand: rand.New(rand.NewPCG(uint64(i)+1, 0x5851f42d4c957f2d))})
		if err != nil {
			g.mem.Shutdown()
			t.Fatalf("NewFederator(%s): %v", r, err)
		}
		c.web.Handle(g.http, catalogHandler(federation.CatalogSource{Region: r, Store: g.store, Cache: g.cache}))
		// What the agent does (gateway/agent.go startFederation): gossip the
		// region's catalog version as it moves.
		mem, cache := g.mem, g.cache
		g.cache.OnChange(func([]region.Change, bool) { mem.SetVersion(cache.Version()) })
		ctx, cancel := context.WithCancel(context.Background())
		g.cancel = cancel
		g.wg.Go(func() { g.cache.Run(ctx) })
		g.wg.Go(func() { g.fed.Run(ctx) })
		t.Cleanup(g.stop)
	}
	d := c.waitUntil(10*time.Second, "the first sync everywhere", c.converged)
	t.Logf("start: 3 gateways joined and hold each other's replicas after %v (bound 10s)", d)
	return c
}

func (c *fedCluster) gw(regionName string) *fedGateway {
	for _, g := range c.gws {
		if g.region == regionName {
			return g
		}
	}
	c.t.Fatalf("no gateway of %s", regionName)
	return nil
}

// others returns every gateway but g.
func (c *fedCluster) others(g *fedGateway) []*fedGateway {
	var out []*fedGateway
	for _, o := range c.gws {
		if o != g {
			out = append(out, o)
		}
	}
	return out
}

// put registers service/id in g's region, straight in its store, and
// records the acknowledged write.
func (c *fedCluster) put(g *fedGateway, service, id string) ackedWrite {
	c.t.Helper()
	ch, err := g.store.Put(context.Background(), region.Instance{Service: service, ID: id,
		Address: "10.0.0.1", Port: 8080, Weight: 100, Status: region.StatusPassing}, region.Cond{})
	if err != nil {
		c.t.Fatalf("Put %s/%s in %s: %v", service, id, g.region, err)
	}
	w := ackedWrite{key: region.Key{Service: service, ID: id}, version: ch.Version}
	c.acked[g.region] = append(c.acked[g.region], w)
	return w
}

// crash freezes g: gossip and HTTP to and from it are black-holed.
func (c *fedCluster) crash(g *fedGateway) {
	c.mn.Crash(g.tr.Addr())
	c.web.Crash(g.http)
}

func (c *fedCluster) revive(g *fedGateway) {
	c.mn.Revive(g.tr.Addr())
	c.web.Revive(g.http)
}

// partition cuts a off from b, gossip and HTTP, both ways.
func (c *fedCluster) partition(a, b []*fedGateway) {
	addrs := func(gs []*fedGateway) (gossip, web []string) {
		for _, g := range gs {
			gossip, web = append(gossip, g.tr.Addr()), append(web, g.http)
		}
		return gossip, web
	}
	ga, wa := addrs(a)
	gb, wb := addrs(b)
	c.mn.Partition(ga, gb)
	c.web.Partition(wa, wb)
}

func (c *fedCluster) heal() {
	c.mn.Heal()
	c.web.Heal()
}

// view returns what g's core says of a region.
func (g *fedGateway) view(regionName string) (v federation.RegionView) {
	g.fed.Read(func(c *federation.Core) {
		v = c.View(regionName)
		v.Replica = nil // not to be read outside the lock
	})
	return v
}

// replicaState is a copy of what g holds of a region: ok is false when it
// holds no replica.
func (g *fedGateway) replicaState(regionName string) (version uint64, ins map[region.Key]uint64, ok bool) {
	g.fed.Read(func(c *federation.Core) {
		r := c.Replica(regionName)
		if r == nil {
			return
		}
		version, ok = r.Version(), true
		ins = map[region.Key]uint64{}
		for _, in := range r.Catalog.All() {
			ins[in.Key()] = in.ModifyIndex
		}
	})
	return version, ins, ok
}

// persisted returns the version of g's persisted replica of a region.
func (g *fedGateway) persisted(regionName string) (uint64, bool) {
	snaps, _ := g.replicas.Load(context.Background())
	for _, s := range snaps {
		if s.Region == regionName {
			return s.Version, true
		}
	}
	return 0, false
}

// holds reports (as an error) whether g's replica of r has every
// acknowledged write of r.
func (c *fedCluster) holds(g *fedGateway, r string, writes []ackedWrite) error {
	v, ins, ok := g.replicaState(r)
	if !ok {
		return fmt.Errorf("%s holds no replica of %s", g.region, r)
	}
	for _, w := range writes {
		if got, ok := ins[w.key]; !ok || got != w.version {
			return fmt.Errorf("%s's replica of %s (v%d) lacks %s@v%d (has @v%d)", g.region, r, v, w.key, w.version, got)
		}
	}
	return nil
}

// converged reports the first way in which the federation is not caught
// up: every gateway holds every other region's replica at its store's
// version with every acknowledged write, reachable and not stale.
func (c *fedCluster) converged() error {
	for _, g := range c.gws {
		for _, o := range c.others(g) {
			snap, _ := o.store.Snapshot(context.Background())
			if err := c.holds(g, o.region, c.acked[o.region]); err != nil {
				return err
			}
			if v, _, _ := g.replicaState(o.region); v != snap.Version {
				return fmt.Errorf("%s's replica of %s is at v%d, its store at v%d", g.region, o.region, v, snap.Version)
			}
			if v := g.view(o.region); !v.Reachable || v.Stale {
				return fmt.Errorf("%s sees %s reachable=%v stale=%v (last error %q)", g.region, o.region, v.Reachable, v.Stale, v.LastError)
			}
		}
	}
	return nil
}

// waitUntil polls cond every 10ms of virtual time until it returns nil,
// and fails the test with cond's last answer after timeout. It returns how
// long it took.
func (c *fedCluster) waitUntil(timeout time.Duration, what string, cond func() error) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("after %v (bound %v): still waiting for %s: %v", time.Since(start), timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// localBounds are the local profile's detection and heal bounds for 3
// members (see TestSerfMembershipInMemory), and the federation's slack on
// top of a heal: a fetch that times out, then the longest backoff.
func localBounds() (detect, heal, fedSlack time.Duration) {
	lcfg := memberlist.DefaultLocalConfig()
	core := federation.LocalCoreConfig("x", "y")
	detect = detectionBound(lcfg, 3)
	heal = localReconnectInterval + lcfg.PushPullInterval + 2*lcfg.TCPTimeout + time.Second
	fedSlack = core.FetchTimeout + core.BackoffMax*3/2
	return detect, heal, fedSlack
}

// TestSynctestReplication: a write in one region reaches the others'
// replicas within 2s of virtual time, and every gateway's region list
// shows three reachable, fresh regions.
func TestSynctestReplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startFedCluster(t, nil)
		us, eu, ap := c.gw("us-east"), c.gw("eu-west"), c.gw("ap-south")

		w := c.put(eu, "api", "eu-2")
		d := c.waitUntil(2*time.Second, "eu-west's write at us-east and ap-south", func() error {
			for _, g := range []*fedGateway{us, ap} {
				if err := c.holds(g, "eu-west", []ackedWrite{w}); err != nil {
					return err
				}
			}
			return nil
		})
		t.Logf("replication: %s@v%d in us-east's and ap-south's replicas after %v (bound 2s)", w.key, w.version, d)

		for _, g := range c.gws {
			var got []string
			g.fed.Read(func(core *federation.Core) {
				for _, v := range core.Regions() {
					got = append(got, fmt.Sprintf("%s local=%v reachable=%v stale=%v", v.Name, v.Local, v.Reachable, v.Stale))
				}
			})
			var want []string
			for _, r := range []string{"ap-south", "eu-west", "us-east"} {
				want = append(want, fmt.Sprintf("%s local=%v reachable=true stale=false", r, r == g.region))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s Regions():\n got %s\nwant %s", g.region, strings.Join(got, "; "), strings.Join(want, "; "))
			}
		}

		// The replica reaches the local replica store within PersistEvery
		// (and the next tick).
		bound := federation.LocalCoreConfig("x", "y").PersistEvery + time.Second
		d = c.waitUntil(bound, "the persisted replicas", func() error {
			for _, g := range []*fedGateway{us, ap} {
				if v, ok := g.persisted("eu-west"); !ok || v != w.version {
					return fmt.Errorf("%s persisted eu-west at v%d (present %v), want v%d", g.region, v, ok, w.version)
				}
			}
			return nil
		})
		t.Logf("replication: persisted at v%d after another %v (bound %v)", w.version, d, bound)

		// Quiet: nothing changes anywhere, so anti-entropy syncs find
		// nothing new and no replica is written again.
		saves := us.saves.Load()
		time.Sleep(10 * time.Second)
		quiet := us.saves.Load() - saves
		t.Logf("quiet: us-east wrote %d replicas to its replica store in 10s with no change anywhere", quiet)
		if quiet != 0 {
			t.Errorf("quiet: us-east wrote %d replicas in 10s with nothing changed; want 0", quiet)
		}
		if err := c.converged(); err != nil {
			t.Errorf("after a quiet 10s: %v", err)
		}
	})
}

// TestSynctestWriteLoad: under a steady stream of writes in one region the
// others keep up, and converge once it stops.
func TestSynctestWriteLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startFedCluster(t, nil)
		eu := c.gw("eu-west")
		const writes, every = 500, 10 * time.Millisecond
		served := c.web.Served(eu.http)
		start := time.Now()
		for i := range writes {
			c.put(eu, "load", fmt.Sprintf("load-%03d", i))
			time.Sleep(every)
		}
		d := c.waitUntil(2*time.Second, "convergence after the last write", c.converged)
		t.Logf("write load: %d writes in %v; converged %v after the last (bound 2s)", writes, writes*every, d)
		// Fetches follow the gossiped version, published at most every
		// 200ms: about 2 x 5/s here. A replica ahead of the gossiped
		// version (the tag lags) counts as current, not as a reason to
		// fetch again.
		fetches, perVersion := c.web.Served(eu.http)-served, 2*int(time.Since(start)/(200*time.Millisecond))
		t.Logf("write load: eu-west answered %d catalog requests in %v (one fetch per published version would be about %d)",
			fetches, time.Since(start), perVersion)
		if fetches > 2*perVersion {
			t.Errorf("write load: eu-west answered %d catalog requests; want at most %d (twice one per published version)", fetches, 2*perVersion)
		}
	})
}

// crashHold is how long a crashed region is held down before it comes
// back: MERIDIAN_SYNCTEST_HOLD (a duration, e.g. 1h), or a minute — longer
// than every period of the local profile and the federation core (gossip to
// the dead 15s, push/pull 15s, reconnect 5s, anti-entropy 2s). Virtual time
// is not free: Serf runs on, and while a region is down every federator
// turns its loop about a thousand times a virtual second, so a virtual hour
// takes about 25s of wall time (75s with -race).
func crashHold(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("MERIDIAN_SYNCTEST_HOLD")
	if s == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("MERIDIAN_SYNCTEST_HOLD=%q: want a positive duration", s)
	}
	return d
}

// TestSynctestCrash: a crashed region turns unreachable and stale at the
// others within the detection bound, keeps its replica while it is down,
// and once revived its writes made meanwhile converge everywhere.
func TestSynctestCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := crashHold(t)
		c := startFedCluster(t, nil)
		eu := c.gw("eu-west")
		survivors := c.others(eu)
		detect, heal, slack := localBounds()
		before := slices.Clone(c.acked["eu-west"])

		crashed := time.Now()
		c.crash(eu)
		d := c.waitUntil(detect, "eu-west unreachable and stale at the others", func() error {
			for _, g := range survivors {
				if v := g.view("eu-west"); v.Reachable || !v.Stale {
					return fmt.Errorf("%s sees eu-west reachable=%v stale=%v", g.region, v.Reachable, v.Stale)
				}
			}
			return nil
		})
		t.Logf("crash: eu-west unreachable and stale at us-east and ap-south after %v (bound %v)", d, detect)
		for _, g := range survivors {
			if err := c.holds(g, "eu-west", before); err != nil {
				t.Errorf("after the failure: %v", err)
			}
		}

		// A write in eu-west while it is cut off: its own cache and tags
		// move; nobody else can see them.
		during := c.put(eu, "api", "eu-during-crash")

		clock := survivors[0].clock.Load()
		time.Sleep(hold)
		turns := float64(survivors[0].clock.Load()-clock) / hold.Seconds()
		for _, g := range survivors {
			if err := c.holds(g, "eu-west", before); err != nil {
				t.Errorf("%v into the crash: %v", time.Since(crashed), err)
			}
			if v := g.view("eu-west"); v.Reachable || !v.Stale {
				t.Errorf("%v into the crash, %s sees eu-west reachable=%v stale=%v, want false, true", time.Since(crashed), g.region, v.Reachable, v.Stale)
			}
			if _, ok := g.persisted("eu-west"); !ok {
				t.Errorf("%v into the crash, %s's persisted replica of eu-west is gone", time.Since(crashed), g.region)
			}
		}
		t.Logf("crash: replicas of eu-west kept at us-east and ap-south %v after the crash", time.Since(crashed))
		t.Logf("crash: us-east's federator read its clock %.0f times per virtual second while eu-west was down", turns)
		// It sleeps until its next deadline: no busy wake-ups for a region
		// it cannot fetch from.
		if turns > 50 {
			t.Errorf("crash: us-east's federator read its clock %.0f times per virtual second; want at most 50", turns)
		}

		c.revive(eu)
		d = c.waitUntil(heal+slack, "convergence after eu-west's revival", c.converged)
		t.Logf("revive: %s@v%d everywhere, all fresh, after %v (bound %v)", during.key, during.version, d, heal+slack)
	})
}

// TestSynctestPartition: {us-east} | {eu-west, ap-south}, writes on both
// sides; each side keeps the other's replicas, the majority side
// replicates within itself, and after the heal every acknowledged write is
// everywhere and no replica is stale.
func TestSynctestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startFedCluster(t, nil)
		us, eu, ap := c.gw("us-east"), c.gw("eu-west"), c.gw("ap-south")
		detect, heal, slack := localBounds()
		lcfg := memberlist.DefaultLocalConfig()
		// The isolated side gets no confirmations: max suspicion, and its
		// failing probes raise its awareness (probe interval up to x8).
		isolated := detect + time.Duration(2*2*(lcfg.AwarenessMaxMultiplier-1))*lcfg.ProbeInterval
		before := map[string][]ackedWrite{}
		for r, ws := range c.acked {
			before[r] = slices.Clone(ws)
		}

		start := time.Now()
		c.partition([]*fedGateway{us}, []*fedGateway{eu, ap})
		c.put(us, "p", "us-1")
		c.put(eu, "p", "eu-1")
		c.put(ap, "p", "ap-1")

		unreachable := func(g *fedGateway, rs ...string) func() error {
			return func() error {
				for _, r := range rs {
					if v := g.view(r); v.Reachable || !v.Stale {
						return fmt.Errorf("%s sees %s reachable=%v stale=%v", g.region, r, v.Reachable, v.Stale)
					}
				}
				return nil
			}
		}
		majority := c.waitUntil(detect, "eu-west and ap-south to see us-east unreachable", func() error {
			if err := unreachable(eu, "us-east")(); err != nil {
				return err
			}
			return unreachable(ap, "us-east")()
		})
		minority := majority + c.waitUntil(isolated-majority, "us-east to see eu-west and ap-south unreachable",
			unreachable(us, "eu-west", "ap-south"))
		t.Logf("partition: eu-west and ap-south see us-east unreachable after %v (bound %v), us-east sees them after %v (bound %v)",
			majority, detect, minority, isolated)

		// The majority side replicates within itself.
		c.put(us, "p", "us-2")
		c.put(eu, "p", "eu-2")
		c.put(ap, "p", "ap-2")
		d := c.waitUntil(2*time.Second, "eu-west and ap-south to replicate each other during the partition", func() error {
			if err := c.holds(ap, "eu-west", c.acked["eu-west"]); err != nil {
				return err
			}
			return c.holds(eu, "ap-south", c.acked["ap-south"])
		})
		t.Logf("partition: eu-west and ap-south hold each other's writes %v after the last (bound 2s)", d)

		// Nothing is dropped across the cut: each side keeps what it had.
		time.Sleep(30 * time.Second)
		for _, g := range c.gws {
			for _, o := range c.others(g) {
				if (g == us) == (o == us) {
					continue
				}
				if err := c.holds(g, o.region, before[o.region]); err != nil {
					t.Errorf("%v into the partition: %v", time.Since(start), err)
				}
			}
		}

		partitioned := time.Since(start)
		c.heal()
		d = c.waitUntil(heal+slack, "convergence after the heal", c.converged)
		t.Logf("heal: every write everywhere and no replica stale %v after the heal (bound %v); the partition lasted %v",
			d, heal+slack, partitioned)
	})
}

// TestSynctestReap: a region with no alive gateway for ReapAfter is
// dropped, from memory and from the replica store.
func TestSynctestReap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const reapAfter = time.Minute
		c := startFedCluster(t, func(cfg *federation.CoreConfig) { cfg.ReapAfter = reapAfter })
		eu := c.gw("eu-west")
		survivors := c.others(eu)
		detect, _, _ := localBounds()

		c.waitUntil(2*time.Second, "persisted replicas of eu-west", func() error {
			for _, g := range survivors {
				if _, ok := g.persisted("eu-west"); !ok {
					return fmt.Errorf("%s has not persisted eu-west", g.region)
				}
			}
			return nil
		})

		c.crash(eu)
		failed := c.waitUntil(detect, "eu-west unreachable at the others", func() error {
			for _, g := range survivors {
				if v := g.view("eu-west"); v.Reachable {
					return fmt.Errorf("%s sees eu-west reachable", g.region)
				}
			}
			return nil
		})
		// The drop comes ReapAfter after the failure was seen, at the next
		// tick (at most a second later). The replica store follows right
		// after the core, in the same virtual instant.
		dropped := failed + c.waitUntil(reapAfter+2*time.Second, "eu-west dropped at the others", func() error {
			for _, g := range survivors {
				if _, _, ok := g.replicaState("eu-west"); ok {
					return fmt.Errorf("%s still holds eu-west", g.region)
				}
				if v, ok := g.persisted("eu-west"); ok {
					return fmt.Errorf("%s's replica store still holds eu-west (v%d)", g.region, v)
				}
			}
			return nil
		})
		if dropped < reapAfter {
			t.Errorf("eu-west dropped %v after the crash, before ReapAfter (%v)", dropped, reapAfter)
		}
		time.Sleep(10 * time.Second)
		for _, g := range survivors {
			if _, _, ok := g.replicaState("eu-west"); ok {
				t.Errorf("%s holds eu-west again after the drop", g.region)
			}
			if v, ok := g.persisted("eu-west"); ok {
				t.Errorf("%s's replica store holds eu-west (v%d) again after the drop", g.region, v)
			}
		}
		t.Logf("reap: eu-west failed after %v, dropped (memory and replica store) %v after the crash (ReapAfter %v, bound %v)",
			failed, dropped, reapAfter, detect+reapAfter+2*time.Second)
	})
}

// TestSynctestForget: the forget user event drops a region's replica at
// every gateway, from memory and the replica store, and it stays gone.
func TestSynctestForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startFedCluster(t, nil)
		us, eu, ap := c.gw("us-east"), c.gw("eu-west"), c.gw("ap-south")
		holders := []*fedGateway{us, eu}
		detect, _, _ := localBounds()

		c.waitUntil(2*time.Second, "persisted replicas of ap-south", func() error {
			for _, g := range holders {
				if _, ok := g.persisted("ap-south"); !ok {
					return fmt.Errorf("%s has not persisted ap-south", g.region)
				}
			}
			return nil
		})
		// ap-south is gone for good (alive gateways would bring it back).
		c.crash(ap)
		c.waitUntil(detect, "ap-south unreachable", func() error {
			for _, g := range holders {
				if v := g.view("ap-south"); v.Reachable {
					return fmt.Errorf("%s sees ap-south reachable", g.region)
				}
			}
			return nil
		})

		if err := us.fed.Forget("ap-south"); err != nil {
			t.Fatal(err)
		}
		gone := func() error {
			for _, g := range holders {
				if _, _, ok := g.replicaState("ap-south"); ok {
					return fmt.Errorf("%s still holds ap-south", g.region)
				}
				if _, ok := g.persisted("ap-south"); ok {
					return fmt.Errorf("%s's replica store still holds ap-south", g.region)
				}
				var names []string
				g.fed.Read(func(core *federation.Core) {
					for _, v := range core.Regions() {
						names = append(names, v.Name)
					}
				})
				if slices.Contains(names, "ap-south") {
					return fmt.Errorf("%s still lists ap-south: %v", g.region, names)
				}
			}
			return nil
		}
		d := c.waitUntil(2*time.Second, "ap-south forgotten at us-east and eu-west", gone)
		t.Logf("forget: ap-south dropped at us-east and eu-west %v after the event (bound 2s)", d)
		time.Sleep(time.Minute)
		if err := gone(); err != nil {
			t.Errorf("a minute after the forget: %v", err)
		}
	})
}
