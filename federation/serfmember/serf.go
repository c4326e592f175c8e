package serfmember

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/meridian-sd/meridian/rt"

	"github.com/meridian-sd/meridian/federation"
)

// localReconnectInterval is how often the local profile retries failed
// members (Serf's default, kept by wan and lan, is 30s).
const localReconnectInterval = 5 * time.Second

// maxTagBytes is Serf's limit on the encoded tags (memberlist.MetaMaxSize).
const maxTagBytes = memberlist.MetaMaxSize

// SerfConfig configures a SerfMembership. Zero values take the defaults
// given per field.
type SerfConfig struct {
	// NodeName must be unique in the pool. Default: hostname-region-PORT
	// (the gossip port; 4 random hex digits when the port is 0).
	NodeName string
	// Region is advertised in tag "region". Required.
	Region string
	// HTTPAddr (host:port of this gateway's HTTP API) is advertised in tag
	// "http"; peers fetch catalogs from it.
	HTTPAddr string
	// BindAddr is the gossip host:port (UDP and TCP). Port 0 picks a free
	// port (see SerfMembership.BindAddr). Default "0.0.0.0:7946". Ignored
	// when Transport is set.
	BindAddr string
	// AdvertiseAddr is the host:port peers should use, when it differs from
	// the bound one (NAT, 0.0.0.0).
	AdvertiseAddr string
	// Profile is "wan" (default), "lan" or "local"; see SerfMembership.
	Profile string
	// Join lists host:port addresses of gateways to join. They are tried in
	// the background, with exponential backoff (from 500ms for the local
	// profile, 1s otherwise, up to 30s) until one join succeeds.
	Join []string
	// PublishInterval bounds how often SetVersion reaches the tags.
	// Default 1s, 200ms for the local profile.
	PublishInterval time.Duration
	// Logger receives serf's and memberlist's logs too. Default
	// slog.Default().
	Logger *slog.Logger
	// Transport replaces the real UDP/TCP transport (tests inject a
	// MemTransport or a FaultTransport).
	Transport memberlist.NodeAwareTransport
	// Keys is the gossip keyring (16, 24 or 32 bytes each; see ParseKey),
	// the first being the primary key that encrypts; the others only
	// decrypt. Empty: gossip is not encrypted. With keys, memberlist
	// refuses unencrypted messages in both directions.
	Keys [][]byte
	// KeyringFile, with Keys, is where Serf writes the keyring after every
	// change made through the KeyManager, in Serf's format. It is not read
	// here: the caller loads it (LoadKeyring).
	KeyringFile string
}

// Validate reports the first problem with the configuration.
func (c *SerfConfig) Validate() error {
	if strings.TrimSpace(c.Region) == "" {
		return errors.New("serf config: Region is required")
	}
	switch c.Profile {
	case "", federation.ProfileWAN, federation.ProfileLAN, federation.ProfileLocal:
	default:
		return fmt.Errorf("serf config: Profile %q: want wan, lan or local", c.Profile)
	}
	if c.Transport == nil && c.BindAddr != "" {
		if err := checkHostPort(c.BindAddr, true); err != nil {
			return fmt.Errorf("serf config: BindAddr %q: %w", c.BindAddr, err)
		}
	}
	if c.AdvertiseAddr != "" {
		if err := checkHostPort(c.AdvertiseAddr, false); err != nil {
			return fmt.Errorf("serf config: AdvertiseAddr %q: %w", c.AdvertiseAddr, err)
		}
	}
	for i, j := range c.Join {
		if _, hp, ok := strings.Cut(j, "/"); ok { // memberlist's "name/host:port"
			j = hp
		}
		if _, port, err := net.SplitHostPort(j); err != nil || port == "" {
			return fmt.Errorf("serf config: Join[%d] %q: want host:port", i, c.Join[i])
		}
	}
	for i, k := range c.Keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("serf config: Keys[%d]: %d bytes; want 16, 24 or 32", i, len(k))
		}
	}
	if c.KeyringFile != "" && len(c.Keys) == 0 {
		return errors.New("serf config: KeyringFile needs Keys")
	}
	if c.PublishInterval < 0 {
		return fmt.Errorf("serf config: PublishInterval %v is negative", c.PublishInterval)
	}
	// Reserve room for the longest version (20 digits).
	if n := tagsSize(c.tags(^uint64(0))); n > maxTagBytes {
		return fmt.Errorf("serf config: tags (Region, HTTPAddr) take %d bytes encoded, over Serf's limit of %d", n, maxTagBytes)
	}
	return nil
}

