// Package gctune keeps the garbage collector from running dozens of times a
// second on a small heap.
//
// With GOGC=100 the heap goal is twice the live heap. A gateway serving a
// small catalog has a live heap of a few MB, so at 50,000 lookups/s (about
// 100 MB/s of short-lived garbage) it collects 30 or more times a second,
// and each cycle stops the world for up to a couple of milliseconds when
// every core is busy: a tax on the tail latency that has nothing to do with
// the work. Floor raises the goal to at least live heap + floor by setting
// GOGC after every cycle (the technique of Uber's and CockroachDB's GC
// tuners): a small heap collects every floor bytes of allocation instead of
// every few MB, while a heap larger than the floor keeps GOGC=100 exactly,
// so memory per instance at scale is unchanged. The price is at most floor
// bytes of extra heap. An explicit GOGC in the environment wins: then
// nothing is tuned.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Default is the floor the agent uses unless told otherwise.
const Default = 32 << 20

// maxPercent caps GOGC: with a live heap of a few hundred KB the floor
// would ask for tens of thousands.
const maxPercent = 5000

// Tuner adjusts GOGC after every garbage collection.
type Tuner struct {
	floor   uint64
	stopped atomic.Bool
	percent atomic.Int64 // the GOGC last set
	sample  []metrics.Sample
}

// Start begins tuning toward floor bytes of headroom. It returns nil when
// floor is 0 or GOGC is set in the environment (the operator's choice).
func Start(floor uint64) *Tuner {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	t := &Tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.percent.Store(100)
	t.adjust()
	t.arm()
	return t
}

// Stop ends tuning and restores GOGC=100. Stop on nil does nothing.
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(100)
}

// Percent is the GOGC the tuner last set.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// PercentFor is the GOGC that makes the heap goal live + floor, but never
// less than 100 (the default) nor more than maxPercent.
func PercentFor(live, floor uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := floor * 100 / live
	if p < 100 {
		return 100
	}
	if p > maxPercent {
		return maxPercent
	}
	return int(p)
}

// sentinel is an object whose only use is to be collected: its cleanup
// runs after each cycle that found it unreachable.
type sentinel struct{ _ [64]byte }

// arm allocates a fresh sentinel whose cleanup tunes and re-arms.
func (t *Tuner) arm() {
	s := &sentinel{}
	runtime.AddCleanup(s, func(t *Tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust reads the live heap the last cycle marked and sets GOGC when it
// changed by more than a tenth (each set costs a little of the runtime's
// time; small drifts do not matter).
func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := int64(PercentFor(t.sample[0].Value.Uint64(), t.floor))
	cur := t.percent.Load()
	if d := p - cur; d*10 > cur || -d*10 > cur || (p == 100 && cur != 100) {
		if t.stopped.Load() {
			return
		}
		debug.SetGCPercent(int(p))
		t.percent.Store(p)
	}
}
