package sim

import (
	"errors"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// The push path in the simulator: every gateway runs the production
// federation.Watcher (on its gwRuntime) with watchTransport, which carries
// each watch (GET /v1/federation/catalog?since=V&wait=D) over the
// simulated network to a simulated server half that behaves as the
// gateway's waitCatalog does: it answers at once when its cache is not at
// V (or not loaded), else holds the watch until its cache moves past V or
// D passes (without the server's jitter), and answers with
// federation.CatalogSource, as a fetch is answered.
//
// A watch is one TCP connection, so its packets are not lost the way a
// one-shot fetch's are: a lost request or answer is retransmitted after
// an RTO (200ms + the link's round trip, doubling; after watchMaxRetries
// losses in a row the connection is given up and the watch hangs). What
// fails it:
//   - a cut link (partition, one-way cut) on the way there or back: the
//     watch hangs until its client timeout (wait + wait/16 +
//     FetchTimeout, as HTTPWatchTransport) or until the Watcher aborts it
//     because gossip no longer shows the gateway alive — a connection
//     whose peer is silent gets no RST;
//   - a watched gateway whose process is down (crashed, left): its host
//     answers with a RST, so a new watch fails after one round trip and a
//     held one fails one one-way latency after the crash (a graceful
//     shutdown answers the watches it holds instead, as the real server
//     drains);
//   - the watching gateway crashing: its watches die with it (answers
//     that arrive later are dropped, and the server forgets them).

// watchMaxRetries is how many losses in a row a watch's connection
// retransmits before it gives up (Linux retries far longer; a simulated
// link that loses this many is as good as cut).
const watchMaxRetries = 6

// simWatch is one watch in flight.
type simWatch struct {
	g      *gateway // the watching gateway
	inc    int      // its incarnation
	t      *gateway // the watched gateway
	tinc   int
	x      federation.Watch
	done   func(federation.SyncResult, error)
	start  time.Duration
	ended  bool // done was called (or the watching gateway is gone)
	held   bool // held by the server
	wakeAt time.Duration
	span   spanRef
}

// watchTransport is federation.WatchTransport over the simulated network
// for one gateway.
type watchTransport struct{ g *gateway }

var _ federation.WatchTransport = watchTransport{}

// errWatchAborted is what a watch's done gets when the Watcher aborted it.
var errWatchAborted = errors.New("watch aborted")

// Watch implements federation.WatchTransport.
func (tr watchTransport) Watch(x federation.Watch, done func(federation.SyncResult, error)) func() {
	g := tr.g
	w := g.w
	sw := &simWatch{g: g, inc: g.inc, x: x, done: done, start: w.now}
	sw.span = w.trc.startFetch(g, federation.Effect{Kind: federation.EffectFetch, Region: x.Region, Gateway: x.Gateway,
		Addr: x.Addr, Since: x.Since, Reason: "watch"}, w.now)
	timeout := x.Wait + x.Wait/16 + g.core.Config().FetchTimeout
	w.after(timeout, func() { sw.fail("timed out") })
	t := w.gwByName[x.Gateway]
	if t == nil {
		w.after(0, func() { sw.fail("no such gateway") })
		return sw.cancel
	}
	sw.t = t
	d1, ok := w.tcpDeliver(g.rs.idx, t.rs.idx)
	if !ok {
		return sw.cancel // hangs until its timeout
	}
	w.after(d1, sw.arrive)
	return sw.cancel
}

// fail ends the watch with an error (once; never for a gateway that
// restarted since).
func (sw *simWatch) fail(why string) { sw.failWith(errors.New(why)) }

func (sw *simWatch) failWith(err error) {
	why := err.Error()
	if sw.ended {
		return
	}
	sw.ended = true
	w := sw.g.w
	if sw.g.inc != sw.inc {
		w.trc.endFetch(sw.span, w.now, "gateway restarted", nil)
		return
	}
	w.trc.endFetch(sw.span, w.now, why, nil)
	sw.g.watchFailed(sw, why)
	sw.done(federation.SyncResult{}, err)
}

// cancel is the Watcher aborting the watch: done gets an error now, the
// server drops it when it would answer.
func (sw *simWatch) cancel() {
	if sw.ended {
		return
	}
	sw.g.w.after(0, func() { sw.fail(errWatchAborted.Error()) })
}

// arrive is the request reaching the watched gateway.
func (sw *simWatch) arrive() {
	w, t := sw.g.w, sw.t
	if sw.ended {
		return
	}
	if !t.running {
		// Connection refused: the RST travels back.
		if d, ok := w.tcpDeliver(t.rs.idx, sw.g.rs.idx); ok {
			w.after(d, func() { sw.fail("connection refused (gateway down)") })
		}
		return
	}
	sw.tinc = t.inc
	if perr := w.peerCheck(sw.g, t, sw.x.Region); perr != nil {
		// HTTPWatchTransport vets the peer as soon as the connection is
		// up: the watch fails after the handshake's way back, typed as a
		// refused peer (the Watcher logs it once).
		if d, ok := w.tcpDeliver(t.rs.idx, sw.g.rs.idx); ok {
			w.after(d, func() { sw.failWith(perr) })
		}
		return
	}
	if w.noWatches(t) {
		// A release without watches answers at once, without the watch
		// header: the watcher fails it (watch_unsupported).
		if d, ok := w.tcpDeliver(t.rs.idx, sw.g.rs.idx); ok {
			w.after(d, func() { sw.failWith(errNoWatches(t)) })
		}
		return
	}
	if !t.cache.Loaded() || t.cache.Version() != sw.x.Since || sw.x.Wait <= 0 {
		sw.answer()
		return
	}
	sw.held = true
	sw.wakeAt = w.now + sw.x.Wait
	t.held = append(t.held, sw)
	w.after(sw.x.Wait, func() {
		if sw.held && t.inc == sw.tinc {
			sw.held = false
			t.unhold()
			sw.answer()
		}
	})
}

// answer serves the watch from the watched gateway's catalog now and
// sends the answer back.
func (sw *simWatch) answer() {
	w, t, g := sw.g.w, sw.t, sw.g
	if sw.ended || g.inc != sw.inc {
		return // the connection is gone: nothing to write to
	}
	x := sw.x
	src := federation.CatalogSource{Region: t.rs.name, Store: w.syncStore(t), Cache: t.cache}
	ans, err := src.Answer(w.ctx, x.Since)
	w.checkServed(t, ans)
	var res federation.SyncResult
	var size int64
	var nchanges int
	var cerr error
	if err == nil {
		res, size, nchanges, cerr = syncResultOf(x.Region, ans)
	}
	e := federation.Effect{Region: x.Region, Gateway: x.Gateway, Since: x.Since}
	w.trc.serve(t, sw.span, w.now, w.now+t.rs.slow, e, res, size, nchanges, err)
	if err != nil {
		err = errors.New("HTTP 503: " + err.Error())
	} else if cerr != nil {
		err = errors.New("gateway " + x.Addr + " " + cerr.Error())
	}
	d2, ok := w.tcpDeliver(t.rs.idx, g.rs.idx)
	if !ok {
		return // hangs until its timeout
	}
	w.after(t.rs.slow+d2, func() {
		if sw.ended {
			return
		}
		if g.inc != sw.inc {
			sw.ended = true
			w.trc.endFetch(sw.span, w.now, "gateway restarted", nil)
			return
		}
		sw.ended = true
		if err != nil {
			w.trc.endFetch(sw.span, w.now, err.Error(), nil)
			g.watchFailed(sw, err.Error())
			sw.done(federation.SyncResult{}, err)
			return
		}
		var before uint64
		if rep := g.core.Replica(x.Region); rep != nil {
			before = rep.Version()
		}
		sw.done(res, nil)
		g.watchApplied(sw, res, before, size)
		w.trc.endFetch(sw.span, w.now, "", &syncAttrs{from: x.Since, to: res.Version, bytes: size, changes: nchanges, full: res.Full})
	})
}

// wakeWatches answers the watches this gateway holds whose version its
// cache has moved past (the cache follower's OnChange, as Cache.Wait
// wakes the real server).
func (t *gateway) wakeWatches() {
	if len(t.held) == 0 {
		return
	}
	v := t.cache.Version()
	keep := t.held[:0]
	var wake []*simWatch
	for _, sw := range t.held {
		switch {
		case !sw.held || sw.ended:
		case sw.x.Since != v:
			sw.held = false
			wake = append(wake, sw)
		default:
			keep = append(keep, sw)
		}
	}
	clear(t.held[len(keep):])
	t.held = keep
	for _, sw := range wake {
		sw.answer()
	}
}

// dropWatches is the watched gateway's process ending. A graceful
// shutdown drains: every watch it holds is answered now (with what its
// catalog holds, as the real server's drain does). A crash resets them:
// each fails one one-way latency later (unless the link is cut: then it
// hangs until its timeout).
func (t *gateway) dropWatches(graceful bool) {
	w := t.w
	held := t.held
	t.held = nil
	for _, sw := range held {
		if !sw.held || sw.ended {
			continue
		}
		sw.held = false
		if graceful {
			sw.answer()
			continue
		}
		if d, ok := w.tcpDeliver(t.rs.idx, sw.g.rs.idx); ok {
			w.after(d, func() { sw.fail("connection reset (gateway down)") })
		}
	}
}

// unhold forgets the watches this gateway no longer holds (answered at
// the end of their wait, or abandoned by their client).
func (t *gateway) unhold() {
	keep := t.held[:0]
	for _, sw := range t.held {
		if sw.held && !sw.ended {
			keep = append(keep, sw)
		}
	}
	clear(t.held[len(keep):])
	t.held = keep
}

// watchApplied is the bookkeeping of a watch answer the Watcher handed to
// the core: metrics, the event log, the routing memo and the convergence
// and monotonicity checks (what onSync does for a fetch).
func (g *gateway) watchApplied(sw *simWatch, res federation.SyncResult, before uint64, size int64) {
	w := g.w
	x := sw.x
	var after uint64
	if rep := g.core.Replica(x.Region); rep != nil {
		after = rep.Version()
	}
	w.m.syncBytes[g.rs.idx] += size
	w.m.watches++
	w.noteSync(x.Since, res.Full)
	if after != before || res.Full {
		if res.Full {
			g.epoch++
			g.dataEpoch++
		} else if ri, ok := w.cfg.regionIdx[x.Region]; ok {
			for i := range res.Changes {
				if ch := &res.Changes[i]; ch.Version > before {
					g.patch(ri, ch)
				}
			}
		}
		w.log.event(w.now, "watch", kv("gateway", g.name), kv("region", x.Region), kv("from", x.Gateway),
			kvInt("since", int64(x.Since)), kvInt("before", int64(before)), kvInt("after", int64(after)),
			kvBool("full", res.Full), kvInt("bytes", size), kv("error", ""))
	}
	w.checkVersion(g, x.Region, after)
	if r := w.regionByName(x.Region); r != nil {
		w.checkConvergence(r)
	}
	g.routingInputs()
}

// watchFailed counts and logs a failed watch.
func (g *gateway) watchFailed(sw *simWatch, why string) {
	w := g.w
	w.m.watchFailed++
	if why == errWatchAborted.Error() {
		return // the Watcher retired it: not news
	}
	w.log.event(w.now, "watch", kv("gateway", g.name), kv("region", sw.x.Region), kv("from", sw.x.Gateway),
		kvInt("since", int64(sw.x.Since)), kv("error", why))
}

// tcpDeliver is one segment from a to b on an open connection: lost
// segments are retransmitted after an RTO (200ms + the round trip,
// doubling), so loss adds delay; false when the link is cut or loses
// watchMaxRetries in a row.
func (w *world) tcpDeliver(a, b int) (time.Duration, bool) {
	var wait time.Duration
	rto := 200*time.Millisecond + w.net.rtt(a, b)
	for range watchMaxRetries {
		if w.net.blocked(a, b) {
			return 0, false
		}
		if d, ok := w.net.deliver(a, b); ok {
			return wait + d, true
		}
		wait += rto
		rto *= 2
	}
	return 0, false
}
