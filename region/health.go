package region

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Health decides instance health from probe results, heartbeats and time.
// It is a pure state machine: it never reads the clock, sleeps, starts
// goroutines or does I/O. A driver feeds it the catalog (Sync), heartbeats
// (Heartbeat), probe outcomes (Result) and the time (Tick), and carries out
// the effects Tick returns: run a probe, write a status to the Store,
// deregister an instance. It is not safe for concurrent use; the driver
// guards it.
//
// Which instances are checked: Sync keeps one check state per instance that
// has a Check. A state is kept across Syncs while the instance's Check (with
// defaults filled) is unchanged, even if the instance was written again; it
// is reset when the Check changes and dropped when the instance or its Check
// is gone. A new or reset state starts from the status and output the store
// has, so a gateway restart keeps a passing instance passing until probes
// say otherwise, and a new registration (InitialStatus critical) stays
// critical until it has been seen healthy. The latest ModifyIndex from Sync
// is kept for each instance; Syncs are expected in catalog order.
//
// HTTP and TCP checks: the first probe of a new state is due at the Sync
// time plus a random jitter in [0, min(Interval, 1s)), drawn from the rng in
// key order, so new registrations are checked quickly but not all at once.
// A probe is in flight from the Tick that emits it until its Result; no
// other probe for that instance is emitted meanwhile. If no Result arrives
// within Timeout+1s the probe counts as a critical result ("probe timed
// out"). After a result the next probe is due at the result time plus
// Interval. Results that arrive when no probe is in flight (late, or from
// before a reset) are ignored.
//
// Flap damping, per result:
//   - passing: consecutive successes +1, failures reset; the status becomes
//     passing once successes >= SuccessBeforePassing.
//   - critical (and any unknown status): consecutive failures +1, successes
//     reset; the status becomes critical once failures >= FailuresBeforeCritical.
//   - warning (HTTP 429: alive but shedding load) is neither a success nor a
//     failure: it breaks both streaks. It sets warning at once when the
//     status is passing or warning; a critical instance stays critical, since
//     only SuccessBeforePassing passing results lead out of critical.
//
// The output follows the status: a result updates the output only when its
// own status is the status the machine ends up with, so a result held back
// by damping changes nothing that would be written to the store.
//
// TTL checks: the deadline is the Sync time plus TTL when the state is
// created, and each Heartbeat sets the status it carries at once (no
// damping) and moves the deadline to its time plus TTL. When a Tick finds
// now after the deadline the status becomes critical with the output
// "TTL expired (no heartbeat for <ttl>)". TTL checks emit no probes.
//
// Store writes: whenever the machine's status or output differs from what
// the store had at the last Sync, Tick emits EffectSetStatus carrying the
// last ModifyIndex as IfIndex (compare-and-set). It is emitted at once for a
// new status or output, then re-emitted at most once a second for as long
// as the store does not show it (the driver may have failed to write; the
// re-emission is its retry). The machine is the authority for checked
// instances: a status written by anyone else is overwritten, but never
// sooner than one check interval (a second for TTL checks) after the
// machine's own last write, so two machines that disagree cannot livelock.
//
// Deregistration: when a check has DeregisterCriticalAfter D and the
// machine's status has been critical continuously since T, Tick emits
// EffectDeregister from T+D on, at most once a second, until the instance
// disappears from Sync. Any non-critical status resets T. A state created
// critical counts from its creation.
//
// NextDeadline says when Tick next has something to do. After Tick(now) it
// is always zero or after now, so a driver that sleeps until it never spins.
//
// Cost: the machine keeps an indexed min-heap of each state's next
// deadline (healthDeadlines), so Tick costs O(due · log n) and sorts only
// the due keys, and NextDeadline is O(1), whatever the number of checks.
type Health struct {
	rng       *rand.Rand
	states    map[Key]*healthState
	unchecked map[Key]struct{} // instances in the last Sync without a check
	due       healthDeadlines
	scratch   []*healthState // Tick's due states, reused
}

