package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/meridian-sd/meridian/internal/simredis"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// The built-in scenarios with topology.store: redis need the Redis store,
// which the meridian binary registers; the tests register it the same way.
func init() {
	RegisterStore("redis", func(regionName string, logMax int) (Store, error) {
		return simredis.New(regionName, logMax)
	})
}

// A store kind nobody registered is a clear error, not a silent MemStore.
func TestUnknownStoreKind(t *testing.T) {
	sc, err := scenarios.Builtin("redeploy-race")
	if err != nil {
		t.Fatal(err)
	}
	sc.Topology.Store = "etcd"
	_, err = Run(sc, Options{Seed: 1})
	if err == nil || !strings.Contains(err.Error(), `"etcd" is not available`) {
		t.Fatalf("Run with store etcd: got %v, want a 'not available' error", err)
	}
}

// truthStore catches a store whose delta skips a committed change.
func TestTruthStoreCatchesDeltaGap(t *testing.T) {
	sc, err := scenarios.Builtin("redeploy-race")
	if err != nil {
		t.Fatal(err)
	}
	w := testWorld(t, sc, 1)
	rs := w.regions[0]
	ts := &truthStore{Store: rs.mem, w: w, rs: rs}
	if chs, ok, err := ts.ChangesSince(w.ctx, 2, 0); err != nil || !ok || len(chs) == 0 || chs[0].Version != 3 {
		t.Fatalf("ChangesSince(2) = %v, %v, %v; want a delta from v3", chs, ok, err)
	}
	gappy := &truthStore{Store: gapStore{rs.mem}, w: w, rs: rs}
	if _, _, err := gappy.ChangesSince(w.ctx, 2, 0); err == nil {
		t.Fatal("a delta with a gap was passed on")
	}
	if got := w.m.viol[InvStoreDeltaComplete].count; got != 1 {
		t.Fatalf("store_delta_complete violations = %d, want 1", got)
	}
}

// gapStore drops the first change of every delta, like a change log
// trimmed one entry too far.
type gapStore struct{ Store }

func (g gapStore) ChangesSince(ctx context.Context, since uint64, max int) ([]region.Change, bool, error) {
	chs, ok, err := g.Store.ChangesSince(ctx, since, max)
	if len(chs) > 1 {
		chs = chs[1:]
	}
	return chs, ok, err
}

// registration_kept fires for a put that carries an older registration's
// port, not for the registration itself or one whose answer is pending.
func TestRegistrationKept(t *testing.T) {
	sc, err := scenarios.Builtin("redeploy-race")
	if err != nil {
		t.Fatal(err)
	}
	w := testWorld(t, sc, 1)
	rs := w.regions[0]
	in := rs.bySvc[0][0]
	old := in.record(w, region.StatusPassing)
	put := func(rec region.Instance) {
		t.Helper()
		ch, err := rs.store.Put(w.ctx, rec, region.Cond{})
		if err != nil {
			t.Fatal(err)
		}
		w.committed(rs, ch, false)
	}
	in.sentPort = in.port() + 1
	put(in.recordAt(w, region.StatusCritical, in.port()+1)) // sent, not acknowledged yet
	in.redeploys, in.sentPort = in.redeploys+1, 0
	if got := w.m.viol[InvRegistrationKept].count; got != 0 {
		t.Fatalf("violations after the registration itself: %d, want 0", got)
	}
	old.Status = region.StatusCritical
	put(old) // a status write based on the old record
	if got := w.m.viol[InvRegistrationKept].count; got != 1 {
		t.Fatalf("violations after a write of the old record: %d, want 1", got)
	}
}
