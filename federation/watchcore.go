package federation

import (
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// Watch is one request of the push path: a blocking
//
//	GET CatalogPath?since=Since&wait=Wait
//
// to gateway Gateway (at Addr) of Region. The watched gateway answers as
// soon as its region's catalog moves past Since, with everything that
// committed since (the sync protocol's delta, or a snapshot when its log no
// longer reaches Since), or with no changes when Wait passes. The driver
// reports the outcome with WatchDone or WatchFailed, handing the watch back.
//
// Each gateway keeps at most one watch in flight per other region, on one
// of its alive gateways, and starts the next one as soon as an answer is
// applied (but not sooner than WatchMinInterval after the last one
// started). Gossip stays the anti-entropy: the pull on version tags (Tick)
// runs next to the watches and catches whatever they missed.
type Watch struct {
	Region  string
	Gateway string // node name
	Addr    string // HTTP address
	Since   uint64
	Wait    time.Duration
	// Seq identifies the watch: positive and unique among a Core's
	// watches (1, 2, 3, ... in the order they were started).
	Seq uint64
}

func (w Watch) String() string {
	return fmt.Sprintf("watch #%d %s at %s (%s) since v%d, wait %s", w.Seq, w.Region, w.Gateway, w.Addr, w.Since, w.Wait)
}

// watchState is a region's push path.
type watchState struct {
	inflight bool
	seq      uint64 // the watch in flight, or the last one
	gateway  string // where it went
	startAt  time.Time
	failures int // watches in a row that failed
	rotate   int
	nextTry  time.Time // after failures: not before
	lastErr  string
}

// watchTimeout is how long a watch may go unanswered before it counts as
// failed: its wait, the server's jitter (up to 1/16) and a fetch's time.
func (c *Core) watchTimeout() time.Duration {
	return c.cfg.WatchWait + c.cfg.WatchWait/16 + c.cfg.FetchTimeout
}

// watchable reports whether a region is to be watched: a remote region
// with a replica to continue (the pull makes the first one, and any
// snapshot a gap asks for) and an alive gateway.
func (c *Core) watchable(rs *regionState) bool {
	return c.cfg.WatchWait > 0 && rs.replica != nil && !rs.needFull && c.aliveIn(rs.name)
}

// Watches returns the watches to start at now, at most one per region,
// sorted by region. Before that it retires the watches that no longer
// count (WatchCurrent turns false): one unanswered past its timeout
// (counted as a failure), one whose gateway is no longer alive in gossip
// (moved to another gateway without a failure), one whose region is no
// longer watchable. The driver aborts a watch that is no longer current.
//
// A region's watch goes to one of its alive gateways and stays there while
// it answers; each failure rotates to the next gateway. The first failure
// retries at once (on the next gateway), later ones back off as fetches do
// (BackoffBase doubling up to BackoffMax, with jitter). Gateways start
// their rotation at different places (a hash of Self), so the watchers of
// one region spread over its gateways.
func (c *Core) Watches(now time.Time) []Watch {
	if c.cfg.WatchWait <= 0 {
		return nil
	}
	var out []Watch
	for _, name := range c.regionNames() {
		rs := c.regions[name]
		ws := &rs.watch
		if ws.inflight {
			switch gw, ok := c.gateways[ws.gateway]; {
			case now.Sub(ws.startAt) >= c.watchTimeout():
				ws.inflight = false
				c.watchFailed(now, rs, fmt.Sprintf("watch at %s unanswered after %s", ws.gateway, c.watchTimeout()))
			case !ok || gw.Status != StatusAlive || !c.watchable(rs):
				ws.inflight = false
			default:
				continue
			}
		}
		if !c.watchable(rs) {
			continue
		}
		if at := c.watchAt(rs); now.Before(at) {
			continue
		}
		gws := c.AliveGateways(name)
		gw := gws[(ws.rotate+c.selfOffset())%len(gws)]
		c.watchSeq++
		ws.inflight, ws.seq, ws.gateway, ws.startAt = true, c.watchSeq, gw.Name, now
		out = append(out, Watch{Region: name, Gateway: gw.Name, Addr: gw.HTTPAddr, Since: rs.replica.Version(),
			Wait: c.cfg.WatchWait, Seq: c.watchSeq})
	}
	return out
}

// watchAt is when a region's next watch may start (it is not in flight).
func (c *Core) watchAt(rs *regionState) time.Time {
	at := rs.watch.nextTry
	if !rs.watch.startAt.IsZero() {
		if t := rs.watch.startAt.Add(c.cfg.WatchMinInterval); t.After(at) {
			at = t
		}
	}
	return at
}

// selfOffset spreads the watchers of a region over its gateways.
func (c *Core) selfOffset() int {
	h := fnv.New32a()
	h.Write([]byte(c.cfg.Self))
	return int(h.Sum32() % 1024)
}

// WatchCurrent reports whether the watch with seq is the one in flight for
// the region; a driver aborts the others (Watches retired them).
func (c *Core) WatchCurrent(regionName string, seq uint64) bool {
	rs := c.regions[regionName]
	return rs != nil && rs.watch.inflight && rs.watch.seq == seq
}

// WatchPending reports whether some other region with an alive gateway is
// not watched now: it has no replica yet, a gap the pull must fill with a
// snapshot, a watch backing off, or a watch in flight that no longer
// counts. What ends those (a pull's answer) does not wake the watch
// driver, so it checks again soon; while every such region has its watch
// in flight the driver sleeps until WatchDeadline.
func (c *Core) WatchPending() bool {
	if c.cfg.WatchWait <= 0 {
		return false
	}
	for name, rs := range c.regions { // a yes/no: the order cannot show
		if name != c.cfg.Region && c.aliveIn(name) && !(rs.watch.inflight && c.watchable(rs)) {
			return true
		}
	}
	return false
}

// WatchDeadline returns when Watches next has something to do because of
// time: a watch in flight times out, or a region's next watch may start
// (after WatchMinInterval or a backoff). It is zero when nothing is
// scheduled. Membership events and new replicas do not show here: the
// driver steps on those too.
func (c *Core) WatchDeadline(now time.Time) time.Time {
	if c.cfg.WatchWait <= 0 {
		return time.Time{}
	}
	var best time.Time
	consider := func(t time.Time) {
		if t.Before(now) {
			t = now
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	for _, name := range c.regionNames() {
		rs := c.regions[name]
		switch {
		case rs.watch.inflight:
			consider(rs.watch.startAt.Add(c.watchTimeout()))
		case c.watchable(rs):
			consider(c.watchAt(rs))
		}
	}
	return best
}

// WatchDone applies the answer r of the watch w (from Watches, handed back
// as it was). Versions only grow: a delta is applied from the replica's
// version on (changes it holds already are skipped), a snapshot only when
// it is newer than the replica, or older when the region was reset (its
// store's epoch changed and every alive gateway of the region advertises
// less; see regionReset). A delta that
// does not continue the replica is a gap: the replica stays as it was and
// the pull fetches a snapshot (the region is not watched until then).
//
// An answer of the current watch, even an empty one (the wait passed with
// no change), is contact with the region: the replica's last sync moves
// to now and the region's failures are cleared, so staleness reflects the
// push path. An answer of an older watch only moves the replica forward.
// It returns an error when the answer was not applied.
func (c *Core) WatchDone(now time.Time, w Watch, r SyncResult) error {
	rs := c.regions[w.Region]
	if rs == nil {
		return fmt.Errorf("watch answer for unknown region %s", w.Region)
	}
	current := rs.watch.inflight && rs.watch.seq == w.Seq
	if current {
		rs.watch.inflight = false
	}
	changed, err := c.applyWatched(now, rs, w, r)
	if changed {
		rs.dirty = true
	}
	c.observe(now, rs)
	if err != nil {
		if current {
			c.watchFailed(now, rs, err.Error())
		}
		return err
	}
	if current || changed {
		rs.replica.LastSync, rs.replica.Source, rs.replica.Restored = now, w.Gateway, false
		rs.touched = true
	}
	if current {
		rs.watch.failures, rs.watch.lastErr, rs.watch.nextTry = 0, "", time.Time{}
		// The answer proves the way there worked when the watch was sent:
		// it clears the fetches' failures only when it was sent after the
		// last one (a watch held since before a one-way cut, answered over
		// the way back, says nothing about requests getting there now).
		if !rs.watch.startAt.Before(rs.failedAt) {
			rs.failures, rs.lastErr, rs.nextTry = 0, "", time.Time{}
		}
	}
	return nil
}

// applyWatched applies a watch answer to the region's replica.
func (c *Core) applyWatched(now time.Time, rs *regionState, w Watch, r SyncResult) (changed bool, err error) {
	if rs.replica == nil {
		return false, fmt.Errorf("watch #%d of %s answered, but the region has no replica any more", w.Seq, w.Region)
	}
	have := rs.replica.Version()
	if r.Full {
		if r.Catalog == nil {
			return false, errors.New("full answer without a catalog")
		}
		v := r.Catalog.Version()
		switch {
		case v == have:
			return false, nil
		case v > have || c.regionReset(now, w.Region, rs, r):
			rs.replica = newReplica(w.Region, r)
			rs.needFull = false
			return true, nil
		}
		return false, fmt.Errorf("snapshot v%d from %s is older than the replica's v%d%s; kept the replica", v, w.Gateway, have,
			epochNote(rs.replica, r))
	}
	if err := refuseOtherLife(rs, w.Gateway, r); err != nil {
		return false, err
	}
	for _, ch := range r.Changes {
		applied, aerr := rs.replica.Catalog.Apply(ch)
		changed = changed || applied
		if aerr != nil {
			rs.needFull = true
			return changed, fmt.Errorf("watched delta from %s: %w", w.Gateway, aerr)
		}
		if applied {
			rs.replica.continued(r.Epoch)
		}
	}
	return changed, nil
}

// WatchFailed records that the watch w failed. Only the current watch
// counts: it rotates the region's watch to the next gateway, at once after
// a first failure and with a backoff after more.
func (c *Core) WatchFailed(now time.Time, w Watch, err error) {
	rs := c.regions[w.Region]
	if rs == nil || !rs.watch.inflight || rs.watch.seq != w.Seq {
		return
	}
	rs.watch.inflight = false
	c.watchFailed(now, rs, fmt.Sprintf("watch at %s: %v", w.Gateway, err))
}

func (c *Core) watchFailed(now time.Time, rs *regionState, msg string) {
	ws := &rs.watch
	ws.failures++
	ws.rotate++
	ws.lastErr = msg
	ws.nextTry = now
	if ws.failures > 1 {
		d := min(c.cfg.BackoffBase<<min(ws.failures-2, 20), c.cfg.BackoffMax)
		d += time.Duration(c.rng.Int64N(int64(d)/2 + 1))
		ws.nextTry = now.Add(d)
	}
}

// WatchError returns the last error of a region's watch ("" when its last
// watch was answered).
func (c *Core) WatchError(regionName string) string {
	if rs := c.regions[regionName]; rs != nil {
		return rs.watch.lastErr
	}
	return ""
}
