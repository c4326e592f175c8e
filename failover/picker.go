package failover

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// Picker chooses one endpoint of a list, typically one priority level of a
// Decision (Decision.Level). Pick returns false only for an empty list.
// Pickers are driver-side state and safe for concurrent use; they never
// change the list.
type Picker interface {
	Pick(eps []Endpoint, key string) (Endpoint, bool)
}

// Picker names, as NewPicker and configuration know them.
const (
	PickerRoundRobin = "round_robin"
	PickerWeighted   = "weighted"
	PickerP2C        = "p2c"
	PickerHash       = "hash"
)

// Compile-time checks.
var (
	_ Picker = (*RoundRobin)(nil)
	_ Picker = (*Weighted)(nil)
	_ Picker = (*P2C)(nil)
	_ Picker = (*Hash)(nil)
)

// NewPicker returns the picker called name: "round_robin", "weighted",
// "p2c" (with DefaultP2CConfig) or "hash". Weighted and p2c draw from rng,
// which they lock; it must not be nil for them.
func NewPicker(name string, rng *rand.Rand) (Picker, error) {
	switch name {
	case PickerRoundRobin:
		return &RoundRobin{}, nil
	case PickerWeighted:
		w, err := NewWeighted(rng)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return w, nil
	case PickerP2C:
		p, err := NewP2C(rng, P2CConfig{})
		if err != nil {
			return nil, err
		}
		return p, nil
	case PickerHash:
		return &Hash{}, nil
	}
	return nil, fmt.Errorf("picker: unknown picker %q (want round_robin, weighted, p2c or hash)", name)
}

// weightOf is an endpoint's weight; a weight below 1 (a record written
// before weights were defaulted) counts as region.DefaultWeight.
func weightOf(e *Endpoint) int64 {
	if e.Weight < 1 {
		return region.DefaultWeight
	}
	return int64(e.Weight)
}

// RoundRobin cycles through the list in its order with one atomic counter:
// over any n consecutive picks from the same list of n endpoints, each is
// picked once. Lists of different lengths share the counter. The zero value
// is ready to use.
type RoundRobin struct {
	n atomic.Uint64
}

// Pick returns the next endpoint in turn.
func (r *RoundRobin) Pick(eps []Endpoint, _ string) (Endpoint, bool) {
	if len(eps) == 0 {
		return Endpoint{}, false
	}
	i := (r.n.Add(1) - 1) % uint64(len(eps))
	return eps[i], true
}

// Weighted picks at random in proportion to Instance.Weight.
type Weighted struct {
	mu  sync.Mutex
	rng *rand.Rand
}

// NewWeighted returns a weighted random picker drawing from rng.
func NewWeighted(rng *rand.Rand) (*Weighted, error) {
	if rng == nil {
		return nil, errors.New("picker weighted: needs a *rand.Rand")
	}
	return &Weighted{rng: rng}, nil
}

// Pick draws an endpoint with probability weight/total weight.
func (w *Weighted) Pick(eps []Endpoint, _ string) (Endpoint, bool) {
	if len(eps) == 0 {
		return Endpoint{}, false
	}
	var total int64
	for i := range eps {
		total += weightOf(&eps[i])
	}
	w.mu.Lock()
	x := w.rng.Int64N(total)
	w.mu.Unlock()
	for i := range eps {
		if x -= weightOf(&eps[i]); x < 0 {
			return eps[i], true
		}
	}
	return eps[len(eps)-1], true
}

// P2CConfig tunes the power-of-two-choices picker.
type P2CConfig struct {
	// Decay is the time constant of the latency EWMA (default 10s): an
	// observation dt after the previous one weighs 1 - exp(-dt/Decay).
	Decay time.Duration
	// FailurePenalty is the latency charged for a failed request when it
	// failed faster than that (default 1s), so that fast failures do not
	// attract traffic.
	FailurePenalty time.Duration
}

// DefaultP2CConfig returns the defaults: 10s decay, 1s failure penalty.
func DefaultP2CConfig() P2CConfig {
	return P2CConfig{Decay: 10 * time.Second, FailurePenalty: time.Second}
}