// checkHostPort accepts an IP literal (or empty host, for a bind) and a
// port; port 0 only for a bind.
func checkHostPort(hp string, bind bool) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return errors.New("want ip:port")
	}
	if (host != "" || !bind) && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q is not an IP address", host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !bind) {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

func (c *SerfConfig) tags(version uint64) map[string]string {
	return map[string]string{federation.TagRegion: c.Region, federation.TagHTTP: c.HTTPAddr, federation.TagVersion: strconv.FormatUint(version, 10)}
}

// tagsSize is the length of Serf's encoding of tags: a magic byte and a
// msgpack map (go-msgpack's default handle writes strings as raw with a 1,
// 3 or 5 byte header). It errs on the large side.
func tagsSize(tags map[string]string) int {
	str := func(s string) int {
		switch {
		case len(s) < 32:
			return 1 + len(s)
		case len(s) < 1<<16:
			return 3 + len(s)
		}
		return 5 + len(s)
	}
	n := 1 + 3 // magic byte, map header (up to 2^16 entries)
	for k, v := range tags {
		n += str(k) + str(v)
	}
	return n
}

// SerfMembership is the production Membership: a Serf agent.
//
// Profiles set memberlist's timing. A member that dies is first probed and
// missed (one probe interval; each member probes one peer per interval, in
// a shuffled round-robin), then suspected for a suspicion timeout before it
// is declared failed. The timeout starts at max and shrinks towards min as
// other members confirm the suspicion (k confirmations reach min; with
// fewer than k+2 members k is 0 and min applies at once). For n members,
// min = SuspicionMult × max(1, log10 n) × ProbeInterval and max =
// SuspicionMaxTimeoutMult × min. With up to 10 members:
//
//	profile  probe (ack timeout)  min   max    k  gossip      push/pull  reconnect
//	wan      5s (3s)              30s   180s   4  500ms to 4  60s        30s
//	lan      1s (500ms)           4s    24s    2  200ms to 3  30s        30s
//	local    1s (200ms)           3s    18s    1  100ms to 3  15s        5s
//
// A crashed member is reported failed after a few probe intervals plus min
// when the others confirm each other (local, 3 members: 4-12s, median 7s,
// under synctest), and at worst after 2(n-1) probe intervals + max + a few
// gossip rounds (local, 3 members: 23s; wan: about 3.5 minutes). A member
// cut off from all others gets no confirmations, so it takes max to declare
// them failed (local: about 21.7s), while they see it failed after min.
// A failed member is retried (a join to it) each reconnect interval with
// probability failed/alive, which is how the sides of a healed partition,
// or a revived member, find each other (local: median 3s, at most about
// reconnect + push/pull). The local profile lowers Serf's ReconnectInterval
// to 5s; wan and lan keep Serf's defaults.
//
// Events are per member (Serf's coalescing is off). A graceful leave is
// reported as leave; when Serf's leave intent loses the race with
// memberlist's dead message it is reported as failed, then leave. Serf's
// own event channel is always drained by an internal goroutine, which waits
// (and with it Serf) when the consumer falls more than a buffer (1024)
// behind on Events or UserEvents: read both. They are never closed.
type SerfMembership struct {
	cfg  SerfConfig
	serf *serf.Serf
	log  *slog.Logger
	bind string
	name string

	serfEvents chan serf.Event
	events     chan federation.MemberEvent
	users      chan federation.UserEvent

	pub        *federation.Publisher // puts the wanted version in the tags
	stop       chan struct{}
	loops      sync.WaitGroup // event loop
	stopOnce   sync.Once
	stopErr    error
	warnedFull atomic.Bool
	rtt        rttCache // rtt.go
}

var _ federation.Membership = (*SerfMembership)(nil)

