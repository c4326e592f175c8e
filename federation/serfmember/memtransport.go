package serfmember

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemNetwork is an in-memory network for memberlist: the twin of the real
// UDP/TCP transport, for tests of the Serf driver and for checking the
// simulator's membership model against real Serf. Nodes are addressed by
// "127.0.0.N:port" labels (memberlist wants an IP to advertise), but no
// socket is ever opened.
//
// Packets go through buffered channels and are dropped, like UDP, when the
// receiver is gone or its queue is full. Streams are net.Pipe pairs handed
// to the receiver's StreamCh. Faults are hooks on the network: Partition,
// Crash and a per-message filter (loss, latency). A dial into a fault is
// black-holed (it fails after its timeout, as a TCP SYN into a partition
// does); a dial to an address nobody listens on, or to a node that shut
// down, is refused at once.
//
// Everything is timers and channels, so it runs inside a testing/synctest
// bubble with virtual time; create the network inside the bubble then.
// It is safe for concurrent use.
type MemNetwork struct {
	mu      sync.Mutex
	nodes   map[string]*MemTransport
	cut     map[[2]string]bool // partitioned pairs, both orders
	crashed map[string]bool
	filter  func(from, to string) (drop bool, delay time.Duration)
	next    int
}

// NewMemNetwork returns an empty network without faults.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{nodes: map[string]*MemTransport{}, cut: map[[2]string]bool{}, crashed: map[string]bool{}}
}

// NewTransport attaches a node at addr ("127.0.0.N:port"); an empty addr
// picks the next free 127.0.0.N:7946. Attaching at the address of a node
// that shut down replaces it (a restart).
func (n *MemNetwork) NewTransport(addr string) (*MemTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == "" {
		for addr == "" || n.nodes[addr] != nil {
			n.next++
			addr = fmt.Sprintf("127.0.%d.%d:7946", n.next/250, n.next%250+1)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memory transport address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("memory transport address %q: want ip:port", addr)
	}
	if old := n.nodes[addr]; old != nil && !old.isClosed() {
		return nil, fmt.Errorf("memory transport address %s is in use", addr)
	}
	t := &MemTransport{net: n, addr: memAddr(addr), ip: ip, port: p,
		packets: make(chan *memberlist.Packet, 1024), streams: make(chan net.Conn, 64),
		done: make(chan struct{}), conns: map[*memConn]bool{}}
	n.nodes[addr] = t
	return t, nil
}

// SetFilter installs a hook consulted for every packet and dial from one
// address to another: drop loses it, delay holds packets back (and slows a
// dial down). nil removes the hook. The hook may be called concurrently.
func (n *MemNetwork) SetFilter(f func(from, to string) (drop bool, delay time.Duration)) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

// Partition cuts every address of a off from every address of b, both
// ways. Partitions add up until Heal.
func (n *MemNetwork) Partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}], n.cut[[2]string{y, x}] = true, true
		}
	}
}

// Heal removes every partition (crashes and the filter stay).
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
}

// Crash freezes a node as if its host lost power: nothing reaches it or
// leaves it, its open streams break, and its memberlist keeps running
// unaware, until Revive. (A partition leaves open streams alone: memberlist's
// are short-lived and time out.)
func (n *MemNetwork) Crash(addr string) {
	n.mu.Lock()
	n.crashed[addr] = true
	t := n.nodes[addr]
	n.mu.Unlock()
	if t != nil {
		t.closeConns()
	}
}

// Revive reconnects a crashed node.
func (n *MemNetwork) Revive(addr string) {
	n.mu.Lock()
	delete(n.crashed, addr)
	n.mu.Unlock()
}

// errRefused and errBlackholed are what a dial into a fault returns.
var (
	errRefused    = errors.New("connection refused")
	errBlackholed = os.ErrDeadlineExceeded
)

// route decides the fate of one message: the receiver and the delay, or
// the error a dial would see.
func (n *MemNetwork) route(from, to string) (*MemTransport, time.Duration, error) {
	n.mu.Lock()
	dst, f := n.nodes[to], n.filter
	faulty := n.crashed[from] || n.crashed[to] || n.cut[[2]string{from, to}]
	n.mu.Unlock()
	if faulty {
		return nil, 0, errBlackholed
	}
	if dst == nil || dst.isClosed() {
		return nil, 0, errRefused
	}
	var delay time.Duration
	if f != nil {
		var drop bool
		if drop, delay = f(from, to); drop {
			return nil, 0, errBlackholed
		}
	}
	return dst, delay, nil
}

