package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

// cutHTTP drops sync fetches and watches to chosen gateways (the HTTP
// half of a partition): new requests fail, and requests in flight (a
// watch waits for minutes) are cut off as a partition would.
type cutHTTP struct {
	mu       sync.Mutex
	cut      map[string]bool
	inflight map[*http.Request]inflightReq
}

type inflightReq struct {
	host   string
	cancel context.CancelFunc
}

func (c *cutHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	r = r.WithContext(ctx)
	c.mu.Lock()
	cut := c.cut[r.URL.Host]
	if !cut {
		if c.inflight == nil {
			c.inflight = map[*http.Request]inflightReq{}
		}
		c.inflight[r] = inflightReq{host: r.URL.Host, cancel: cancel}
	}
	c.mu.Unlock()
	if cut {
		cancel()
		return nil, errors.New("partitioned")
	}
	done := func() {
		c.mu.Lock()
		delete(c.inflight, r)
		c.mu.Unlock()
		cancel()
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		done()
		return nil, err
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: done}
	return resp, nil
}

// doneBody calls done once when closed.
type doneBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

func (c *cutHTTP) set(hosts ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = map[string]bool{}
	for _, h := range hosts {
		c.cut[h] = true
	}
	for _, f := range c.inflight {
		if c.cut[f.host] {
			f.cancel()
		}
	}
}

// fedNode is one gateway of a test federation.
type fedNode struct {
	*Agent
	region string
	faults *serfmember.FaultTransport
	http   *cutHTTP
	cfg    AgentConfig
}

func (n *fedNode) serfAddr() string {
	return n.Members.(*serfmember.SerfMembership).BindAddr()
}

// startFedNode starts a gateway with real Serf over UDP/TCP on 127.0.0.1
// (local profile), a fault-injecting transport, and a fault-injecting
// fetch client.
func startFedNode(t *testing.T, regionName, name, redisURL string, join ...string) *fedNode {
	t.Helper()
	return startFedNodeWith(t, nil, regionName, name, redisURL, join...)
}

// startFedNodeWith is startFedNode with a last say on the configuration.
func startFedNodeWith(t *testing.T, tweak func(*AgentConfig), regionName, name, redisURL string, join ...string) *fedNode {
	t.Helper()
	n := &fedNode{region: regionName, http: &cutHTTP{}}
	n.cfg = AgentConfig{
		Region: regionName, RedisURL: redisURL, NodeName: name, SerfBind: "127.0.0.1:0",
		GossipProfile: "local", Join: join, FetchClient: &http.Client{Transport: n.http, Timeout: 2 * time.Second},
		NewMembership: func(c serfmember.SerfConfig) (federation.Membership, error) {
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
			if err != nil {
				return nil, err
			}
			n.faults = serfmember.NewFaultTransport(nt)
			c.Transport = n.faults
			c.AdvertiseAddr = fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())
			return serfmember.NewSerfMembership(c)
		},
	}
	if tweak != nil {
		tweak(&n.cfg)
	}
	n.Agent = startAgent(t, n.cfg)
	return n
}

func lookup(t *testing.T, n *fedNode, service, regionName string) response {
	t.Helper()
	return call(t, "GET", n.URL()+"/v1/services/"+service+"?region="+regionName, "")
}