// ProbeResult is the outcome of one HTTP or TCP probe.
type ProbeResult struct {
	Status Status
	Output string
}

// EffectKind is the kind of an Effect. Effects of one instance are ordered
// by kind in the order below.
type EffectKind int

// The effects Tick returns.
const (
	// EffectProbe: run the check (Probe) and report with Result.
	EffectProbe EffectKind = iota + 1
	// EffectSetStatus: write Status and Output to the store, if its
	// ModifyIndex is still IfIndex.
	EffectSetStatus
	// EffectDeregister: delete the instance from the store, if its
	// ModifyIndex is still IfIndex.
	EffectDeregister
)

func (k EffectKind) String() string {
	switch k {
	case EffectProbe:
		return "probe"
	case EffectSetStatus:
		return "set-status"
	case EffectDeregister:
		return "deregister"
	}
	return fmt.Sprintf("effect(%d)", int(k))
}

// Effect is something the driver of Health must do. Which fields are set
// depends on Kind.
type Effect struct {
	Kind EffectKind
	Key  Key

	// EffectProbe.
	CheckKind string        // "http" or "tcp"
	Target    string        // URL or host:port
	Timeout   time.Duration // probe timeout

	// EffectSetStatus.
	Status Status
	Output string

	// EffectSetStatus and EffectDeregister: the ModifyIndex the write is
	// conditional on.
	IfIndex uint64

	// EffectDeregister.
	Reason string
}

func (e Effect) String() string {
	switch e.Kind {
	case EffectProbe:
		return fmt.Sprintf("probe %s %s %s timeout=%s", e.Key, e.CheckKind, e.Target, e.Timeout)
	case EffectSetStatus:
		return fmt.Sprintf("set-status %s %s if-index=%d output=%q", e.Key, e.Status, e.IfIndex, e.Output)
	case EffectDeregister:
		return fmt.Sprintf("deregister %s if-index=%d reason=%q", e.Key, e.IfIndex, e.Reason)
	}
	return fmt.Sprintf("%s %s", e.Kind, e.Key)
}

// CheckState is the machine's view of one checked instance, for tests and
// debugging.
type CheckState struct {
	Kind      string // "http", "tcp" or "ttl"
	Status    Status
	Output    string
	Successes int // consecutive passing results
	Failures  int // consecutive critical results
	// CriticalSince is when the status last became critical (zero when it
	// is not critical).
	CriticalSince time.Time

	// HTTP and TCP.
	NextProbe     time.Time // when the next probe is due (when none is in flight)
	InFlight      bool
	ProbeDeadline time.Time // when an in-flight probe counts as timed out

	// TTL.
	TTLDeadline time.Time

	// What the store had at the last Sync.
	StoreStatus Status
	StoreOutput string
	ModifyIndex uint64
}

type healthState struct {
	check Check // with defaults filled
	kind  string

	// The store's view, from the last Sync.
	storeStatus Status
	storeOutput string
	index       uint64

	// The machine's view.
	status        Status
	output        string
	successes     int
	failures      int
	changedAt     time.Time // when status/output last changed or the store diverged
	criticalSince time.Time

	// HTTP and TCP.
	nextProbe     time.Time
	inFlight      bool
	probeDeadline time.Time

	// TTL.
	ttlDeadline time.Time
	ttlExpired  bool

	key  Key
	hidx int // index of its entry in Health.due, -1 when it has none

	// Throttling of re-emitted effects.
	setSent   bool // a SetStatus carrying setStatus/setOutput was emitted at setAt
	setStatus Status
	setOutput string
	setAt     time.Time
	// contested: the store differs because someone else overwrote the
	// machine's status (not because the machine changed its mind).
	contested bool
	deregAt   time.Time // last EffectDeregister, zero if none while critical
}

// NewHealth returns an empty Health. rng spreads first probes over time; a
// nil rng means a fixed seed.
func NewHealth(rng *rand.Rand) *Health {
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	return &Health{rng: rng, states: map[Key]*healthState{}, unchecked: map[Key]struct{}{}}
}

