package region

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestSyncKeysMatchesSync: after rounds of random changes (new instances,
// removed ones, a check added, changed or dropped, a status written),
// a Health fed only the changed keys (SyncKeys) must be in exactly the
// state of one fed the whole catalog (Sync) from the same seed: the same
// checked and unchecked instances, the same probe schedule, the same
// random draws left.
func TestSyncKeysMatchesSync(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		full := NewHealth(rand.New(rand.NewPCG(seed, 1)))
		incr := NewHealth(rand.New(rand.NewPCG(seed, 1)))
		cat := map[Key]Instance{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		randCheck := func() *Check {
			switch rng.IntN(4) {
			case 0:
				return nil
			case 1:
				return &Check{TTL: Duration(time.Duration(1+rng.IntN(3)) * time.Second)}
			case 2:
				return &Check{HTTP: "http://10.0.0.1/h", Interval: Duration(time.Duration(1+rng.IntN(3)) * time.Second)}
			}
			return &Check{TCP: "10.0.0.1:9", Interval: Duration(5 * time.Second), FailuresBeforeCritical: 1 + rng.IntN(2)}
		}
		for round := range 30 {
			now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
			var changed []Key
			for range 1 + rng.IntN(8) {
				k := Key{Service: fmt.Sprintf("s%d", rng.IntN(3)), ID: fmt.Sprintf("i%d", rng.IntN(25))}
				changed = append(changed, k)
				if _, ok := cat[k]; ok && rng.IntN(3) == 0 {
					delete(cat, k)
					continue
				}
				in := testInstance(k.Service, k.ID, 80)
				in.Check = randCheck()
				in.Status = []Status{StatusPassing, StatusCritical, StatusWarning}[rng.IntN(3)]
				in.ModifyIndex = uint64(round*100 + len(changed))
				cat[k] = in
			}
			all := make([]Instance, 0, len(cat))
			for _, in := range cat {
				all = append(all, in)
			}
			rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			full.Sync(now, all)
			incr.SyncKeys(now, changed, cat)
			if !reflect.DeepEqual(full.states, incr.states) || !reflect.DeepEqual(full.unchecked, incr.unchecked) {
				t.Fatalf("seed %d round %d: SyncKeys differs from Sync:\nSync:     %d checked, %d unchecked\nSyncKeys: %d checked, %d unchecked",
					seed, round, len(full.states), len(full.unchecked), len(incr.states), len(incr.unchecked))
			}
			if a, b := full.rng.Uint64(), incr.rng.Uint64(); a != b {
				t.Fatalf("seed %d round %d: the random draws diverged", seed, round)
			}
		}
	}
}
