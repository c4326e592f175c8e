package httpsync

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/meridian-sd/meridian/federation"
)

// Transport fetches over HTTP(S) with FetchWith, one goroutine per
// fetch.
type Transport struct {
	Client *http.Client
	Opts   FetchOptions
	// OnError sees every failed fetch (before done), e.g. to log refused
	// peers. nil: nothing.
	OnError func(e federation.Effect, err error)
}

var _ federation.SyncTransport = (*Transport)(nil)

// Fetch implements federation.SyncTransport.
func (t *Transport) Fetch(ctx context.Context, e federation.Effect, done func(federation.SyncResult, error)) {
	go func() {
		res, err := FetchWith(ctx, t.Client, t.Opts, e.Addr, e.Region, e.Since)
		if err != nil && t.OnError != nil {
			t.OnError(e, err)
		}
		done(res, err)
	}()
}

// RefusalLog logs, once per region and gateway, a fetch refused because
// the peer may not serve the region (FetchOptions.CheckPeer). Use its
// Observe as Transport.OnError.
type RefusalLog struct {
	Logger *slog.Logger

	mu      sync.Mutex
	refused map[string]bool
}

// Observe logs err when it is a refused peer not logged yet.
func (l *RefusalLog) Observe(e federation.Effect, err error) {
	var pe interface{ PeerRefused() bool }
	if !errors.As(err, &pe) || !pe.PeerRefused() {
		return
	}
	key := e.Region + "\x00" + e.Gateway + "\x00" + e.Addr
	l.mu.Lock()
	if l.refused == nil || len(l.refused) >= 4096 {
		l.refused = map[string]bool{}
	}
	seen := l.refused[key]
	l.refused[key] = true
	l.mu.Unlock()
	if !seen {
		l.Logger.Warn("refusing a gateway's catalog: its certificate does not let it serve the region",
			"region", e.Region, "gateway", e.Gateway, "addr", e.Addr, "err", err)
	}
}
