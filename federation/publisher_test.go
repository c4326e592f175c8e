package federation

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

func TestPublisherRateLimits(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := rt.NewManual(t0)
	type pub struct {
		at time.Duration
		v  uint64
	}
	var got []pub
	alive := true
	p := NewPublisher(m, time.Second, func(v uint64) bool {
		if !alive {
			return false
		}
		got = append(got, pub{m.Now().Sub(t0), v})
		return true
	})
	p.Set(1)
	m.Run()
	for v := uint64(2); v <= 5; v++ { // a burst within one interval
		m.Advance(100 * time.Millisecond)
		p.Set(v)
	}
	m.Advance(2 * time.Second)
	p.Set(5) // unchanged: nothing
	m.Advance(2 * time.Second)
	alive = false
	p.Set(6)
	m.Advance(2 * time.Second)
	want := []pub{{0, 1}, {time.Second, 5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("published %v, want %v", got, want)
	}
	if p.Published() != 5 {
		t.Fatalf("Published() = %d, want 5", p.Published())
	}
	alive = true
	p.Set(7)
	m.Advance(time.Millisecond)
	if p.Published() != 7 {
		t.Fatalf("after a failed publish, Published() = %d, want 7", p.Published())
	}
}

func TestShardsOwner(t *testing.T) {
	s := NewShards("b")
	if !s.Owns("x") {
		t.Fatal("with no gateways known, a gateway owns every key")
	}
	peers := []Member{{Name: "a", HTTPAddr: "a:1"}, {Name: "b", HTTPAddr: "b:1"}, {Name: "c", HTTPAddr: "c:1"}}
	if !s.Update(peers) || s.Update(peers) {
		t.Fatal("Update must report a change once")
	}
	for _, k := range []string{"web/1", "web/2", "db/1", "db/2", "api/7"} {
		o := Owner(k, []string{"a", "b", "c"})
		m, ok := s.Owner(k)
		if !ok || m.Name != o || s.Owns(k) != (o == "b") {
			t.Errorf("key %s: owner %v %v, Owns %v; want %s", k, m, ok, s.Owns(k), o)
		}
	}
}
