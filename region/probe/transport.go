package probe

import (
	"context"

	"github.com/meridian-sd/meridian/region"
)

// Transport is the production region.ProbeTransport: probes with a
// Prober on goroutines, at most max at once.
type Transport struct {
	prober Prober
	sem    chan struct{}
}

var _ region.ProbeTransport = (*Transport)(nil)

// NewTransport returns probes over p, at most max (default 64) at once.
func NewTransport(p Prober, max int) *Transport {
	if max <= 0 {
		max = 64
	}
	return &Transport{prober: p, sem: make(chan struct{}, max)}
}

// Probe implements region.ProbeTransport.
func (p *Transport) Probe(ctx context.Context, e region.Effect, done func(region.ProbeResult)) {
	go func() {
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			done(region.ProbeResult{Status: region.StatusCritical, Output: ctx.Err().Error()})
			return
		}
		res := p.prober.Probe(ctx, e.CheckKind, e.Target, e.Timeout)
		<-p.sem
		done(res)
	}()
}
