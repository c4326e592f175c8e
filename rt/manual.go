package rt

import (
	"container/heap"
	"sync"
	"time"
)

// Manual is a deterministic single-goroutine runtime for tests: tasks and
// timers run only when the test calls Run or Advance, in (time, order of
// scheduling) order. The simulator has its own, over its event queue.
type Manual struct {
	mu  sync.Mutex
	now time.Time
	q   manualQueue
	seq uint64
}

// NewManual returns a manual runtime whose clock starts at start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now is the manual clock.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// AfterFunc schedules f at Now()+d.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pushLocked(m.now.Add(max(d, 0)), f)
}

// Go schedules f at Now().
func (m *Manual) Go(_ string, f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pushLocked(m.now, f)
}

func (m *Manual) pushLocked(at time.Time, f func()) *manualTask {
	m.seq++
	t := &manualTask{m: m, at: at, seq: m.seq, f: f}
	heap.Push(&m.q, t)
	return t
}

// Run runs every task due at the current time (and those they start) and
// returns how many ran.
func (m *Manual) Run() int { return m.Advance(0) }

// Advance moves the clock forward by d, running every task due on the way
// in order, and returns how many ran.
func (m *Manual) Advance(d time.Duration) int {
	m.mu.Lock()
	end := m.now.Add(d)
	m.mu.Unlock()
	n := 0
	for {
		m.mu.Lock()
		if len(m.q) == 0 || m.q[0].at.After(end) {
			m.now = end
			m.mu.Unlock()
			return n
		}
		t := heap.Pop(&m.q).(*manualTask)
		if t.at.After(m.now) {
			m.now = t.at
		}
		m.mu.Unlock()
		t.f()
		n++
	}
}

// Pending is the number of scheduled tasks.
func (m *Manual) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.q)
}

type manualTask struct {
	m   *Manual
	at  time.Time
	seq uint64
	f   func()
	idx int
}

func (t *manualTask) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.m.q, t.idx)
	return true
}

type manualQueue []*manualTask

func (q manualQueue) Len() int { return len(q) }
func (q manualQueue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || (q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq)
}
func (q manualQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *manualQueue) Push(x any) {
	t := x.(*manualTask)
	t.idx = len(*q)
	*q = append(*q, t)
}
func (q *manualQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.idx = -1
	*q = old[:len(old)-1]
	return t
}
