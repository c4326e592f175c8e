package client

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, ceiling := 25*time.Millisecond, time.Second
	for _, tc := range []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{0, 0, 0},
		{0, 0.5, 12500 * time.Microsecond},
		{1, 0.5, 25 * time.Millisecond},
		{3, 0.999, time.Duration(0.999 * float64(200*time.Millisecond))},
		{5, 0.5, 400 * time.Millisecond},  // 800ms ceiling
		{6, 0.5, 500 * time.Millisecond},  // capped at 1s
		{70, 0.5, 500 * time.Millisecond}, // no overflow
	} {
		if got := backoff(base, ceiling, tc.n, tc.u); got != tc.want {
			t.Errorf("backoff(n=%d, u=%g) = %s, want %s", tc.n, tc.u, got, tc.want)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newRetryBudget(0.2, 1, 10*time.Second) // reserve 10 retries
	for i := range 100 {
		b.request(t0.Add(time.Duration(i) * time.Millisecond))
	}
	now := t0.Add(time.Second)
	n := 0
	for b.tryRetry(now) {
		n++
	}
	if n != 30 {
		t.Errorf("retries allowed after 100 requests = %d, want 30 (20%% + 10)", n)
	}
	// The requests and retries leave the window: only the reserve is left.
	later := t0.Add(11 * time.Second)
	n = 0
	for b.tryRetry(later) {
		n++
	}
	if n != 10 {
		t.Errorf("retries allowed a window later = %d, want the reserve, 10", n)
	}
	// No ratio and no minimum: no retries at all.
	none := newRetryBudget(-1, -1, time.Second)
	none.request(t0)
	if none.tryRetry(t0) {
		t.Error("a budget of nothing allowed a retry")
	}
}
