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
}

func (c Change) String() string {
	return fmt.Sprintf("v%d %s %s/%s", c.Version, c.Op, c.Service, c.ID)
}

// Snapshot is a whole catalog at one version.
type Snapshot struct {
	Version   uint64     `json:"version"`
	Instances []Instance `json:"instances"`
}
