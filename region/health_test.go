package region_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

var healthBase = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func hAt(d time.Duration) time.Time { return healthBase.Add(d) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func sec(n int) time.Duration { return time.Duration(n) * time.Second }

var hKey = region.Key{Service: "web", ID: "a"}

const hURL = "http://10.0.0.1:8080/health"

func hInst(status region.Status, output string, c *region.Check, idx uint64) region.Instance {
	return region.Instance{
		Service: hKey.Service, ID: hKey.ID, Address: "10.0.0.1", Port: 8080, Weight: 100,
		Status: status, Output: output, Check: c, ModifyIndex: idx,
	}
}

func ttlCheck(ttl, dereg time.Duration) *region.Check {
	return &region.Check{TTL: region.Duration(ttl), DeregisterCriticalAfter: region.Duration(dereg)}
}

func httpCheck(succ, fail int, dereg time.Duration) *region.Check {
	return &region.Check{HTTP: hURL, Interval: region.Duration(10 * time.Second), Timeout: region.Duration(2 * time.Second),
		SuccessBeforePassing: succ, FailuresBeforeCritical: fail, DeregisterCriticalAfter: region.Duration(dereg)}
}

// hStep is one step of a health script, applied to hKey at time hAt(at).
type hStep struct {
	at   time.Duration
	op   string // "sync", "tick", "hb", "result"
	inst *region.Instance
	// hb and result.
	status region.Status
	output string
	// tick: the effects expected, as strings. A probe effect may be written
	// as just "probe". With onlyProbes, other effects are not compared.
	want       []string
	onlyProbes bool
	// After the step, when not empty.
	wantStatus region.Status
}

func syncAt(at time.Duration, in region.Instance) hStep { return hStep{at: at, op: "sync", inst: &in} }
func syncGone(at time.Duration) hStep                   { return hStep{at: at, op: "sync"} }
func tickAt(at time.Duration, want ...string) hStep     { return hStep{at: at, op: "tick", want: want} }
func hbAt(at time.Duration, s region.Status, want region.Status) hStep {
	return hStep{at: at, op: "hb", status: s, wantStatus: want}
}
func resAt(at time.Duration, s region.Status, out string, want region.Status) hStep {
	return hStep{at: at, op: "result", status: s, output: out, wantStatus: want}
}

// probeAt is a tick that must emit a probe (other effects are not
// compared), followed by its result.
func probeAt(at time.Duration, s region.Status, want region.Status) []hStep {
	tick := tickAt(at, "probe")
	tick.onlyProbes = true
	return []hStep{tick, resAt(at, s, "HTTP GET "+hURL+": "+string(s), want)}
}

func setStatus(s region.Status, idx uint64, out string) string {
	return fmt.Sprintf("set-status web/a %s if-index=%d output=%q", s, idx, out)
}

func steps(parts ...any) []hStep {
	var out []hStep
	for _, p := range parts {
		switch p := p.(type) {
		case hStep:
			out = append(out, p)
		case []hStep:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("steps: %T", p))
		}
	}
	return out
}

