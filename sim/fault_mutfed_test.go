package sim

import (
	"context"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/scenarios"
)

// TestTrimmedStoreServesGap: log_trimmed answers a version the log no
// longer reaches with what the log still holds (a gap), and leaves the
// other answers alone.
func TestTrimmedStoreServesGap(t *testing.T) {
	ctx := context.Background()
	mem := region.NewMemStore(5)
	for i := range 20 {
		in := region.Instance{ID: "i" + string(rune('a'+i)), Service: "web", Address: "10.0.0.1", Port: 80, Status: region.StatusPassing}
		if _, err := mem.Put(ctx, in, region.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := mem.ChangesSince(ctx, 3, 100); ok {
		t.Fatal("the store's log should not reach v3")
	}
	s := trimmedStore{Store: mem}
	chs, ok, err := s.ChangesSince(ctx, 3, 100)
	if err != nil || !ok || len(chs) == 0 {
		t.Fatalf("ChangesSince(3) = %d changes, %v, %v; want a delta", len(chs), ok, err)
	}
	if chs[0].Version <= 4 || chs[len(chs)-1].Version != 20 {
		t.Errorf("delta since v3 runs v%d..v%d; want a gap after v3 and the log up to v20", chs[0].Version, chs[len(chs)-1].Version)
	}
	if chs, ok, _ := s.ChangesSince(ctx, 18, 100); !ok || len(chs) != 2 || chs[0].Version != 19 {
		t.Errorf("ChangesSince(18) = %v, %v; want v19, v20", chs, ok)
	}
	if _, ok, _ := s.ChangesSince(ctx, 25, 100); ok {
		t.Error("ChangesSince(25) beyond the store's version must still say reload")
	}
}

// TestMutfedFaultsValidate: the fields of the new fault kinds are checked.
func TestMutfedFaultsValidate(t *testing.T) {
	base := `name: x
duration: 5m
topology:
  regions:
    - {name: us-east, gateways: 2}
    - {name: eu-west, gateways: 2}
services:
  - {name: web}
timeline:
`
	wantFaultParse(t, base, []struct{ fault, want string }{
		{`{at: 1m, kind: gateway_refused, from: us-east, gateway: us-east-1}`, "another region"},
		{`{at: 1m, kind: gateway_refused, from: us-east, gateway: eu-west-3}`, "2 gateway"},
		{`{at: 1m, kind: log_trimmed}`, "region"},
		{`{at: 1m, kind: region_reset, region: eu-west, gateway: eu-west-1}`, "does not apply"},
		{`{at: 1m, kind: gateway_refused, from: us-east, gateway: eu-west-2, for: 1m}`, ""},
		{`{at: 1m, kind: store_restart, region: eu-west}`, ""},
	})
}

// TestServedSnapshotBehindCacheFires: a snapshot behind what the serving
// gateway's catalog reached is a version_monotonic violation.
func TestServedSnapshotBehindCacheFires(t *testing.T) {
	sc := twoRegions(3 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute + 300*time.Millisecond), Kind: scenarios.FaultStoreRestart, Region: "us-east"}}
	wantQuiet(t, runHooked(t, sc, 1, testHooks{}), InvVersionMonotonic)
	w := testWorld(t, sc, 1)
	g := w.gateways[0]
	g.lastVer = map[string]uint64{g.rs.name: 9}
	w.checkServed(g, federation.FullResponse{Region: g.rs.name, Version: 3, Full: true})
	if w.m.viol[InvVersionMonotonic].count == 0 {
		t.Error("a snapshot at v3 served by a gateway whose catalog reached v9 was not flagged")
	}
}
