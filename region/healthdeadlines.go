package region

import "time"

// healthDeadline is one entry of the deadline heap: state st (of key)
// has something to do at at. It is stale, and skipped, when st has been
// rescheduled since (seq differs) or dropped.
type healthDeadline struct {
	at  time.Time
	key Key
	st  *healthState
	seq uint64
}

func (d *healthDeadline) valid() bool { return !d.st.dropped && d.seq == d.st.seq }

// healthDeadlines is a binary min-heap of deadlines by time with lazy
// invalidation: a state that changes pushes a new entry and leaves the old
// one behind, to be skipped when it surfaces or dropped by compact.
type healthDeadlines struct {
	h []healthDeadline
}

func (q *healthDeadlines) push(d healthDeadline) {
	q.h = append(q.h, d)
	q.up(len(q.h) - 1)
}

func (q *healthDeadlines) up(i int) {
	h := q.h
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].at.Before(h[p].at) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *healthDeadlines) down(i int) {
	h := q.h
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].at.Before(h[l].at) {
			m = r
		}
		if !h[m].at.Before(h[i].at) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (q *healthDeadlines) pop() healthDeadline {
	h := q.h
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = healthDeadline{}
	q.h = h[:last]
	if last > 0 {
		q.down(0)
	}
	return top
}

// dropStale pops stale entries off the top.
func (q *healthDeadlines) dropStale() {
	for len(q.h) > 0 && !q.h[0].valid() {
		q.pop()
	}
}

// peek returns the earliest valid deadline; ok is false when there is none.
func (q *healthDeadlines) peek() (time.Time, bool) {
	q.dropStale()
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].at, true
}

// popDue removes the valid entries due at now (at <= now) and returns
// their keys, in no particular order. Their states are no longer queued.
func (q *healthDeadlines) popDue(now time.Time) []Key {
	var keys []Key
	for {
		q.dropStale()
		if len(q.h) == 0 || q.h[0].at.After(now) {
			return keys
		}
		d := q.pop()
		d.st.queued = false
		d.st.seq++
		keys = append(keys, d.key)
	}
}

// compact drops the stale entries when they outnumber the states, so the
// heap stays O(states) however often deadlines move.
func (q *healthDeadlines) compact(states int) {
	if len(q.h) <= 2*states+64 {
		return
	}
	kept := q.h[:0]
	for _, d := range q.h {
		if d.valid() {
			kept = append(kept, d)
		}
	}
	clear(q.h[len(kept):])
	q.h = kept
	for i := len(q.h)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}