func runHealth(t *testing.T, h *region.Health, script []hStep) {
	t.Helper()
	for i, s := range script {
		now := hAt(s.at)
		where := fmt.Sprintf("step %d (%s at +%s)", i, s.op, s.at)
		switch s.op {
		case "sync":
			var ins []region.Instance
			if s.inst != nil {
				ins = append(ins, *s.inst)
			}
			h.Sync(now, ins)
		case "tick":
			var got []string
			for _, e := range h.Tick(now) {
				if s.onlyProbes && e.Kind != region.EffectProbe {
					continue
				}
				got = append(got, e.String())
			}
			want := slices.Clone(s.want)
			for j, w := range want {
				if w == "probe" {
					want[j] = "probe web/a http " + hURL + " timeout=2s"
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: effects\n got: %q\nwant: %q", where, got, want)
			}
			if d := h.NextDeadline(); !d.IsZero() && !d.After(now) {
				t.Fatalf("%s: NextDeadline %s is not after the tick", where, d.Sub(healthBase))
			}
		case "hb":
			if err := h.Heartbeat(now, hKey, s.status, s.output); err != nil {
				t.Fatalf("%s: Heartbeat: %v", where, err)
			}
		case "result":
			h.Result(now, hKey, region.ProbeResult{Status: s.status, Output: s.output})
		default:
			t.Fatalf("%s: unknown op", where)
		}
		if s.wantStatus != "" {
			st, ok := h.State(hKey)
			if !ok {
				t.Fatalf("%s: no state for %s", where, hKey)
			}
			if st.Status != s.wantStatus {
				t.Fatalf("%s: status got %s, want %s (state %+v)", where, st.Status, s.wantStatus, st)
			}
		}
	}
}

func TestHealthScripts(t *testing.T) {
	const expired = "TTL expired (no heartbeat for 10s)"
	ok := "HTTP GET " + hURL + ": passing"
	bad := "HTTP GET " + hURL + ": critical"
	warn := "HTTP GET " + hURL + ": warning"
	P, W, C := region.StatusPassing, region.StatusWarning, region.StatusCritical
	tests := []struct {
		name   string
		script []hStep
	}{
		{"ttl heartbeat, expiry, heartbeat again", steps(
			syncAt(0, hInst(C, "", ttlCheck(sec(10), 0), 1)),
			tickAt(0),
			hbAt(sec(1), P, P),
			tickAt(sec(1), setStatus(P, 1, "")),
			syncAt(ms(1100), hInst(P, "", ttlCheck(sec(10), 0), 2)),
			tickAt(sec(11)), // deadline is 1s+10s: not yet expired
			tickAt(sec(12), setStatus(C, 2, expired)),
			tickAt(ms(12500)), // re-emission waits a second
			tickAt(sec(13), setStatus(C, 2, expired)),
			syncAt(ms(13200), hInst(C, expired, ttlCheck(sec(10), 0), 3)),
			tickAt(sec(14)),
			hbAt(sec(15), P, P),
			tickAt(sec(15), setStatus(P, 3, "")),
		)},
		{"ttl heartbeat carries its status", steps(
			syncAt(0, hInst(P, "", ttlCheck(sec(10), 0), 1)),
			hbAt(sec(1), W, W),
			tickAt(sec(1), setStatus(W, 1, "")),
			hbAt(sec(2), C, C),
			tickAt(sec(2), setStatus(C, 1, "")),
		)},
		{"new ttl registration expires TTL after sync", steps(
			syncAt(0, hInst(P, "", ttlCheck(sec(10), 0), 1)),
			tickAt(sec(10)),
			tickAt(sec(10)+1, setStatus(C, 1, expired)),
		)},
		{"success_before_passing=3 needs three passes", steps(
			syncAt(0, hInst(C, "", httpCheck(3, 1, 0), 1)),
			probeAt(sec(1), P, C),
			tickAt(sec(1)), // a held-back result changes nothing to write
			probeAt(sec(11), P, C),
			probeAt(sec(21), P, P),
			tickAt(sec(21), setStatus(P, 1, ok)),
		)},
		{"success streak broken by a failure", steps(
			syncAt(0, hInst(C, "", httpCheck(3, 1, 0), 1)),
			probeAt(sec(1), P, C),
			probeAt(sec(11), P, C),
			probeAt(sec(21), C, C),
			tickAt(sec(21), setStatus(C, 1, bad)),
			syncAt(sec(22), hInst(C, bad, httpCheck(3, 1, 0), 2)),
			probeAt(sec(31), P, C),
			probeAt(sec(41), P, C),
			probeAt(sec(51), P, P),
		)},
		{"failures_before_critical=3, a success resets", steps(
			syncAt(0, hInst(P, "", httpCheck(1, 3, 0), 1)),
			probeAt(sec(1), C, P),
			probeAt(sec(11), C, P),
			probeAt(sec(21), P, P), // resets the failures
			tickAt(sec(21), setStatus(P, 1, ok)),
			syncAt(sec(22), hInst(P, ok, httpCheck(1, 3, 0), 2)),
			probeAt(sec(31), C, P),
			probeAt(sec(41), C, P),
			tickAt(sec(41)),
			probeAt(sec(51), C, C),
			tickAt(sec(51), setStatus(C, 2, bad)),
		)},
		{"warning is immediate from passing", steps(
			syncAt(0, hInst(P, ok, httpCheck(2, 2, 0), 1)),
			probeAt(sec(1), W, W),
			tickAt(sec(1), setStatus(W, 1, warn)),
		)},
		{"warning does not lift critical", steps(
			syncAt(0, hInst(C, "", httpCheck(1, 1, 0), 1)),
			probeAt(sec(1), W, C),
			tickAt(sec(1)),
			probeAt(sec(11), P, P),
		)},
		{"warning breaks a failure streak", steps(
			syncAt(0, hInst(P, ok, httpCheck(1, 2, 0), 1)),
			probeAt(sec(1), C, P),
			probeAt(sec(11), W, W),
			probeAt(sec(21), C, W),
			probeAt(sec(31), C, C),
		)},
		{"warning to passing needs success_before_passing", steps(
			syncAt(0, hInst(W, warn, httpCheck(2, 1, 0), 1)),
			probeAt(sec(1), P, W),
			probeAt(sec(11), W, W),
			probeAt(sec(21), P, W),
			probeAt(sec(31), P, P),
		)},
		{"deregister after continuous criticality", steps(
			syncAt(0, hInst(P, "", ttlCheck(sec(10), sec(30)), 1)),
			tickAt(sec(11), setStatus(C, 1, expired)),
			syncAt(ms(11100), hInst(C, expired, ttlCheck(sec(10), sec(30)), 2)),
			tickAt(sec(40)),
			tickAt(sec(41), `deregister web/a if-index=2 reason="critical since 2025-03-04T10:00:11Z, deregister_critical_after 30s"`),
			tickAt(ms(41500)),
			tickAt(sec(42), `deregister web/a if-index=2 reason="critical since 2025-03-04T10:00:11Z, deregister_critical_after 30s"`),
			syncGone(ms(42100)),
			tickAt(sec(43)),
		)},
		{"deregister cancelled by a pass", steps(
			syncAt(0, hInst(P, "", ttlCheck(sec(10), sec(30)), 1)),
			tickAt(sec(11), setStatus(C, 1, expired)),
			syncAt(ms(11100), hInst(C, expired, ttlCheck(sec(10), sec(30)), 2)),
			hbAt(sec(20), P, P),
			tickAt(sec(20), setStatus(P, 2, "")),
			syncAt(ms(20100), hInst(P, "", ttlCheck(sec(10), sec(30)), 3)),
			tickAt(sec(31), setStatus(C, 3, expired)), // critical again since 31s
			syncAt(ms(31100), hInst(C, expired, ttlCheck(sec(10), sec(30)), 4)),
			tickAt(sec(41)),
			tickAt(sec(60)),
			tickAt(sec(61), `deregister web/a if-index=4 reason="critical since 2025-03-04T10:00:31Z, deregister_critical_after 30s"`),
		)},
		{"deregister counts machine status: damped pass does not cancel", steps(
			syncAt(0, hInst(C, "", httpCheck(2, 1, sec(30)), 1)),
			probeAt(sec(1), P, C),
			probeAt(sec(11), C, C),
			tickAt(sec(11), setStatus(C, 1, bad)),
			syncAt(ms(11100), hInst(C, bad, httpCheck(2, 1, sec(30)), 2)),
			probeAt(sec(21), P, C),
			tickAt(ms(29999)),
			tickAt(sec(30), `deregister web/a if-index=2 reason="critical since 2025-03-04T10:00:00Z, deregister_critical_after 30s"`),
		)},
		{"probe scheduling and lost probe", steps(
			syncAt(0, hInst(P, "", httpCheck(1, 1, 0), 1)),
			tickAt(sec(1), "probe"), // first probe within [0, 1s)
			tickAt(sec(2)),          // in flight: no second probe
			tickAt(ms(3999)),
			tickAt(sec(4), setStatus(C, 1, "probe timed out: no result within 3s")),
			syncAt(ms(4100), hInst(C, "probe timed out: no result within 3s", httpCheck(1, 1, 0), 2)),
			resAt(sec(5), P, ok, C), // late result: ignored
			tickAt(ms(13999)),
			tickAt(sec(14), "probe"), // interval after the timed-out result
			resAt(sec(15), P, ok, P),
			tickAt(sec(15), setStatus(P, 2, ok)),
			syncAt(ms(15100), hInst(P, ok, httpCheck(1, 1, 0), 3)),
			tickAt(ms(24999)),
			tickAt(sec(25), "probe"), // interval after the result, not the probe
		)},
		{"set-status re-emitted once a second until synced", steps(
			syncAt(0, hInst(P, ok, httpCheck(1, 1, 0), 1)),
			probeAt(sec(1), C, C),
			tickAt(sec(1), setStatus(C, 1, bad)),
			tickAt(ms(1500)),
			tickAt(ms(1999)),
			tickAt(sec(2), setStatus(C, 1, bad)),
			syncAt(ms(2200), hInst(P, ok, httpCheck(1, 1, 0), 1)), // the write failed
			tickAt(ms(2500)),
			tickAt(sec(3), setStatus(C, 1, bad)),
			syncAt(ms(3100), hInst(C, bad, httpCheck(1, 1, 0), 2)),
			tickAt(sec(4)),
			tickAt(sec(5)),
		)},
		{"new status emitted at once despite throttle", steps(
			syncAt(0, hInst(C, "", ttlCheck(sec(10), 0), 1)),
			hbAt(sec(1), P, P),
			tickAt(sec(1), setStatus(P, 1, "")),
			hbAt(ms(1200), W, W), // the write has not shown up yet
			tickAt(ms(1200), setStatus(W, 1, "")),
			tickAt(ms(1500)),
			hbAt(ms(1600), P, P),
			tickAt(ms(1600), setStatus(P, 1, "")),
			tickAt(ms(2599)),
			tickAt(ms(2600), setStatus(P, 1, "")),
			// The P write went through; then C is wanted, which the machine
			// thinks the store still has: the Sync that shows P brings it out.
			hbAt(ms(2700), C, C),
			tickAt(ms(2700)),
			syncAt(ms(2800), hInst(P, "", ttlCheck(sec(10), 0), 2)),
			tickAt(ms(2800), setStatus(C, 2, "")),
		)},
		{"store changed by someone else is overwritten", steps(
			syncAt(0, hInst(C, "", httpCheck(1, 1, 0), 1)),
			syncAt(sec(1), hInst(P, "", httpCheck(1, 1, 0), 2)), // same check, re-registered passing
			tickAt(sec(1), "probe", setStatus(C, 2, "")),
			resAt(sec(2), C, bad, C),
			tickAt(sec(2), setStatus(C, 2, bad)),
		)},
		{"restart keeps stored passing", steps(
			syncAt(0, hInst(P, ok, httpCheck(1, 3, 0), 7)),
			probeAt(sec(1), C, P),
			tickAt(sec(1)),
			probeAt(sec(11), P, P),
		)},
		{"sync resets on check change", steps(
			syncAt(0, hInst(P, ok, httpCheck(1, 3, 0), 1)),
			probeAt(sec(1), C, P),
			probeAt(sec(11), C, P),
			syncAt(sec(12), hInst(P, ok, httpCheck(1, 3, 0), 2)), // same check: kept
			probeAt(sec(21), C, C),
			tickAt(sec(21), setStatus(C, 2, bad)),
			syncAt(sec(22), hInst(P, ok, httpCheck(2, 3, 0), 3)), // changed: reset to stored passing
			tickAt(sec(23), "probe"),                             // first probe of the new state
			resAt(sec(23), C, bad, P),
			tickAt(sec(23)),
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runHealth(t, region.NewHealth(rand.New(rand.NewPCG(1, 1))), tc.script)
		})
	}
}

func TestHealthSyncCounters(t *testing.T) {
	h := region.NewHealth(rand.New(rand.NewPCG(3, 4)))
	c := httpCheck(1, 3, 0)
	h.Sync(hAt(0), []region.Instance{hInst(region.StatusPassing, "", c, 1)})
	h.Tick(hAt(sec(1)))
	h.Result(hAt(sec(1)), hKey, region.ProbeResult{Status: region.StatusCritical, Output: "x"})

	check := func(what string, wantFailures int, wantIndex uint64) {
		t.Helper()
		st, ok := h.State(hKey)
		if !ok {
			t.Fatalf("%s: state gone", what)
		}
		if st.Failures != wantFailures || st.ModifyIndex != wantIndex {
			t.Errorf("%s: failures, index got %d, %d, want %d, %d", what, st.Failures, st.ModifyIndex, wantFailures, wantIndex)
		}
	}
	check("after a failure", 1, 1)
	c2 := *c // equal by value, different pointer
	h.Sync(hAt(sec(2)), []region.Instance{hInst(region.StatusPassing, "", &c2, 5)})
	check("same check re-registered", 1, 5)
	// A check written without defaults equals the same check with them.
	bare := &region.Check{HTTP: hURL, FailuresBeforeCritical: 3, Interval: region.Duration(10 * time.Second), Timeout: region.Duration(2 * time.Second)}
	h.Sync(hAt(sec(3)), []region.Instance{hInst(region.StatusPassing, "", bare, 6)})
	check("same check without defaults", 1, 6)
	c3 := *c
	c3.Timeout = region.Duration(time.Second)
	h.Sync(hAt(sec(4)), []region.Instance{hInst(region.StatusPassing, "", &c3, 7)})
	check("changed check", 0, 7)
	h.Sync(hAt(sec(5)), []region.Instance{hInst(region.StatusPassing, "", nil, 8)})
	if _, ok := h.State(hKey); ok {
		t.Errorf("check removed: state kept")
	}
	h.Sync(hAt(sec(6)), nil)
	if got := h.NextDeadline(); !got.IsZero() {
		t.Errorf("empty: NextDeadline got %s, want zero", got)
	}
	if got := h.Tick(hAt(sec(7))); len(got) != 0 {
		t.Errorf("empty: Tick got %v, want nothing", got)
	}
}

func TestHealthHeartbeatErrors(t *testing.T) {
	h := region.NewHealth(nil)
	other := region.Key{Service: "web", ID: "plain"}
	probed := region.Key{Service: "web", ID: "probed"}
	ttl := hInst(region.StatusCritical, "", ttlCheck(sec(10), 0), 1)
	plain := hInst(region.StatusPassing, "", nil, 2)
	plain.ID = other.ID
	withHTTP := hInst(region.StatusPassing, "", httpCheck(1, 1, 0), 3)
	withHTTP.ID = probed.ID
	h.Sync(hAt(0), []region.Instance{ttl, plain, withHTTP})

	tests := []struct {
		name      string
		key       region.Key
		status    region.Status
		wantErr   string // "" for none, "notfound", or the field name
		wantState region.Status
	}{
		{"unknown", region.Key{Service: "web", ID: "nope"}, region.StatusPassing, "notfound", ""},
		{"unknown service", region.Key{Service: "api", ID: "a"}, region.StatusPassing, "notfound", ""},
		{"no check", other, region.StatusPassing, "check", ""},
		{"http check", probed, region.StatusPassing, "check", ""},
		{"bad status", hKey, "fine", "status", region.StatusCritical},
		{"empty status means passing", hKey, "", "", region.StatusPassing},
		{"warning", hKey, region.StatusWarning, "", region.StatusWarning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Heartbeat(hAt(sec(1)), tc.key, tc.status, "")
			var got string
			switch {
			case err == nil:
			case errors.Is(err, region.ErrNotFound):
				got = "notfound"
			default:
				got = region.FieldOf(err)
				if got == "" {
					got = "other: " + err.Error()
				}
			}
			if got != tc.wantErr {
				t.Fatalf("error got %q (%v), want %q", got, err, tc.wantErr)
			}
			if tc.wantState != "" {
				if st, _ := h.State(tc.key); st.Status != tc.wantState {
					t.Errorf("status got %s, want %s", st.Status, tc.wantState)
				}
			}
		})
	}
}

