package serfmember

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// FaultTransport wraps a memberlist transport (the real UDP/TCP one, or an
// in-memory one) and cuts this node off from chosen addresses: packets to
// them are dropped, dials to them fail, packets from them are discarded.
// Cutting both sides gives a partition; cutting one gives an asymmetric
// one. It is the fault-injection seam for tests over real sockets.
type FaultTransport struct {
	inner memberlist.NodeAwareTransport

	mu    sync.Mutex
	cut   map[string]bool          // host:port
	delay map[string]time.Duration // host:port -> added one-way delay

	packets  chan *memberlist.Packet
	done     chan struct{}
	stopOnce sync.Once
}

var _ memberlist.NodeAwareTransport = (*FaultTransport)(nil)

// NewFaultTransport wraps inner; nothing is cut until Cut.
func NewFaultTransport(inner memberlist.NodeAwareTransport) *FaultTransport {
	t := &FaultTransport{inner: inner, cut: map[string]bool{}, delay: map[string]time.Duration{}, packets: make(chan *memberlist.Packet, 256),
		done: make(chan struct{})}
	go t.forward()
	return t
}

// Cut drops all traffic between this node and addrs (host:port of their
// gossip bind addresses).
func (t *FaultTransport) Cut(addrs ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range addrs {
		t.cut[a] = true
	}
}

// Heal restores traffic to every address and removes delays.
func (t *FaultTransport) Heal() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.cut)
	clear(t.delay)
}

// Delay holds packets to addr for d before sending them (a slow link; Serf
// learns it as a longer RTT).
func (t *FaultTransport) Delay(addr string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delay[addr] = d
}

func (t *FaultTransport) delayOf(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.delay[addr]
}

func (t *FaultTransport) isCut(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cut[addr]
}

func (t *FaultTransport) forward() {
	for {
		select {
		case <-t.done:
			return
		case p, ok := <-t.inner.PacketCh():
			if !ok {
				return
			}
			if p.From != nil && t.isCut(p.From.String()) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		}
	}
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *FaultTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (t *FaultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.isCut(addr) {
		return time.Now(), nil // lost on the wire
	}
	if d := t.delayOf(addr); d > 0 {
		buf := append([]byte(nil), b...)
		time.AfterFunc(d, func() { t.inner.WriteTo(buf, addr) })
		return time.Now(), nil
	}
	return t.inner.WriteTo(b, addr)
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *FaultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.isCut(a.Addr) {
		return time.Now(), nil
	}
	if d := t.delayOf(a.Addr); d > 0 {
		buf := append([]byte(nil), b...)
		time.AfterFunc(d, func() { t.inner.WriteToAddress(buf, a) })
		return time.Now(), nil
	}
	return t.inner.WriteToAddress(b, a)
}

// PacketCh implements memberlist.Transport.
func (t *FaultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout implements memberlist.Transport.
func (t *FaultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.isCut(addr) {
		return nil, fmt.Errorf("dial %s: partitioned", addr)
	}
	return t.inner.DialTimeout(addr, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *FaultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.isCut(a.Addr) {
		return nil, fmt.Errorf("dial %s: partitioned", a.Addr)
	}
	return t.inner.DialAddressTimeout(a, timeout)
}

// StreamCh implements memberlist.Transport. Incoming streams are not
// filtered: their source port is ephemeral; cutting the other side's
// dials covers them.
func (t *FaultTransport) StreamCh() <-chan net.Conn { return t.inner.StreamCh() }

// Shutdown implements memberlist.Transport.
func (t *FaultTransport) Shutdown() error {
	t.stopOnce.Do(func() { close(t.done) })
	// The forwarder has stopped reading the inner transport's packets: drain
	// them until it is shut down, or a NetTransport listener blocked on its
	// unbuffered packet channel keeps its Shutdown waiting forever (a test's
	// cleanup hung 15 minutes on it).
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case _, ok := <-t.inner.PacketCh():
				if !ok {
					return
				}
			case <-stop:
				return
			}
		}
	}()
	err := t.inner.Shutdown()
	close(stop)
	return err
}

// GetAutoBindPort passes through the wrapped NetTransport's port (memberlist
// asks for it when configured with port 0).
func (t *FaultTransport) GetAutoBindPort() int {
	if p, ok := t.inner.(interface{ GetAutoBindPort() int }); ok {
		return p.GetAutoBindPort()
	}
	return 0
}
