package client

import (
	"sync"
	"time"
)

// retryBudget caps retries at a fraction of the requests of the last
// window plus a reserve of minPerSec x window, as Finagle's RetryBudget and
// Linkerd's retry budgets do: when an endpoint fails, retries add at most
// ratio x the load instead of multiplying it by MaxRetries+1.
//
// It reads no clock: every call takes now. The window is kept in
// budgetBuckets slots, so a request stops counting between window x
// (1 - 1/budgetBuckets) and window after it was made. Safe for concurrent
// use.
type retryBudget struct {
	mu        sync.Mutex
	ratio     float64
	reserve   float64
	bucketLen int64 // nanoseconds
	buckets   [budgetBuckets]budgetBucket
}

const budgetBuckets = 10

type budgetBucket struct {
	epoch    int64 // now / bucketLen of the slot's requests
	requests float64
	retries  float64
}

// newRetryBudget returns a budget; a negative ratio or minPerSec counts as
// zero.
func newRetryBudget(ratio, minPerSec float64, window time.Duration) *retryBudget {
	b := &retryBudget{ratio: max(ratio, 0), reserve: max(minPerSec, 0) * window.Seconds()}
	b.bucketLen = max(int64(window)/budgetBuckets, 1)
	for i := range b.buckets {
		b.buckets[i].epoch = -1
	}
	return b
}

// slot returns the bucket of now, emptied when it held an older epoch.
func (b *retryBudget) slot(now time.Time) *budgetBucket {
	e := now.UnixNano() / b.bucketLen
	s := &b.buckets[e%budgetBuckets]
	if s.epoch != e {
		*s = budgetBucket{epoch: e}
	}
	return s
}

// sums adds up the buckets of the window ending at now.
func (b *retryBudget) sums(now time.Time) (requests, retries float64) {
	e := now.UnixNano() / b.bucketLen
	for i := range b.buckets {
		if s := &b.buckets[i]; s.epoch > e-budgetBuckets && s.epoch <= e {
			requests += s.requests
			retries += s.retries
		}
	}
	return requests, retries
}

// request records one request (not its retries).
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	b.slot(now).requests++
	b.mu.Unlock()
}

// tryRetry records and allows one retry when the budget has room for it.
func (b *retryBudget) tryRetry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	req, ret := b.sums(now)
	if ret+1 > b.ratio*req+b.reserve {
		return false
	}
	b.slot(now).retries++
	return true
}

// backoff is the full-jitter exponential backoff of retry n (0 for the
// first): u x min(ceiling, base x 2^n), u in [0, 1) (AWS Architecture
// Blog, "Exponential Backoff And Jitter").
func backoff(base, ceiling time.Duration, n int, u float64) time.Duration {
	d := ceiling
	if n < 62 && base > 0 && base <= ceiling>>n {
		d = base << n
	}
	return time.Duration(u * float64(d))
}