func TestHealthJitter(t *testing.T) {
	h := region.NewHealth(rand.New(rand.NewPCG(9, 9)))
	var ins []region.Instance
	for i := range 50 {
		in := hInst(region.StatusCritical, "", httpCheck(1, 1, 0), uint64(i+1))
		in.ID = fmt.Sprintf("i%02d", i)
		ins = append(ins, in)
	}
	now := hAt(sec(100))
	h.Sync(now, ins)
	distinct := map[time.Time]bool{}
	for _, in := range ins {
		st, _ := h.State(in.Key())
		if st.NextProbe.Before(now) || !st.NextProbe.Before(now.Add(time.Second)) {
			t.Errorf("%s: first probe at +%s, want within [0, 1s)", in.Key(), st.NextProbe.Sub(now))
		}
		distinct[st.NextProbe] = true
	}
	if len(distinct) < 40 {
		t.Errorf("first probes not spread: %d distinct times for 50 instances", len(distinct))
	}
	if got := h.Tick(now.Add(time.Second)); len(got) != 50 {
		t.Errorf("probes due after 1s: got %d, want 50", len(got))
	}
}

// healthRun drives a Health through a generated scenario, always ticking at
// NextDeadline, and returns the effect log.
func healthRun(t *testing.T, seed uint64, reverse bool) []string {
	h := region.NewHealth(rand.New(rand.NewPCG(seed, seed)))
	var ins []region.Instance
	for i := range 12 {
		var c *region.Check
		switch i % 3 {
		case 0:
			c = httpCheck(1+i%2, 2, sec(30))
		case 1:
			c = &region.Check{TCP: fmt.Sprintf("10.0.0.%d:9000", i), Interval: region.Duration(5 * time.Second), Timeout: region.Duration(time.Second), FailuresBeforeCritical: 2}
		case 2:
			c = ttlCheck(sec(7), sec(20))
		}
		in := hInst(region.StatusCritical, "", c, uint64(i+1))
		in.Service = []string{"api", "web"}[i%2]
		in.ID = fmt.Sprintf("n%02d", i)
		ins = append(ins, in)
	}
	sync := func(now time.Time) {
		s := slices.Clone(ins)
		if reverse {
			slices.Reverse(s)
		}
		h.Sync(now, s)
	}
	// outcome is a fixed function of key and time, so runs agree exactly
	// when their schedules do.
	outcome := func(k region.Key, now time.Time) region.Status {
		f := fnv.New32a()
		fmt.Fprintf(f, "%s %d", k, now.UnixNano())
		switch f.Sum32() % 5 {
		case 0:
			return region.StatusCritical
		case 1:
			return region.StatusWarning
		case 2:
			return "" // lost probe: no result
		}
		return region.StatusPassing
	}
	var log []string
	now := hAt(0)
	sync(now)
	end := hAt(5 * time.Minute)
	for step := 0; step < 5000; step++ {
		next := h.NextDeadline()
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(now) {
			now = next
		}
		effs := h.Tick(now)
		if !slices.IsSortedFunc(effs, func(a, b region.Effect) int {
			if a.Key != b.Key {
				if a.Key.Less(b.Key) {
					return -1
				}
				return 1
			}
			return int(a.Kind) - int(b.Kind)
		}) {
			t.Fatalf("effects not sorted at +%s: %v", now.Sub(healthBase), effs)
		}
		if d := h.NextDeadline(); !d.IsZero() && !d.After(now) {
			t.Fatalf("NextDeadline +%s not after tick at +%s", d.Sub(healthBase), now.Sub(healthBase))
		}
		for _, e := range effs {
			log = append(log, fmt.Sprintf("+%s %s", now.Sub(healthBase), e))
			switch e.Kind {
			case region.EffectProbe:
				if s := outcome(e.Key, now); s != "" {
					h.Result(now.Add(ms(100)), e.Key, region.ProbeResult{Status: s, Output: string(s)})
				}
			case region.EffectSetStatus:
				for i := range ins {
					if ins[i].Key() == e.Key && ins[i].ModifyIndex == e.IfIndex {
						ins[i].Status, ins[i].Output, ins[i].ModifyIndex = e.Status, e.Output, ins[i].ModifyIndex+100
					}
				}
				sync(now)
			case region.EffectDeregister:
				ins = slices.DeleteFunc(ins, func(in region.Instance) bool { return in.Key() == e.Key })
				sync(now)
			}
		}
		// TTL instances heartbeat now and then.
		if now.Second()%13 == 0 {
			for _, in := range ins {
				if in.Check.TTL != 0 {
					_ = h.Heartbeat(now, in.Key(), region.StatusPassing, "")
				}
			}
		}
	}
	return log
}

