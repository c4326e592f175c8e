package client

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// breakers keeps one circuit breaker per endpoint, keyed by
// failover.Endpoint.Ref.
type breakers struct {
	cfg BreakerConfig
	log *slog.Logger
	mu  sync.Mutex
	m   map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]
}

// Outcomes reported to a breaker besides nil (success).
var (
	errEndpointFailed = errors.New("endpoint failed")
	// errNotCounted: the request ended for reasons that say nothing of the
	// endpoint (the caller cancelled, the retry was not sent).
	errNotCounted = errors.New("not counted")
)

func newBreakers(cfg BreakerConfig, log *slog.Logger) *breakers {
	return &breakers{cfg: cfg, log: log, m: map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]{}}
}

// settings turns the configuration into gobreaker's.
func (b *breakers) settings(ref string) gobreaker.Settings {
	cfg := b.cfg
	return gobreaker.Settings{
		Name:         ref,
		MaxRequests:  cfg.HalfOpenRequests,
		Interval:     cfg.Interval,
		BucketPeriod: min(time.Second, cfg.Interval),
		Timeout:      cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			done := c.TotalSuccesses + c.TotalFailures
			return c.ConsecutiveFailures >= cfg.ConsecutiveFailures ||
				(done >= cfg.MinRequests && float64(c.TotalFailures) >= cfg.FailureRatio*float64(done))
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errNotCounted) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			lvl := slog.LevelInfo
			if to == gobreaker.StateOpen {
				lvl = slog.LevelWarn
			}
			b.log.Log(context.Background(), lvl, "circuit breaker "+to.String(), "endpoint", name, "from", from.String())
		},
	}
}

// get returns ref's breaker, making it on first use.
func (b *breakers) get(ref string) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	b.mu.Lock()
	defer b.mu.Unlock()
	cb := b.m[ref]
	if cb == nil {
		cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](b.settings(ref))
		b.m[ref] = cb
	}
	return cb
}

// state is ref's breaker state (closed for an endpoint never used).
func (b *breakers) state(ref string) gobreaker.State {
	b.mu.Lock()
	cb := b.m[ref]
	b.mu.Unlock()
	if cb == nil {
		return gobreaker.StateClosed
	}
	return cb.State()
}

// forget drops ref's breaker.
func (b *breakers) forget(ref string) {
	b.mu.Lock()
	delete(b.m, ref)
	b.mu.Unlock()
}

// BreakerState returns the state of the circuit breaker of an endpoint,
// named by its Ref ("region/service/id"): "closed", "half-open" or "open".
func (c *Client) BreakerState(ref string) string { return c.breakers.state(ref).String() }

// forget drops what the client learnt of an endpoint that left a lookup
// answer.
func (c *Client) forget(ref string) {
	c.breakers.forget(ref)
	if c.p2c != nil {
		c.p2c.Forget(ref)
	}
}
