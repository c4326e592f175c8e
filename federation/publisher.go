package federation

import (
	"sync"
	"time"

	"github.com/meridian-sd/meridian/rt"
)

// Publisher is the version publisher: it puts the wanted catalog version
// into this gateway's gossip tags at most once per interval, coalescing
// the versions in between (a burst of writes costs one tag update). The
// Serf membership and the simulator both drive their tags through it.
type Publisher struct {
	rt       rt.Runtime
	interval time.Duration
	publish  func(v uint64) bool
	loop     *rt.Loop

	mu        sync.Mutex
	want      uint64
	published uint64
	until     time.Time // no publication before
}

// NewPublisher returns a publisher that calls publish (on a task of r,
// never two at once; it may block) with the latest wanted version. publish
// returns false when it could not publish (e.g. after a leave): the version
// is tried again on the next Set.
func NewPublisher(r rt.Runtime, interval time.Duration, publish func(v uint64) bool) *Publisher {
	p := &Publisher{rt: rt.Or(r), interval: interval, publish: publish}
	p.loop = rt.NewLoop(p.rt, "publish", p.step)
	return p
}

// Set asks for v to be published; it never blocks.
func (p *Publisher) Set(v uint64) {
	p.mu.Lock()
	p.want = v
	p.mu.Unlock()
	p.loop.Kick()
}

// Published returns the last version published.
func (p *Publisher) Published() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published
}

// Stop ends publishing; a publication in progress completes.
func (p *Publisher) Stop() { p.loop.Stop() }

func (p *Publisher) step() {
	now := p.rt.Now()
	p.mu.Lock()
	v := p.want
	if v == p.published {
		p.mu.Unlock()
		return
	}
	if now.Before(p.until) {
		wait := p.until.Sub(now)
		p.mu.Unlock()
		p.loop.After(wait)
		return
	}
	p.mu.Unlock()
	if !p.publish(v) {
		return
	}
	p.mu.Lock()
	p.published, p.until = v, now.Add(p.interval)
	p.mu.Unlock()
}