func TestHealthDeterminism(t *testing.T) {
	a := healthRun(t, 42, false)
	b := healthRun(t, 42, true)
	if len(a) < 50 {
		t.Fatalf("scenario too small: %d effects", len(a))
	}
	if !slices.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("same seed, different logs at %d:\n got: %s\nwant: %s", i, b[i], a[i])
			}
		}
		t.Fatalf("same seed, logs of different length: %d and %d", len(a), len(b))
	}
	for _, kind := range []string{"probe", "set-status", "deregister"} {
		if !slices.ContainsFunc(a, func(s string) bool { return strings.Contains(s, " "+kind+" ") }) {
			t.Errorf("scenario never emitted %s", kind)
		}
	}
	if c := healthRun(t, 43, false); slices.Equal(a, c) {
		t.Errorf("different seeds gave identical logs; is the jitter used?")
	}
}

func TestEffectString(t *testing.T) {
	tests := []struct {
		e    region.Effect
		want string
	}{
		{region.Effect{Kind: region.EffectProbe, Key: hKey, CheckKind: "tcp", Target: "10.0.0.1:80", Timeout: time.Second},
			"probe web/a tcp 10.0.0.1:80 timeout=1s"},
		{region.Effect{Kind: region.EffectSetStatus, Key: hKey, Status: region.StatusWarning, Output: `a "b"`, IfIndex: 4},
			`set-status web/a warning if-index=4 output="a \"b\""`},
		{region.Effect{Kind: region.EffectDeregister, Key: hKey, IfIndex: 9, Reason: "r"},
			`deregister web/a if-index=9 reason="r"`},
		{region.Effect{Kind: 77, Key: hKey}, "effect(77) web/a"},
	}
	for _, tc := range tests {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// TestHealthTwoOwnersDoNotLivelock: two gateways run the same instance's
// check (membership is moving) and disagree; each rewrites the other's
// status. Each machine must write at most once per check interval, not
// right after every write of the other (5,500-6,900 writes where about 24
// were expected in the gateway-crash-restart scenario).
func TestHealthTwoOwnersDoNotLivelock(t *testing.T) {
	P, C := region.StatusPassing, region.StatusCritical
	check := httpCheck(1, 1, 0)
	a := region.NewHealth(rand.New(rand.NewPCG(1, 1)))
	b := region.NewHealth(rand.New(rand.NewPCG(2, 2)))
	stored := hInst(C, "", check, 1)
	a.Sync(hAt(0), []region.Instance{stored})
	b.Sync(hAt(0), []region.Instance{stored})
	writes := map[string]int{}
	verdict := map[string]region.ProbeResult{"a": {Status: P, Output: "ok"}, "b": {Status: C, Output: "bad"}}
	const step = 10 * time.Millisecond
	for now := time.Duration(0); now < 60*time.Second; now += step {
		for _, m := range []struct {
			name string
			h    *region.Health
		}{{"a", a}, {"b", b}} {
			for _, e := range m.h.Tick(hAt(now)) {
				switch e.Kind {
				case region.EffectProbe:
					m.h.Result(hAt(now), e.Key, verdict[m.name])
				case region.EffectSetStatus:
					if e.IfIndex != stored.ModifyIndex {
						continue // compare-and-set failed
					}
					writes[m.name]++
					stored.Status, stored.Output, stored.ModifyIndex = e.Status, e.Output, stored.ModifyIndex+1
					// Both see the write (the cache follows the store).
					a.Sync(hAt(now), []region.Instance{stored})
					b.Sync(hAt(now), []region.Instance{stored})
				}
			}
		}
	}
	// One check interval is 10s: at most 6 writes each in 60s, plus the
	// first one.
	for name, n := range writes {
		if n > 7 {
			t.Errorf("gateway %s wrote the status %d times in 60s, want at most 7 (one per 10s interval)", name, n)
		}
	}
	if writes["a"] == 0 || writes["b"] == 0 {
		t.Errorf("writes %v: both disagreeing owners should still write", writes)
	}
}