// WithDefaults fills the zero fields of c.
func (c P2CConfig) WithDefaults() P2CConfig {
	d := DefaultP2CConfig()
	if c.Decay == 0 {
		c.Decay = d.Decay
	}
	if c.FailurePenalty == 0 {
		c.FailurePenalty = d.FailurePenalty
	}
	return c
}

// Validate reports the first problem with c (after defaults), naming the
// field.
func (c P2CConfig) Validate() error {
	c = c.WithDefaults()
	if c.Decay < 0 {
		return fmt.Errorf("decay: must be positive, got %s", c.Decay)
	}
	if c.FailurePenalty < 0 {
		return fmt.Errorf("failure_penalty: must not be negative, got %s", c.FailurePenalty)
	}
	return nil
}

// P2C is least-loaded power-of-two-choices, Linkerd/Finagle "peak EWMA"
// style: it draws two distinct endpoints at random and picks the one with
// the lower score = latency EWMA x (in-flight + 1).
//
// The EWMA is peak-sensitive: an observation above the current value
// replaces it at once, one below decays towards it with time constant
// Decay, using the observation times passed to Observe (P2C reads no
// clock). An endpoint never observed is scored with its rival's latency, so
// the choice falls to in-flight counts and, on a tie, to the newcomer: new
// endpoints get traffic and are measured. Scores below 1µs count as 1µs so
// that in-flight counts still matter among unmeasured endpoints.
//
// State is keyed by Endpoint.Ref ("region/service/id"; region and service
// names contain no "/"). Call Start and Done around each request for the
// in-flight count, Observe when it ends, Forget when an endpoint is gone.
type P2C struct {
	cfg   P2CConfig
	mu    sync.Mutex
	rng   *rand.Rand
	stats map[epKey]*p2cStat
}

type epKey struct{ region, service, id string }

type p2cStat struct {
	ewma     float64 // nanoseconds
	last     time.Time
	inflight int
	observed bool
}

// NewP2C returns a power-of-two-choices picker drawing from rng.
func NewP2C(rng *rand.Rand, cfg P2CConfig) (*P2C, error) {
	if rng == nil {
		return nil, errors.New("picker p2c: needs a *rand.Rand")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("picker p2c: %w", err)
	}
	return &P2C{cfg: cfg.WithDefaults(), rng: rng, stats: make(map[epKey]*p2cStat)}, nil
}

func parseRef(id string) epKey {
	r, rest, _ := strings.Cut(id, "/")
	s, i, _ := strings.Cut(rest, "/")
	return epKey{r, s, i}
}

func (p *P2C) stat(k epKey) *p2cStat {
	st := p.stats[k]
	if st == nil {
		st = &p2cStat{}
		p.stats[k] = st
	}
	return st
}

