package region

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns for conditions, as opposed to failures to reach it.
var (
	ErrNotFound = errors.New("instance not found")
	ErrConflict = errors.New("instance changed since it was read")
)

// Cond makes a write conditional.
type Cond struct {
	// IfIndex, when not zero, applies the write only if the stored instance's
	// ModifyIndex equals it (ErrConflict otherwise, ErrNotFound if it is gone).
	IfIndex uint64
	// MustExist fails the write with ErrNotFound if the instance is absent.
	MustExist bool
	// WriteID, when not empty, makes the write idempotent: the store keeps
	// the write's result (its change, or ErrNotFound/ErrConflict) for
	// WriteIDTTL, and a repeat of the same WriteID returns that first result
	// without applying anything again. A writer that lost the answer to a
	// write (a timeout, a dropped connection) repeats it with the same id to
	// learn what happened. At most 128 bytes of [A-Za-z0-9._:-].
	WriteID string
}

// WriteIDTTL is how long a store remembers the result of a write with a
// WriteID.
const WriteIDTTL = 10 * time.Minute

// ErrOutcomeUnknown wraps a store failure after which the write may or may
// not have been applied (the request reached the store but its answer was
// lost). Repeating the write with the same Cond.WriteID tells which.
// Failures that do not wrap it are known to have written nothing.
var ErrOutcomeUnknown = errors.New("the write may or may not have been applied")

// Store is where a region's catalog lives. Each change is atomic: it writes
// the instance, increments the catalog version by one, appends the change to
// a bounded change log, and notifies the region's other gateways. Errors
// other than ErrNotFound and ErrConflict mean the store could not be reached
// or failed: ErrOutcomeUnknown when the change may have been applied (repeat
// it with the same Cond.WriteID to learn which), otherwise nothing was
// written.
type Store interface {
	// Put registers or replaces an instance and returns the change it made
	// (the stored instance, with RegisteredAt kept from an earlier
	// registration and ModifyIndex set).
	Put(ctx context.Context, in Instance, c Cond) (Change, error)
	// Delete removes an instance. Deleting an absent instance is ErrNotFound.
	Delete(ctx context.Context, k Key, c Cond) (Change, error)
	// Snapshot returns the whole catalog at one version.
	Snapshot(ctx context.Context) (Snapshot, error)
	// ChangesSince returns up to max changes after version since, in order.
	// ok is false when the log no longer reaches back to since+1, or when
	// since is ahead of the store (it lost data): the caller must load a
	// Snapshot instead.
	ChangesSince(ctx context.Context, since uint64, max int) (changes []Change, ok bool, err error)
	// Restore writes back a catalog the store lost (see DetectLoss), once:
	// only if the store's epoch is still expect ("" for none) does it add
	// r.Instances that the store does not hold (the store's own, written
	// since the loss, win), set the version to at least r.Version and every
	// instance's ModifyIndex to it, replace the epoch with r.Epoch restored
	// from r.From, clear the change log (readers behind reload a snapshot)
	// and notify. ok is false, with nothing written, when the epoch moved
	// (another gateway restored first).
	Restore(ctx context.Context, expect string, r RestoreRequest) (ok bool, err error)
	// Subscribe delivers catalog versions as other writers publish them,
	// until ctx ends. Delivery is best effort: a follower also catches up
	// periodically.
	Subscribe(ctx context.Context) <-chan uint64
	// Ping checks that the store can be reached.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// RestoreRequest is what Store.Restore writes.
type RestoreRequest struct {
	Instances []Instance // the catalog to write back (see MergeRestore)
	Version   uint64     // the version to restore at, at least
	Epoch     string     // the store's new epoch
	From      string     // the epoch the catalog comes from
}

// DefaultLogMax is how many changes the change log keeps.
const DefaultLogMax = 10000
