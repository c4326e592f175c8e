package sim

import (
	"math/rand/v2"
	"time"
)

// evKind says how an event is dispatched: most events carry a closure;
// the frequent ones (lookups) carry an index instead, so that the hot path
// does not allocate.
type evKind uint8

const (
	evFunc evKind = iota
	evLookup
)

// event is one entry of the queue, ordered by (at, seq).
type event struct {
	at   time.Duration // simulated time since start
	seq  uint64
	kind evKind
	idx  int32
	fn   func()
}

// queue is a binary min-heap of events by (at, seq). It holds values, not
// pointers, and needs no interface conversions.
type queue struct {
	h   []event
	seq uint64
}

func (a *event) before(b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) pop() event {
	h := q.h
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.h = h
	return top
}

func (q *queue) len() int { return len(q.h) }

// timer is a cancellable, re-armable single deadline on the queue: only the
// event scheduled last fires; earlier ones find the timer moved and do
// nothing.
type timer struct {
	at  time.Duration
	set bool
}

// arm makes t fire fn at at, replacing any earlier arming.
func (w *world) arm(t *timer, at time.Duration, fn func()) {
	if at < w.now {
		at = w.now
	}
	if t.set && t.at == at {
		return
	}
	t.at, t.set = at, true
	w.q.push(event{at: at, fn: func() {
		if t.set && t.at == at {
			t.set = false
			fn()
		}
	}})
}

func (t *timer) stop() { t.set = false }

// at schedules fn at simulated time t (never in the past).
func (w *world) at(t time.Duration, fn func()) {
	if t < w.now {
		t = w.now
	}
	w.q.push(event{at: t, fn: fn})
}

// after schedules fn d after now.
func (w *world) after(d time.Duration, fn func()) { w.at(w.now+d, fn) }

// wall returns the simulated wall-clock time of now.
func (w *world) wall() time.Time { return w.cfg.start.Add(w.now) }

// Random streams, derived from the seed so that one part of the world
// drawing more numbers does not shift another's.
const (
	streamNet uint64 = iota + 1
	streamMember
	streamTraffic
	streamTrace
	streamCore   = 1 << 20 // + gateway index + incarnation << 10
	streamHealth = 2 << 20
	streamPicker = 3 << 20 // + gateway index << 12 + stream index
	streamStorm  = 4 << 20
)

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (w *world) rand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix(w.seed), splitmix(stream^0x5bd1e995)))
}
