package acl

import (
	"math/rand/v2"
	"time"
)

// ReplicationConfig tunes a non-primary region's token replication.
type ReplicationConfig struct {
	// StaleAfter marks the replica stale when the last successful fetch
	// is older than this (default 2m; a blocking fetch returns at least
	// every Wait, so a healthy replica is never older than about Wait).
	StaleAfter time.Duration
	// Wait is the blocking fetch's wait (default 30s).
	Wait time.Duration
	// BackoffBase and BackoffMax bound the full-jitter backoff after a
	// failed fetch (defaults 200ms and 10s).
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

// WithDefaults fills zero fields.
func (c ReplicationConfig) WithDefaults() ReplicationConfig {
	if c.Wait <= 0 {
		c.Wait = 30 * time.Second
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = max(2*time.Minute, 2*c.Wait)
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 200 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffBase {
		c.BackoffMax = max(10*time.Second, c.BackoffBase)
	}
	return c
}

// Replication is the state machine of a replica of the primary's token
// table: which gateway to fetch from, from which index, how long to back
// off, and whether the replica is stale. Time and randomness come in.
type Replication struct {
	cfg      ReplicationConfig
	version  uint64
	lastSync time.Time // zero: never
	failures int
	rotate   int
	lastErr  string
	source   string
}

// NewReplication starts from a persisted replica at version, last synced
// at lastSync (zero when there is none).
func NewReplication(cfg ReplicationConfig, version uint64, lastSync time.Time) *Replication {
	return &Replication{cfg: cfg.WithDefaults(), version: version, lastSync: lastSync}
}

// Config returns the configuration with defaults.
func (r *Replication) Config() ReplicationConfig { return r.cfg }

// Fetch is the next fetch to make: from Peer, blocking until the table
// passes Index or Wait passes.
type Fetch struct {
	Peer  string
	Index uint64
	Wait  time.Duration
}

// Next picks the peer among the primary region's alive gateways (HTTP
// addresses, sorted); ok is false when there is none.
func (r *Replication) Next(peers []string) (Fetch, bool) {
	if len(peers) == 0 {
		return Fetch{}, false
	}
	return Fetch{Peer: peers[r.rotate%len(peers)], Index: r.version, Wait: r.cfg.Wait}, true
}

// Done records a successful fetch that returned the table at version.
// It reports whether the table changed (so the caller installs and
// persists it).
func (r *Replication) Done(now time.Time, peer string, version uint64) (changed bool) {
	changed = version != r.version || r.lastSync.IsZero()
	r.version, r.lastSync, r.failures, r.lastErr, r.source = version, now, 0, "", peer
	return changed
}

// Failed records a failed fetch (or no peer) and returns how long to wait
// before the next one; the next fetch goes to another peer.
func (r *Replication) Failed(msg string, rng *rand.Rand) time.Duration {
	r.failures++
	r.rotate++
	r.lastErr = msg
	ceil := r.cfg.BackoffBase << min(r.failures-1, 20)
	if ceil <= 0 || ceil > r.cfg.BackoffMax {
		ceil = r.cfg.BackoffMax
	}
	return time.Duration(rng.Int64N(int64(ceil))) + time.Millisecond
}

// Status is the replica's state for GET /v1/acl/replication.
type Status struct {
	Version   uint64
	Age       time.Duration // since the last successful fetch; -1 never
	Stale     bool
	Failures  int
	LastError string
	Source    string
}

// Status reports the replica at now.
func (r *Replication) Status(now time.Time) Status {
	s := Status{Version: r.version, Age: -1, Stale: true, Failures: r.failures, LastError: r.lastErr, Source: r.source}
	if !r.lastSync.IsZero() {
		s.Age = max(now.Sub(r.lastSync), 0)
		s.Stale = s.Age > r.cfg.StaleAfter
	}
	return s
}
