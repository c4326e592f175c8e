package serfmember

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meridian-sd/meridian/federation"
)

// logBuffer collects a test's logs (handlers may run after the test's own
// goroutine is done, so not through t.Log); they are printed when the test
// fails or with MERIDIAN_SERF_LOG=1.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger logs at level into a buffer dumped on failure.
func testLogger(t *testing.T, level slog.Level) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	if os.Getenv("MERIDIAN_SERF_LOG") != "" {
		level = slog.LevelDebug
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("MERIDIAN_SERF_LOG") != "" || os.Getenv("MERIDIAN_SERF_DUMP") != "" {
			t.Logf("logs:\n%s", b)
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level})), b
}

// testNode is a SerfMembership whose events are recorded with their time.
type testNode struct {
	*SerfMembership
	t    *testing.T
	mu   sync.Mutex
	evs  []timedEvent
	ues  []federation.UserEvent
	done chan struct{}
	wg   sync.WaitGroup

	stopOnce sync.Once
}

type timedEvent struct {
	at time.Time
	ev federation.MemberEvent
}

func startNode(t *testing.T, cfg SerfConfig) *testNode {
	t.Helper()
	m, err := NewSerfMembership(cfg)
	if err != nil {
		t.Fatalf("NewSerfMembership(%s): %v", cfg.NodeName, err)
	}
	n := &testNode{SerfMembership: m, t: t, done: make(chan struct{})}
	t.Cleanup(n.stop)
	n.wg.Go(func() {
		for {
			select {
			case ev := <-m.Events():
				n.mu.Lock()
				n.evs = append(n.evs, timedEvent{time.Now(), ev})
				n.mu.Unlock()
			case ue := <-m.UserEvents():
				n.mu.Lock()
				n.ues = append(n.ues, ue)
				n.mu.Unlock()
			case <-n.done:
				return
			}
		}
	})
	return n
}

// stop shuts the node down and ends its recorder; again is a no-op.
func (n *testNode) stop() {
	n.stopOnce.Do(func() {
		if err := n.Shutdown(); err != nil {
			n.t.Errorf("Shutdown(%s): %v", n.LocalName(), err)
		}
		close(n.done)
		n.wg.Wait()
	})
}

// settle, registered first as a cleanup in a synctest bubble (cleanups run
// last-in first-out, after the nodes' own), lets virtual time run once the
// nodes are shut down: memberlist's probe goroutines end on their own
// timers (up to a probe interval, or a TCP timeout, later), and the bubble
// must be empty when Test returns.
func settle() { time.Sleep(time.Minute) }

// firstEvent returns the first recorded event since `since` of a kind
// about a member, that also satisfies the optional extra conditions.
func (n *testNode) firstEvent(since time.Time, kind federation.EventKind, name string, extra ...func(federation.MemberEvent) bool) (timedEvent, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.evs {
		if !e.at.Before(since) && e.ev.Kind == kind && e.ev.Member.Name == name &&
			!slices.ContainsFunc(extra, func(f func(federation.MemberEvent) bool) bool { return !f(e.ev) }) {
			return e, true
		}
	}
	return timedEvent{}, false
}

func (n *testNode) userEvents() []federation.UserEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.ues)
}

// waitFor polls cond every 10ms (virtual time under synctest) and fails
// the test after timeout; it returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %v: still waiting for %s", time.Since(start), what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// statuses is a node's view of the pool: name -> status.
func statuses(m federation.Membership) map[string]federation.MemberStatus {
	out := map[string]federation.MemberStatus{}
	for _, mem := range m.Members() {
		out[mem.Name] = mem.Status
	}
	return out
}

func allHave(nodes []*testNode, want map[string]federation.MemberStatus) func() bool {
	return func() bool {
		for _, n := range nodes {
			got := statuses(n)
			for name, st := range want {
				if got[name] != st {
					return false
				}
			}
		}
		return true
	}
}

// suspicionBounds is memberlist's suspicion timeout for n members: min
// with k confirmations, max with none (memberlist state.go suspectNode and
// util.go suspicionTimeout).
func suspicionBounds(c *memberlist.Config, n int) (lo, hi time.Duration, k int) {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	lo = time.Duration(float64(c.SuspicionMult) * scale * float64(c.ProbeInterval))
	hi = time.Duration(c.SuspicionMaxTimeoutMult) * lo
	k = c.SuspicionMult - 2
	if n-2 < k {
		k = 0
	}
	return lo, hi, k
}

