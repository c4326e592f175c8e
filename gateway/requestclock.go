package gateway

import (
	"context"
	"net/http"
	"time"
)

// lookupStart is when a lookup began: the time instrument read when the
// request came in, unless the handler waited first (a blocking query),
// in which case it is now. It saves a handler a clock read.
func lookupStart(w http.ResponseWriter, waited bool) time.Time {
	if sw, ok := w.(*statusWriter); ok && !waited && !sw.start.IsZero() {
		return sw.start
	}
	return time.Now()
}

// lookupSince is time.Since(start), the clock reading kept for instrument
// to end the request's latency with: a handler that calls it last (after
// writing its answer) saves instrument a clock read.
func lookupSince(w http.ResponseWriter, start time.Time) time.Duration {
	now := time.Now()
	if sw, ok := w.(*statusWriter); ok && !sw.start.IsZero() {
		sw.elapsed = max(now.Sub(sw.start), 1) // 0 means unset
	}
	return now.Sub(start)
}

// metricsContext is the context to record r's measurements with: r's, or
// when r has no span context (statusWriter.spanless) the background one,
// which records the same (an exemplar takes only a span context from its
// context) without the SDK's search of r's context chain for a span.
func metricsContext(w http.ResponseWriter, r *http.Request) context.Context {
	if sw, ok := w.(*statusWriter); ok && sw.spanless {
		return context.Background()
	}
	return r.Context()
}