// MemTransport is one node's memberlist.NodeAwareTransport on a MemNetwork.
type MemTransport struct {
	net     *MemNetwork
	addr    memAddr
	ip      net.IP
	port    int
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{} // closed by Shutdown
	once    sync.Once

	mu    sync.Mutex
	conns map[*memConn]bool // open stream ends, to break on crash
}

var _ memberlist.NodeAwareTransport = (*MemTransport)(nil)

// Addr is the node's address on the network ("127.0.0.N:port").
func (t *MemTransport) Addr() string { return string(t.addr) }

// FinalAdvertiseAddr implements memberlist.Transport: a node always
// advertises its network address, whatever it was configured with.
func (t *MemTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) { return t.ip, t.port, nil }

// WriteTo implements memberlist.Transport.
func (t *MemTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. It never
// blocks; a packet the network loses is not an error, as with UDP.
func (t *MemTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.isClosed() {
		return now, net.ErrClosed
	}
	dst, delay, err := t.net.route(t.Addr(), a.Addr)
	if err != nil {
		return now, nil
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr}
	if delay <= 0 {
		dst.deliver(p)
	} else {
		time.AfterFunc(delay, func() { dst.deliver(p) })
	}
	return now, nil
}

func (t *MemTransport) deliver(p *memberlist.Packet) {
	if t.isClosed() {
		return
	}
	p.Timestamp = time.Now()
	select {
	case t.packets <- p:
	default: // receive queue full: lost
	}
}

// PacketCh implements memberlist.Transport.
func (t *MemTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout implements memberlist.Transport.
func (t *MemTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *MemTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "mem", Source: t.addr, Addr: memAddr(a.Addr), Err: err}
	}
	if t.isClosed() {
		return fail(net.ErrClosed)
	}
	dst, delay, err := t.net.route(t.Addr(), a.Addr)
	switch {
	case errors.Is(err, errBlackholed) || (err == nil && delay >= timeout):
		if !t.sleep(timeout) {
			return fail(net.ErrClosed)
		}
		return fail(errBlackholed)
	case err != nil:
		return fail(err)
	case delay > 0 && !t.sleep(delay):
		return fail(net.ErrClosed)
	}
	timer := time.NewTimer(timeout - max(delay, 0))
	defer timer.Stop()
	c1, c2 := net.Pipe()
	local, remote := t.track(c1, dst.addr), dst.track(c2, t.addr)
	select {
	case dst.streams <- remote:
		return local, nil
	case <-dst.done:
		err = errRefused
	case <-t.done:
		err = net.ErrClosed
	case <-timer.C:
		err = errBlackholed
	}
	local.Close()
	remote.Close()
	return fail(err)
}

// StreamCh implements memberlist.Transport.
func (t *MemTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown implements memberlist.Transport: the node stops receiving and
// its streams break. The channels are not closed (memberlist stops reading
// them on its own shutdown channel).
func (t *MemTransport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	t.closeConns()
	return nil
}

// sleep waits d unless the transport shuts down first (then false).
func (t *MemTransport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.done:
		return false
	}
}

func (t *MemTransport) isClosed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// track registers one end of a stream so a crash can break it.
func (t *MemTransport) track(c net.Conn, remote memAddr) *memConn {
	mc := &memConn{Conn: c, owner: t, local: t.addr, remote: remote}
	t.mu.Lock()
	t.conns[mc] = true
	t.mu.Unlock()
	return mc
}

func (t *MemTransport) closeConns() {
	t.mu.Lock()
	conns := make([]*memConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// memConn is one end of a stream, with the nodes' addresses.
type memConn struct {
	net.Conn
	owner         *MemTransport
	local, remote memAddr
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) Close() error {
	c.owner.mu.Lock()
	delete(c.owner.conns, c)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}

// memAddr is an address on a MemNetwork.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
