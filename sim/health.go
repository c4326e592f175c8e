package sim

import (
	"context"
	"errors"

	"github.com/meridian-sd/meridian/region"
)

// Health checks run in the production region.HealthRunner of every
// simulated gateway (gateway.start), on the gateway's runtime. What is
// simulated is only what it talks to: the instances its probes reach
// (Probe, below) and the TTL heartbeats the instances send (beat).

// Probe implements region.ProbeTransport over the simulated instances: the
// probe sees the instance as it is now and answers after its latency,
// unless the gateway crashed or restarted meanwhile (the process died with
// its probes in flight).
func (g *gateway) Probe(_ context.Context, e region.Effect, done func(region.ProbeResult)) {
	w := g.w
	in := g.rs.insts[e.Key]
	res, lat := region.ProbeResult{Status: region.StatusCritical, Output: probeRefused}, 2*w.cfg.net.intra
	if in != nil && in.listensAt(e.Target) { // fault_mutstore.go: a redeployed instance's old port is closed
		res, lat = in.probeBy(w, g, e.Timeout)
	}
	inc := g.inc
	w.after(lat, func() {
		if g.inc == inc {
			done(res)
		}
	})
}

var _ region.ProbeTransport = (*gateway)(nil)

// heartbeatGateway is the gateway an instance sends its heartbeats to: a
// fixed one of its region (as a client configured with one gateway
// address), or the next running one while that is down.
func (in *instance) heartbeatGateway() *gateway {
	gws := in.rs.gateways
	for i := range gws {
		if g := gws[(in.n-1+i)%len(gws)]; g.running {
			return g
		}
	}
	return nil
}

// checkOwnerAddr is the agent's check-owner lookup: the HTTP address of the
// gateway that runs k's checks when that is another gateway, "" when it
// is this one or no owner is known.
func (g *gateway) checkOwnerAddr(k region.Key) string {
	m, ok := g.shards.Owner(k.String())
	if !ok || m.Name == g.name {
		return ""
	}
	return m.HTTPAddr
}

// beat delivers one TTL heartbeat of in: to its gateway, which routes it
// as the heartbeat handler does (region.HeartbeatRoute: take it, or
// forward it once to the check's owner) into HealthRunner.Heartbeat.
func (w *world) beat(in *instance) {
	g := in.heartbeatGateway()
	if g == nil {
		w.heartbeatFailed(in, nil, errNoGateway)
		return
	}
	w.heartbeatAt(in, g, false)
}

func (w *world) heartbeatAt(in *instance, g *gateway, forwarded bool) {
	inc := g.inc
	w.after(w.cfg.net.intra, func() {
		if !g.running || g.inc != inc {
			w.heartbeatFailed(in, g, errors.New("gateway went down"))
			return
		}
		if addr := region.HeartbeatRoute(in.key, forwarded, g.checkOwnerAddr); addr != "" {
			owner := g.rs.gatewayAt(addr)
			if owner == nil {
				w.heartbeatFailed(in, g, errors.New("check owner "+addr+" unknown"))
				return
			}
			w.m.heartbeatsForwarded++
			w.heartbeatAt(in, owner, true)
			return
		}
		resumed := in.hbResumed
		in.hbResumed = false
		if _, err := g.health.Heartbeat(w.ctx, in.key, region.Heartbeat{Status: region.StatusPassing}); err != nil {
			w.heartbeatFailed(in, g, err)
		} else {
			w.heartbeatAcked(in, g, resumed, region.StatusPassing)
		}
	})
}

// heartbeatFailed records a heartbeat the gateways did not take.
func (w *world) heartbeatFailed(in *instance, g *gateway, err error) {
	if !in.registered {
		return // deregistered meanwhile: the instance stops beating
	}
	w.m.heartbeatFailed++
	gw := ""
	if g != nil {
		gw = g.name
	}
	w.log.event(w.now, "heartbeat_failed", kv("gateway", gw), kv("instance", in.key.String()), kv("error", err.Error()))
}

// gatewayAt returns the region's gateway with HTTP address addr.
func (rs *regionSim) gatewayAt(addr string) *gateway {
	for _, g := range rs.gateways {
		if g.addr == addr {
			return g
		}
	}
	return nil
}
