package client

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/sony/gobreaker/v2"

	"github.com/meridian-sd/meridian/failover"
)

// Pick returns an endpoint of service for key (which only the hash picker
// uses): it draws a priority level in proportion to the lookup's priority
// shares, then an endpoint within it with the configured picker, leaving
// out endpoints whose circuit breaker is open unless all of them are.
func (c *Client) Pick(ctx context.Context, service, key string) (failover.Endpoint, error) {
	res, err := c.Lookup(ctx, service)
	if err != nil {
		return failover.Endpoint{}, err
	}
	ep, ok := c.pick(res, key, nil)
	if !ok {
		return failover.Endpoint{}, noEndpoints(res)
	}
	return ep, nil
}

func noEndpoints(res LookupResult) error {
	if res.Explanation != "" {
		return fmt.Errorf("%s: %w: %s", res.Service, ErrNoEndpoints, res.Explanation)
	}
	return fmt.Errorf("%s: %w", res.Service, ErrNoEndpoints)
}

// pick chooses among res's endpoints that skip does not rule out,
// preferring those whose breaker is not open.
func (c *Client) pick(res LookupResult, key string, skip func(ref string) bool) (failover.Endpoint, bool) {
	cands := make([]failover.Endpoint, 0, len(res.Endpoints))
	var open []failover.Endpoint
	for _, ep := range res.Endpoints {
		ref := ep.Ref()
		if skip != nil && skip(ref) {
			continue
		}
		if c.breakers.state(ref) == gobreaker.StateOpen {
			open = append(open, ep)
			continue
		}
		cands = append(cands, ep)
	}
	if len(cands) == 0 {
		cands = open
	}
	if len(cands) == 0 {
		return failover.Endpoint{}, false
	}
	// Filtering keeps the order and priorities, so Level still draws each
	// remaining level by its share.
	d := failover.Decision{Endpoints: cands, PriorityShares: res.PriorityShares}
	return c.picker.Pick(d.Level(c.levelDraw(key)), key)
}

// levelDraw is the u of Decision.Level: from the key for consistent
// hashing (a key stays on its level), else random.
func (c *Client) levelDraw(key string) float64 {
	if c.cfg.LB == failover.PickerHash && key != "" {
		h := fnv.New64a()
		h.Write([]byte(key))
		return float64(h.Sum64()>>11) / (1 << 53)
	}
	return c.float64()
}

type pickKey struct{}

// WithPickKey returns a context that makes Do pass key to the picker (the
// hash picker sends equal keys to the same endpoint).
func WithPickKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, pickKey{}, key)
}

func pickKeyOf(ctx context.Context) string {
	k, _ := ctx.Value(pickKey{}).(string)
	return k
}
