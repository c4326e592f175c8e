package region

import "fmt"

// A store's epoch is a random id kept next to its catalog version (created
// by the first write to a store that has none, and replaced by every
// restore). A store that comes back empty (Redis restarted without
// persistence, a failover to a replica that had not caught up) has lost its
// epoch and starts its version again from 0: a gateway that has seen the
// store before tells data loss from ordinary progress by comparing what it
// saw with what it reads now (DetectLoss).

// StoreMark is where a store was, as one gateway saw it: its catalog version,
// its epoch, and the epoch the store was restored from (when a restore
// created the epoch; see Store.Restore).
type StoreMark struct {
	Version      uint64 `json:"version"`
	Epoch        string `json:"epoch,omitempty"`
	RestoredFrom string `json:"restored_from,omitempty"`
}

func (m StoreMark) String() string {
	e := m.Epoch
	if e == "" {
		e = "none"
	}
	return fmt.Sprintf("v%d epoch %s", m.Version, e)
}

// Mark returns the snapshot's position in its store.
func (s Snapshot) Mark() StoreMark {
	return StoreMark{Version: s.Version, Epoch: s.Epoch, RestoredFrom: s.RestoredFrom}
}

// OnStoreLoss says what a gateway does when it finds its store lost data.
type OnStoreLoss string

// The two policies. Restore (the default) writes the catalog the gateway
// holds in memory back to the store; Accept adopts the store as it is.
const (
	LossRestore OnStoreLoss = "restore"
	LossAccept  OnStoreLoss = "accept"
)

// ParseOnStoreLoss checks a policy name ("" means LossRestore).
func ParseOnStoreLoss(s string) (OnStoreLoss, error) {
	switch OnStoreLoss(s) {
	case "", LossRestore:
		return LossRestore, nil
	case LossAccept:
		return LossAccept, nil
	}
	return "", fmt.Errorf("must be restore or accept, got %q", s)
}

// DetectLoss compares what a gateway saw of its store (seen) with what it
// reads now (got). It reports data loss, with the reason, when the epoch
// changed or the version went back. It is not loss when:
//   - the gateway had seen nothing (a fresh gateway: version 0, no epoch);
//   - the store had no epoch when seen (written before epochs existed) and
//     the version did not go back;
//   - the store was restored from the epoch seen (another gateway of the
//     region restored it) to a version not below the one seen.
func DetectLoss(seen, got StoreMark) (bool, string) {
	switch {
	case seen.Version == 0 && seen.Epoch == "":
		return false, ""
	case got.Version < seen.Version && got.Epoch == seen.Epoch:
		return true, fmt.Sprintf("catalog version went back from v%d to v%d", seen.Version, got.Version)
	case got.Version < seen.Version:
		return true, fmt.Sprintf("catalog version went back from %s to %s", seen, got)
	case seen.Epoch == "" || got.Epoch == seen.Epoch:
		return false, ""
	case got.RestoredFrom == seen.Epoch:
		return false, "" // restored by another gateway, not behind what was seen
	}
	return true, fmt.Sprintf("store epoch changed from %s to %s", seen, got)
}

// RestoreVersionGap is how far above the last version a gateway saw a
// restore puts the catalog version. Gateways of one region follow the same
// store and differ by at most the writes of their last second: the gap keeps
// the version of every one of them from going back when one restores, so
// the others adopt the restored catalog instead of restoring again.
const RestoreVersionGap = 100

// RestoreVersion returns the version a restore writes: above both the
// version seen before the loss and what the store reached since.
func RestoreVersion(seen, store uint64) uint64 {
	return max(seen, store) + RestoreVersionGap
}

// MergeRestore returns the instances a restore writes back: every instance
// the gateway held (mem) that the store does not hold now, since the store's
// own were written after the loss and are newer. Sorted by key.
func MergeRestore(mem, store []Instance) []Instance {
	have := make(map[Key]bool, len(store))
	for _, in := range store {
		have[in.Key()] = true
	}
	var out []Instance
	for _, in := range mem {
		if !have[in.Key()] {
			out = append(out, in)
		}
	}
	sortInstances(out)
	return out
}