// Sync reconciles the checked instances with the catalog's instances.
func (h *Health) Sync(now time.Time, instances []Instance) {
	seen := make(map[Key]struct{}, len(instances))
	clear(h.unchecked)
	var fresh []Key
	for i := range instances {
		in := &instances[i]
		k := in.Key()
		if in.Check == nil || in.Check.Kind() == "" {
			h.unchecked[k] = struct{}{}
			continue
		}
		seen[k] = struct{}{}
		if h.track(now, k, in) {
			fresh = append(fresh, k)
		}
	}
	for k, st := range h.states {
		if _, ok := seen[k]; !ok {
			h.due.remove(st)
			delete(h.states, k)
		}
	}
	for k := range h.unchecked {
		if _, ok := seen[k]; ok {
			delete(h.unchecked, k)
		}
	}
	h.jitter(now, fresh)
}

// HealthUpdate is one instance's change for Update: Instance is the
// instance as the catalog has it now, nil when it is gone (deleted, or no
// longer checked by this machine's driver).
type HealthUpdate struct {
	Key      Key
	Instance *Instance
}

// Update is Sync for part of the catalog: it applies the changes of the
// instances in ups (in catalog order) as Sync would, leaving every other
// instance as it is, at O(len(ups)) cost instead of O(catalog). A driver
// that follows the catalog's changes calls Update for them and Sync when
// the whole catalog was replaced or the set of instances it checks moved.
// New states draw their jitter in key order, as in Sync.
func (h *Health) Update(now time.Time, ups []HealthUpdate) {
	var fresh []Key
	for i := range ups {
		k, in := ups[i].Key, ups[i].Instance
		if in == nil || in.Check == nil || in.Check.Kind() == "" {
			if st := h.states[k]; st != nil {
				h.due.remove(st)
				delete(h.states, k)
			}
			if in == nil {
				delete(h.unchecked, k)
			} else {
				h.unchecked[k] = struct{}{}
			}
			continue
		}
		delete(h.unchecked, k)
		if h.track(now, k, in) {
			fresh = append(fresh, k)
		}
	}
	h.jitter(now, fresh)
}

// track brings the state of checked instance in up to date: the same check
// observes the instance's new record; a new or changed check starts a fresh
// state, for which it returns true (its first probe still needs jitter).
func (h *Health) track(now time.Time, k Key, in *Instance) bool {
	c := in.Check.withDefaults()
	if st := h.states[k]; st != nil && st.check == c {
		st.observe(now, in)
		h.reschedule(st)
		return false
	}
	if old := h.states[k]; old != nil {
		h.due.remove(old)
	}
	st := newHealthState(now, c, in)
	h.states[k] = st
	h.reschedule(st)
	return true
}

// jitter schedules the first probes of the fresh states, drawing in key
// order so the same catalog gives the same schedule whatever order the
// instances came in.
func (h *Health) jitter(now time.Time, fresh []Key) {
	slices.SortFunc(fresh, healthKeyCmp)
	fresh = slices.Compact(fresh)
	for _, k := range fresh {
		st := h.states[k]
		if st == nil || st.kind == "ttl" {
			continue
		}
		span := min(st.check.Interval.Std(), time.Second)
		var jitter time.Duration
		if span > 0 {
			jitter = time.Duration(h.rng.Int64N(int64(span)))
		}
		st.nextProbe = now.Add(jitter)
		h.reschedule(st)
	}
}

func newHealthState(now time.Time, c Check, in *Instance) *healthState {
	st := &healthState{key: in.Key(), hidx: -1, check: c, kind: c.Kind(), changedAt: now}
	st.storeStatus, st.storeOutput, st.index = in.Status, in.Output, in.ModifyIndex
	st.status, st.output = in.Status, healthTruncate(in.Output)
	if st.status == "" {
		st.status = InitialStatus(&c)
	}
	if st.status == StatusCritical {
		st.criticalSince = now
	}
	if st.kind == "ttl" {
		st.ttlDeadline = now.Add(c.TTL.Std())
	}
	return st
}

