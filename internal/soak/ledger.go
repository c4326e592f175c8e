package soak

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
)

// Key names one instance.
type Key struct{ Service, ID string }

func (k Key) String() string { return k.Service + "/" + k.ID }

// Op is a write.
type Op int

const (
	OpRegister Op = iota
	OpDeregister
)

func (o Op) String() string {
	if o == OpRegister {
		return "register"
	}
	return "deregister"
}

// Outcome is what a gateway's answer says about a write.
type Outcome int

const (
	// Applied: 200 (or 404 on a deregistration: the instance is absent).
	Applied Outcome = iota
	// NotApplied: the gateway said nothing was written (a 503 without
	// "outcome":"unknown", a 4xx), or the request never reached it.
	NotApplied
	// Unknown: the write may or may not have landed (503 with
	// "outcome":"unknown", a connection lost after the request was sent).
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"applied", "not-applied", "unknown"}[o]
}

// want is what the ledger expects of a key at the end.
type want int

const (
	wantAbsent want = iota // never acknowledged, or deregistered
	wantPresent
	wantUnknown // the last write's outcome is unknown
)

// Ledger records the writes of the soak and what their answers said. Each
// key must be written by one goroutine at a time (the writers own disjoint
// key sets), so a key's last recorded write is its last write.
type Ledger struct {
	mu   sync.Mutex
	keys map[Key]want
	// AckedRegisters and AckedDeregisters count acknowledged writes.
	ackedReg, ackedDereg int
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{keys: map[Key]want{}} }

// Record notes a write's outcome.
func (l *Ledger) Record(op Op, k Key, o Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, seen := l.keys[k]
	switch o {
	case Applied:
		if op == OpRegister {
			l.ackedReg++
			l.keys[k] = wantPresent
		} else {
			l.ackedDereg++
			l.keys[k] = wantAbsent
		}
	case Unknown:
		l.keys[k] = wantUnknown
	case NotApplied:
		if !seen {
			l.keys[k] = wantAbsent
		} else {
			l.keys[k] = cur
		}
	}
}

// Present says whether the ledger expects k to be registered now (false
// for unknown).
func (l *Ledger) Present(k Key) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys[k] == wantPresent
}

// Verdict compares the ledger with what the gateways hold.
type Verdict struct {
	AckedRegisters, AckedDeregisters int // acknowledged writes, all of them
	// ExpectPresent keys' last write was an acknowledged registration;
	// Present of them are registered at the end.
	ExpectPresent, Present int
	// ExpectAbsent keys were deregistered (acknowledged) or never
	// acknowledged; Absent of them are not registered at the end.
	ExpectAbsent, Absent int
	// Missing: expected present, absent. Extra: expected absent, present.
	// Unresolved: the last write's outcome stayed unknown (not checked).
	Missing, Extra, Unresolved []Key
}

// OK says whether nothing acknowledged was lost and nothing refused or
// deleted came back.
func (v Verdict) OK() bool { return len(v.Missing) == 0 && len(v.Extra) == 0 }

// Verify compares the ledger with present, the set of keys registered at
// the end. Keys in present that the ledger never saw are ignored: only the
// soak's own keys are judged.
func (l *Ledger) Verify(present map[Key]bool) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := Verdict{AckedRegisters: l.ackedReg, AckedDeregisters: l.ackedDereg}
	for k, w := range l.keys {
		switch w {
		case wantPresent:
			v.ExpectPresent++
			if present[k] {
				v.Present++
			} else {
				v.Missing = append(v.Missing, k)
			}
		case wantAbsent:
			v.ExpectAbsent++
			if present[k] {
				v.Extra = append(v.Extra, k)
			} else {
				v.Absent++
			}
		case wantUnknown:
			v.Unresolved = append(v.Unresolved, k)
		}
	}
	for _, s := range [][]Key{v.Missing, v.Extra, v.Unresolved} {
		slices.SortFunc(s, func(a, b Key) int {
			if a.Service != b.Service {
				return cmp.Compare(a.Service, b.Service)
			}
			return cmp.Compare(a.ID, b.ID)
		})
	}
	return v
}

func (v Verdict) String() string {
	return fmt.Sprintf("acknowledged writes: %d registrations, %d deregistrations\n"+
		"expected present %d, present %d (missing %d)\n"+
		"expected absent  %d, absent  %d (extra %d)\n"+
		"unresolved (outcome unknown to the end): %d",
		v.AckedRegisters, v.AckedDeregisters, v.ExpectPresent, v.Present, len(v.Missing),
		v.ExpectAbsent, v.Absent, len(v.Extra), len(v.Unresolved))
}
