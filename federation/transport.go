package federation

import "context"

// SyncTransport carries the sync protocol's fetches: GET region R's
// catalog from gateway G since version V. It is the federator's one I/O
// seam: production fetches over HTTP (HTTPTransport), the simulator over
// its simulated network.
type SyncTransport interface {
	// Fetch starts fetching e.Region from e.Gateway at e.Addr since
	// e.Since and returns at once. done is called exactly once with the
	// outcome, from any goroutine (production) or as a task of the
	// simulator's runtime; a transport gives up after the core's
	// FetchTimeout and reports an error then. ctx ends the fetch early.
	Fetch(ctx context.Context, e Effect, done func(SyncResult, error))
}
