package simredis

import (
	"context"
	"testing"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/storetest"
)

func open(t *testing.T, logMax int) *Store {
	t.Helper()
	s, err := New("us-east", logMax)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The simulator's Redis store keeps the Store contract, data loss included.
func TestContract(t *testing.T) {
	storetest.Contract(t, func(t *testing.T, logMax int) region.Store { return open(t, logMax) })
}

func TestLossContract(t *testing.T) {
	s := open(t, 0)
	storetest.LossContract(t, s, s.Wipe)
}

// Epochs are the same from run to run: one per life of the store.
func TestDeterministicEpochs(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	ch, err := s.Put(ctx, storetest.TestInstance("web", "a", 80), region.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Epoch != "redis-us-east-0" {
		t.Fatalf("epoch of the first life = %q, want redis-us-east-0", ch.Epoch)
	}
	s.Wipe()
	if snap, _ := s.Snapshot(ctx); snap.Epoch != "" || snap.Version != 0 || len(snap.Instances) != 0 {
		t.Fatalf("after Wipe: %+v, want an empty store without epoch", snap)
	}
	ch, err = s.Put(ctx, storetest.TestInstance("web", "b", 80), region.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Epoch != "redis-us-east-1" || ch.Version != 1 {
		t.Fatalf("first change after Wipe: epoch %q v%d, want redis-us-east-1 v1", ch.Epoch, ch.Version)
	}
}

// A trimmed log: a reader further behind than the log reaches must
// reload, one exactly within reach gets every change.
func TestShortLogReach(t *testing.T) {
	ctx := context.Background()
	s := open(t, 3)
	for i := range 6 {
		if _, err := s.Put(ctx, storetest.TestInstance("web", string(rune('a'+i)), 80), region.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := s.ChangesSince(ctx, 2, 0); err != nil || ok {
		t.Fatalf("ChangesSince(2) with log v4..v6: ok=%v err=%v, want a reload", ok, err)
	}
	chs, ok, err := s.ChangesSince(ctx, 3, 0)
	if err != nil || !ok || len(chs) != 3 || chs[0].Version != 4 {
		t.Fatalf("ChangesSince(3) = %v %v %v, want v4..v6", chs, ok, err)
	}
}
