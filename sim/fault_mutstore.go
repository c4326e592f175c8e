package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// Invariants of the store work (issue 12: store mutants).
const (
	// InvRegistrationKept: a put that is not a registration (a health
	// status write) never replaces what the instance last registered: a
	// status write based on an older record must not overwrite a newer
	// registration (compare-and-set on ModifyIndex).
	InvRegistrationKept = "registration_kept"
	// InvStoreDeltaComplete: a store's delta (ChangesSince with ok) holds
	// every committed change after the version asked for, with no gap
	// (truthStore, store.go).
	InvStoreDeltaComplete = "store_delta_complete"
)

func init() {
	InvariantNames = append(InvariantNames, InvRegistrationKept, InvStoreDeltaComplete)
}

// port is the port the instance's current process listens on.
func (in *instance) port() int { return 8080 + in.redeploys }

// listensAt reports whether a probe of target (a check URL or host:port)
// reaches the instance's current process: after a redeploy the old port
// is closed (connection refused).
func (in *instance) listensAt(target string) bool {
	p := fmt.Sprintf(":%d", in.port())
	i := strings.Index(target, p)
	if i < 0 {
		return false
	}
	rest := target[i+len(p):]
	return rest == "" || rest[0] == '/'
}

// redeployFault starts a redeploy fault: Count redeploys of Service's
// instances in Region, spread evenly over Over, taking the registered
// instances in turn (an instance may redeploy more than once). Each is a
// rolling update of one process: the new process registers the same id on
// the next port through a running gateway of the region (retrying every
// 2s while that fails, as a client does) and the old process stops once
// that registration is acknowledged. Meanwhile the gateway that runs the
// instance's check may still hold the old record: a probe of the old
// port fails and its status write, based on the old record's index, must
// lose to the new registration (registration_kept).
func (w *world) redeployFault(f *scenarios.Fault) {
	c := w.cfg
	rs := w.regions[c.regionIdx[f.Region]]
	svc := c.serviceIdx[f.Service]
	over := f.Over.D()
	sp := w.openSpan(f.Kind, fmt.Sprintf("%s in %s: %d over %s", f.Service, rs.name, f.Count, over))
	busy := map[*instance]bool{}
	next := 0
	for i := range f.Count {
		w.after(time.Duration(int64(over)*int64(i)/int64(f.Count)), func() {
			var live []*instance
			for _, in := range rs.bySvc[svc] {
				if in.registered && !busy[in] {
					live = append(live, in)
				}
			}
			if len(live) == 0 {
				return
			}
			in := live[next%len(live)]
			next++
			busy[in] = true
			w.redeploy(in, 0, func() { delete(busy, in) })
		})
	}
	w.after(over, func() { w.closeSpan(sp); w.quiet() })
}

// redeploy registers in's next process (on the next port) through a
// running gateway; done runs when it was acknowledged or given up.
func (w *world) redeploy(in *instance, attempt int, done func()) {
	w.registerVia(in, attempt, func(next int) { w.redeploy(in, next, done) }, done, func(g *gateway, retry func(string)) {
		rs := in.rs
		if !in.registered {
			done() // deregistered meanwhile: nothing to update
			return
		}
		port := in.port() + 1
		reg, err := in.registration(w, port)
		if err != nil {
			w.registerRefused(rs, in.key, err)
			done()
			return
		}
		in.sentPort = port // the store may hold it from now on, acknowledged or not
		ch, err := g.registrar.Register(w.ctx, reg, "")
		if err != nil {
			retry(err.Error())
			return
		}
		// Acknowledged: the old process stops, the new one answers on port.
		w.changeTruth(in, func() { in.redeploys, in.sentPort = in.redeploys+1, 0 })
		w.log.event(w.now, "redeploy", kv("region", rs.name), kv("instance", in.key.String()),
			kvInt("port", int64(port)), kvInt("version", int64(ch.Version)))
		w.acknowledge(in, ch, false)
		w.committed(rs, ch, true)
		done()
	})
}

// checkRegistrationKept judges a put the store committed: it must carry
// the port of the instance's last acknowledged registration (or of one
// sent since, whose outcome the client does not know yet: a write that
// lost its answer may have been applied).
func (w *world) checkRegistrationKept(rs *regionSim, in *instance, ch region.Change) {
	if in == nil || !in.registered || ch.Instance == nil || ch.Instance.Port == in.port() ||
		(in.sentPort != 0 && ch.Instance.Port == in.sentPort) {
		return
	}
	w.m.violate(InvRegistrationKept, fmt.Sprintf("region %s: v%d put %s on port %d over its registration on port %d (status %s, a write based on an older record)",
		rs.name, ch.Version, in.key, ch.Instance.Port, in.port(), ch.Instance.Status))
}

// registration is what the instance's client sends for its process on
// port, through the gateway's registration handler: the JSON body of PUT
// /v1/services/{service}/instances/{id} as a client encodes it (no status:
// the gateway picks the initial one), decoded and validated as the
// handler does (region.DecodeRegistration). So the handler's decoding and
// defaults run in the simulation, not a copy of them.
func (in *instance) registration(w *world, port int) (region.Instance, error) {
	rec := in.recordAt(w, "", port)
	return w.decodeRegistration(region.Registration{Address: rec.Address, Port: rec.Port, Zone: rec.Zone, Check: rec.Check},
		rec.Service, rec.ID)
}

func (w *world) decodeRegistration(r region.Registration, service, id string) (region.Instance, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return region.Instance{}, fmt.Errorf("encoding the registration of %s/%s: %w", service, id, err)
	}
	return region.DecodeRegistration(body, service, id, w.wall())
}

// registerRefused records a registration the handler refused (HTTP 400):
// the client gets an error and does not retry.
func (w *world) registerRefused(rs *regionSim, k region.Key, err error) {
	w.m.registerFail++
	w.log.event(w.now, "register_failed", kv("region", rs.name), kv("instance", k.String()), kv("error", err.Error()))
}
