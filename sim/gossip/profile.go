package gossip

import (
	"fmt"
	"math"
	"time"
)

// Profile is memberlist/serf timing for one gossip profile.
type Profile struct {
	Name                    string
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
	GossipNodes             int
	RetransmitMult          int
	PushPullInterval        time.Duration
	ReconnectInterval       time.Duration // serf: how often it tries to reconnect to failed members

	// IndirectChecks is how many members are asked to probe a member that
	// missed its ack (memberlist Config.IndirectChecks).
	IndirectChecks int
	// AwarenessMaxMultiplier caps Lifeguard's probe-interval scaling
	// (memberlist Config.AwarenessMaxMultiplier).
	AwarenessMaxMultiplier int
	// GossipToTheDeadTime is how long a member marked dead still gets
	// gossip (memberlist Config.GossipToTheDeadTime).
	GossipToTheDeadTime time.Duration
	// TCPTimeout bounds a stream dial (memberlist Config.TCPTimeout): a
	// reconnect into a partition blocks that long.
	TCPTimeout time.Duration
}

// Profile names, as serfmember.SerfConfig.Profile spells them.
const (
	WAN   = "wan"
	LAN   = "lan"
	Local = "local"
)

// ProfileByName returns "wan", "lan" or "local" with the same settings that
// serfmember.NewSerfMembership uses for that profile: memberlist's
// DefaultWANConfig, DefaultLANConfig and DefaultLocalConfig (memberlist
// v0.7.0 config.go), with serf.DefaultConfig's ReconnectInterval (30s)
// except for local, where federation lowers it to 5s. The test
// TestProfilesMatchLibraries compares these values with the libraries'.
func ProfileByName(name string) (Profile, error) {
	lan := Profile{
		Name:                    LAN,
		ProbeInterval:           time.Second,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 6,
		GossipInterval:          200 * time.Millisecond,
		GossipNodes:             3,
		RetransmitMult:          4,
		PushPullInterval:        30 * time.Second,
		ReconnectInterval:       30 * time.Second,
		IndirectChecks:          3,
		AwarenessMaxMultiplier:  8,
		GossipToTheDeadTime:     30 * time.Second,
		TCPTimeout:              10 * time.Second,
	}
	switch name {
	case LAN:
		return lan, nil
	case WAN:
		p := lan
		p.Name = WAN
		p.SuspicionMult = 6
		p.PushPullInterval = 60 * time.Second
		p.ProbeTimeout = 3 * time.Second
		p.ProbeInterval = 5 * time.Second
		p.GossipNodes = 4
		p.GossipInterval = 500 * time.Millisecond
		p.GossipToTheDeadTime = 60 * time.Second
		p.TCPTimeout = 30 * time.Second
		return p, nil
	case Local:
		p := lan
		p.Name = Local
		p.IndirectChecks = 1
		p.RetransmitMult = 2
		p.SuspicionMult = 3
		p.PushPullInterval = 15 * time.Second
		p.ProbeTimeout = 200 * time.Millisecond
		p.ProbeInterval = time.Second
		p.GossipInterval = 100 * time.Millisecond
		p.GossipToTheDeadTime = 15 * time.Second
		p.TCPTimeout = time.Second
		p.ReconnectInterval = 5 * time.Second
		return p, nil
	}
	return Profile{}, fmt.Errorf("gossip profile %q: want wan, lan or local", name)
}

// SuspicionMin is the suspicion timeout once all expected confirmations
// have arrived: SuspicionMult × max(1, log10 n) × ProbeInterval
// (memberlist util.go suspicionTimeout).
func (p Profile) SuspicionMin(n int) time.Duration {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	return time.Duration(p.SuspicionMult) * time.Duration(scale*1000) * p.ProbeInterval / 1000
}

// SuspicionMax is the suspicion timeout with no confirmations:
// SuspicionMaxTimeoutMult × SuspicionMin (memberlist state.go suspectNode).
func (p Profile) SuspicionMax(n int) time.Duration {
	return time.Duration(p.SuspicionMaxTimeoutMult) * p.SuspicionMin(n)
}

// Confirmations is k, the number of independent confirmations that bring a
// suspicion down to SuspicionMin: SuspicionMult-2, or 0 when n-2 < k (then
// the timeout is SuspicionMin from the start; memberlist state.go
// suspectNode, suspicion.go newSuspicion).
func (p Profile) Confirmations(n int) int {
	k := p.SuspicionMult - 2
	if n-2 < k {
		k = 0
	}
	return k
}

// suspicionTimeout is the timeout after c of k confirmations:
// max - log(c+1)/log(k+1) × (max-min), floored at min and truncated to
// the millisecond (memberlist suspicion.go remainingSuspicionTime).
func (p Profile) suspicionTimeout(n, c int) time.Duration {
	lo, hi := p.SuspicionMin(n), p.SuspicionMax(n)
	k := p.Confirmations(n)
	if k < 1 {
		return lo
	}
	if c <= 0 {
		return hi
	}
	frac := math.Log(float64(c)+1) / math.Log(float64(k)+1)
	// The explicit float64 conversion rounds the product (Go spec,
	// "Floating-point operators"), so no architecture fuses it into a
	// multiply-subtract: the same seed replays the same on amd64 and arm64.
	raw := hi.Seconds() - float64(frac*(hi.Seconds()-lo.Seconds()))
	t := time.Duration(math.Floor(1000*raw)) * time.Millisecond
	return max(t, lo)
}

// RetransmitLimit is how many times a member passes on one broadcast:
// RetransmitMult × ceil(log10(n+1)) (memberlist util.go retransmitLimit).
func (p Profile) RetransmitLimit(n int) int {
	return p.RetransmitMult * int(math.Ceil(math.Log10(float64(n+1))))
}

// PushPullPeriod is the push/pull interval for n members: PushPullInterval
// × (ceil(log2 n - log2 32) + 1) above 32 members (memberlist util.go
// pushPullScale).
func (p Profile) PushPullPeriod(n int) time.Duration {
	const threshold = 32
	if n <= threshold {
		return p.PushPullInterval
	}
	mult := math.Ceil(math.Log2(float64(n))-math.Log2(threshold)) + 1
	return time.Duration(mult) * p.PushPullInterval
}
