// Package storetest holds the contracts every region.Store must keep, run
// by the tests of the in-memory store and of the Redis store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// TestInstance is a valid instance of svc.
func TestInstance(svc, id string, port int) region.Instance {
	return region.Instance{
		ID: id, Service: svc, Address: "10.0.0.5", Port: port, Weight: 100,
		Status: region.StatusPassing, RegisteredAt: t0, UpdatedAt: t0,
		Tags: []string{"v2"}, Meta: map[string]string{"k": "v"},
	}
}

// Contract checks the semantics every Store must have. newStore
// returns a fresh, empty store whose change log keeps logMax entries.
func Contract(t *testing.T, newStore func(t *testing.T, logMax int) region.Store) {
	ctx := context.Background()

	t.Run("versions, put and delete", func(t *testing.T) {
		s := newStore(t, 100)
		ch, err := s.Put(ctx, TestInstance("web", "a", 8080), region.Cond{})
		if err != nil {
			t.Fatal(err)
		}
		if ch.Version != 1 || ch.Op != region.OpPut || ch.Instance.ModifyIndex != 1 {
			t.Fatalf("first put: got %+v, want version 1 put with modify_index 1", ch)
		}
		in2 := TestInstance("web", "a", 9090)
		in2.RegisteredAt = t0.Add(time.Hour)
		in2.UpdatedAt = t0.Add(time.Hour)
		ch, err = s.Put(ctx, in2, region.Cond{})
		if err != nil {
			t.Fatal(err)
		}
		if ch.Version != 2 || ch.Instance.Port != 9090 {
			t.Fatalf("replace: got %+v", ch)
		}
		if !ch.Instance.RegisteredAt.Equal(t0) || !ch.Instance.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("replace: registered_at %v updated_at %v, want %v and %v (registration time kept)",
				ch.Instance.RegisteredAt, ch.Instance.UpdatedAt, t0, t0.Add(time.Hour))
		}
		if _, err := s.Put(ctx, TestInstance("api", "a", 1), region.Cond{}); err != nil {
			t.Fatal(err)
		}
		ch, err = s.Delete(ctx, region.Key{Service: "web", ID: "a"}, region.Cond{})
		if err != nil || ch.Version != 4 || ch.Op != region.OpDelete {
			t.Fatalf("delete: got %+v, %v; want version 4 delete", ch, err)
		}
		if _, err := s.Delete(ctx, region.Key{Service: "web", ID: "a"}, region.Cond{}); !errors.Is(err, region.ErrNotFound) {
			t.Fatalf("second delete: got %v, want ErrNotFound", err)
		}
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Version != 4 || len(snap.Instances) != 1 || snap.Instances[0].Service != "api" || snap.Instances[0].ModifyIndex != 3 {
			t.Fatalf("snapshot: got %+v, want v4 with api/a at modify_index 3", snap)
		}
		if got := snap.Instances[0]; got.Meta["k"] != "v" || len(got.Tags) != 1 || got.Tags[0] != "v2" || !got.RegisteredAt.Equal(t0) {
			t.Fatalf("snapshot instance lost fields: %+v", got)
		}
	})

	t.Run("conditional writes", func(t *testing.T) {
		s := newStore(t, 100)
		ch, _ := s.Put(ctx, TestInstance("web", "a", 1), region.Cond{})
		up := *ch.Instance
		up.Status = region.StatusCritical
		if _, err := s.Put(ctx, up, region.Cond{IfIndex: ch.Version + 7}); !errors.Is(err, region.ErrConflict) {
			t.Fatalf("stale IfIndex: got %v, want ErrConflict", err)
		}
		got, err := s.Put(ctx, up, region.Cond{IfIndex: ch.Version})
		if err != nil || got.Instance.Status != region.StatusCritical {
			t.Fatalf("matching IfIndex: got %+v, %v", got, err)
		}
		if _, err := s.Put(ctx, TestInstance("web", "zz", 1), region.Cond{MustExist: true}); !errors.Is(err, region.ErrNotFound) {
			t.Fatalf("MustExist on absent: got %v, want ErrNotFound", err)
		}
		if _, err := s.Delete(ctx, region.Key{Service: "web", ID: "a"}, region.Cond{IfIndex: 1}); !errors.Is(err, region.ErrConflict) {
			t.Fatalf("delete with stale IfIndex: got %v, want ErrConflict", err)
		}
		snap, _ := s.Snapshot(ctx)
		if snap.Version != 2 {
			t.Fatalf("failed conditions must not bump the version: got v%d, want v2", snap.Version)
		}
	})

	t.Run("idempotent writes", func(t *testing.T) {
		s := newStore(t, 100)
		first, err := s.Put(ctx, TestInstance("web", "a", 1), region.Cond{WriteID: "w1"})
		if err != nil {
			t.Fatal(err)
		}
		// Something else moves the instance on; repeating w1 must return
		// w1's own result and apply nothing.
		if _, err := s.Put(ctx, TestInstance("web", "a", 2), region.Cond{}); err != nil {
			t.Fatal(err)
		}
		again, err := s.Put(ctx, TestInstance("web", "a", 1), region.Cond{WriteID: "w1"})
		if err != nil || again.Version != first.Version || again.Instance.Port != 1 {
			t.Fatalf("repeated put: got %+v, %v; want the first result v%d", again, err, first.Version)
		}
		del, err := s.Delete(ctx, region.Key{Service: "web", ID: "a"}, region.Cond{WriteID: "d1"})
		if err != nil {
			t.Fatal(err)
		}
		// A repeated delete that succeeded the first time answers the
		// delete, not ErrNotFound.
		if again, err := s.Delete(ctx, region.Key{Service: "web", ID: "a"}, region.Cond{WriteID: "d1"}); err != nil || again.Version != del.Version || again.Op != region.OpDelete {
			t.Fatalf("repeated delete: got %+v, %v; want the first result v%d", again, err, del.Version)
		}
		if _, err := s.Delete(ctx, region.Key{Service: "web", ID: "zz"}, region.Cond{WriteID: "d2"}); !errors.Is(err, region.ErrNotFound) {
			t.Fatalf("delete of absent: got %v, want ErrNotFound", err)
		}
		if _, err := s.Delete(ctx, region.Key{Service: "web", ID: "zz"}, region.Cond{WriteID: "d2"}); !errors.Is(err, region.ErrNotFound) {
			t.Fatalf("repeated delete of absent: got %v, want ErrNotFound again", err)
		}
		chs, ok, err := s.ChangesSince(ctx, 0, 100)
		if err != nil || !ok || len(chs) != 3 {
			t.Fatalf("change log: got %d changes (ok %v, %v), want 3: repeats must not be logged", len(chs), ok, err)
		}
		if _, err := s.Put(ctx, TestInstance("web", "b", 1), region.Cond{WriteID: "bad id/x"}); region.FieldOf(err) != "idempotency_key" {
			t.Fatalf("bad write id: got %v, want a field error", err)
		}
	})

	t.Run("change log and trimming", func(t *testing.T) {
		s := newStore(t, 5)
		for i := 1; i <= 8; i++ {
			if _, err := s.Put(ctx, TestInstance("web", fmt.Sprint("i", i), i), region.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
		chs, ok, err := s.ChangesSince(ctx, 5, 0)
		if err != nil || !ok || len(chs) != 3 || chs[0].Version != 6 || chs[2].Version != 8 {
			t.Fatalf("since 5: got %v ok=%v err=%v; want v6..v8", chs, ok, err)
		}
		if chs[0].Instance == nil || chs[0].Instance.ID != "i6" || chs[0].Instance.ModifyIndex != 6 {
			t.Fatalf("since 5: first change %+v, want i6 at modify_index 6", chs[0].Instance)
		}
		chs, ok, _ = s.ChangesSince(ctx, 3, 2)
		if !ok || len(chs) != 2 || chs[0].Version != 4 {
			t.Fatalf("since 3 max 2: got %v ok=%v; want v4,v5", chs, ok)
		}
		if _, ok, _ := s.ChangesSince(ctx, 2, 0); ok {
			t.Fatalf("since 2: log keeps v4..v8 only, want ok=false")
		}
		if chs, ok, _ := s.ChangesSince(ctx, 8, 0); !ok || len(chs) != 0 {
			t.Fatalf("since 8 (current): got %v ok=%v, want none, ok", chs, ok)
		}
		if _, ok, _ := s.ChangesSince(ctx, 99, 0); ok {
			t.Fatalf("since 99 (ahead of store): want ok=false so the follower reloads")
		}
		if _, err := s.Delete(ctx, region.Key{Service: "web", ID: "i8"}, region.Cond{}); err != nil {
			t.Fatal(err)
		}
		chs, _, _ = s.ChangesSince(ctx, 8, 0)
		if len(chs) != 1 || chs[0].Op != region.OpDelete || chs[0].ID != "i8" || chs[0].Service != "web" {
			t.Fatalf("delete in log: got %+v", chs)
		}
	})

	t.Run("notifications", func(t *testing.T) {
		s := newStore(t, 100)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sub := s.Subscribe(sctx)
		// A subscription may take a moment to be in place; write until one arrives.
		deadline := time.After(5 * time.Second)
		for i := 0; ; i++ {
			if _, err := s.Put(ctx, TestInstance("web", fmt.Sprint("n", i), 1), region.Cond{}); err != nil {
				t.Fatal(err)
			}
			select {
			case v := <-sub:
				if v < 1 {
					t.Fatalf("notification carried version %d", v)
				}
				return
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				t.Fatal("no notification within 5s")
			}
		}
	})
}

// LossContract checks epochs and Restore on a store that wipe
// empties as a Redis without persistence restarting would.
func LossContract(t *testing.T, s region.Store, wipe func()) {
	ctx := context.Background()
	ch, err := s.Put(ctx, TestInstance("web", "a", 80), region.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, TestInstance("web", "b", 80), region.Cond{})
	snap, _ := s.Snapshot(ctx)
	if snap.Epoch == "" || ch.Epoch != snap.Epoch {
		t.Fatalf("epoch: change %q snapshot %q, want the same, not empty", ch.Epoch, snap.Epoch)
	}
	chs, ok, err := s.ChangesSince(ctx, 0, 10)
	if err != nil || !ok || len(chs) != 2 || chs[1].Epoch != snap.Epoch {
		t.Fatalf("ChangesSince: %v %v %v, want 2 changes of epoch %s", chs, ok, err, snap.Epoch)
	}
	old := snap
	wipe()
	if snap, _ = s.Snapshot(ctx); snap.Version != 0 || snap.Epoch != "" {
		t.Fatalf("after wipe: %+v, want version 0 and no epoch", snap.Mark())
	}
	// A registration right after the loss starts a new epoch.
	late, _ := s.Put(ctx, TestInstance("web", "late", 81), region.Cond{})
	if late.Epoch == "" || late.Epoch == old.Epoch {
		t.Fatalf("epoch after the loss %q, want a new one (old %q)", late.Epoch, old.Epoch)
	}
	mem := append([]region.Instance(nil), old.Instances...)
	lateOld := TestInstance("web", "late", 1) // the store's own, newer, must win
	mem = append(mem, lateOld)
	req := region.RestoreRequest{Instances: mem, Version: region.RestoreVersion(old.Version, 1), Epoch: "restored1", From: old.Epoch}
	// The wrong expected epoch: nothing written.
	if ok, err := s.Restore(ctx, "nope", req); err != nil || ok {
		t.Fatalf("Restore with a stale epoch: %v %v, want false", ok, err)
	}
	if ok, err := s.Restore(ctx, late.Epoch, req); err != nil || !ok {
		t.Fatalf("Restore: %v %v", ok, err)
	}
	// A second gateway racing with the same expectation loses.
	if ok, err := s.Restore(ctx, late.Epoch, region.RestoreRequest{Epoch: "restored2", Version: 1}); err != nil || ok {
		t.Fatalf("second Restore: %v %v, want false", ok, err)
	}
	snap, _ = s.Snapshot(ctx)
	if snap.Version != req.Version || snap.Epoch != "restored1" || snap.RestoredFrom != old.Epoch || len(snap.Instances) != 3 {
		t.Fatalf("restored: %+v with %d instances, want v%d epoch restored1 from %s, 3 instances", snap.Mark(), len(snap.Instances), req.Version, old.Epoch)
	}
	for _, in := range snap.Instances {
		if in.ModifyIndex != req.Version {
			t.Fatalf("%s ModifyIndex %d, want %d", in.Key(), in.ModifyIndex, req.Version)
		}
		if in.ID == "late" && in.Port != 81 {
			t.Fatalf("late registration port %d, want 81 (the store's write wins)", in.Port)
		}
	}
	// Readers behind reload a snapshot; the next write follows the restore.
	if _, ok, _ := s.ChangesSince(ctx, old.Version, 10); ok {
		t.Fatal("ChangesSince across a restore reaches back")
	}
	next, err := s.Put(ctx, TestInstance("web", "c", 80), region.Cond{})
	if err != nil || next.Version != req.Version+1 || next.Epoch != "restored1" {
		t.Fatalf("write after restore: %v %v, want v%d in epoch restored1", next, err, req.Version+1)
	}
}