// NewSerfMembership starts a Serf agent, its event loop, and joining (in
// the background) when cfg.Join is set.
func NewSerfMembership(cfg SerfConfig) (*SerfMembership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Profile == "" {
		cfg.Profile = federation.ProfileWAN
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PublishInterval == 0 {
		cfg.PublishInterval = time.Second
		if cfg.Profile == federation.ProfileLocal {
			cfg.PublishInterval = 200 * time.Millisecond
		}
	}
	if cfg.NodeName == "" {
		// host-region-port is unique among the gateways of one machine and
		// stable across restarts, so a restarted gateway is the same node
		// (not a new one next to its own failed ghost). Port 0 gets a
		// random suffix instead.
		host, _ := os.Hostname()
		suffix := ""
		if _, port, err := net.SplitHostPort(cfg.BindAddr); err == nil && port != "" && port != "0" {
			suffix = port
		} else {
			var b [2]byte
			_, _ = rand.Read(b[:])
			suffix = hex.EncodeToString(b[:])
		}
		cfg.NodeName = fmt.Sprintf("%s-%s-%s", cmp.Or(host, "gateway"), cfg.Region, suffix)
	}
	if cfg.BindAddr == "" && cfg.Transport == nil {
		cfg.BindAddr = "0.0.0.0:7946"
	}

	var ml *memberlist.Config
	switch cfg.Profile {
	case federation.ProfileLAN:
		ml = memberlist.DefaultLANConfig()
	case federation.ProfileLocal:
		ml = memberlist.DefaultLocalConfig()
	default:
		ml = memberlist.DefaultWANConfig()
	}
	m := &SerfMembership{
		cfg:        cfg,
		name:       cfg.NodeName,
		log:        cfg.Logger.With("node", cfg.NodeName),
		serfEvents: make(chan serf.Event, 2048),
		events:     make(chan federation.MemberEvent, 1024),
		users:      make(chan federation.UserEvent, 1024),
		stop:       make(chan struct{}),
	}
	if cfg.Transport != nil {
		ml.Transport = cfg.Transport
	} else {
		host, port, _ := net.SplitHostPort(cfg.BindAddr)
		ml.BindAddr = cmp.Or(host, "0.0.0.0")
		ml.BindPort, _ = strconv.Atoi(port)
		ml.AdvertisePort = ml.BindPort
	}
	if cfg.AdvertiseAddr != "" {
		host, port, _ := net.SplitHostPort(cfg.AdvertiseAddr)
		ml.AdvertiseAddr = host
		ml.AdvertisePort, _ = strconv.Atoi(port)
	}
	ml.Logger = log.New(&logBridge{log: m.log, component: "memberlist"}, "", 0)
	if len(cfg.Keys) > 0 {
		keys := make([][]byte, len(cfg.Keys))
		for i, k := range cfg.Keys {
			keys[i] = slices.Clone(k)
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("serf config: Keys: %w", err)
		}
		ml.Keyring = kr
		ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	}

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeName
	sc.Tags = cfg.tags(0)
	sc.EventCh = m.serfEvents
	sc.MemberlistConfig = ml
	sc.Logger = log.New(&logBridge{log: m.log, component: "serf"}, "", 0)
	sc.LogOutput = nil
	if len(cfg.Keys) > 0 {
		sc.KeyringFile = cfg.KeyringFile
	}
	if cfg.Profile == federation.ProfileLocal {
		sc.ReconnectInterval = localReconnectInterval
	}
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("starting serf on %s: %w", cmp.Or(cfg.BindAddr, "its transport"), err)
	}
	m.serf = s
	if cfg.Transport != nil {
		m.bind = s.Memberlist().LocalNode().Address()
	} else {
		m.bind = net.JoinHostPort(ml.BindAddr, strconv.Itoa(ml.BindPort)) // the port memberlist bound
	}

	m.loops.Add(1)
	go m.eventLoop()
	m.pub = federation.NewPublisher(rt.Real(), cfg.PublishInterval, m.publishTags)
	if join := m.joinTargets(); len(join) > 0 {
		go m.joinLoop(join)
	}
	return m, nil
}

// BindAddr is the address gossip is bound to (with the port picked when
// configured with port 0), or with a custom Transport the advertised one.
func (m *SerfMembership) BindAddr() string { return m.bind }

// LocalName implements Membership.
func (m *SerfMembership) LocalName() string { return m.name }