// Observe records that a request to id (an Endpoint.Ref) ended at now after
// latency; failed requests count as at least FailurePenalty.
func (p *P2C) Observe(now time.Time, id string, latency time.Duration, failed bool) {
	lat := float64(max(latency, 0))
	if failed {
		lat = max(lat, float64(p.cfg.FailurePenalty))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stat(parseRef(id))
	switch {
	case !st.observed:
		st.ewma, st.observed = lat, true
	case lat >= st.ewma:
		st.ewma = lat
	default:
		dt := float64(now.Sub(st.last))
		if dt < 0 {
			dt = 0
		}
		w := math.Exp(-dt / float64(p.cfg.Decay))
		// Explicit conversions round each product, so arm64 cannot fuse
		// them into a multiply-add (the simulator replays the same there).
		st.ewma = float64(st.ewma*w) + float64(lat*(1-w))
	}
	if now.After(st.last) {
		st.last = now
	}
}

// Start counts a request to id as in flight.
func (p *P2C) Start(id string) {
	p.mu.Lock()
	p.stat(parseRef(id)).inflight++
	p.mu.Unlock()
}

// Done ends a request counted by Start.
func (p *P2C) Done(id string) {
	p.mu.Lock()
	if st := p.stats[parseRef(id)]; st != nil && st.inflight > 0 {
		st.inflight--
	}
	p.mu.Unlock()
}

// Forget drops what is known of id.
func (p *P2C) Forget(id string) {
	p.mu.Lock()
	delete(p.stats, parseRef(id))
	p.mu.Unlock()
}

// Pick draws two distinct endpoints and returns the one with the lower
// score (the first drawn on a tie).
func (p *P2C) Pick(eps []Endpoint, _ string) (Endpoint, bool) {
	switch len(eps) {
	case 0:
		return Endpoint{}, false
	case 1:
		return eps[0], true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.rng.IntN(len(eps))
	j := p.rng.IntN(len(eps) - 1)
	if j >= i {
		j++
	}
	a := p.stats[epKey{eps[i].Region, eps[i].Service, eps[i].ID}]
	b := p.stats[epKey{eps[j].Region, eps[j].Service, eps[j].ID}]
	la, lb := latencyOf(a, b), latencyOf(b, a)
	sa, sb := score(la, a), score(lb, b)
	if sb < sa || (sb == sa && la == lb && unobserved(b) && !unobserved(a)) {
		return eps[j], true
	}
	return eps[i], true
}

func unobserved(s *p2cStat) bool { return s == nil || !s.observed }

// latencyOf is s's EWMA, or its rival's when s was never observed.
func latencyOf(s, rival *p2cStat) float64 {
	switch {
	case !unobserved(s):
		return s.ewma
	case !unobserved(rival):
		return rival.ewma
	}
	return 0
}

func score(lat float64, s *p2cStat) float64 {
	in := 0
	if s != nil {
		in = s.inflight
	}
	return max(lat, float64(time.Microsecond)) * float64(in+1)
}

// Hash is consistent hashing by rendezvous (highest random weight): each
// endpoint scores weight / -ln(u) with u a stable hash of (key, Ref), and
// the highest wins. A key keeps its endpoint while that endpoint stays in
// the list; removing one of n endpoints moves only its keys (about 1/n),
// spread over the others in proportion to weight. An empty key falls back
// to round robin. The hash is FNV-1a with a splitmix64 finaliser, stable
// across processes. The zero value is ready to use.
type Hash struct {
	rr RoundRobin
}

// Pick returns the endpoint that key maps to.
func (h *Hash) Pick(eps []Endpoint, key string) (Endpoint, bool) {
	if key == "" || len(eps) <= 1 {
		return h.rr.Pick(eps, key)
	}
	uniform := true
	for i := 1; i < len(eps) && uniform; i++ {
		uniform = weightOf(&eps[i]) == weightOf(&eps[0])
	}
	if uniform { // the highest hash wins; no logarithms needed
		best, bestX := 0, uint64(0)
		for i := range eps {
			x := hrwHash(key, &eps[i])
			if i == 0 || x > bestX || (x == bestX && compareRefs(&eps[i], &eps[best]) < 0) {
				best, bestX = i, x
			}
		}
		return eps[best], true
	}
	best, bestScore := 0, math.Inf(-1)
	for i := range eps {
		e := &eps[i]
		x := hrwHash(key, e)
		u := (float64(x>>11) + 0.5) / (1 << 53) // in (0, 1)
		s := float64(weightOf(e)) / -math.Log(u)
		if s > bestScore || (s == bestScore && compareRefs(e, &eps[best]) < 0) {
			best, bestScore = i, s
		}
	}
	return eps[best], true
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func hrwHash(key string, e *Endpoint) uint64 {
	h := fnvAdd(fnvOffset64, key)
	h = fnvAdd(h, "\x00")
	h = fnvAdd(h, e.Region)
	h = fnvAdd(h, "/")
	h = fnvAdd(h, e.Service)
	h = fnvAdd(h, "/")
	h = fnvAdd(h, e.ID)
	// splitmix64 finaliser: FNV alone mixes the last bytes poorly.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func compareRefs(a, b *Endpoint) int {
	if c := strings.Compare(a.Region, b.Region); c != 0 {
		return c
	}
	if c := strings.Compare(a.Service, b.Service); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
