package federation

import (
	"time"

	"github.com/meridian-sd/meridian/region"
)

// Replica is a read-only copy of a remote region's catalog.
type Replica struct {
	Region   string
	Catalog  *region.Catalog // version and instances
	LastSync time.Time       // last successful sync (or when it was restored)
	Source   string          // gateway it last synced from
	Restored bool            // loaded from the local store, not yet synced since
	// Epoch is the life of the region's store the catalog comes from, and
	// RestoredFrom the life that one was restored from ("" when not known:
	// a gateway or a persisted replica from before epochs, a store never
	// written). A region that lost its data starts over in a new epoch:
	// only that tells its older version from a lagging one (see Core).
	Epoch        string
	RestoredFrom string
}

// Version returns the replica's catalog version.
func (r *Replica) Version() uint64 { return r.Catalog.Version() }

// ReplicaSnapshot is a replica as persisted and restored.
type ReplicaSnapshot struct {
	Region    string            `json:"region"`
	Version   uint64            `json:"version"`
	LastSync  time.Time         `json:"last_sync"`
	Source    string            `json:"source"`
	Instances []region.Instance `json:"instances"`
	// Epoch and RestoredFrom: see Replica.
	Epoch        string `json:"epoch,omitempty"`
	RestoredFrom string `json:"restored_from,omitempty"`
}

// Snapshot returns the replica as a ReplicaSnapshot.
func (r *Replica) Snapshot() ReplicaSnapshot {
	return ReplicaSnapshot{Region: r.Region, Version: r.Version(), LastSync: r.LastSync, Source: r.Source,
		Instances: r.Catalog.All(), Epoch: r.Epoch, RestoredFrom: r.RestoredFrom}
}

// SyncResult is what a fetch from a remote gateway returned: either the
// changes after the replica's version (Full false) or a whole catalog.
type SyncResult struct {
	Version uint64          // the region's version after these changes
	Full    bool            // Catalog replaces the replica
	Catalog *region.Catalog // when Full: built by the driver, off the core's lock
	Changes []region.Change // when not Full
	// Epoch is the life of the region's store the answer comes from, and
	// RestoredFrom (Full only) the life that one was restored from; "" when
	// the serving gateway did not say (an older version) or the store has
	// none. See Replica.
	Epoch        string
	RestoredFrom string
}
