package federation

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// WatchTransport carries watches (the push path) to other regions'
// gateways. Watch starts w and returns at once; it calls done exactly once,
// from any task, with the answer or the error. cancel aborts the watch
// early (done is still called, with an error). Production uses
// HTTPWatchTransport; the simulator implements it over its network.
type WatchTransport interface {
	Watch(w Watch, done func(SyncResult, error)) (cancel func())
}

// CoreUpdater gives a driver the core under the lock that guards writes
// to it. The Federator is one.
type CoreUpdater interface {
	Update(fn func(*Core))
}

// WatcherConfig wires a Watcher.
type WatcherConfig struct {
	// Runtime gives time and tasks; rt.Real() when nil.
	Runtime rt.Runtime
	// Core is the federation core's owner (the Federator): every decision
	// (which regions, which gateway, since what, when to retry) and every
	// answer goes through it.
	Core      CoreUpdater
	Transport WatchTransport
	Logger    *slog.Logger
	// Recheck bounds how long the watcher sleeps while some region is not
	// watched (Core.WatchPending): a region whose first replica (made by
	// the pull) arrives is watched within it. While every region has its
	// watch in flight it sleeps until the core's WatchDeadline (answers
	// and membership events wake it). Default 1s.
	Recheck time.Duration
	// OnApplied, when set, is called (on the watcher's task, without locks)
	// after each watch answer was applied, with its region.
	OnApplied func(regionName string)
}

// Watcher is the driver of the push path: it starts the watches the core
// asks for (Core.Watches), hands their answers and failures back to the
// core (WatchDone, WatchFailed), aborts the watches the core retired, and
// steps again on every answer, on Kick (membership changes) and when the
// core's WatchDeadline passes. It is written against the rt seam, so the
// simulator runs the same code with its own runtime and transport.
type Watcher struct {
	cfg  WatcherConfig
	loop *rt.Loop

	mu       sync.Mutex
	inflight map[string]watchCall // by region
	stopped  bool

	refused onceLog
}

type watchCall struct {
	w      Watch
	cancel func()
}

// NewWatcher returns a watcher; Start starts it.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	if cfg.Core == nil || cfg.Transport == nil {
		return nil, errors.New("watcher: Core and Transport are required")
	}
	cfg.Runtime = rt.Or(cfg.Runtime)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = time.Second
	}
	w := &Watcher{cfg: cfg, inflight: map[string]watchCall{}}
	w.loop = rt.NewLoop(cfg.Runtime, "federation.watcher", w.step)
	return w, nil
}

// Start makes the first step.
func (w *Watcher) Start() { w.loop.Kick() }

// Kick makes the watcher step soon: after a membership change, or when a
// replica was made.
func (w *Watcher) Kick() { w.loop.Kick() }

// Stop ends the watcher and aborts its watches (their answers are then
// dropped).
func (w *Watcher) Stop() {
	w.loop.Stop()
	w.mu.Lock()
	w.stopped = true
	calls := w.sortedCalls()
	w.inflight = map[string]watchCall{}
	w.mu.Unlock()
	for _, c := range calls {
		if c.cancel != nil {
			c.cancel()
		}
	}
}

// sortedCalls returns the watches in flight by region (mu held), so that
// what the driver does with them happens in one order.
func (w *Watcher) sortedCalls() []watchCall {
	if len(w.inflight) == 0 {
		return nil
	}
	out := make([]watchCall, 0, len(w.inflight))
	for _, c := range w.inflight {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b watchCall) int { return strings.Compare(a.w.Region, b.w.Region) })
	return out
}

func (w *Watcher) step() {
	now := w.cfg.Runtime.Now()
	var start []Watch
	var retired []watchCall
	var next time.Time
	pending := true
	w.cfg.Core.Update(func(c *Core) {
		start = c.Watches(now)
		next = c.WatchDeadline(now)
		pending = c.WatchPending()
		w.mu.Lock()
		for _, call := range w.sortedCalls() {
			if !c.WatchCurrent(call.w.Region, call.w.Seq) {
				retired = append(retired, call)
				delete(w.inflight, call.w.Region)
			}
		}
		w.mu.Unlock()
	})
	for _, call := range retired {
		w.cfg.Logger.Debug("watch retired", "watch", call.w.String())
		if call.cancel != nil {
			call.cancel()
		}
	}
	for _, x := range start {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		w.inflight[x.Region] = watchCall{w: x}
		w.mu.Unlock()
		w.cfg.Logger.Debug("watch", "watch", x.String())
		cancel := w.cfg.Transport.Watch(x, func(res SyncResult, err error) { w.answered(x, res, err) })
		w.mu.Lock()
		if c, ok := w.inflight[x.Region]; ok && c.w.Seq == x.Seq {
			c.cancel = cancel
			w.inflight[x.Region] = c
		}
		w.mu.Unlock()
	}
	d := w.cfg.Recheck
	switch {
	case !next.IsZero() && pending:
		d = min(d, next.Sub(now))
	case !next.IsZero():
		d = next.Sub(now)
	}
	w.loop.After(d)
}

// answered hands a watch's outcome to the core.
func (w *Watcher) answered(x Watch, res SyncResult, err error) {
	w.mu.Lock()
	if c, ok := w.inflight[x.Region]; ok && c.w.Seq == x.Seq {
		delete(w.inflight, x.Region)
	}
	stopped := w.stopped
	w.mu.Unlock()
	if stopped {
		return
	}
	now := w.cfg.Runtime.Now()
	var aerr error
	var had, got *Replica
	moved := false // the answer changed the replica's version
	w.cfg.Core.Update(func(c *Core) {
		if err != nil {
			c.WatchFailed(now, x, err)
			return
		}
		had = c.Replica(x.Region)
		var hadV uint64
		if had != nil {
			hadV = had.Version()
		}
		aerr = c.WatchDone(now, x, res)
		got = c.Replica(x.Region)
		moved = got != nil && (had == nil || got.Version() != hadV)
		if got != nil && had != nil && got.Version() < hadV {
			w.cfg.Logger.Error("a region's catalog went back; accepted the reset its gateways advertise (its store lost data and was not restored)",
				"region", x.Region, "from_version", hadV, "to_version", got.Version(), "gateway", x.Gateway,
				"from_epoch", had.Epoch, "to_epoch", got.Epoch)
		}
	})
	switch {
	case err != nil:
		if w.refused.first(x, err) {
			w.cfg.Logger.Warn("not watching a gateway: its certificate does not let it serve the region",
				"region", x.Region, "gateway", x.Gateway, "addr", x.Addr, "err", err)
		}
		w.cfg.Logger.Debug("watch failed", "watch", x.String(), "err", err)
	case aerr != nil:
		w.cfg.Logger.Debug("watch answer not applied", "watch", x.String(), "err", aerr)
	default:
		if k, ok := w.cfg.Core.(interface{ Kick() }); ok && moved {
			k.Kick() // the replica moved: the owner persists it
		}
		if w.cfg.OnApplied != nil {
			w.cfg.OnApplied(x.Region)
		}
	}
	w.loop.Kick()
}

// onceLog remembers (region, gateway, address) triples refused by the peer
// check, so each is logged once.
type onceLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (o *onceLog) first(x Watch, err error) bool {
	var pe interface{ PeerRefused() bool }
	if !errors.As(err, &pe) || !pe.PeerRefused() {
		return false
	}
	key := x.Region + "\x00" + x.Gateway + "\x00" + x.Addr
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil || len(o.seen) >= 4096 {
		o.seen = map[string]bool{}
	}
	seen := o.seen[key]
	o.seen[key] = true
	return !seen
}