// detectionBound is the worst case, for n members, from a member's death to
// its failure event at every survivor: the longest gap before a survivor
// probes it (round-robin over a reshuffled list: 2(n-1)-1 intervals), the
// failed probe itself (one interval), the longest suspicion, and a few
// gossip rounds to spread the verdict.
func detectionBound(c *memberlist.Config, n int) time.Duration {
	_, hi, _ := suspicionBounds(c, n)
	return time.Duration(2*(n-1))*c.ProbeInterval + hi + 10*c.GossipInterval
}

// TestProfileDetectionTimes pins the table in SerfMembership's comment.
func TestProfileDetectionTimes(t *testing.T) {
	for _, tc := range []struct {
		profile string
		cfg     *memberlist.Config
		probe   time.Duration
		lo, hi  time.Duration
		k       int
	}{
		{"wan", memberlist.DefaultWANConfig(), 5 * time.Second, 30 * time.Second, 180 * time.Second, 4},
		{"lan", memberlist.DefaultLANConfig(), time.Second, 4 * time.Second, 24 * time.Second, 2},
		{"local", memberlist.DefaultLocalConfig(), time.Second, 3 * time.Second, 18 * time.Second, 1},
	} {
		lo, hi, k := suspicionBounds(tc.cfg, 10)
		if tc.cfg.ProbeInterval != tc.probe || lo != tc.lo || hi != tc.hi || k != tc.k {
			t.Errorf("%s: probe %v, suspicion %v..%v, k %d; the doc says probe %v, %v..%v, k %d",
				tc.profile, tc.cfg.ProbeInterval, lo, hi, k, tc.probe, tc.lo, tc.hi, tc.k)
		}
		t.Logf("%s (3 members): detection bound %v", tc.profile, detectionBound(tc.cfg, 3))
	}
}

func TestSerfConfigValidate(t *testing.T) {
	ok := SerfConfig{Region: "us-east", HTTPAddr: "127.0.0.1:8700", BindAddr: "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		edit func(*SerfConfig)
		want string // substring of the error; "" for valid
	}{
		{"valid", func(*SerfConfig) {}, ""},
		{"no region", func(c *SerfConfig) { c.Region = "" }, "Region"},
		{"bad profile", func(c *SerfConfig) { c.Profile = "fast" }, "Profile"},
		{"bind not ip", func(c *SerfConfig) { c.BindAddr = "localhost:7946" }, "BindAddr"},
		{"bind no port", func(c *SerfConfig) { c.BindAddr = "127.0.0.1" }, "BindAddr"},
		{"bind any", func(c *SerfConfig) { c.BindAddr = ":7946" }, ""},
		{"advertise port 0", func(c *SerfConfig) { c.AdvertiseAddr = "10.0.0.1:0" }, "AdvertiseAddr"},
		{"join no port", func(c *SerfConfig) { c.Join = []string{"10.0.0.1"} }, "Join[0]"},
		{"join named", func(c *SerfConfig) { c.Join = []string{"gw-1/10.0.0.1:7946", "gw.example:7946"} }, ""},
		{"negative publish", func(c *SerfConfig) { c.PublishInterval = -time.Second }, "PublishInterval"},
		{"tags too long", func(c *SerfConfig) { c.HTTPAddr = strings.Repeat("h", 480) }, "tags"},
		{"tags just fit", func(c *SerfConfig) { c.HTTPAddr = strings.Repeat("h", 440) }, ""},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want error naming %q", tc.name, err, tc.want)
		}
	}
}

// TestTagsSizeMatchesSerf: the largest tags Validate accepts are accepted
// by Serf, which checks its own encoding.
func TestTagsSizeMatchesSerf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(settle)
		log, _ := testLogger(t, slog.LevelWarn)
		tr, err := NewMemNetwork().NewTransport("")
		if err != nil {
			t.Fatal(err)
		}
		cfg := SerfConfig{NodeName: "big", Region: "us-east", Profile: federation.ProfileLocal, Transport: tr, Logger: log}
		for len(cfg.HTTPAddr) < 600 {
			cfg.HTTPAddr += "h"
			if cfg.Validate() != nil {
				break
			}
		}
		cfg.HTTPAddr = cfg.HTTPAddr[:len(cfg.HTTPAddr)-1]
		n := startNode(t, cfg)
		n.SetVersion(math.MaxUint64)
		waitFor(t, time.Second, "the version in the tags", func() bool {
			return n.Members()[0].Version == math.MaxUint64
		})
		t.Logf("longest accepted HTTPAddr: %d bytes", len(cfg.HTTPAddr))
	})
}

