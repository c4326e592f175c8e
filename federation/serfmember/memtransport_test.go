package serfmember

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
)

func memPair(t *testing.T) (*MemNetwork, *MemTransport, *MemTransport) {
	t.Helper()
	mn := NewMemNetwork()
	a, err := mn.NewTransport("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := mn.NewTransport("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(); b.Shutdown() })
	return mn, a, b
}

// recv returns the next packet at t within a second, or nil.
func recv(tr *MemTransport) *memberlist.Packet {
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(time.Second):
		return nil
	}
}

func TestMemNetworkAddresses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, a, b := memPair(t)
		if a.Addr() == b.Addr() {
			t.Fatalf("two transports at %s", a.Addr())
		}
		ip, port, err := a.FinalAdvertiseAddr("10.9.9.9", 1)
		if err != nil || net.JoinHostPort(ip.String(), "7946") != a.Addr() || port != 7946 {
			t.Errorf("FinalAdvertiseAddr = %v %d %v, want %s", ip, port, err, a.Addr())
		}
		for _, bad := range []string{"node-1:7946", "127.0.0.9", "127.0.0.9:0", a.Addr()} {
			if _, err := mn.NewTransport(bad); err == nil {
				t.Errorf("NewTransport(%q) succeeded", bad)
			}
		}
		a.Shutdown()
		if _, err := mn.NewTransport(a.Addr()); err != nil {
			t.Errorf("restart at %s: %v", a.Addr(), err)
		}
	})
}

func TestMemNetworkPackets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, a, b := memPair(t)
		send := func(from, to *MemTransport, msg string) {
			t.Helper()
			if _, err := from.WriteTo([]byte(msg), to.Addr()); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
		}

		buf := []byte("hello")
		start := time.Now()
		if _, err := a.WriteToAddress(buf, memberlist.Address{Addr: b.Addr(), Name: "b"}); err != nil {
			t.Fatal(err)
		}
		buf[0] = 'j' // the sender may reuse its buffer
		p := recv(b)
		if p == nil || string(p.Buf) != "hello" || p.From.String() != a.Addr() || !p.Timestamp.Equal(start) {
			t.Fatalf("got %+v, want hello from %s at once", p, a.Addr())
		}

		mn.SetFilter(func(from, to string) (bool, time.Duration) { return false, 40 * time.Millisecond })
		start = time.Now()
		send(a, b, "slow")
		if p := recv(b); p == nil || string(p.Buf) != "slow" || time.Since(start) != 40*time.Millisecond {
			t.Errorf("delayed packet %+v after %v, want slow after 40ms", p, time.Since(start))
		}
		mn.SetFilter(func(from, to string) (bool, time.Duration) { return from == a.Addr(), 0 })
		send(a, b, "lost")
		send(b, a, "kept")
		if p := recv(b); p != nil {
			t.Errorf("filtered packet arrived: %q", p.Buf)
		}
		if p := recv(a); p == nil || string(p.Buf) != "kept" {
			t.Errorf("got %+v, want kept", p)
		}
		mn.SetFilter(nil)

		mn.Partition([]string{a.Addr()}, []string{b.Addr()})
		send(a, b, "cut")
		send(b, a, "cut")
		if p, q := recv(a), recv(b); p != nil || q != nil {
			t.Errorf("packets crossed a partition: %v %v", p, q)
		}
		mn.Heal()
		send(a, b, "healed")
		if p := recv(b); p == nil || string(p.Buf) != "healed" {
			t.Errorf("got %+v after the heal", p)
		}

		mn.Crash(b.Addr())
		send(a, b, "to the dead")
		send(b, a, "from the dead")
		if p, q := recv(a), recv(b); p != nil || q != nil {
			t.Errorf("packets crossed a crash: %v %v", p, q)
		}
		mn.Revive(b.Addr())
		send(b, a, "back")
		if p := recv(a); p == nil || string(p.Buf) != "back" {
			t.Errorf("got %+v after the revival", p)
		}

		// A full queue and a shut down receiver drop, never block.
		for range 2000 {
			send(a, b, "flood")
		}
		b.Shutdown()
		send(a, b, "closed")
		if _, err := b.WriteTo([]byte("x"), a.Addr()); err == nil {
			t.Error("WriteTo from a shut down transport succeeded")
		}
	})
}

func TestMemNetworkStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, a, b := memPair(t)
		const timeout = 3 * time.Second

		conn, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr(), Name: "b"}, timeout)
		if err != nil {
			t.Fatal(err)
		}
		var in net.Conn
		select {
		case in = <-b.StreamCh():
		default:
			t.Fatal("no stream at b")
		}
		if conn.RemoteAddr().String() != b.Addr() || in.RemoteAddr().String() != a.Addr() || in.LocalAddr().String() != b.Addr() {
			t.Errorf("addresses: dialer %v->%v, acceptor %v->%v", conn.LocalAddr(), conn.RemoteAddr(), in.LocalAddr(), in.RemoteAddr())
		}
		go func() { in.Write([]byte("ping")); io.Copy(io.Discard, in) }()
		got := make([]byte, 4)
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
			t.Errorf("read %q, %v", got, err)
		}

		// A crash breaks open streams.
		mn.Crash(b.Addr())
		if _, err := conn.Read(got); err == nil {
			t.Error("read from a stream to a crashed node succeeded")
		}
		conn.Close()

		for _, tc := range []struct {
			name  string
			fault func()
			addr  string
			after time.Duration // how long the dial takes
			want  error
		}{
			{"crashed", func() {}, b.Addr(), timeout, os.ErrDeadlineExceeded},
			{"partitioned", func() { mn.Revive(b.Addr()); mn.Partition([]string{b.Addr()}, []string{a.Addr()}) }, b.Addr(), timeout, os.ErrDeadlineExceeded},
			{"nobody there", mn.Heal, "127.0.0.99:7946", 0, errRefused},
			{"slow", func() {
				mn.SetFilter(func(string, string) (bool, time.Duration) { return false, 250 * time.Millisecond })
			}, b.Addr(), 250 * time.Millisecond, nil},
			{"too slow", func() {
				mn.SetFilter(func(string, string) (bool, time.Duration) { return false, time.Minute })
			}, b.Addr(), timeout, os.ErrDeadlineExceeded},
			{"shut down", func() { mn.SetFilter(nil); b.Shutdown() }, b.Addr(), 0, errRefused},
		} {
			tc.fault()
			start := time.Now()
			c, err := a.DialTimeout(tc.addr, timeout)
			if took := time.Since(start); took != tc.after || !errors.Is(err, tc.want) {
				t.Errorf("%s: dial took %v, err %v; want %v, %v", tc.name, took, err, tc.after, tc.want)
			}
			if c != nil {
				c.Close()
			}
		}
	})
}
