package rt

import (
	"sync"
	"time"
)

// Timer is a pending call scheduled by AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether
	// it did.
	Stop() bool
}

// Runtime gives a driver time and concurrency.
type Runtime interface {
	// Now is the current time.
	Now() time.Time
	// AfterFunc calls f once, d from now, as its own task.
	AfterFunc(d time.Duration, f func()) Timer
	// Go starts f as a task. name says what it is (for the simulator's
	// event log and for debugging); it is not interpreted.
	Go(name string, f func())
}

// Real returns the production runtime: time.Now, time.AfterFunc and
// goroutines.
func Real() Runtime { return realRuntime{} }

type realRuntime struct{}

func (realRuntime) Now() time.Time { return time.Now() }

func (realRuntime) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

func (realRuntime) Go(_ string, f func()) { go f() }

// Or returns r, or Real() when r is nil.
func Or(r Runtime) Runtime {
	if r == nil {
		return Real()
	}
	return r
}

// Loop runs a step function as a task whenever it is kicked or its
// deadline passes, never two steps at a time: a kick during a step causes
// exactly one more step after it. It replaces the `for { select { kick,
// timer } }` goroutine of a driver with something both runtimes can run.
type Loop struct {
	rt   Runtime
	name string
	step func()

	mu       sync.Mutex
	running  bool // a step is scheduled or executing
	again    bool // kicked while running
	stopped  bool
	timer    Timer
	deadline time.Time  // when timer fires; zero: none
	cond     *sync.Cond // Wait's, on mu; made by the first Wait
}

// NewLoop returns a loop that runs step on rt. It does nothing until
// Kick or After.
func NewLoop(r Runtime, name string, step func()) *Loop {
	return &Loop{rt: Or(r), name: name, step: step}
}

// Kick runs the step soon (as a new task).
func (l *Loop) Kick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if l.running {
		l.again = true
		return
	}
	l.running = true
	l.rt.Go(l.name, l.run)
}

// After makes the loop step no later than d from now. An earlier pending
// deadline wins; a later one is kept only until that earlier one fires.
func (l *Loop) After(d time.Duration) {
	d = max(d, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	at := l.rt.Now().Add(d)
	if l.timer != nil && !l.deadline.After(at) {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	l.deadline = at
	var t Timer
	t = l.rt.AfterFunc(d, func() {
		l.mu.Lock()
		if l.timer == t {
			l.timer, l.deadline = nil, time.Time{}
		}
		if l.stopped {
			l.mu.Unlock()
			return
		}
		if l.running {
			l.again = true
			l.mu.Unlock()
			return
		}
		l.running = true
		l.mu.Unlock()
		l.run() // the timer's call is a task of its own already
	})
	l.timer = t
}

// Stop ends the loop: no step starts after it returns (one already
// running finishes).
func (l *Loop) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// Wait blocks until no step is scheduled or running; after Stop, the
// step in progress has returned. For production runtimes only: with a
// runtime that runs tasks on the caller's goroutine (rt.Manual, the
// simulator) it would wait for a step that cannot run.
func (l *Loop) Wait() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	for l.running {
		l.cond.Wait()
	}
}

// idle wakes Wait; l.mu is held.
func (l *Loop) idle() {
	if l.cond != nil {
		l.cond.Broadcast()
	}
}

func (l *Loop) run() {
	for {
		l.mu.Lock()
		if l.stopped {
			l.running, l.again = false, false
			l.idle()
			l.mu.Unlock()
			return
		}
		l.again = false
		l.mu.Unlock()

		l.step()

		l.mu.Lock()
		if !l.again || l.stopped {
			l.running, l.again = false, false
			l.idle()
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		// Kicked during the step: run again, as a new task, so that the
		// simulated runtime interleaves other events in between.
		l.rt.Go(l.name, l.run)
		return
	}
}
