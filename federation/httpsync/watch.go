package httpsync

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// HTTPWatchTransport is the production federation.WatchTransport: each watch is a
// WatchWith request on its own goroutine, through Client with the same
// Options (HTTPS, the peer check) as the fetches.
type HTTPWatchTransport struct {
	// Ctx ends every watch when done; it carries the SyncTelemetry.
	Ctx context.Context
	// Client carries the watches. Its Timeout must be 0 or longer than a
	// watch (each watch has a deadline of its own).
	Client  *http.Client
	Options FetchOptions
	// Slack is how long past its wait (and the server's jitter) a watch
	// may take before it is abandoned: the fetch timeout.
	Slack time.Duration

	mu     sync.Mutex // orders Watch's wg.Go before Wait's wg.Wait
	closed bool       // Wait was called: no new watch starts
	wg     sync.WaitGroup
}

var _ federation.WatchTransport = (*HTTPWatchTransport)(nil)

// Watch implements federation.WatchTransport.
func (t *HTTPWatchTransport) Watch(w federation.Watch, done func(federation.SyncResult, error)) func() {
	parent := t.Ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, w.Wait+w.Wait/16+max(t.Slack, time.Second))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		// The gateway is stopping (a Watcher step raced its Stop).
		cancel()
		go done(federation.SyncResult{}, context.Canceled)
		return cancel
	}
	t.wg.Go(func() {
		defer cancel()
		res, err := WatchWith(ctx, t.Client, t.Options, w.Addr, w.Region, w.Since, w.Wait)
		done(res, err)
	})
	return cancel
}

// Wait blocks until every watch started has ended (after Ctx is done, or
// after their cancels).
// Watches asked for afterwards fail at once.
func (t *HTTPWatchTransport) Wait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}
