package sim

import (
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// gwRuntime is rt.Runtime for the drivers of one incarnation of a
// simulated gateway: tasks and timers are events on the world's queue (one
// goroutine, the virtual clock, deterministic order); those of an
// incarnation that crashed or restarted since are dropped, as a process's
// goroutines die with it.
type gwRuntime struct {
	g   *gateway
	inc int
}

var _ rt.Runtime = gwRuntime{}

// Now implements rt.Runtime: the simulated wall clock.
func (r gwRuntime) Now() time.Time { return r.g.w.wall() }

// AfterFunc implements rt.Runtime.
func (r gwRuntime) AfterFunc(d time.Duration, f func()) rt.Timer {
	t := &simTimer{}
	g, inc := r.g, r.inc
	g.w.after(max(d, 0), func() {
		if t.stopped || g.inc != inc {
			return
		}
		t.fired = true
		f()
	})
	return t
}

// Go implements rt.Runtime: the task runs as an event at the current
// simulated time, after the events already queued for it.
func (r gwRuntime) Go(_ string, f func()) {
	g, inc := r.g, r.inc
	g.w.after(0, func() {
		if g.inc == inc {
			f()
		}
	})
}

type simTimer struct{ stopped, fired bool }

// Stop implements rt.Timer.
func (t *simTimer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}
