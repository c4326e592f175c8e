package failover

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// endpoints returns n endpoints of web in region r with ids e0, e1, ...
func endpoints(r string, n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{Instance: region.Instance{ID: fmt.Sprintf("e%d", i), Service: "web", Weight: 100, Status: region.StatusPassing}, Region: r}
	}
	return eps
}

func TestNewPicker(t *testing.T) {
	tests := []struct {
		name    string
		rng     *rand.Rand
		wantErr string
	}{
		{PickerRoundRobin, nil, ""},
		{PickerHash, nil, ""},
		{PickerWeighted, seeded(1), ""},
		{PickerP2C, seeded(1), ""},
		{PickerWeighted, nil, "needs a *rand.Rand"},
		{PickerP2C, nil, "needs a *rand.Rand"},
		{"random", seeded(1), `unknown picker "random"`},
	}
	for _, tc := range tests {
		pk, err := NewPicker(tc.name, tc.rng)
		switch {
		case tc.wantErr == "" && (err != nil || pk == nil):
			t.Errorf("NewPicker(%q): got %v, %v; want a picker", tc.name, pk, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("NewPicker(%q): got error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
		if pk == nil {
			continue
		}
		if _, ok := pk.Pick(nil, "k"); ok {
			t.Errorf("%s: Pick on an empty list: got ok, want false", tc.name)
		}
		if e, ok := pk.Pick(endpoints("r", 1), "k"); !ok || e.ID != "e0" {
			t.Errorf("%s: Pick on one endpoint: got %s, %v; want e0, true", tc.name, e.ID, ok)
		}
	}
	if _, err := NewP2C(seeded(1), P2CConfig{Decay: -time.Second}); err == nil || !strings.Contains(err.Error(), "decay") {
		t.Errorf("NewP2C with negative decay: got %v, want an error naming decay", err)
	}
}

func TestRoundRobinCycles(t *testing.T) {
	var rr RoundRobin
	eps := endpoints("r", 3)
	var got []string
	for range 7 {
		e, _ := rr.Pick(eps, "")
		got = append(got, e.ID)
	}
	want := []string{"e0", "e1", "e2", "e0", "e1", "e2", "e0"}
	if !slices.Equal(got, want) {
		t.Errorf("round robin: got %v, want %v", got, want)
	}
}

func TestWeightedFollowsWeights(t *testing.T) {
	w, _ := NewWeighted(seeded(42))
	eps := endpoints("r", 4)
	eps[0].Weight, eps[1].Weight, eps[2].Weight, eps[3].Weight = 100, 300, 600, 0 // 0 counts as the default 100
	const n = 200_000
	count := map[string]int{}
	for range n {
		e, _ := w.Pick(eps, "")
		count[e.ID]++
	}
	want := map[string]float64{"e0": 100. / 1100, "e1": 300. / 1100, "e2": 600. / 1100, "e3": 100. / 1100}
	for id, p := range want {
		got := float64(count[id]) / n
		if math.Abs(got-p) > 0.005 {
			t.Errorf("weighted %s: got %.4f of picks, want %.4f ± 0.005", id, got, p)
		}
	}
}

func TestP2CPrefersLowLatency(t *testing.T) {
	p, _ := NewP2C(seeded(7), P2CConfig{})
	eps := endpoints("r", 5) // e0 is slow
	t0 := time.Unix(1_000_000, 0)
	for i := range 10 { // warm up
		now := t0.Add(time.Duration(i) * time.Second)
		for _, e := range eps {
			lat := time.Millisecond
			if e.ID == "e0" {
				lat = 200 * time.Millisecond
			}
			p.Observe(now, e.Ref(), lat, false)
		}
	}
	const n = 10_000
	slow := 0
	for range n {
		if e, _ := p.Pick(eps, ""); e.ID == "e0" {
			slow++
		}
	}
	if frac := float64(slow) / n; frac >= 0.05 {
		t.Errorf("p2c: slow endpoint got %.2f%% of picks, want < 5%%", 100*frac)
	}
}

func TestP2CInflightAndNewcomers(t *testing.T) {
	p, _ := NewP2C(seeded(9), P2CConfig{})
	eps := endpoints("r", 3)
	now := time.Unix(1_000_000, 0)
	for _, e := range eps {
		p.Observe(now, e.Ref(), 10*time.Millisecond, false)
	}
	// e0 has 5 requests in flight: it loses every comparison.
	for range 5 {
		p.Start(eps[0].Ref())
	}
	busy := 0
	for range 1000 {
		if e, _ := p.Pick(eps, ""); e.ID == "e0" {
			busy++
		}
	}
	if busy != 0 {
		t.Errorf("p2c: endpoint with 5 in flight got %d of 1000 picks, want 0", busy)
	}
	for range 5 {
		p.Done(eps[0].Ref())
	}
	p.Done(eps[0].Ref()) // one Done too many is ignored

	// A newcomer, never observed, gets traffic.
	eps = append(eps, Endpoint{Instance: region.Instance{ID: "new", Service: "web"}, Region: "r"})
	fresh := 0
	for range 1000 {
		if e, _ := p.Pick(eps, ""); e.ID == "new" {
			fresh++
		}
	}
	if fresh < 300 { // it wins every draw it is in (half of them)
		t.Errorf("p2c: unobserved endpoint got %d of 1000 picks, want >= 300", fresh)
	}
}

func TestP2CEWMA(t *testing.T) {
	p, _ := NewP2C(seeded(1), P2CConfig{Decay: 10 * time.Second, FailurePenalty: time.Second})
	id := "r/web/e0"
	ewma := func() time.Duration {
		p.mu.Lock()
		defer p.mu.Unlock()
		return time.Duration(p.stats[parseRef(id)].ewma)
	}
	t0 := time.Unix(1_000_000, 0)
	p.Observe(t0, id, 10*time.Millisecond, false)
	p.Observe(t0.Add(time.Second), id, 200*time.Millisecond, false)
	if got := ewma(); got != 200*time.Millisecond {
		t.Errorf("peak: got %v, want 200ms at once", got)
	}
	p.Observe(t0.Add(11*time.Second), id, 10*time.Millisecond, false) // dt = Decay: weight 1 - 1/e
	want := 10*time.Millisecond + time.Duration(math.Round(float64(190*time.Millisecond)/math.E))
	if got := ewma(); (got - want).Abs() > time.Microsecond {
		t.Errorf("decay after one time constant: got %v, want %v", got, want)
	}
	p.Observe(t0.Add(12*time.Second), id, time.Millisecond, true)
	if got := ewma(); got != time.Second {
		t.Errorf("fast failure: got %v, want the 1s penalty", got)
	}
	p.Forget(id)
	p.mu.Lock()
	n := len(p.stats)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("Forget: %d entries left, want 0", n)
	}
}

func TestHashStableAndMinimalMoves(t *testing.T) {
	var h Hash
	eps := endpoints("r", 10)
	const keys = 20_000
	owner := make([]string, keys)
	count := map[string]int{}
	for k := range keys {
		e, _ := h.Pick(eps, fmt.Sprintf("user-%d", k))
		owner[k] = e.ID
		count[e.ID]++
	}
	for _, e := range eps {
		if frac := float64(count[e.ID]) / keys; math.Abs(frac-0.1) > 0.015 {
			t.Errorf("hash: %s owns %.3f of keys, want 0.1 ± 0.015", e.ID, frac)
		}
	}
	// Stable for a key, whatever the order of the list.
	rev := slices.Clone(eps)
	slices.Reverse(rev)
	for k := range 1000 {
		key := fmt.Sprintf("user-%d", k)
		for _, list := range [][]Endpoint{eps, rev} {
			if e, _ := h.Pick(list, key); e.ID != owner[k] {
				t.Fatalf("hash: key %s went to %s, earlier to %s", key, e.ID, owner[k])
			}
		}
	}
	// Removing e3 moves e3's keys only, about 1/10.
	without := slices.Delete(slices.Clone(eps), 3, 4)
	moved := 0
	for k := range keys {
		e, _ := h.Pick(without, fmt.Sprintf("user-%d", k))
		if e.ID != owner[k] {
			moved++
			if owner[k] != "e3" {
				t.Fatalf("hash: key %d moved from %s (still present) to %s", k, owner[k], e.ID)
			}
		}
	}
	if frac := float64(moved) / keys; math.Abs(frac-0.1) > 0.015 {
		t.Errorf("hash: removing 1 of 10 moved %.3f of keys, want 0.1 ± 0.015", frac)
	}
	// Weights: e0 at 300 gets about 3/12 of keys.
	eps[0].Weight = 300
	heavy := 0
	for k := range keys {
		if e, _ := h.Pick(eps, fmt.Sprintf("user-%d", k)); e.ID == "e0" {
			heavy++
		}
	}
	if frac := float64(heavy) / keys; math.Abs(frac-0.25) > 0.02 {
		t.Errorf("hash: weight 300 among nine 100s owns %.3f of keys, want 0.25 ± 0.02", frac)
	}
	// An empty key falls back to round robin.
	var got []string
	for range 4 {
		e, _ := h.Pick(eps[:3], "")
		got = append(got, e.ID)
	}
	if want := []string{"e0", "e1", "e2", "e0"}; !slices.Equal(got, want) {
		t.Errorf("hash with empty key: got %v, want round robin %v", got, want)
	}
}

// TestPickersConcurrent is for -race.
func TestPickersConcurrent(t *testing.T) {
	eps := endpoints("r", 5)
	for _, name := range []string{PickerRoundRobin, PickerWeighted, PickerP2C, PickerHash} {
		pk, err := NewPicker(name, seeded(3))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				now := time.Unix(1_000_000, 0)
				for i := range 500 {
					e, ok := pk.Pick(eps, fmt.Sprintf("k%d", i%17))
					if !ok {
						t.Errorf("%s: no pick", name)
						return
					}
					if p2c, isP2C := pk.(*P2C); isP2C {
						p2c.Start(e.Ref())
						p2c.Observe(now.Add(time.Duration(i)*time.Millisecond), e.Ref(), time.Duration(g+1)*time.Millisecond, i%50 == 0)
						p2c.Done(e.Ref())
					}
				}
			}()
		}
		wg.Wait()
	}
}