func regionsOf(t *testing.T, n *fedNode) map[string]map[string]any {
	t.Helper()
	r := call(t, "GET", n.URL()+"/v1/regions", "").want(t, 200)
	out := map[string]map[string]any{}
	list, _ := r.body["regions"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func gatewayStatus(t *testing.T, n *fedNode, regionName, node string) string {
	for _, g := range regionsOf(t, n)[regionName]["gateways"].([]any) {
		m := g.(map[string]any)
		if m["name"] == node {
			return m["status"].(string)
		}
	}
	return ""
}

func TestFederationEndToEnd(t *testing.T) {
	skipShort(t, "three gateways over real Serf; federation unit tests and the simulator cover sync")
	shared := redistest.FromEnv(t) // us-east's two gateways share a real Redis
	use := fmt.Sprintf("use-%06x", rand.Uint32()&0xffffff)
	// Each joins every earlier gateway: an alive message is gossiped only a
	// couple of times on the local profile, and push/pull runs every 15s,
	// so joining one seed can leave two late joiners unaware of each other
	// for up to 15s.
	a1 := startFedNode(t, use, use+"-1", shared)
	a2 := startFedNode(t, use, use+"-2", shared, a1.serfAddr())
	eu := startFedNode(t, "eu-west", "eu-1", "", a1.serfAddr(), a2.serfAddr())
	ap := startFedNode(t, "ap-south", "ap-1", "", a1.serfAddr(), a2.serfAddr(), eu.serfAddr())
	all := []*fedNode{a1, a2, eu, ap}

	converged := func() bool {
		for _, n := range all {
			rs := regionsOf(t, n)
			if len(rs) != 3 {
				return false
			}
			for _, r := range rs {
				if r["reachable"] != true {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for !converged() {
		if time.Now().After(deadline) {
			for _, n := range all {
				t.Logf("%s sees %v", n.cfg.NodeName, call(t, "GET", n.URL()+"/v1/regions", "").raw)
			}
			t.Fatal("the four gateways did not see three reachable regions within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A registration in one region is seen in the others within 2s.
	call(t, "PUT", eu.URL()+"/v1/services/web/instances/eu-web-1", `{"address":"10.1.0.1","port":80}`).want(t, 200)
	start := time.Now()
	waitFor(t, 5*time.Second, "the registration to reach every region", func() bool {
		for _, n := range []*fedNode{a1, a2, ap} {
			if fmt.Sprint(instanceIDs(lookup(t, n, "web", "eu-west"))) != "[eu-web-1]" {
				return false
			}
		}
		return true
	})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("replication took %s, want within 2s on the local profile", el)
	}
	r := lookup(t, a1, "web", "eu-west").want(t, 200)
	if r.body["region"] != "eu-west" || r.body["stale"] != false || r.body["age_ms"] == nil {
		t.Fatalf("cross-region read: %s", r.raw)
	}
	call(t, "PUT", ap.URL()+"/v1/services/web/instances/ap-web-1", `{"address":"10.2.0.1","port":80}`).want(t, 200)
	call(t, "PUT", a2.URL()+"/v1/services/web/instances/use-web-1", `{"address":"10.0.0.1","port":80}`).want(t, 200)
	waitFor(t, 5*time.Second, "?region=* to list every region's instances", func() bool {
		r := call(t, "GET", eu.URL()+"/v1/services/web?region=*", "")
		return strings.Contains(r.raw, "eu-web-1") && strings.Contains(r.raw, "ap-web-1") && strings.Contains(r.raw, "use-web-1")
	})
	waitFor(t, 5*time.Second, "GET /v1/services to count every region", func() bool {
		svcs := call(t, "GET", a1.URL()+"/v1/services", "").want(t, 200)
		return strings.Contains(svcs.raw, `"eu-west":{"instances":1`) && strings.Contains(svcs.raw, `"ap-south":{"instances":1`)
	})
	call(t, "GET", a1.URL()+"/v1/services/web?region=nowhere", "").want(t, 404)

	// Health checks are sharded between us-east's two gateways.
	for i := range 20 {
		call(t, "PUT", fmt.Sprintf("%s/v1/services/svc/instances/i%d", a1.URL(), i), `{"address":"10.0.0.9","port":80,"check":{"ttl":"30s"}}`).want(t, 200)
	}
	waitFor(t, 5*time.Second, "both gateways to see each other", func() bool {
		return len(a1.Fed.LocalGateways()) == 2 && len(a2.Fed.LocalGateways()) == 2
	})
	owned := func(n *fedNode) int {
		c := 0
		for i := range 20 {
			if n.Health.Owns(regionKey("svc", fmt.Sprint("i", i))) {
				c++
			}
		}
		return c
	}
	if o1, o2 := owned(a1), owned(a2); o1+o2 != 20 || o1 == 0 || o2 == 0 {
		t.Fatalf("check ownership: %d + %d, want the 20 instances split between the gateways", o1, o2)
	}
	// A heartbeat through either gateway reaches the owner.
	for i := range 20 {
		via := a1
		if i%2 == 1 {
			via = a2
		}
		r := call(t, "PUT", fmt.Sprintf("%s/v1/services/svc/instances/i%d/heartbeat", via.URL(), i), "")
		if r.code != 200 || r.body["status"] != "passing" {
			t.Fatalf("heartbeat i%d via %s: %s", i, via.cfg.NodeName, r.raw)
		}
	}

	// ap-south's gateway dies without leaving: marked failed, its replica
	// still served, stale.
	ap.Kill()
	waitFor(t, 45*time.Second, "ap-south's gateway to be marked failed", func() bool {
		return gatewayStatus(t, a1, "ap-south", "ap-1") == "failed"
	})
	r = lookup(t, a1, "web", "ap-south").want(t, 200)
	if r.body["stale"] != true || fmt.Sprint(instanceIDs(r)) != "[ap-web-1]" {
		t.Fatalf("replica of a failed region: %s, want ap-web-1 served stale", r.raw)
	}

	// One us-east gateway dies: the other takes over every check.
	a2.Kill()
	killed := time.Now()
	// Usually 4-6s on the local profile; up to ~22s seen when Lifeguard
	// has slowed the survivor's probes after the earlier failure.
	waitFor(t, 45*time.Second, "check ownership to move to the survivor", func() bool { return owned(a1) == 20 })
	t.Logf("check ownership moved %s after the kill", time.Since(killed))
}

func regionKey(service, id string) region.Key { return region.Key{Service: service, ID: id} }

// partition cuts gossip and sync traffic between two groups of gateways.
func partition(left, right []*fedNode) {
	for _, l := range left {
		for _, r := range right {
			l.faults.Cut(r.serfAddr())
			r.faults.Cut(l.serfAddr())
		}
	}
	for _, side := range [][2][]*fedNode{{left, right}, {right, left}} {
		var hosts []string
		for _, o := range side[1] {
			hosts = append(hosts, o.Addr())
		}
		for _, n := range side[0] {
			n.http.set(hosts...)
		}
	}
}

func heal(nodes ...*fedNode) {
	for _, n := range nodes {
		n.faults.Heal()
		n.http.set()
	}
}

// TestFederationPartition: both sides of a partition keep serving; a
// gateway restarted during the partition serves replicas loaded from its
// Redis; after healing, registrations made during the partition are seen
// everywhere and nothing acknowledged is lost.
func TestFederationPartition(t *testing.T) {
	skipShort(t, "real-Serf partition of several gateways; sim scenarios cover partitions")
	shared := redistest.FromEnv(t)
	use := fmt.Sprintf("use-%06x", rand.Uint32()&0xffffff)
	u := startFedNode(t, use, use+"-1", shared)
	e := startFedNode(t, "eu-west", "eu-1", "", u.serfAddr())
	p := startFedNode(t, "ap-south", "ap-1", "", u.serfAddr(), e.serfAddr())
	call(t, "PUT", e.URL()+"/v1/services/web/instances/e-before", `{"address":"10.1.0.1","port":80}`).want(t, 200)
	call(t, "PUT", u.URL()+"/v1/services/web/instances/u-before", `{"address":"10.0.0.1","port":80}`).want(t, 200)
	waitFor(t, 10*time.Second, "the first replication", func() bool {
		return fmt.Sprint(instanceIDs(lookup(t, u, "web", "eu-west"))) == "[e-before]" &&
			fmt.Sprint(instanceIDs(lookup(t, p, "web", use))) == "[u-before]"
	})
	// Let the replica be persisted to us-east's Redis (PersistEvery 1s).
	time.Sleep(1500 * time.Millisecond)

	partition([]*fedNode{u}, []*fedNode{e, p})
	// eu-west's side (the majority) marks us-east failed. us-east, alone,
	// detects slowly by design (Lifeguard: a node whose probes all fail
	// doubts itself first), but its fetches fail at once, so its replicas
	// read stale.
	waitFor(t, 15*time.Second, "eu-west to mark us-east failed and us-east's replica to read stale", func() bool {
		return gatewayStatus(t, e, use, use+"-1") == "failed" && lookup(t, u, "web", "eu-west").body["stale"] == true
	})
	// Both sides keep serving, and take writes.
	call(t, "PUT", e.URL()+"/v1/services/web/instances/e-during", `{"address":"10.1.0.2","port":80}`).want(t, 200)
	call(t, "PUT", u.URL()+"/v1/services/web/instances/u-during", `{"address":"10.0.0.2","port":80}`).want(t, 200)
	r := lookup(t, u, "web", "eu-west").want(t, 200)
	if r.body["stale"] != true || fmt.Sprint(instanceIDs(r)) != "[e-before]" {
		t.Fatalf("us-east's replica of eu-west during the partition: %s", r.raw)
	}
	if fmt.Sprint(instanceIDs(lookup(t, p, "web", "eu-west"))) == "" {
		t.Fatal("ap-south, on eu-west's side, lost eu-west")
	}

	// Restart us-east's gateway during the partition: it serves the
	// replicas it persisted in Redis.
	oldSerf := u.serfAddr()
	_, oldPort, _ := net.SplitHostPort(oldSerf)
	port, _ := strconv.Atoi(oldPort)
	u.Kill()
	u2 := &fedNode{region: use, http: &cutHTTP{}}
	cutGossip := []string{e.serfAddr(), p.serfAddr()}
	u2.cfg = u.cfg
	u2.cfg.SerfBind = oldSerf // same name, same address: a restart, not a new node
	u2.cfg.Join = []string{e.serfAddr()}
	u2.cfg.FetchClient = &http.Client{Transport: u2.http, Timeout: 2 * time.Second}
	u2.http.set(e.Addr(), p.Addr())
	u2.cfg.NewMembership = func(c serfmember.SerfConfig) (federation.Membership, error) {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: port})
		if err != nil {
			return nil, err
		}
		u2.faults = serfmember.NewFaultTransport(nt)
		u2.faults.Cut(cutGossip...)
		c.Transport = u2.faults
		c.AdvertiseAddr = fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())
		return serfmember.NewSerfMembership(c)
	}
	u2.Agent = startAgent(t, u2.cfg)
	waitFor(t, 5*time.Second, "the restarted gateway to restore its replicas", func() bool {
		r := lookup(t, u2, "web", "eu-west")
		return r.code == 200 && fmt.Sprint(instanceIDs(r)) == "[e-before]" && r.body["stale"] == true
	})
	if ids := instanceIDs(call(t, "GET", u2.URL()+"/v1/services/web", "")); fmt.Sprint(ids) != "[u-before u-during]" {
		t.Fatalf("restarted gateway's own region: %v", ids)
	}

	// Heal: everything converges, nothing acknowledged is lost.
	e.faults.Heal()
	p.faults.Heal()
	heal(u2, e, p)
	waitFor(t, 20*time.Second, "convergence after healing", func() bool {
		return fmt.Sprint(instanceIDs(lookup(t, u2, "web", "eu-west"))) == "[e-before e-during]" &&
			fmt.Sprint(instanceIDs(lookup(t, e, "web", use))) == "[u-before u-during]" &&
			fmt.Sprint(instanceIDs(lookup(t, p, "web", use))) == "[u-before u-during]" &&
			lookup(t, u2, "web", "eu-west").body["stale"] == false
	})
}
