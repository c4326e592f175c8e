package federation

import (
	"fmt"
	"time"
)

// MemberStatus is a gateway's status as membership sees it.
type MemberStatus int

// Statuses. Serf reports alive, failed and left (leaving counts as left);
// suspect is reported by membership models that see it (the simulator).
const (
	StatusAlive MemberStatus = iota + 1
	StatusSuspect
	StatusFailed
	StatusLeft
)

func (s MemberStatus) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusFailed:
		return "failed"
	case StatusLeft:
		return "left"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s MemberStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is one gateway in the pool, from its tags.
type Member struct {
	Name     string       // unique node name
	Region   string       // tag "region"
	HTTPAddr string       // tag "http": host:port of its HTTP API
	Version  uint64       // tag "version": its region's catalog version
	Status   MemberStatus //
}

// EventKind is the kind of a membership event.
type EventKind int

// Membership events. Update carries changed tags (a new catalog version).
const (
	EventJoin EventKind = iota + 1
	EventUpdate
	EventFailed
	EventLeave
	EventReap
)

func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventFailed:
		return "failed"
	case EventLeave:
		return "leave"
	case EventReap:
		return "reap"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// MemberEvent is a change in the pool.
type MemberEvent struct {
	Kind   EventKind
	Member Member
}

func (e MemberEvent) String() string {
	return fmt.Sprintf("%s %s (region %s, http %s, v%d, %s)", e.Kind, e.Member.Name, e.Member.Region,
		e.Member.HTTPAddr, e.Member.Version, e.Member.Status)
}

// Membership is the gossip pool as the federation sees it. The production
// implementation wraps Serf; the simulator has a model of its own.
type Membership interface {
	// LocalName is this gateway's node name.
	LocalName() string
	// Members returns every known gateway, this one included, sorted by name.
	Members() []Member
	// Events delivers changes. The channel is buffered; the consumer must
	// keep reading it (Serf blocks on a full channel).
	Events() <-chan MemberEvent
	// SetVersion publishes this region's catalog version in the local tags.
	// Publication is coalesced: calls are cheap; the tag follows within the
	// implementation's publish interval.
	SetVersion(v uint64)
	// RTT estimates the round-trip time to a node from network
	// coordinates; ok is false when there is no estimate yet.
	RTT(node string) (rtt time.Duration, ok bool)
	// UserEvent broadcasts a small event (at most 512 bytes in all) to every
	// gateway; they arrive on UserEvents.
	UserEvent(name string, payload []byte) error
	// UserEvents delivers user events broadcast by any gateway, this one
	// included.
	UserEvents() <-chan UserEvent
	// Leave leaves the pool gracefully; Shutdown stops without leaving.
	Leave() error
	Shutdown() error
}

// UserEvent is a small broadcast message.
type UserEvent struct {
	Name    string
	Payload []byte
}

// Serf tags a gateway advertises. A member without a region tag is not a
// gateway and is ignored.
const (
	TagRegion  = "region"
	TagHTTP    = "http"
	TagVersion = "version"
)

// Gossip profiles: memberlist's WAN, LAN and local configurations.
const (
	ProfileWAN   = "wan"
	ProfileLAN   = "lan"
	ProfileLocal = "local"
)
