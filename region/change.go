package region

import "fmt"

// Op is the kind of a change.
type Op string

// The two kinds of change: an instance written (registered, replaced, or its
// status changed) and an instance removed.
const (
	OpPut    Op = "put"
	OpDelete Op = "delete"
)

// Change is one entry of a region's change log. Version is the catalog
// version the change produced; versions grow by exactly one per change.
type Change struct {
	Version  uint64    `json:"version"`
	Op       Op        `json:"op"`
	Service  string    `json:"service"`
	ID       string    `json:"id"`
	Instance *Instance `json:"instance,omitempty"`
	// Epoch is the epoch of the store that made the change, when the store
	// reports it ("" when unknown). It stays inside the region: the sync
	// protocol does not carry it.
	Epoch string `json:"-"`
}

func (c Change) String() string {
	return fmt.Sprintf("v%d %s %s/%s", c.Version, c.Op, c.Service, c.ID)
}

// Snapshot is a whole catalog at one version.
type Snapshot struct {
	Version   uint64     `json:"version"`
	Instances []Instance `json:"instances"`
	// Epoch and RestoredFrom say which life of the store the snapshot comes
	// from (see StoreMark); empty when the store has none or the snapshot
	// was not read from a store.
	Epoch        string `json:"epoch,omitempty"`
	RestoredFrom string `json:"restored_from,omitempty"`
}
