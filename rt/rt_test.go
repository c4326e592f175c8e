package rt

import (
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLoopCoalescesKicks(t *testing.T) {
	m := NewManual(t0)
	steps := 0
	var l *Loop
	l = NewLoop(m, "test", func() {
		steps++
		if steps == 1 {
			l.Kick() // during a step: exactly one more step
			l.Kick()
		}
	})
	l.Kick()
	l.Kick()
	m.Run()
	if steps != 2 {
		t.Fatalf("steps = %d, want 2", steps)
	}
}

func TestLoopAfterEarliestWins(t *testing.T) {
	m := NewManual(t0)
	var at []time.Duration
	l := NewLoop(m, "test", func() { at = append(at, m.Now().Sub(t0)) })
	l.After(5 * time.Second)
	l.After(2 * time.Second)
	l.After(9 * time.Second) // later than the pending deadline: ignored
	m.Advance(10 * time.Second)
	if len(at) != 1 || at[0] != 2*time.Second {
		t.Fatalf("steps at %v, want [2s]", at)
	}
	l.After(time.Second)
	l.Stop()
	m.Advance(10 * time.Second)
	if len(at) != 1 {
		t.Fatalf("stepped after Stop: %v", at)
	}
}

func TestManualOrder(t *testing.T) {
	m := NewManual(t0)
	var got []int
	m.AfterFunc(2*time.Second, func() { got = append(got, 3) })
	m.Go("a", func() { got = append(got, 1); m.Go("b", func() { got = append(got, 2) }) })
	tm := m.AfterFunc(time.Second, func() { got = append(got, 99) })
	if !tm.Stop() || tm.Stop() {
		t.Fatal("Stop must report true once")
	}
	m.Advance(3 * time.Second)
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("order %v", got)
	}
}

func TestRealLoopRuns(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{})
	l := NewLoop(Real(), "test", func() {
		if n.Add(1) == 2 {
			close(done)
		}
	})
	l.Kick()
	l.After(10 * time.Millisecond)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("loop stepped %d times, want 2", n.Load())
	}
	l.Stop()
}

func TestLoopWaitAfterStop(t *testing.T) {
	started := make(chan struct{})
	var done atomic.Bool
	l := NewLoop(Real(), "test", func() {
		close(started)
		time.Sleep(50 * time.Millisecond)
		done.Store(true)
	})
	l.Kick()
	<-started
	l.Stop()
	l.Wait()
	if !done.Load() {
		t.Fatal("Wait returned while a step was running")
	}
	l.Kick() // stopped: no step
	l.Wait()
}
