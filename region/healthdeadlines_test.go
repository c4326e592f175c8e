package region

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// fullScanTick is Tick as it was before the deadline heap: visit every
// state in key order. Kept as the reference the heap must agree with.
func (h *Health) fullScanTick(now time.Time) []Effect {
	ks := make([]Key, 0, len(h.states))
	for k := range h.states {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, healthKeyCmp)
	var out []Effect
	for _, k := range ks {
		st := h.states[k]
		switch st.kind {
		case "ttl":
			if !st.ttlExpired && now.After(st.ttlDeadline) {
				st.ttlExpired = true
				st.set(now, StatusCritical, fmt.Sprintf("TTL expired (no heartbeat for %s)", st.check.TTL.Std()))
			}
		case "http", "tcp":
			if st.inFlight && !now.Before(st.probeDeadline) {
				st.result(now, ProbeResult{Status: StatusCritical,
					Output: fmt.Sprintf("probe timed out: no result within %s", st.check.Timeout.Std()+time.Second)})
			}
			if !st.inFlight && !now.Before(st.nextProbe) {
				target := st.check.HTTP
				if st.kind == "tcp" {
					target = st.check.TCP
				}
				out = append(out, Effect{Kind: EffectProbe, Key: k, CheckKind: st.kind, Target: target, Timeout: st.check.Timeout.Std()})
				st.inFlight = true
				st.probeDeadline = now.Add(st.check.Timeout.Std() + time.Second)
			}
		}
		if due, ok := st.setDue(); ok && !now.Before(due) {
			out = append(out, Effect{Kind: EffectSetStatus, Key: k, Status: st.status, Output: st.output, IfIndex: st.index})
			st.setSent, st.setStatus, st.setOutput, st.setAt = true, st.status, st.output, now
		}
		if due, ok := st.deregDue(); ok && !now.Before(due) {
			out = append(out, Effect{Kind: EffectDeregister, Key: k, IfIndex: st.index,
				Reason: fmt.Sprintf("critical since %s, deregister_critical_after %s",
					st.criticalSince.UTC().Format(time.RFC3339Nano), st.check.DeregisterCriticalAfter.Std())})
			st.deregAt = now
		}
	}
	slices.SortStableFunc(out, func(a, b Effect) int {
		if c := healthKeyCmp(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	return out
}

// fullScanNextDeadline is NextDeadline as it was before the heap.
func (h *Health) fullScanNextDeadline() time.Time {
	var best time.Time
	consider := func(t time.Time) {
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	for _, st := range h.states {
		switch st.kind {
		case "ttl":
			if !st.ttlExpired {
				consider(st.ttlDeadline.Add(time.Nanosecond))
			}
		case "http", "tcp":
			if st.inFlight {
				consider(st.probeDeadline)
			} else {
				consider(st.nextProbe)
			}
		}
		if due, ok := st.setDue(); ok {
			consider(due)
		}
		if due, ok := st.deregDue(); ok {
			consider(due)
		}
	}
	return best
}

// The heap-driven Tick and NextDeadline give exactly what the full scan
// gave, on random schedules of syncs (catalog changes, other writers,
// deletions, check changes), heartbeats, probe results and ticks over a
// few keys of every check kind.
func TestHealthDeadlineHeapMatchesFullScan(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		base := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
		heap, scan := NewHealth(nil), NewHealth(nil)
		nkeys := rapid.IntRange(1, 6).Draw(rt, "keys")
		keys := make([]Key, nkeys)
		for i := range keys {
			keys[i] = Key{Service: fmt.Sprintf("s%d", i%2), ID: fmt.Sprintf("i%d", i)}
		}
		checks := []*Check{
			nil,
			{HTTP: "http://10.0.0.1/h", Interval: Duration(10 * time.Second), Timeout: Duration(2 * time.Second), FailuresBeforeCritical: 2},
			{TCP: "10.0.0.1:80", Interval: Duration(3 * time.Second), SuccessBeforePassing: 2, DeregisterCriticalAfter: Duration(20 * time.Second)},
			{TTL: Duration(5 * time.Second), DeregisterCriticalAfter: Duration(15 * time.Second)},
			{TTL: Duration(2 * time.Second)},
		}
		statuses := []Status{"", StatusPassing, StatusWarning, StatusCritical}
		// The catalog as the store has it.
		cat := map[Key]Instance{}
		var index uint64
		now := base
		var last []Effect // the heap machine's last Tick
		steps := rapid.IntRange(1, 120).Draw(rt, "steps")
		for i := range steps {
			now = now.Add(time.Duration(rapid.Int64Range(0, int64(4*time.Second)).Draw(rt, "dt")))
			k := keys[rapid.IntRange(0, nkeys-1).Draw(rt, "key")]
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); op {
			case 0, 1: // write or rewrite an instance
				index++
				in := cat[k]
				if _, ok := cat[k]; !ok || rapid.Bool().Draw(rt, "newcheck") {
					in = Instance{Service: k.Service, ID: k.ID, Address: "10.0.0.1", Port: 80, Weight: 100,
						Check: checks[rapid.IntRange(0, len(checks)-1).Draw(rt, "check")]}
				}
				in.Status = statuses[rapid.IntRange(0, len(statuses)-1).Draw(rt, "status")]
				in.Output = rapid.SampledFrom([]string{"", "ok", "down"}).Draw(rt, "output")
				in.ModifyIndex = index
				cat[k] = in
				syncBoth(heap, scan, now, cat)
			case 2: // delete
				delete(cat, k)
				syncBoth(heap, scan, now, cat)
			case 3: // the store takes the machine's last write
				if e, ok := lastSet(last, k); ok {
					if in, ok := cat[k]; ok && in.ModifyIndex == e.IfIndex {
						index++
						in.Status, in.Output, in.ModifyIndex = e.Status, e.Output, index
						cat[k] = in
						syncBoth(heap, scan, now, cat)
					}
				}
			case 4: // heartbeat
				s := statuses[rapid.IntRange(0, len(statuses)-1).Draw(rt, "hb")]
				e1 := heap.Heartbeat(now, k, s, "beat")
				e2 := scan.Heartbeat(now, k, s, "beat")
				if fmt.Sprint(e1) != fmt.Sprint(e2) {
					rt.Fatalf("step %d: heartbeat errors differ: %v vs %v", i, e1, e2)
				}
			case 5: // probe result
				r := ProbeResult{Status: statuses[rapid.IntRange(1, len(statuses)-1).Draw(rt, "res")], Output: "probe"}
				heap.Result(now, k, r)
				scan.Result(now, k, r)
			default: // tick, sometimes exactly at the next deadline
				if rapid.Bool().Draw(rt, "atDeadline") {
					if d := scan.fullScanNextDeadline(); d.After(now) {
						now = d
					}
				}
				got, want := heap.Tick(now), scan.fullScanTick(now)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					rt.Fatalf("step %d: Tick(%s)\n got %v\nwant %v", i, now.Sub(base), got, want)
				}
				last = got
			}
			if got, want := heap.NextDeadline(), scan.fullScanNextDeadline(); !got.Equal(want) {
				rt.Fatalf("step %d: NextDeadline = %s, want %s", i, got.Sub(base), want.Sub(base))
			}
			if len(heap.due.h) > len(heap.states) {
				rt.Fatalf("step %d: heap holds %d entries for %d states", i, len(heap.due.h), len(heap.states))
			}
			for j, d := range heap.due.h {
				if d.st.hidx != j || heap.states[d.st.key] != d.st {
					rt.Fatalf("step %d: heap entry %d is not its state's (hidx %d) or not a live state", i, j, d.st.hidx)
				}
				if at, ok := d.st.deadline(); !ok || !at.Equal(d.at) {
					rt.Fatalf("step %d: heap entry %d at %s, state's deadline %s", i, j, d.at.Sub(base), at.Sub(base))
				}
			}
		}
	})
}

// lastSet returns the last SetStatus for k among effs.
func lastSet(effs []Effect, k Key) (Effect, bool) {
	for _, e := range slices.Backward(effs) {
		if e.Key == k && e.Kind == EffectSetStatus {
			return e, true
		}
	}
	return Effect{}, false
}

func syncBoth(a, b *Health, now time.Time, cat map[Key]Instance) {
	ins := make([]Instance, 0, len(cat))
	for _, in := range cat {
		ins = append(ins, in)
	}
	slices.SortFunc(ins, func(x, y Instance) int { return cmp.Compare(x.ModifyIndex, y.ModifyIndex) })
	a.Sync(now, ins)
	b.Sync(now, slices.Clone(ins))
}
