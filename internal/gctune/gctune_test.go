package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{2 << 20, 32 << 20, 1600},
		{64 << 20, 32 << 20, 100},
		{32 << 20, 32 << 20, 100},
		{16 << 20, 32 << 20, 200},
		{1 << 10, 32 << 20, maxPercent},
		{0, 32 << 20, maxPercent},
	} {
		if got := PercentFor(c.live, c.floor); got != c.want {
			t.Errorf("PercentFor(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// waitPercent collects until the tuner has set want (its cleanup runs on
// another goroutine after the cycle) or a second passed.
func waitPercent(t *testing.T, tu *Tuner, want func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		if p := tu.Percent(); want(p) && gcPercent() == p {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("tuner percent %d, runtime GOGC %d", tu.Percent(), gcPercent())
		}
	}
}

func TestTunerFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "") // an explicit GOGC would switch the tuner off
	tu := Start(64 << 20)
	if tu == nil {
		t.Fatal("Start returned nil with no GOGC set")
	}
	defer tu.Stop()
	// A small live heap: the goal is raised well above GOGC=100.
	small := waitPercent(t, tu, func(p int) bool { return p > 300 })
	// A live heap above the floor: back to exactly 100.
	live := make([][]byte, 0, 128)
	for range 128 {
		b := make([]byte, 1<<20)
		b[0] = 1
		live = append(live, b)
	}
	waitPercent(t, tu, func(p int) bool { return p == 100 })
	runtime.KeepAlive(live)
	live = nil
	// Freed again: raised again.
	waitPercent(t, tu, func(p int) bool { return p > 300 })
	tu.Stop()
	if p := gcPercent(); p != 100 {
		t.Fatalf("after Stop GOGC = %d, want 100 (small-heap percent was %d)", p, small)
	}
}

func TestExplicitGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	if tu := Start(64 << 20); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned although GOGC is set")
	}
	if tu := Start(0); tu != nil {
		t.Fatal("Start(0) tuned")
	}
}
