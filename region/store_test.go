package region

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testInstance(svc, id string, port int) Instance {
	return Instance{
		ID: id, Service: svc, Address: "10.0.0.5", Port: port, Weight: 100,
		Status: StatusPassing, RegisteredAt: t0, UpdatedAt: t0,
		Tags: []string{"v2"}, Meta: map[string]string{"k": "v"},
	}
}

// testStoreContract checks the semantics every Store must have. newStore
// returns a fresh, empty store whose change log keeps logMax entries.
func testStoreContract(t *testing.T, newStore func(t *testing.T, logMax int) Store) {
	ctx := context.Background()

	t.Run("versions, put and delete", func(t *testing.T) {
		s := newStore(t, 100)
		ch, err := s.Put(ctx, testInstance("web", "a", 8080), Cond{})
		if err != nil {
			t.Fatal(err)
		}
		if ch.Version != 1 || ch.Op != OpPut || ch.Instance.ModifyIndex != 1 {
			t.Fatalf("first put: got %+v, want version 1 put with modify_index 1", ch)
		}
		in2 := testInstance("web", "a", 9090)
		in2.RegisteredAt = t0.Add(time.Hour)
		in2.UpdatedAt = t0.Add(time.Hour)
		ch, err = s.Put(ctx, in2, Cond{})
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
		if _, err := s.Put(ctx, testInstance("api", "a", 1), Cond{}); err != nil {
			t.Fatal(err)
		}
		ch, err = s.Delete(ctx, Key{"web", "a"}, Cond{})
		if err != nil || ch.Version != 4 || ch.Op != OpDelete {
			t.Fatalf("delete: got %+v, %v; want version 4 delete", ch, err)
		}
		if _, err := s.Delete(ctx, Key{"web", "a"}, Cond{}); !errors.Is(err, ErrNotFound) {
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
		ch, _ := s.Put(ctx, testInstance("web", "a", 1), Cond{})
		up := *ch.Instance
		up.Status = StatusCritical
		if _, err := s.Put(ctx, up, Cond{IfIndex: ch.Version + 7}); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale IfIndex: got %v, want ErrConflict", err)
		}
		got, err := s.Put(ctx, up, Cond{IfIndex: ch.Version})
		if err != nil || got.Instance.Status != StatusCritical {
			t.Fatalf("matching IfIndex: got %+v, %v", got, err)
		}
		if _, err := s.Put(ctx, testInstance("web", "zz", 1), Cond{MustExist: true}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("MustExist on absent: got %v, want ErrNotFound", err)
		}
		if _, err := s.Delete(ctx, Key{"web", "a"}, Cond{IfIndex: 1}); !errors.Is(err, ErrConflict) {
			t.Fatalf("delete with stale IfIndex: got %v, want ErrConflict", err)
		}
		snap, _ := s.Snapshot(ctx)
		if snap.Version != 2 {
			t.Fatalf("failed conditions must not bump the version: got v%d, want v2", snap.Version)
		}
	})

	t.Run("idempotent writes", func(t *testing.T) {
		s := newStore(t, 100)
		first, err := s.Put(ctx, testInstance("web", "a", 1), Cond{WriteID: "w1"})
		if err != nil {
			t.Fatal(err)
		}
		// Something else moves the instance on; repeating w1 must return
		// w1's own result and apply nothing.
		if _, err := s.Put(ctx, testInstance("web", "a", 2), Cond{}); err != nil {
			t.Fatal(err)
		}
		again, err := s.Put(ctx, testInstance("web", "a", 1), Cond{WriteID: "w1"})
		if err != nil || again.Version != first.Version || again.Instance.Port != 1 {
			t.Fatalf("repeated put: got %+v, %v; want the first result v%d", again, err, first.Version)
		}
		del, err := s.Delete(ctx, Key{"web", "a"}, Cond{WriteID: "d1"})
		if err != nil {
			t.Fatal(err)
		}
		// A repeated delete that succeeded the first time answers the
		// delete, not ErrNotFound.
		if again, err := s.Delete(ctx, Key{"web", "a"}, Cond{WriteID: "d1"}); err != nil || again.Version != del.Version || again.Op != OpDelete {
			t.Fatalf("repeated delete: got %+v, %v; want the first result v%d", again, err, del.Version)
		}
		if _, err := s.Delete(ctx, Key{"web", "zz"}, Cond{WriteID: "d2"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete of absent: got %v, want ErrNotFound", err)
		}
		if _, err := s.Delete(ctx, Key{"web", "zz"}, Cond{WriteID: "d2"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("repeated delete of absent: got %v, want ErrNotFound again", err)
		}
		chs, ok, err := s.ChangesSince(ctx, 0, 100)
		if err != nil || !ok || len(chs) != 3 {
			t.Fatalf("change log: got %d changes (ok %v, %v), want 3: repeats must not be logged", len(chs), ok, err)
		}
		if _, err := s.Put(ctx, testInstance("web", "b", 1), Cond{WriteID: "bad id/x"}); FieldOf(err) != "idempotency_key" {
			t.Fatalf("bad write id: got %v, want a field error", err)
		}
	})

	t.Run("change log and trimming", func(t *testing.T) {
		s := newStore(t, 5)
		for i := 1; i <= 8; i++ {
			if _, err := s.Put(ctx, testInstance("web", fmt.Sprint("i", i), i), Cond{}); err != nil {
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
		if _, err := s.Delete(ctx, Key{"web", "i8"}, Cond{}); err != nil {
			t.Fatal(err)
		}
		chs, _, _ = s.ChangesSince(ctx, 8, 0)
		if len(chs) != 1 || chs[0].Op != OpDelete || chs[0].ID != "i8" || chs[0].Service != "web" {
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
			if _, err := s.Put(ctx, testInstance("web", fmt.Sprint("n", i), 1), Cond{}); err != nil {
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

func TestMemStoreContract(t *testing.T) {
	testStoreContract(t, func(t *testing.T, logMax int) Store { return NewMemStore(logMax) })
}

func newMiniredisStore(t *testing.T, logMax int) *RedisStore {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	s := NewRedisStoreClient(c, "us-east", logMax)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRedisStoreMiniredisContract(t *testing.T) {
	testStoreContract(t, func(t *testing.T, logMax int) Store { return newMiniredisStore(t, logMax) })
}

func TestParseRedisURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		addrs   int
		master  string
		cluster bool
		wantErr bool
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: 1},
		{url: "redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", addrs: 3, cluster: true},
		{url: "redis://127.0.0.1:7000?cluster=true", addrs: 1, cluster: true},
		{url: "redis://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", addrs: 2, master: "mymaster"},
		{url: "http://127.0.0.1:6379", wantErr: true},
		{url: "redis://127.0.0.1:6379?bogus=1", wantErr: true},
	} {
		o, err := ParseRedisURL(tc.url)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.url, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if len(o.Addrs) != tc.addrs || o.MasterName != tc.master || o.IsClusterMode != tc.cluster {
			t.Errorf("%s: got addrs %v master %q cluster %v; want %d addrs master %q cluster %v",
				tc.url, o.Addrs, o.MasterName, o.IsClusterMode, tc.addrs, tc.master, tc.cluster)
		}
		if o.DialTimeout != time.Second {
			t.Errorf("%s: dial timeout %v, want 1s default", tc.url, o.DialTimeout)
		}
	}
}