// observe records what the store has for an instance whose state is kept.
func (st *healthState) observe(now time.Time, in *Instance) {
	wasSynced := st.synced()
	// The machine's own last write showing up late is not a dispute.
	own := st.setSent && in.Status == st.setStatus && in.Output == st.setOutput
	st.storeStatus, st.storeOutput, st.index = in.Status, in.Output, in.ModifyIndex
	switch {
	case st.synced():
		st.setSent = false
		st.contested = false
	case wasSynced:
		st.changedAt = now // the store changed under the machine
		st.contested = !own
	}
}

func (st *healthState) synced() bool {
	return st.status == st.storeStatus && st.output == st.storeOutput
}

// set changes the machine's status and output.
func (st *healthState) set(now time.Time, s Status, out string) {
	if s == st.status && out == st.output {
		return
	}
	if s == StatusCritical && st.status != StatusCritical {
		st.criticalSince = now
	}
	if s != StatusCritical {
		st.criticalSince = time.Time{}
		st.deregAt = time.Time{}
	}
	st.status, st.output = s, out
	st.changedAt = now
	st.contested = false // a new verdict of the machine's own goes out at once
}

// Heartbeat renews a TTL check, setting status (passing when empty) and
// output at once. It returns an error wrapping ErrNotFound when the last
// Sync did not have the instance, and a *FieldError when the instance has
// no TTL check ("check") or status is not a status ("status").
func (h *Health) Heartbeat(now time.Time, k Key, status Status, output string) error {
	if status == "" {
		status = StatusPassing
	}
	if _, err := ParseStatus(string(status)); err != nil {
		return fieldErr("status", "%v", err)
	}
	st := h.states[k]
	if st == nil {
		if _, ok := h.unchecked[k]; ok {
			return fieldErr("check", "instance %s has no check; heartbeats renew ttl checks only", k)
		}
		return fmt.Errorf("heartbeat for %s: %w", k, ErrNotFound)
	}
	if st.kind != "ttl" {
		return fieldErr("check", "instance %s has a %s check; heartbeats renew ttl checks only", k, st.kind)
	}
	st.set(now, status, healthTruncate(output))
	st.ttlDeadline = now.Add(st.check.TTL.Std())
	st.ttlExpired = false
	h.reschedule(st)
	return nil
}

// Result records the outcome of the probe that an earlier Tick asked for.
// It is ignored when no probe of k is in flight.
func (h *Health) Result(now time.Time, k Key, r ProbeResult) {
	st := h.states[k]
	if st == nil || !st.inFlight {
		return
	}
	st.result(now, r)
	h.reschedule(st)
}

func (st *healthState) result(now time.Time, r ProbeResult) {
	st.inFlight = false
	st.nextProbe = now.Add(st.check.Interval.Std())
	next := st.status
	switch r.Status {
	case StatusPassing:
		st.successes++
		st.failures = 0
		if st.successes >= st.check.SuccessBeforePassing {
			next = StatusPassing
		}
	case StatusWarning:
		st.successes, st.failures = 0, 0
		if st.status != StatusCritical {
			next = StatusWarning
		}
	default:
		r.Status = StatusCritical
		st.failures++
		st.successes = 0
		if st.failures >= st.check.FailuresBeforeCritical {
			next = StatusCritical
		}
	}
	if next == r.Status {
		st.set(now, next, healthTruncate(r.Output))
	}
}

