package federation

import (
	"slices"
	"sync"
)

// Shards decides which of a region's alive gateways runs an instance's
// health checks (Owner over their names). The agent and the simulator
// feed it the region's alive gateways after every membership change and
// re-sync their health runner when Update reports a change.
type Shards struct {
	self string

	mu    sync.RWMutex
	peers []Member
	names []string
}

// NewShards returns the sharding of gateway self; it owns every key until
// Update names the region's gateways.
func NewShards(self string) *Shards { return &Shards{self: self} }

// Update sets the region's alive gateways; it reports whether the set
// (names and addresses) changed.
func (s *Shards) Update(alive []Member) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names != nil && slices.EqualFunc(s.peers, alive, func(x, y Member) bool { return x.Name == y.Name && x.HTTPAddr == y.HTTPAddr }) {
		return false
	}
	names := make([]string, len(alive))
	for i, m := range alive {
		names[i] = m.Name
	}
	s.peers, s.names = slices.Clone(alive), names
	return true
}

// Names returns the alive gateways' names as last updated.
func (s *Shards) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names
}

// Owner returns the gateway that runs key's checks; ok is false while no
// gateway is known.
func (s *Shards) Owner(key string) (Member, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.names) == 0 {
		return Member{}, false
	}
	o := Owner(key, s.names)
	for _, m := range s.peers {
		if m.Name == o {
			return m, true
		}
	}
	return Member{}, false
}

// Owns reports whether this gateway runs key's checks (also while it
// knows no gateway).
func (s *Shards) Owns(key string) bool {
	m, ok := s.Owner(key)
	return !ok || m.Name == s.self
}
