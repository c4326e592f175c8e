package region

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// A catalog built instance by instance is the catalog Load builds from
// the same snapshot: same version, instances, stamps' versions, and a
// life of its own.
func TestCatalogBuilderMatchesLoad(t *testing.T) {
	t1 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var snap Snapshot
	snap.Version = 42
	for i := 0; i < 50; i++ {
		snap.Instances = append(snap.Instances, Instance{Service: fmt.Sprintf("svc-%d", i%4), ID: fmt.Sprintf("i-%02d", i),
			Address: fmt.Sprintf("10.0.0.%d", i), Port: 80, Zone: "a", Tags: []string{"v1"}, Meta: map[string]string{"k": "v"},
			Weight: 100, Status: StatusPassing, RegisteredAt: t1, UpdatedAt: t1, ModifyIndex: uint64(i + 1)})
	}
	loaded := NewCatalog()
	loaded.Load(snap)
	b := NewCatalogBuilder(len(snap.Instances))
	for _, in := range snap.Instances {
		b.Add(in)
	}
	if b.Len() != len(snap.Instances) {
		t.Fatalf("builder holds %d instances, want %d", b.Len(), len(snap.Instances))
	}
	built := b.Catalog(snap.Version)
	if got, want := built.Version(), loaded.Version(); got != want {
		t.Fatalf("version %d, want %d", got, want)
	}
	if got, want := built.All(), loaded.All(); !reflect.DeepEqual(got, want) {
		t.Fatalf("instances differ:\ngot  %v\nwant %v", got, want)
	}
	for _, s := range loaded.ServiceNames() {
		g, w := built.ServiceStamp(s), loaded.ServiceStamp(s)
		if g.Changed != w.Changed || g.Gen == w.Gen {
			t.Errorf("%s: stamp %+v, Load's %+v (want the same version, another life)", s, g, w)
		}
	}
	// It moves on like any catalog.
	in := snap.Instances[0]
	in.Port = 81
	if ok, err := built.Apply(Change{Version: 43, Op: OpPut, Instance: &in}); !ok || err != nil {
		t.Fatalf("apply after build: %v, %v", ok, err)
	}
	if got, _ := built.Get(in.Key()); got.Port != 81 || got.ModifyIndex != 43 {
		t.Fatalf("after apply: %+v", got)
	}
}
