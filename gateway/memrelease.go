package gateway

import (
	"context"
	"log/slog"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"time"
)

// Returning idle memory. Go's runtime keeps the heap it grew to: after a
// bulk load (a snapshot of the region's store, a full sync of a remote
// region, the JSON of a replica saved to Redis) the temporary copies are
// garbage, but the process keeps their pages until the heap grows back
// (GOGC=100 lets it reach twice the live heap) or, slowly, the runtime's
// scavenger returns what lies beyond ~110% of its heap goal. At 100,000
// instances that is hundreds of bytes of RSS per instance which the
// gateway never uses again. memReleaser watches the runtime's own
// counters and, once the process is quiet (it allocates little) but holds
// much more heap than it uses, collects and returns the free memory to
// the OS (debug.FreeOSMemory), at most once per releaseMinGap. A busy
// gateway is never interrupted: its heap is in use.
const (
	releaseCheckEvery = 2 * time.Second // how often the counters are read
	releaseMinGap     = 5 * time.Second // between two releases, process-wide
	releaseMinExcess  = 16 << 20        // free heap below this is never worth a release
	releaseQuietAlloc = 4 << 20         // bytes allocated per check that still count as quiet
	releaseFraction   = 4               // release when free heap > live heap / releaseFraction
	releaseLogAbove   = 64 << 20        // a release returning more logs at releaseLargeLevel
	releaseLogLevel   = slog.LevelDebug // releases are routine; Info when large
	releaseLargeLevel = slog.LevelInfo  // level of a release above releaseLogAbove
	releaseMetricLive = "/gc/heap/live:bytes"
)

// releaseMetrics are the runtime/metrics samples memReleaser reads.
var releaseMetrics = []string{
	releaseMetricLive,                    // live heap at the last GC
	"/memory/classes/heap/objects:bytes", // live objects and garbage not swept yet
	"/memory/classes/heap/unused:bytes",  // spans' unused slots
	"/memory/classes/heap/free:bytes",    // free heap still held (not released)
	"/gc/heap/allocs:bytes",              // allocated since the start, cumulative
}

// releaseState is process-wide: several gateways of one process (meridian
// dev, tests) share one heap and must not release it in turn.
var releaseState struct {
	mu   sync.Mutex
	last time.Time
}

// memReleaser is one gateway's watcher of the process's heap.
type memReleaser struct {
	log       *slog.Logger
	samples   []rtmetrics.Sample
	lastAlloc uint64
	// followUp asks for one more release once quiet: what a load still
	// held at the last release (a replica being saved to Redis, a reply
	// being written) dies after it, and with little allocated after
	// that no GC would notice for minutes.
	followUp bool
	release  func()             // debug.FreeOSMemory (tests count calls)
	read     func() heapReading // readRuntime (tests feed readings)
}

func newMemReleaser(log *slog.Logger) *memReleaser {
	s := make([]rtmetrics.Sample, len(releaseMetrics))
	for i, name := range releaseMetrics {
		s[i].Name = name
	}
	m := &memReleaser{log: log, samples: s, release: debug.FreeOSMemory}
	m.read = m.readRuntime
	return m
}

// run checks the heap every period until ctx ends.
func (m *memReleaser) run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	m.lastAlloc = m.read().allocs // the allocation counter's starting point
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.check(time.Now())
		}
	}
}

// heapReading is what one check reads.
type heapReading struct {
	live, held, allocs uint64 // live heap at the last GC; heap held (in use or free, not released); cumulative allocations
}

func (m *memReleaser) readRuntime() heapReading {
	rtmetrics.Read(m.samples)
	v := func(i int) uint64 {
		if m.samples[i].Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		return m.samples[i].Value.Uint64()
	}
	return heapReading{live: v(0), held: v(1) + v(2) + v(3), allocs: v(4)}
}

// check releases free memory when the process is quiet and holds much
// more heap than it uses; it reports whether it did.
func (m *memReleaser) check(now time.Time) bool {
	r := m.read()
	allocated := r.allocs - m.lastAlloc
	m.lastAlloc = r.allocs
	if !shouldRelease(r, allocated) && !(m.followUp && quiet(r, allocated)) {
		return false
	}
	releaseState.mu.Lock()
	if !releaseState.last.IsZero() && now.Sub(releaseState.last) < releaseMinGap {
		releaseState.mu.Unlock()
		return false
	}
	releaseState.last = now
	releaseState.mu.Unlock()
	start := time.Now()
	m.release()
	after := m.read()
	m.lastAlloc = after.allocs
	m.followUp = r.held-min(after.held, r.held) > releaseMinExcess // it returned much: look again
	level := releaseLogLevel
	if r.held-min(after.held, r.held) > releaseLogAbove {
		level = releaseLargeLevel
	}
	m.log.Log(context.Background(), level, "returned idle memory to the OS",
		"held_mb", r.held>>20, "live_mb", after.live>>20, "held_after_mb", after.held>>20,
		"took", time.Since(start).Round(time.Millisecond))
	return true
}

// shouldRelease is the decision of one check: the heap held is larger
// than the live heap by more than releaseMinExcess and a releaseFraction
// of it, and the process allocated little since the last check.
func shouldRelease(r heapReading, allocated uint64) bool {
	if !quiet(r, allocated) {
		return false // busy: the heap it holds is the heap it needs
	}
	if r.held <= r.live {
		return false
	}
	excess := r.held - r.live
	return excess > releaseMinExcess && excess > r.live/releaseFraction
}

// quiet reports whether allocated bytes in one check period are little
// for a process of r's live heap.
func quiet(r heapReading, allocated uint64) bool {
	return allocated <= max(releaseQuietAlloc, r.live/16)
}