// Tick advances the machine to now and returns the effects due, sorted by
// key, then kind.
//
// Only the keys whose deadline has come are visited, in key order: the
// same effects as visiting every key, since a state whose deadlines are
// all after now has nothing to do.
func (h *Health) Tick(now time.Time) []Effect {
	var out []Effect
	due := h.due.due(now, 0, h.scratch[:0])
	defer func() { clear(due); h.scratch = due[:0] }()
	slices.SortFunc(due, func(a, b *healthState) int { return healthKeyCmp(a.key, b.key) })
	for _, st := range due {
		out = st.tick(now, st.key, out)
		h.reschedule(st)
	}
	slices.SortStableFunc(out, func(a, b Effect) int {
		if c := healthKeyCmp(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	return out
}

// tick does what is due for one state at now, appending its effects.
func (st *healthState) tick(now time.Time, k Key, out []Effect) []Effect {
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
	return out
}

// setDue returns when a SetStatus is next due, if one is needed. The
// machine's own new status goes out at once; a status that someone else
// overwrote (contested) is written back at most once per write gap (the
// check interval; a second for TTL checks) after the machine's last write:
// when two gateways both run an instance's check (while membership is
// moving) and reach different verdicts, each rewrites the other's status at
// most once per gap, instead of right after every write of the other (a
// livelock of thousands of writes a second).
func (st *healthState) setDue() (time.Time, bool) {
	if st.synced() {
		return time.Time{}, false
	}
	if st.setSent && st.setStatus == st.status && st.setOutput == st.output {
		return st.setAt.Add(time.Second), true
	}
	if !st.contested || st.setAt.IsZero() {
		return st.changedAt, true
	}
	return healthLater(st.changedAt, st.setAt.Add(st.writeGap())), true
}

// writeGap is the least time between two status writes of one instance.
func (st *healthState) writeGap() time.Duration {
	if st.kind == "ttl" {
		return time.Second
	}
	return max(st.check.Interval.Std(), time.Second)
}

// deregDue returns when a Deregister is next due, if one is needed.
func (st *healthState) deregDue() (time.Time, bool) {
	d := st.check.DeregisterCriticalAfter.Std()
	if d <= 0 || st.status != StatusCritical {
		return time.Time{}, false
	}
	due := st.criticalSince.Add(d)
	if !st.deregAt.IsZero() {
		due = healthLater(due, st.deregAt.Add(time.Second))
	}
	return due, true
}

// State returns the machine's current view of an instance.
func (h *Health) State(k Key) (CheckState, bool) {
	st := h.states[k]
	if st == nil {
		return CheckState{}, false
	}
	return CheckState{
		Kind: st.kind, Status: st.status, Output: st.output,
		Successes: st.successes, Failures: st.failures, CriticalSince: st.criticalSince,
		NextProbe: st.nextProbe, InFlight: st.inFlight, ProbeDeadline: st.probeDeadline,
		TTLDeadline: st.ttlDeadline,
		StoreStatus: st.storeStatus, StoreOutput: st.storeOutput, ModifyIndex: st.index,
	}, true
}

// NextDeadline returns the earliest time at which Tick may have something
// to do, or the zero time when nothing is pending. The time may be in the
// past: then Tick has work now.
func (h *Health) NextDeadline() time.Time {
	t, _ := h.due.peek()
	return t
}

// deadline is the earliest time at which Tick has something to do for st.
func (st *healthState) deadline() (time.Time, bool) {
	var best time.Time
	ok := false
	consider := func(t time.Time) {
		if !ok || t.Before(best) {
			best, ok = t, true
		}
	}
	switch st.kind {
	case "ttl":
		if !st.ttlExpired {
			consider(st.ttlDeadline.Add(time.Nanosecond)) // expiry is strictly after the deadline
		}
	case "http", "tcp":
		if st.inFlight {
			consider(st.probeDeadline)
		} else {
			consider(st.nextProbe)
		}
	}
	if due, dok := st.setDue(); dok {
		consider(due)
	}
	if due, dok := st.deregDue(); dok {
		consider(due)
	}
	return best, ok
}

// reschedule moves st's entry in the heap to its deadline after st
// changed.
func (h *Health) reschedule(st *healthState) {
	if at, ok := st.deadline(); ok {
		h.due.set(st, at)
	} else {
		h.due.remove(st)
	}
}

func healthKeyCmp(a, b Key) int {
	if c := strings.Compare(a.Service, b.Service); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func healthLater(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// healthTruncate cuts s to MaxOutputLen bytes without splitting a rune, so
// that a status write never fails validation.
func healthTruncate(s string) string {
	if len(s) <= MaxOutputLen {
		return s
	}
	s = s[:MaxOutputLen]
	for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
