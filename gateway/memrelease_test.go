package gateway

import (
	"log/slog"
	"testing"
	"time"
)

func TestShouldRelease(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name            string
		live, held, alc uint64
		want            bool
	}{
		{"after a load, quiet", 60 * mb, 200 * mb, 0, true},
		{"after a load, busy", 60 * mb, 200 * mb, 100 * mb, false},
		{"busy below a 16th of the live heap is quiet", 160 * mb, 400 * mb, 9 * mb, true},
		{"excess under a quarter of the live heap", 60 * mb, 74 * mb, 0, false},
		{"excess under 16 MiB", 8 * mb, 20 * mb, 0, false},
		{"a GC since: nothing held", 60 * mb, 60 * mb, 0, false},
		{"live above held (counters read apart)", 60 * mb, 50 * mb, 0, false},
	} {
		got := shouldRelease(heapReading{live: tc.live, held: tc.held}, tc.alc)
		if got != tc.want {
			t.Errorf("%s: shouldRelease(live %d MB, held %d MB, allocated %d MB) = %v, want %v",
				tc.name, tc.live/mb, tc.held/mb, tc.alc/mb, got, tc.want)
		}
	}
}

// A release happens once the process is quiet, at most once per
// releaseMinGap, with one follow-up after a release that returned much
// (garbage that was still live at the first one), and none after that.
func TestMemReleaserReleasesOnceQuiet(t *testing.T) {
	const mb = 1 << 20
	m := newMemReleaser(slog.New(slog.DiscardHandler))
	// live is the runtime's live heap at the last GC, trueLive what
	// really is: only a GC (here the release) learns it.
	cur, trueLive := heapReading{live: 60 * mb, held: 60 * mb}, uint64(60*mb)
	m.read = func() heapReading { return cur }
	releases := 0
	m.release = func() {
		releases++
		cur.live, cur.held = trueLive, trueLive+mb // everything free returned
	}
	releaseState.last = time.Time{}
	t.Cleanup(func() { releaseState.last = time.Time{} })
	t0 := time.Unix(1_000_000, 0)
	for i, s := range []struct {
		allocate uint64
		release  bool
		why      string
	}{
		{140 * mb, false, "loading: busy"},
		{0, true, "quiet: release (30 MB still live die right after)"},
		{0, false, "within releaseMinGap"},
		{0, false, "within releaseMinGap"},
		{0, true, "the follow-up returns the 30 MB"},
		{0, false, "within releaseMinGap"},
		{0, false, "within releaseMinGap"},
		{0, true, "one more follow-up (the last returned much), returns nothing"},
		{0, false, "within releaseMinGap"},
		{0, false, "within releaseMinGap"},
		{0, false, "done: the last follow-up returned little"},
		{200 * mb, false, "busy again"},
		{mb, true, "quiet"},
	} {
		cur.allocs += s.allocate
		cur.held += s.allocate
		if got := m.check(t0.Add(time.Duration(i+1) * releaseCheckEvery)); got != s.release {
			t.Fatalf("check %d (%s): released %v, want %v", i+1, s.why, got, s.release)
		}
		if i == 1 {
			trueLive -= 30 * mb
		}
	}
	if releases != 4 {
		t.Fatalf("%d releases, want 4", releases)
	}
}

// The runtime's counters are there (a name misspelt reads as zero).
func TestMemReleaserReadsRuntime(t *testing.T) {
	m := newMemReleaser(slog.New(slog.DiscardHandler))
	buf := make([]byte, 8<<20)
	buf[0] = 1
	r := m.readRuntime()
	if r.held < 8<<20 || r.allocs < 8<<20 {
		t.Fatalf("runtime reading %+v: held and allocated must count an 8 MiB buffer", r)
	}
	_ = buf[0]
}
