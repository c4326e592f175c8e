package region

import (
	"slices"
	"time"
)

// SyncKeys is Sync for some instances only: it reconciles each of keys
// with current[key] (absent: the instance is gone, or not this runner's)
// and leaves every other instance as it is. After a burst of changes it
// costs O(changed keys) where Sync costs O(catalog); given the same keys
// it ends in the state Sync would, drawing probe jitter the same way.
func (h *Health) SyncKeys(now time.Time, keys []Key, current map[Key]Instance) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, healthKeyCmp)
	keys = slices.Compact(keys)
	var fresh []Key
	for _, k := range keys {
		in, ok := current[k]
		switch {
		case !ok:
			delete(h.states, k)
			delete(h.unchecked, k)
			continue
		case in.Check == nil || in.Check.Kind() == "":
			delete(h.states, k)
			h.unchecked[k] = struct{}{}
			continue
		}
		delete(h.unchecked, k)
		c := in.Check.withDefaults()
		if st := h.states[k]; st != nil && st.check == c {
			st.observe(now, &in)
			continue
		}
		h.states[k] = newHealthState(now, c, &in)
		fresh = append(fresh, k)
	}
	for _, k := range fresh {
		st := h.states[k]
		if st.kind == "ttl" {
			continue
		}
		span := min(st.check.Interval.Std(), time.Second)
		var jitter time.Duration
		if span > 0 {
			jitter = time.Duration(h.rng.Int64N(int64(span)))
		}
		st.nextProbe = now.Add(jitter)
	}
}