// pool starts one local-profile member per region on a MemNetwork, the
// others joining the first.
func pool(t *testing.T, mn *MemNetwork, log *slog.Logger, regions ...string) []*testNode {
	t.Helper()
	var nodes []*testNode
	var seed string
	for i, r := range regions {
		tr, err := mn.NewTransport("")
		if err != nil {
			t.Fatal(err)
		}
		cfg := SerfConfig{NodeName: "gw-" + r, Region: r, HTTPAddr: fmt.Sprintf("127.0.0.1:%d", 8701+i),
			Profile: federation.ProfileLocal, Transport: tr, Logger: log}
		if seed != "" {
			cfg.Join = []string{seed}
		}
		n := startNode(t, cfg)
		if seed == "" {
			seed = n.BindAddr()
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func TestSerfMembershipInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(settle)
		log, _ := testLogger(t, slog.LevelInfo)
		mn := NewMemNetwork()
		start := time.Now()
		nodes := pool(t, mn, log, "us-east", "eu-west", "ap-south")
		a, b, c := nodes[0], nodes[1], nodes[2]
		names := []string{a.LocalName(), b.LocalName(), c.LocalName()}
		alive := map[string]federation.MemberStatus{names[0]: federation.StatusAlive, names[1]: federation.StatusAlive, names[2]: federation.StatusAlive}

		d := waitFor(t, 10*time.Second, "3 alive members everywhere", allHave(nodes, alive))
		t.Logf("join: all see 3 alive after %v", d)
		for _, n := range nodes {
			got := n.Members()
			want := []federation.Member{
				{Name: "gw-ap-south", Region: "ap-south", HTTPAddr: "127.0.0.1:8703", Status: federation.StatusAlive},
				{Name: "gw-eu-west", Region: "eu-west", HTTPAddr: "127.0.0.1:8702", Status: federation.StatusAlive},
				{Name: "gw-us-east", Region: "us-east", HTTPAddr: "127.0.0.1:8701", Status: federation.StatusAlive},
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s Members():\n got %v\nwant %v", n.LocalName(), got, want)
			}
		}

		// A version change reaches the others as an update.
		now := time.Now()
		a.SetVersion(3)
		a.SetVersion(5) // coalesced with the one before
		d = waitFor(t, 5*time.Second, "update v5 at b and c", func() bool {
			for _, n := range []*testNode{b, c} {
				if _, ok := n.firstEvent(now, federation.EventUpdate, a.LocalName(), func(e federation.MemberEvent) bool { return e.Member.Version == 5 }); !ok {
					return false
				}
			}
			return true
		})
		t.Logf("version: v5 seen by b and c as an update after %v", d)

		// A user event reaches everyone, the sender included.
		if err := b.UserEvent("meridian-test", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		d = waitFor(t, 5*time.Second, "the user event everywhere", func() bool {
			for _, n := range nodes {
				if !slices.ContainsFunc(n.userEvents(), func(u federation.UserEvent) bool { return u.Name == "meridian-test" && string(u.Payload) == "hello" }) {
					return false
				}
			}
			return true
		})
		t.Logf("user event: everywhere after %v", d)

		// Partition a from b and c: each side sees the other failed. b and c
		// confirm each other's suspicion of a (min suspicion); nobody confirms
		// a's, so a takes the max suspicion, and its failing probes raise its
		// awareness (probe interval up to x8) on top.
		lcfg := memberlist.DefaultLocalConfig()
		bound := detectionBound(lcfg, 3)
		isolatedBound := bound + time.Duration(2*2*(lcfg.AwarenessMaxMultiplier-1))*lcfg.ProbeInterval
		now = time.Now()
		mn.Partition([]string{a.BindAddr()}, []string{b.BindAddr(), c.BindAddr()})
		majority := waitFor(t, bound, "b and c to see a failed", func() bool {
			sb, sc := statuses(b), statuses(c)
			return sb[names[0]] == federation.StatusFailed && sc[names[0]] == federation.StatusFailed
		})
		d = majority + waitFor(t, isolatedBound-majority, "a to see b and c failed", func() bool {
			sa := statuses(a)
			return sa[names[1]] == federation.StatusFailed && sa[names[2]] == federation.StatusFailed
		})
		if sb, sc := statuses(b), statuses(c); sb[names[2]] != federation.StatusAlive || sc[names[1]] != federation.StatusAlive {
			t.Errorf("b and c do not see each other alive: %v, %v", sb, sc)
		}
		t.Logf("partition: b and c see a failed after %v (bound %v), a sees them failed after %v (bound %v)",
			majority, bound, d, isolatedBound)

		// Heal: Serf's reconnect (every 5s in the local profile; for sure from
		// the isolated side, with probability failed/alive from the others)
		// joins a with one of b and c. The other may still hold a as dead at
		// its old incarnation, and ignore a's alive gossip until a refutes or
		// one of its own reconnects or push/pulls (every 15s) gets through.
		now = time.Now()
		mn.Heal()
		healBound := localReconnectInterval + lcfg.PushPullInterval + 2*lcfg.TCPTimeout + time.Second
		d = waitFor(t, healBound, "3 alive members after the heal", allHave(nodes, alive))
		t.Logf("heal: all alive again after %v (bound %v)", d, healBound)
		synctest.Wait() // the recorders catch up
		for _, n := range nodes {
			for _, other := range nodes {
				if (n == a) != (other == a) {
					if _, ok := n.firstEvent(now, federation.EventJoin, other.LocalName()); !ok {
						t.Errorf("%s: no join event for %s after the heal", n.LocalName(), other.LocalName())
					}
				}
			}
		}

		// Crash c: a and b report it failed within the bound.
		now = time.Now()
		mn.Crash(c.BindAddr())
		waitFor(t, bound, "c failed at a and b", func() bool {
			_, okA := a.firstEvent(now, federation.EventFailed, c.LocalName())
			_, okB := b.firstEvent(now, federation.EventFailed, c.LocalName())
			return okA && okB
		})
		ea, _ := a.firstEvent(now, federation.EventFailed, c.LocalName())
		eb, _ := b.firstEvent(now, federation.EventFailed, c.LocalName())
		t.Logf("crash: c failed at a after %v, at b after %v (bound %v)", ea.at.Sub(now), eb.at.Sub(now), bound)
		if st := statuses(a)[c.LocalName()]; st != federation.StatusFailed {
			t.Errorf("a sees c %v, want failed", st)
		}

		// Revive c: a and b each retry it at half their reconnect ticks, and c
		// (which still sees them suspect, not failed) learns it was declared
		// dead at its next push/pull and refutes; either brings it back.
		mn.Revive(c.BindAddr())
		d = waitFor(t, healBound, "c alive again", allHave(nodes, alive))
		t.Logf("revive: c alive everywhere after %v (bound %v)", d, healBound)

		// b leaves (and stops, as a gateway does): a and c get a leave event.
		// Let the revival's refutations die down first: an alive message of
		// b's arriving after its leave resurrects it, and it then fails.
		time.Sleep(5 * time.Second)
		now = time.Now()
		if err := b.Leave(); err != nil {
			t.Fatal(err)
		}
		returned := time.Since(now)
		b.stop()
		waitFor(t, bound, "b's leave at a and c", func() bool {
			for _, n := range []*testNode{a, c} {
				if _, ok := n.firstEvent(now, federation.EventLeave, b.LocalName(), func(e federation.MemberEvent) bool { return e.Member.Status == federation.StatusLeft }); !ok {
					return false
				}
			}
			return true
		})
		el, _ := a.firstEvent(now, federation.EventLeave, b.LocalName())
		t.Logf("leave: a saw b leave after %v; Leave returned after %v", el.at.Sub(now), returned)
		if st := statuses(a)[b.LocalName()]; st != federation.StatusLeft {
			t.Errorf("a sees b %v, want left", st)
		}
		if e, ok := a.firstEvent(now, federation.EventFailed, b.LocalName()); ok {
			// Serf's leave intent (a user message, handled asynchronously) can
			// lose the race with memberlist's dead message: Serf then reports
			// failed, and a forced leave right after.
			t.Logf("leave: a saw b fail first, after %v", e.at.Sub(now))
		}

		for _, n := range nodes {
			n.stop()
		}
		if err := a.Shutdown(); err != nil { // idempotent
			t.Errorf("second Shutdown: %v", err)
		}
		t.Logf("virtual time in all: %v", time.Since(start))
	})
}

// TestSerfMembershipQuietLogs: a steady pool logs nothing at Info or above
// but the joins.
func TestSerfMembershipQuietLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(settle)
		log, buf := testLogger(t, slog.LevelInfo)
		nodes := pool(t, NewMemNetwork(), log, "us-east", "eu-west", "ap-south")
		for i := range 60 { // a virtual minute with version churn
			time.Sleep(time.Second)
			nodes[i%3].SetVersion(uint64(i))
		}
		logs := buf.String()
		var bad []string
		for line := range strings.Lines(logs) {
			if !strings.Contains(line, "EventMemberJoin") && !strings.Contains(line, "joined the gossip pool") {
				bad = append(bad, line)
			}
		}
		if len(bad) > 0 {
			t.Errorf("unexpected log lines at Info or above:\n%s", strings.Join(bad, ""))
		}
		t.Logf("%d lines at Info or above in a virtual minute", strings.Count(logs, "\n"))
	})
}

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		component, line string
		level           slog.Level
		msg             string
	}{
		{"memberlist", "[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n", slog.LevelDebug, "Stream connection from=127.0.0.1:1"},
		{"memberlist", "[INFO] memberlist: Marking x as failed, suspect timeout reached (0 peer confirmations)\n", slog.LevelDebug, "Marking x as failed, suspect timeout reached (0 peer confirmations)"},
		{"serf", "[INFO] serf: EventMemberJoin: gw-1 127.0.0.1\n", slog.LevelInfo, "EventMemberJoin: gw-1 127.0.0.1"},
		{"serf", "[INFO] serf: EventMemberFailed: gw-1 127.0.0.1\n", slog.LevelInfo, "EventMemberFailed: gw-1 127.0.0.1"},
		{"serf", "[INFO] serf: EventMemberUpdate: gw-1\n", slog.LevelDebug, "EventMemberUpdate: gw-1"},
		{"serf", "[INFO] serf: attempting reconnect to gw-1 127.0.0.1:7946\n", slog.LevelDebug, "attempting reconnect to gw-1 127.0.0.1:7946"},
		{"serf", "[WARN] serf: Shutdown without a Leave\n", slog.LevelWarn, "Shutdown without a Leave"},
		{"memberlist", "[ERR] memberlist: Push/Pull with gw-1 failed: EOF\n", slog.LevelError, "Push/Pull with gw-1 failed: EOF"},
		{"memberlist", "[ERROR] memberlist: Failed to compress payload: x\n", slog.LevelError, "Failed to compress payload: x"},
		{"memberlist", "Err: Could not set the deadline: x\n", slog.LevelError, "Err: Could not set the deadline: x"},
		{"serf", "something else\n", slog.LevelInfo, "something else"},
	} {
		level, msg := parseLogLine(tc.component, tc.line)
		if level != tc.level || msg != tc.msg {
			t.Errorf("parseLogLine(%q, %q) = %v %q, want %v %q", tc.component, tc.line, level, msg, tc.level, tc.msg)
		}
	}
}

