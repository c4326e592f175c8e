package region

import "time"

// healthDeadline is one entry of the deadline heap: state st has something
// to do at at.
type healthDeadline struct {
	at time.Time
	st *healthState
}

// healthDeadlines is an indexed binary min-heap of the states' next
// deadlines: every state with a deadline has exactly one entry, at index
// st.hidx (-1: none), moved in place when its deadline changes. Ties are
// broken by nothing: Tick sorts what is due by key.
type healthDeadlines struct {
	h []healthDeadline
}

func (q *healthDeadlines) less(i, j int) bool { return q.h[i].at.Before(q.h[j].at) }

func (q *healthDeadlines) swap(i, j int) {
	h := q.h
	h[i], h[j] = h[j], h[i]
	h[i].st.hidx = i
	h[j].st.hidx = j
}

func (q *healthDeadlines) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q *healthDeadlines) down(i int) {
	n := len(q.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.swap(i, m)
		i = m
	}
}

// set makes at st's deadline.
func (q *healthDeadlines) set(st *healthState, at time.Time) {
	if i := st.hidx; i >= 0 {
		old := q.h[i].at
		q.h[i].at = at
		if at.Before(old) {
			q.up(i)
		} else {
			q.down(i)
		}
		return
	}
	st.hidx = len(q.h)
	q.h = append(q.h, healthDeadline{at: at, st: st})
	q.up(st.hidx)
}

// remove takes st's deadline out, if it has one.
func (q *healthDeadlines) remove(st *healthState) {
	i := st.hidx
	if i < 0 {
		return
	}
	last := len(q.h) - 1
	if i != last {
		q.swap(i, last)
	}
	q.h[last] = healthDeadline{}
	q.h = q.h[:last]
	st.hidx = -1
	if i != last {
		q.down(i)
		q.up(i)
	}
}

// peek returns the earliest deadline; ok is false when there is none.
func (q *healthDeadlines) peek() (time.Time, bool) {
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].at, true
}

// due appends the states whose deadline is at or before now, in no
// particular order, visiting only them and their children: O(due).
func (q *healthDeadlines) due(now time.Time, i int, out []*healthState) []*healthState {
	if i >= len(q.h) || q.h[i].at.After(now) {
		return out
	}
	out = append(out, q.h[i].st)
	out = q.due(now, 2*i+1, out)
	return q.due(now, 2*i+2, out)
}
