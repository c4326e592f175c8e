package sim

import (
	"context"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// check is one gateway's health machine for one instance it owns. Each
// instance gets a region.Health of its own so that a probe costs O(1)
// whatever the catalog size; the machines of a gateway share its rng and
// are synced in key order, as the production runner's single machine draws
// its jitter.
//
// Parking: while an HTTP check is passing, in sync with the store, and the
// instance would keep answering the same way, every probe only moves the
// next probe time on by Interval + the probe's latency. Such a check is
// parked: no events are scheduled for it. Before anything changes its
// inputs (the instance's truth, the catalog, ownership), unpark replays the
// last probe of that fixed schedule into the machine, leaving it exactly as
// if it had probed all along.
type check struct {
	g    *gateway
	in   *instance
	key  region.Key
	h    *region.Health
	t    timer
	gone bool

	parked bool
	base   time.Duration // first skipped probe
	period time.Duration
	lat    time.Duration
}

func (g *gateway) newCheck(in *instance, rec region.Instance) *check {
	w := g.w
	c := &check{g: g, in: in, key: in.key, h: region.NewHealth(g.healthRng)}
	c.h.Sync(w.wall(), []region.Instance{rec})
	in.checks = append(in.checks, c)
	g.checks[in.key] = c
	return c
}

// drop forgets the check (ownership moved, instance gone, gateway down).
func (c *check) drop() {
	if c.gone {
		return
	}
	c.gone = true
	c.t.stop()
	delete(c.g.checks, c.key)
	cs := c.in.checks
	for i, x := range cs {
		if x == c {
			c.in.checks = append(cs[:i], cs[i+1:]...)
			break
		}
	}
}

// resync feeds the machine the instance as the catalog has it now.
func (c *check) resync(rec region.Instance) {
	c.unpark()
	c.h.Sync(c.g.w.wall(), []region.Instance{rec})
	c.step()
}

// step ticks the machine, carries out its effects and schedules the next tick.
func (c *check) step() {
	if c.gone || c.parked {
		return
	}
	w := c.g.w
	for _, e := range c.h.Tick(w.wall()) {
		c.effect(e)
	}
	c.schedule()
}

func (c *check) effect(e region.Effect) {
	w := c.g.w
	switch e.Kind {
	case region.EffectProbe:
		c.g.Probe(w.ctx, e, func(res region.ProbeResult) {
			if c.gone {
				return
			}
			c.h.Result(w.wall(), c.key, res)
			c.step()
		})
	case region.EffectSetStatus, region.EffectDeregister:
		c.g.write(e)
	}
}

// deliver hands a probe result to the machine at t.
func (c *check) deliver(t time.Duration, res region.ProbeResult) {
	w := c.g.w
	w.at(t, func() {
		if c.gone {
			return
		}
		c.h.Result(w.wall(), c.key, res)
		c.step()
	})
}

func (c *check) schedule() {
	w := c.g.w
	st, ok := c.h.State(c.key)
	if !ok {
		c.t.stop()
		return
	}
	if c.parkable(&st) {
		c.parked = true
		c.base = st.NextProbe.Sub(w.cfg.start)
		c.period = time.Duration(c.in.checkInterval(w)) + c.lat
		c.t.stop()
		return
	}
	next := c.h.NextDeadline()
	if next.IsZero() {
		c.t.stop()
		return
	}
	w.arm(&c.t, next.Sub(w.cfg.start), c.step)
}

func (c *check) parkable(st *region.CheckState) bool {
	w := c.g.w
	if w.hooks.noPark || (st.Kind != "http" && st.Kind != "tcp") || st.InFlight {
		return false
	}
	if st.Status != region.StatusPassing || st.StoreStatus != st.Status || st.StoreOutput != st.Output || st.Output != probeOKOutput {
		return false
	}
	lat, ok := c.in.steadyBy(w, c.g, c.in.checkTimeout(w))
	c.lat = lat
	return ok && st.NextProbe.Sub(w.cfg.start) >= w.now
}

// unpark brings a parked machine to now as if it had probed on schedule.
func (c *check) unpark() {
	if !c.parked || c.gone {
		return
	}
	c.parked = false
	w := c.g.w
	if w.now < c.base {
		return // no probe was skipped
	}
	k := (w.now - c.base) / c.period
	pk := c.base + k*c.period
	w.m.parkedProbes += int64(k)
	for _, e := range c.h.Tick(w.cfg.start.Add(pk)) {
		if e.Kind != region.EffectProbe {
			c.effect(e) // not expected: a parked machine is in sync
			continue
		}
		res, lat := c.in.probeBy(w, c.g, e.Timeout)
		if pr := pk + lat; pr <= w.now {
			c.h.Result(w.cfg.start.Add(pr), c.key, res)
			for _, e2 := range c.h.Tick(w.cfg.start.Add(pr)) {
				c.effect(e2)
			}
		} else {
			c.deliver(pr, res)
		}
	}
}

func (in *instance) checkInterval(w *world) time.Duration {
	return w.cfg.services[in.svc].check.Interval.Std()
}

// checkTimeout is the probe timeout after the check's defaults.
func (in *instance) checkTimeout(w *world) time.Duration {
	iv := in.checkInterval(w)
	return min(region.DefaultCheckTimeout, iv)
}

// Probe implements region.ProbeTransport over the simulated instances: the
// probe sees the instance as it is now and answers after its latency.
func (g *gateway) Probe(_ context.Context, e region.Effect, done func(region.ProbeResult)) {
	w := g.w
	in := g.rs.insts[e.Key]
	if in == nil {
		w.after(2*w.cfg.net.intra, func() { done(region.ProbeResult{Status: region.StatusCritical, Output: probeRefused}) })
		return
	}
	res, lat := in.probeBy(w, g, e.Timeout)
	w.after(lat, func() { done(res) })
}

var _ region.ProbeTransport = (*gateway)(nil)
