package gossip

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-sd/meridian/federation"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

// This file runs real Serf (serfmember.SerfMembership over a
// serfmember.MemNetwork) for modelcheck_test.go. It must be used inside a
// testing/synctest bubble: all times are virtual.

// lockedBuffer collects a run's logs, printed only when the test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// timedEvent is a membership event with the (virtual) time it came out.
type timedEvent struct {
	at time.Time
	ev federation.MemberEvent
}

// serfNode is a SerfMembership whose events are recorded.
type serfNode struct {
	*serfmember.SerfMembership
	mu   sync.Mutex
	evs  []timedEvent
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// stop shuts Serf down without a leave (a gateway dying) and ends the
// recorder; again is a no-op.
func (n *serfNode) stop(t *testing.T) {
	n.once.Do(func() {
		if err := n.Shutdown(); err != nil {
			t.Errorf("Shutdown(%s): %v", n.LocalName(), err)
		}
		close(n.done)
		n.wg.Wait()
	})
}

// first returns the time of the first event of kind about member name at
// or after since, that also satisfies ok when given.
func (n *serfNode) first(since time.Time, kind federation.EventKind, name string, ok func(federation.MemberEvent) bool) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.evs {
		if !e.at.Before(since) && e.ev.Kind == kind && e.ev.Member.Name == name && (ok == nil || ok(e.ev)) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// serfPool is n gateways on one in-memory network, all joined to the
// first.
type serfPool struct {
	t       *testing.T
	net     *serfmember.MemNetwork
	profile string
	log     *slog.Logger
	nodes   []*serfNode

	mu sync.Mutex
	// noDial, when set, black-holes stream dials between two addresses
	// (either way): MemNetwork's filter can drop packets one way, but a
	// stream dialled the other way would carry the answers back, where a
	// real TCP handshake through a one-way cut fails.
	noDial func(from, to string) bool
}

// setNoDial installs (nil: removes) the dial block.
func (p *serfPool) setNoDial(f func(from, to string) bool) {
	p.mu.Lock()
	p.noDial = f
	p.mu.Unlock()
}

// dialGate is a MemTransport whose stream dials the pool may black-hole.
type dialGate struct {
	*serfmember.MemTransport
	pool *serfPool
}

func (g *dialGate) blocked(to string) bool {
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	return g.pool.noDial != nil && g.pool.noDial(g.Addr(), to)
}

// DialAddressTimeout black-holes a blocked dial (it fails after its
// timeout, as a TCP SYN into a cut does).
func (g *dialGate) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if g.blocked(a.Addr) {
		time.Sleep(timeout)
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: nil, Err: os.ErrDeadlineExceeded}
	}
	return g.MemTransport.DialAddressTimeout(a, timeout)
}

// DialTimeout is DialAddressTimeout.
func (g *dialGate) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return g.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// start starts node i ("gw<i>") at addr (empty: a new address), joining
// join, with its events recorded.
func (p *serfPool) start(i int, addr string, join []string) *serfNode {
	t := p.t
	t.Helper()
	mt, err := p.net.NewTransport(addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &dialGate{MemTransport: mt, pool: p}
	cfg := serfmember.SerfConfig{
		NodeName: fmt.Sprintf("gw%d", i), Region: fmt.Sprintf("r%d", i),
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", 8700+i),
		Profile:  p.profile, Transport: tr, Logger: p.log, Join: join,
	}
	m, err := serfmember.NewSerfMembership(cfg)
	if err != nil {
		t.Fatalf("NewSerfMembership(%s): %v", cfg.NodeName, err)
	}
	sn := &serfNode{SerfMembership: m, done: make(chan struct{})}
	t.Cleanup(func() { sn.stop(t) })
	sn.wg.Go(func() {
		for {
			select {
			case ev := <-m.Events():
				sn.mu.Lock()
				sn.evs = append(sn.evs, timedEvent{time.Now(), ev})
				sn.mu.Unlock()
			case <-m.UserEvents():
			case <-sn.done:
				return
			}
		}
	})
	return sn
}

// restart replaces the stopped node i by a new one with the same name and
// address (a gateway restarting) that joins join.
func (p *serfPool) restart(i int, join []string) *serfNode {
	addr := p.nodes[i].BindAddr()
	p.nodes[i] = p.start(i, addr, join)
	return p.nodes[i]
}

// startPool starts n nodes with the given profile and waits until each
// sees all n alive.
// pause runs before each node starts.
func startPool(t *testing.T, profile string, n int, pause func()) *serfPool {
	t.Helper()
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serf logs:\n%s", logs)
		}
	})
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	var out io.Writer = logs
	if os.Getenv("MERIDIAN_SERF_LOG") != "" {
		// Everything, to stdout, stamped with virtual time since the start.
		start := time.Now()
		out, opts.Level = os.Stdout, slog.LevelDebug
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Duration("vt", time.Since(start))
			}
			return a
		}
	}
	log := slog.New(slog.NewTextHandler(out, opts))
	p := &serfPool{t: t, net: serfmember.NewMemNetwork(), profile: profile, log: log}
	for i := range n {
		pause()
		var join []string
		if i > 0 {
			join = []string{p.nodes[0].BindAddr()}
		}
		p.nodes = append(p.nodes, p.start(i, "", join))
	}
	p.waitStatus(time.Minute, "all alive after the join", p.nodes, p.nodes, federation.StatusAlive)
	return p
}

// waitStatus waits (polling every 50ms of virtual time, at most timeout)
// until every observer sees every target other than itself with status.
func (p *serfPool) waitStatus(timeout time.Duration, what string, observers, targets []*serfNode, status federation.MemberStatus) {
	p.t.Helper()
	start := time.Now()
	for {
		done := true
		for _, o := range observers {
			seen := map[string]federation.MemberStatus{}
			for _, m := range o.Members() {
				seen[m.Name] = m.Status
			}
			for _, tg := range targets {
				if tg != o && seen[tg.LocalName()] != status {
					done = false
				}
			}
		}
		if done {
			// The status is Serf's; the events that announce it may still
			// be on their way to the recorder: let them arrive.
			synctest.Wait()
			return
		}
		if time.Since(start) > timeout {
			p.t.Fatalf("after %v: still waiting for %s", time.Since(start), what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// delays returns, for every observer and every target other than itself,
// how long after since the observer's first event of kind about the target
// came; it fails the test when one is missing.
func (p *serfPool) delays(since time.Time, kind federation.EventKind, observers, targets []*serfNode, ok func(federation.MemberEvent) bool) []time.Duration {
	p.t.Helper()
	var out []time.Duration
	for _, o := range observers {
		for _, tg := range targets {
			if tg == o {
				continue
			}
			at, found := o.first(since, kind, tg.LocalName(), ok)
			if !found {
				p.t.Fatalf("%s: no %v event about %s since %v", o.LocalName(), kind, tg.LocalName(), since)
			}
			out = append(out, at.Sub(since))
		}
	}
	return out
}

// addrs are the nodes' gossip addresses.
func addrs(nodes []*serfNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.BindAddr())
	}
	return out
}

// without returns nodes minus drop.
func without(nodes []*serfNode, drop ...*serfNode) []*serfNode {
	return slices.DeleteFunc(slices.Clone(nodes), func(n *serfNode) bool { return slices.Contains(drop, n) })
}
