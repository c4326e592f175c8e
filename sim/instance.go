package sim

import (
	"fmt"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// instState is what an instance really does, whatever the registry says.
type instState uint8

const (
	stateUp     instState = iota // answers
	stateFailed                  // stopped answering (hung or crashed without deregistering)
	stateSlow                    // answers after slow
	stateFlap                    // alternates down and up every flapPeriod
	stateBusy                    // sheds load: answers everything with HTTP 429 (instances_overload)
)

// Probe outputs, as the simulated instances answer.
const (
	probeOKOutput      = "HTTP 200 OK"
	probeTimeoutOutput = "probe timed out"
	probeRefused       = "connection refused"
	probeOverloaded    = "HTTP 429 Too Many Requests"
)

// instance is the ground truth of one service instance.
type instance struct {
	rs   *regionSim
	svc  int
	n    int
	key  region.Key
	ref  string // "region/service/id", failover.Endpoint.Ref
	zone string
	addr string

	registered       bool // in the region's registry (acknowledged, not deleted)
	ackAt            time.Duration
	deregAt          time.Duration
	regStatus        region.Status // status in the registry
	regCriticalSince time.Duration

	state      instState
	slow       time.Duration
	flapDown   bool
	flapPeriod time.Duration
	faultGen   int // bumped by each instance fault, to stop flapping chains
	serving    bool

	blockedBy []int // gateways whose probes time out (probe_blocked), by index
	hbGen     int   // TTL heartbeat chain
	redeploys int   // redeploy faults done: the instance listens on port 8080+redeploys (fault_mutstore.go)
	sentPort  int   // port of a redeploy's registration sent but not acknowledged yet (0: none)

	hbResumed bool     // a heartbeat was skipped (the instance was down): the next one sent resumes them
	deregVia  *gateway // the gateway its deregistration goes through (nil: any running one)
}

func (w *world) newInstance(rs *regionSim, svc int) *instance {
	sc := &w.cfg.services[svc]
	n := rs.nextID[svc] + 1
	rs.nextID[svc] = n
	id := fmt.Sprintf("%s-%s-%d", sc.name, rs.name, n)
	in := &instance{rs: rs, svc: svc, n: n, key: region.Key{Service: sc.name, ID: id},
		zone: rs.cfg.zones[(n-1)%len(rs.cfg.zones)], addr: fmt.Sprintf("%s.%s.internal", id, rs.name)}
	in.ref = rs.name + "/" + sc.name + "/" + id
	rs.insts[in.key] = in
	rs.bySvc[svc] = append(rs.bySvc[svc], in)
	return in
}

// record is the registration of the instance with status st.
func (in *instance) record(w *world, st region.Status) region.Instance {
	return in.recordAt(w, st, in.port())
}

// recordAt is the registration of the instance listening on port.
func (in *instance) recordAt(w *world, st region.Status, port int) region.Instance {
	ck := w.cfg.services[in.svc].check.WithDefaults()
	out := ""
	if ck.Kind() == "http" {
		ck.HTTP = fmt.Sprintf("http://%s:%d/health", in.addr, port)
		if st == region.StatusPassing {
			out = probeOKOutput
		}
	}
	return region.Instance{RegisteredAt: w.wall(), ID: in.key.ID, Service: in.key.Service, Address: in.addr, Port: port,
		Zone: in.zone, Weight: region.DefaultWeight, Status: st, Output: out, Check: &ck, UpdatedAt: w.wall()}
}

// up reports whether the process answers at all.
func (in *instance) up() bool {
	switch in.state {
	case stateFailed:
		return false
	case stateFlap:
		return !in.flapDown
	case stateBusy:
		return false // it answers, but only with 429: no lookup is served
	}
	return true
}

// usableFrom reports whether a caller in region from would reach a live
// instance: registered, answering, and its region reachable both ways.
func (in *instance) usableFrom(w *world, from int) bool {
	return in.serving && w.net.reachable(from, in.rs.idx)
}

// probe is what a health probe sent now sees, and after how long.
func (in *instance) probe(w *world, timeout time.Duration) (region.ProbeResult, time.Duration) {
	rtt := 2 * w.cfg.net.intra
	switch {
	case !in.registered:
		return region.ProbeResult{Status: region.StatusCritical, Output: probeRefused}, rtt
	case in.state == stateBusy:
		return region.ProbeResult{Status: region.StatusWarning, Output: probeOverloaded}, rtt
	case !in.up():
		return region.ProbeResult{Status: region.StatusCritical, Output: probeTimeoutOutput}, timeout
	}
	lat := rtt
	if in.state == stateSlow {
		lat += in.slow
	}
	if lat >= timeout {
		return region.ProbeResult{Status: region.StatusCritical, Output: probeTimeoutOutput}, timeout
	}
	return region.ProbeResult{Status: region.StatusPassing, Output: probeOKOutput}, lat
}

// changeTruth changes what the instance really does; the gateways' health
// runners see it at their next probes.
func (w *world) changeTruth(in *instance, fn func()) {
	fn()
	w.updateServing(in)
}

// updateServing keeps the per-service count of live instances and the
// outage bookkeeping current.
func (w *world) updateServing(in *instance) {
	now := in.registered && in.up()
	if now == in.serving {
		return
	}
	in.serving = now
	rs := in.rs
	w.oracleTruth(rs, in.svc)
	before := rs.alive[in.svc]
	if now {
		rs.alive[in.svc]++
	} else {
		rs.alive[in.svc]--
	}
	w.m.aliveChanged(rs, in.svc, before, rs.alive[in.svc])
}

// startHeartbeats runs a TTL instance's heartbeats: every TTL/2 while it is
// registered, sent only while it is up.
func (w *world) startHeartbeats(in *instance) {
	ck := w.cfg.services[in.svc].check
	if ck.Kind() != "ttl" {
		return
	}
	in.hbGen++
	gen := in.hbGen
	period := max(ck.TTL.Std()/2, 10*time.Millisecond)
	var beat func()
	beat = func() {
		if in.hbGen != gen || !in.registered {
			return
		}
		if in.up() {
			w.beat(in)
		} else {
			in.hbResumed = true
		}
		w.after(period, beat)
	}
	w.after(period, beat)
}
