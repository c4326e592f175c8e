package soak

import (
	"slices"
	"testing"
)

// TestLedgerVerify: the accounting of acknowledged writes, key by key.
func TestLedgerVerify(t *testing.T) {
	k := func(id string) Key { return Key{"svc", id} }
	l := NewLedger()
	l.Record(OpRegister, k("kept"), Applied)
	l.Record(OpRegister, k("gone"), Applied)
	l.Record(OpDeregister, k("gone"), Applied)
	l.Record(OpRegister, k("refused"), NotApplied) // never acknowledged: absent
	l.Record(OpRegister, k("kept2"), Applied)
	l.Record(OpDeregister, k("kept2"), NotApplied) // 503 nothing written: still there
	l.Record(OpRegister, k("lost"), Applied)
	l.Record(OpRegister, k("back"), Applied)
	l.Record(OpDeregister, k("back"), Applied)
	l.Record(OpRegister, k("maybe"), Unknown)
	l.Record(OpRegister, k("resolved"), Unknown)
	l.Record(OpRegister, k("resolved"), Applied)

	present := map[Key]bool{k("kept"): true, k("kept2"): true, k("back"): true, k("maybe"): true,
		k("resolved"): true, {"other", "x"}: true}
	v := l.Verify(present)
	want := Verdict{AckedRegisters: 6, AckedDeregisters: 2, ExpectPresent: 4, Present: 3, ExpectAbsent: 3, Absent: 2,
		Missing: []Key{k("lost")}, Extra: []Key{k("back")}, Unresolved: []Key{k("maybe")}}
	if v.AckedRegisters != want.AckedRegisters || v.AckedDeregisters != want.AckedDeregisters ||
		v.ExpectPresent != want.ExpectPresent || v.Present != want.Present ||
		v.ExpectAbsent != want.ExpectAbsent || v.Absent != want.Absent ||
		!slices.Equal(v.Missing, want.Missing) || !slices.Equal(v.Extra, want.Extra) || !slices.Equal(v.Unresolved, want.Unresolved) {
		t.Errorf("Verify:\n got %+v\nwant %+v", v, want)
	}
	if v.OK() {
		t.Error("OK() with a lost and an extra instance: got true")
	}
	if !l.Present(k("kept")) || l.Present(k("gone")) || l.Present(k("maybe")) {
		t.Error("Present: want kept true, gone false, maybe (unknown) false")
	}

	ok := NewLedger()
	ok.Record(OpRegister, k("a"), Applied)
	if v := ok.Verify(map[Key]bool{k("a"): true}); !v.OK() || v.Present != 1 {
		t.Errorf("all present: got %+v, want OK", v)
	}
}

// TestGrowth: the last minute against the second, per gateway.
func TestGrowth(t *testing.T) {
	gws := []*gateway{{name: "a"}, {name: "b"}}
	smp := func(m int, g string, rssMB, gor int64) Sample {
		return Sample{Minute: m, Gateway: g, RSS: rssMB << 20, Goroutines: gor}
	}
	flat := []Sample{smp(1, "a", 10, 40), smp(1, "b", 10, 40), smp(2, "a", 30, 50), smp(2, "b", 30, 50),
		smp(3, "a", 35, 60), smp(3, "b", 36, 60)}
	if got := growth(flat, gws); len(got) != 0 {
		t.Errorf("within 1.2x: got %q, want nothing broken", got)
	}
	grown := append(slices.Clone(flat[:4]), smp(3, "a", 37, 60), smp(3, "b", 30, 61))
	got := growth(grown, gws)
	if len(got) != 2 {
		t.Fatalf("a's RSS 37 > 1.2 x 30 and b's goroutines 61 > 1.2 x 50: got %q", got)
	}
	if got := growth(flat[:4], gws); len(got) != 0 {
		t.Errorf("two minutes (no warm-up to compare against): got %q, want nothing", got)
	}
}
