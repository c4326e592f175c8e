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
}

// Snapshot returns the replica as a ReplicaSnapshot.
func (r *Replica) Snapshot() ReplicaSnapshot {
	return ReplicaSnapshot{Region: r.Region, Version: r.Version(), LastSync: r.LastSync, Source: r.Source,
		Instances: r.Catalog.All()}
}

// SyncResult is what a fetch from a remote gateway returned: either the
// changes after the replica's version (Full false) or a whole catalog.
type SyncResult struct {
	Version uint64          // the region's version after these changes
	Full    bool            // Catalog replaces the replica
	Catalog *region.Catalog // when Full: built by the driver, off the core's lock
	Changes []region.Change // when not Full
}