// freePort reserves a port on 127.0.0.1 and releases it for a later bind.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSerfMembershipRealNetwork runs over real UDP/TCP on 127.0.0.1: a node
// that starts joining before its seed exists gets in once it does, RTT
// estimates appear, and a shutdown without leave is seen as a failure.
func TestSerfMembershipRealNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	log, _ := testLogger(t, slog.LevelInfo)
	seedAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start := time.Now()
	b := startNode(t, SerfConfig{NodeName: "gw-b", Region: "eu-west", HTTPAddr: "127.0.0.1:8702",
		BindAddr: "127.0.0.1:0", Profile: federation.ProfileLocal, Join: []string{seedAddr}, Logger: log})
	defer b.stop()
	time.Sleep(700 * time.Millisecond) // b fails its first join or two
	a := startNode(t, SerfConfig{NodeName: "gw-a", Region: "us-east", HTTPAddr: "127.0.0.1:8701",
		BindAddr: seedAddr, Profile: federation.ProfileLocal, Logger: log})
	defer a.stop()
	if a.BindAddr() != seedAddr {
		t.Errorf("a.BindAddr() = %s, want %s", a.BindAddr(), seedAddr)
	}
	if _, port, _ := net.SplitHostPort(b.BindAddr()); port == "0" {
		t.Errorf("b.BindAddr() = %s, want the picked port", b.BindAddr())
	}
	c := startNode(t, SerfConfig{NodeName: "gw-c", Region: "ap-south", HTTPAddr: "127.0.0.1:8703",
		BindAddr: "127.0.0.1:0", Profile: federation.ProfileLocal, Join: []string{seedAddr}, Logger: log})
	defer c.stop()

	alive := map[string]federation.MemberStatus{"gw-a": federation.StatusAlive, "gw-b": federation.StatusAlive, "gw-c": federation.StatusAlive}
	nodes := []*testNode{a, b, c}
	d := waitFor(t, 5*time.Second, "3 alive members everywhere", allHave(nodes, alive))
	t.Logf("converged %v after b started, %v after a", time.Since(start), d)

	d = waitFor(t, 5*time.Second, "RTT estimates", func() bool {
		_, ok1 := a.RTT("gw-b")
		_, ok2 := b.RTT("gw-a")
		return ok1 && ok2
	})
	rtt, _ := a.RTT("gw-b")
	t.Logf("RTT a->b %v, known after %v", rtt, d)
	if rtt <= 0 || rtt > time.Second {
		t.Errorf("RTT a->b = %v, want a loopback RTT", rtt)
	}
	if _, ok := a.RTT("nobody"); ok {
		t.Error("RTT of an unknown node is ok")
	}

	// c stops without leaving: a and b see it failed.
	now := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, detectionBound(memberlist.DefaultLocalConfig(), 3), "c failed at a and b", func() bool {
		_, okA := a.firstEvent(now, federation.EventFailed, "gw-c")
		_, okB := b.firstEvent(now, federation.EventFailed, "gw-c")
		return okA && okB
	})
	t.Logf("shutdown without leave: c failed at a and b after %v", time.Since(now))
}

