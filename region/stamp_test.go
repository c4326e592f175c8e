package region

import "testing"

// A service's stamp changes with every change of that service and every
// Load (even at a version the catalog had), and only then.
func TestServiceStamp(t *testing.T) {
	web := func(id string, port int) *Instance {
		return &Instance{Service: "web", ID: id, Address: "10.0.0.1", Port: port, Status: StatusPassing}
	}
	c := NewCatalog()
	if st := c.ServiceStamp("web"); st.Changed != 0 {
		t.Fatalf("empty catalog: stamp %+v", st)
	}
	step := func(ch Change) {
		t.Helper()
		ch.Version = c.Version() + 1
		if ok, err := c.Apply(ch); !ok || err != nil {
			t.Fatalf("apply %s: %v %v", ch, ok, err)
		}
	}
	step(Change{Op: OpPut, Instance: web("a", 80)})
	s1 := c.ServiceStamp("web")
	step(Change{Op: OpPut, Instance: &Instance{Service: "api", ID: "x", Address: "10.0.0.2", Port: 1, Status: StatusPassing}})
	if s2 := c.ServiceStamp("web"); s2 != s1 {
		t.Fatalf("a write to api changed web's stamp: %+v -> %+v", s1, s2)
	}
	step(Change{Op: OpPut, Instance: web("a", 81)})
	s3 := c.ServiceStamp("web")
	if s3 == s1 {
		t.Fatalf("a write to web kept its stamp %+v", s3)
	}
	step(Change{Op: OpDelete, Service: "web", ID: "a"})
	s4 := c.ServiceStamp("web")
	if s4 == s3 {
		t.Fatalf("deleting web's last instance kept its stamp %+v", s4)
	}
	// Reloads at the same version with other content.
	snapA := Snapshot{Version: 9, Instances: []Instance{*web("a", 80)}}
	snapB := Snapshot{Version: 9, Instances: []Instance{*web("b", 80)}}
	c.Load(snapA)
	sa := c.ServiceStamp("web")
	c.Load(snapB)
	if sb := c.ServiceStamp("web"); sb == sa {
		t.Fatalf("two loads at v9 with other instances share the stamp %+v", sa)
	}
	if got := c.Instances("web", Filter{}); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("after the second load: %+v", got)
	}
}

// Interned values are shared between instances, and an instance's own
// values are what it was given.
func TestCatalogInternsRepeatedValues(t *testing.T) {
	c := NewCatalog()
	var snap Snapshot
	snap.Version = 2
	for _, id := range []string{"a", "b"} {
		snap.Instances = append(snap.Instances, Instance{Service: string([]byte("web")), ID: id, Address: "10.0.0.1", Port: 80,
			Zone: string([]byte("z1")), Tags: []string{string([]byte("v1")), "canary"}, Meta: map[string]string{"team": "x"},
			Status: Status([]byte("passing")), Check: &Check{TTL: 10}})
	}
	c.Load(snap)
	ins := c.Instances("web", Filter{})
	if len(ins) != 2 {
		t.Fatalf("%d instances", len(ins))
	}
	a, b := ins[0], ins[1]
	if &a.Tags[0] != &b.Tags[0] || a.Check != b.Check || a.Meta["team"] != "x" || a.Zone != "z1" || a.Status != StatusPassing {
		t.Fatalf("not interned or changed: %+v %+v", a, b)
	}
	a.Meta["team"] = "y" // callers must not; this only proves the map is shared
	if b.Meta["team"] != "y" {
		t.Fatal("meta maps are not shared")
	}
}