// Serf gives access to the agent (stats, forced leaves).
func (m *SerfMembership) Serf() *serf.Serf { return m.serf }

// Members implements Membership. The local member shows its published
// tags, which may lag SetVersion by up to the publish interval.
func (m *SerfMembership) Members() []federation.Member {
	sms := m.serf.Members()
	out := make([]federation.Member, 0, len(sms))
	for _, sm := range sms {
		if mem, ok := toMember(sm, 0); ok {
			out = append(out, mem)
		}
	}
	slices.SortFunc(out, func(a, b federation.Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// toMember maps a serf member; status, when given, overrides the member's.
func toMember(sm serf.Member, status federation.MemberStatus) (federation.Member, bool) {
	reg, ok := sm.Tags[federation.TagRegion]
	if !ok || reg == "" {
		return federation.Member{}, false
	}
	v, _ := strconv.ParseUint(sm.Tags[federation.TagVersion], 10, 64)
	if status == 0 {
		switch sm.Status {
		case serf.StatusAlive:
			status = federation.StatusAlive
		case serf.StatusFailed:
			status = federation.StatusFailed
		case serf.StatusLeaving, serf.StatusLeft:
			status = federation.StatusLeft
		default:
			return federation.Member{}, false
		}
	}
	return federation.Member{Name: sm.Name, Region: reg, HTTPAddr: sm.Tags[federation.TagHTTP], Version: v, Status: status}, true
}

// Events implements Membership.
func (m *SerfMembership) Events() <-chan federation.MemberEvent { return m.events }

// UserEvents implements Membership.
func (m *SerfMembership) UserEvents() <-chan federation.UserEvent { return m.users }

// SetVersion implements Membership; it never blocks.
func (m *SerfMembership) SetVersion(v uint64) {
	m.pub.Set(v)
}

// RTT implements Membership from Serf's network coordinates.
func (m *SerfMembership) RTT(node string) (time.Duration, bool) {
	return m.rtt.get(m.serf, m.name, node)
}

// UserEvent implements Membership (not coalesced).
func (m *SerfMembership) UserEvent(name string, payload []byte) error {
	if err := m.serf.UserEvent(name, payload, false); err != nil {
		return fmt.Errorf("broadcasting user event %q: %w", name, err)
	}
	return nil
}

// Leave implements Membership: it broadcasts the leave and waits for it to
// spread (Serf's BroadcastTimeout, then LeavePropagateDelay: about 1s).
func (m *SerfMembership) Leave() error {
	if err := m.serf.Leave(); err != nil {
		return fmt.Errorf("leaving the gossip pool: %w", err)
	}
	return nil
}

// Shutdown implements Membership. It is idempotent. The join and publish
// goroutines end after the Serf call they may be in returns.
func (m *SerfMembership) Shutdown() error {
	m.stopOnce.Do(func() {
		if err := m.serf.Shutdown(); err != nil {
			m.stopErr = fmt.Errorf("shutting serf down: %w", err)
		}
		close(m.stop)
		m.pub.Stop()
		m.loops.Wait()
	})
	return m.stopErr
}

// eventLoop drains Serf's event channel and translates its events.
func (m *SerfMembership) eventLoop() {
	defer m.loops.Done()
	for {
		select {
		case e := <-m.serfEvents:
			m.handle(e)
		case <-m.stop:
			// Serf is shut down; its forwarder may still hand over what it
			// holds (at most its 1024-event queue), which the channel's spare
			// room takes. Drop what is here.
			for {
				select {
				case <-m.serfEvents:
				default:
					return
				}
			}
		}
	}
}

func (m *SerfMembership) handle(e serf.Event) {
	switch e := e.(type) {
	case serf.MemberEvent:
		var kind federation.EventKind
		var status federation.MemberStatus
		switch e.Type {
		case serf.EventMemberJoin:
			kind, status = federation.EventJoin, federation.StatusAlive
		case serf.EventMemberLeave:
			kind, status = federation.EventLeave, federation.StatusLeft
		case serf.EventMemberFailed:
			kind, status = federation.EventFailed, federation.StatusFailed
		case serf.EventMemberUpdate:
			kind = federation.EventUpdate
		case serf.EventMemberReap:
			kind = federation.EventReap
		default:
			return
		}
		for _, sm := range e.Members {
			mem, ok := toMember(sm, status)
			if !ok {
				continue
			}
			ev := federation.MemberEvent{Kind: kind, Member: mem}
			select {
			case m.events <- ev:
				continue
			default:
			}
			if !m.warnedFull.Swap(true) {
				m.log.Warn("membership events are not being read; serf waits", "component", "serf", "buffer", cap(m.events))
			}
			select {
			case m.events <- ev:
			case <-m.stop:
				return
			}
		}
	case serf.UserEvent:
		select {
		case m.users <- federation.UserEvent{Name: e.Name, Payload: e.Payload}:
		case <-m.stop:
		}
	case *serf.Query:
		// Not used by gateways; the query times out at its sender.
	}
}

// publishTags is the Publisher's publish: SetTags blocks until the change
// is broadcast.
func (m *SerfMembership) publishTags(v uint64) bool {
	select {
	case <-m.stop:
		return false
	default:
	}
	if m.serf.State() != serf.SerfAlive {
		return false // after a leave, re-advertising would undo it
	}
	if err := m.serf.SetTags(m.cfg.tags(v)); err != nil {
		// The local state has the tags even when the broadcast timed out;
		// gossip and push/pull carry them on.
		m.log.Debug("publishing catalog version", "version", v, "err", err)
	}
	return true
}

// joinTargets is cfg.Join without this node's own address (joining
// oneself succeeds and would end the retries).
func (m *SerfMembership) joinTargets() []string {
	self := m.serf.Memberlist().LocalNode().Address()
	var out []string
	for _, j := range m.cfg.Join {
		if j != self && j != m.bind {
			out = append(out, j)
		}
	}
	return out
}

// joinLoop retries joining until one address answers, Serf leaves or
// stops.
func (m *SerfMembership) joinLoop(addrs []string) {
	backoff := time.Second
	if m.cfg.Profile == federation.ProfileLocal {
		backoff = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		if m.serf.State() != serf.SerfAlive {
			return
		}
		n, err := m.serf.Join(addrs, true)
		if n > 0 {
			m.log.Info("joined the gossip pool", "component", "serf", "contacted", n, "of", strings.Join(addrs, ","))
			return
		}
		select {
		case <-m.stop:
			return
		default:
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		m.log.Log(context.Background(), level, "could not join the gossip pool; retrying", "component", "serf",
			"join", strings.Join(addrs, ","), "attempt", attempt, "retry_in", backoff, "err", oneLine(err))
		t := time.NewTimer(backoff)
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// oneLine flattens memberlist's multi-line join errors (a go-multierror).
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	if m, ok := err.(interface{ WrappedErrors() []error }); ok && len(m.WrappedErrors()) > 0 {
		var parts []string
		for _, e := range m.WrappedErrors() {
			parts = append(parts, e.Error())
		}
		return strings.Join(parts, "; ")
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// logBridge turns serf's and memberlist's "[LEVEL] component: text" lines
// into slog records. Levels: TRACE, DEBUG and INFO go to Debug, except
// serf's member join/leave/failed/reap lines (Info); WARN to Warn; ERR and
// ERROR to Error.
type logBridge struct {
	log       *slog.Logger
	component string
}

func (w *logBridge) Write(p []byte) (int, error) {
	level, msg := parseLogLine(w.component, string(p))
	if w.log.Enabled(context.Background(), level) {
		w.log.Log(context.Background(), level, msg, "component", w.component)
	}
	return len(p), nil
}

func parseLogLine(component, line string) (slog.Level, string) {
	line = strings.TrimSpace(line)
	level := slog.LevelInfo
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if tag, text, ok := strings.Cut(rest, "]"); ok {
			line = strings.TrimSpace(text)
			switch tag {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelDebug
				if component == "serf" && strings.Contains(line, "serf: EventMember") && !strings.Contains(line, "EventMemberUpdate") {
					level = slog.LevelInfo
				}
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
		}
	} else if strings.HasPrefix(line, "Err:") {
		level = slog.LevelError
	}
	for _, c := range []string{"serf: ", "memberlist: "} {
		line = strings.TrimPrefix(line, c)
	}
	return level, line
}