// TestSerfMembershipPublishCoalesces: a burst of SetVersion calls reaches
// the peers as at most one update per publish interval, ending with the
// last version; defaults fill the name.
func TestSerfMembershipPublishCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(settle)
		log, _ := testLogger(t, slog.LevelInfo)
		mn := NewMemNetwork()
		tr1, _ := mn.NewTransport("")
		tr2, _ := mn.NewTransport("")
		a := startNode(t, SerfConfig{Region: "us-east", Profile: federation.ProfileLocal, Transport: tr1, Logger: log})
		b := startNode(t, SerfConfig{NodeName: "gw-b", Region: "eu-west", Profile: federation.ProfileLocal, Transport: tr2,
			Join: []string{tr1.Addr()}, Logger: log})
		host, _ := os.Hostname()
		if name := a.LocalName(); !strings.HasPrefix(name, host+"-us-east-") || len(name) != len(host)+len("-us-east-")+4 {
			t.Errorf("default node name %q, want %s-us-east-XXXX", name, host)
		}
		waitFor(t, 5*time.Second, "two members", func() bool { return len(b.Members()) == 2 && len(a.Members()) == 2 })

		start := time.Now()
		const burst = 2 * time.Second
		var last uint64
		for v := uint64(1); time.Since(start) < burst; v++ {
			a.SetVersion(v)
			last = v
			time.Sleep(10 * time.Millisecond)
		}
		waitFor(t, time.Second, "the last version at b", func() bool {
			_, ok := b.firstEvent(start, federation.EventUpdate, a.LocalName(), func(e federation.MemberEvent) bool { return e.Member.Version == last })
			return ok
		})
		b.mu.Lock()
		updates := 0
		for _, e := range b.evs {
			if e.ev.Kind == federation.EventUpdate && e.ev.Member.Name == a.LocalName() {
				updates++
			}
		}
		b.mu.Unlock()
		if max := int(burst/(200*time.Millisecond)) + 2; updates > max { // one per interval, plus the edges
			t.Errorf("%d updates for %d versions in %v, want at most %d", updates, last, burst, max)
		}
		t.Logf("%d versions in %v reached b as %d updates", last, burst, updates)
		if got := a.Members(); !slices.ContainsFunc(got, func(m federation.Member) bool { return m.Name == a.LocalName() && m.Version == last }) {
			t.Errorf("a's own member does not show v%d: %v", last, got)
		}
	})
}
