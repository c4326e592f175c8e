package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// Do sends req to an endpoint of service picked as Pick does (the key
// comes from WithPickKey): req.URL keeps its path and query, its scheme
// and host become http://address:port. The request goes through the
// endpoint's circuit breaker and its latency is reported to the p2c
// picker.
//
// A connection error or a 502, 503 or 504 answer is retried on another
// endpoint (the same one when there is no other), after a full-jitter
// exponential backoff, at most MaxRetries times and while the retry budget
// allows, when the request can be replayed safely: its method is GET,
// HEAD, OPTIONS, TRACE, PUT or DELETE, or it carries an Idempotency-Key
// header; and it has no body or a GetBody to replay it. Otherwise the
// failure is returned as it is: an error, or the 5xx response.
//
// When every endpoint's breaker is open, Do fails fast with an error
// wrapping ErrCircuitOpen. The caller closes the response body.
func (c *Client) Do(ctx context.Context, service string, req *http.Request) (*http.Response, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	c.budget.request(time.Now())
	key := pickKeyOf(ctx)
	tried := map[string]bool{}
	ep, done, err := c.acquire(ctx, service, key, tried)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		tried[ep.Ref()] = true
		resp, err := c.send(ctx, req, ep, attempt)
		retryable := false
		switch {
		case err != nil && ctx.Err() != nil:
			done(errNotCounted)
			return nil, err
		case err != nil:
			done(errEndpointFailed)
			retryable = true
		case resp.StatusCode >= 500:
			done(errEndpointFailed)
			retryable = resp.StatusCode == http.StatusBadGateway ||
				resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		default:
			done(nil)
		}
		if !retryable || attempt >= c.cfg.MaxRetries || !replayable(req) {
			return resp, err
		}
		next, nextDone, aerr := c.acquire(ctx, service, key, tried)
		if aerr != nil {
			return resp, err
		}
		if !c.budget.tryRetry(time.Now()) {
			nextDone(errNotCounted)
			c.log.Debug("retry budget exhausted", "service", service, "endpoint", ep.Ref())
			return resp, err
		}
		if resp != nil {
			drain(resp.Body)
		}
		if !sleep(ctx, c.backoff(attempt)) {
			nextDone(errNotCounted)
			return nil, ctx.Err()
		}
		ep, done = next, nextDone
	}
}

// acquire picks an endpoint, preferring ones not tried yet, whose breaker
// lets a request through; done must be called with the outcome.
func (c *Client) acquire(ctx context.Context, service, key string, tried map[string]bool) (failover.Endpoint, func(error), error) {
	res, err := c.Lookup(ctx, service)
	if err != nil {
		return failover.Endpoint{}, nil, err
	}
	refused := map[string]bool{}
	for {
		ep, ok := c.pick(res, key, func(ref string) bool { return tried[ref] || refused[ref] })
		if !ok {
			ep, ok = c.pick(res, key, func(ref string) bool { return refused[ref] })
		}
		if !ok {
			if len(refused) > 0 {
				return failover.Endpoint{}, nil, fmt.Errorf("%s: %w", service, ErrCircuitOpen)
			}
			return failover.Endpoint{}, nil, noEndpoints(res)
		}
		done, err := c.breakers.get(ep.Ref()).Allow()
		if err != nil {
			refused[ep.Ref()] = true
			continue
		}
		return ep, done, nil
	}
}

// send makes one attempt at ep and reports its latency to the p2c picker.
func (c *Client) send(ctx context.Context, req *http.Request, ep failover.Endpoint, attempt int) (*http.Response, error) {
	out := req.Clone(ctx)
	out.URL.Scheme = "http"
	out.URL.Host = net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
	out.Host = ""
	out.RequestURI = ""
	if attempt > 0 && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("replaying the request body: %w", err)
		}
		out.Body = body
	}
	ref := ep.Ref()
	if c.p2c != nil {
		c.p2c.Start(ref)
	}
	start := time.Now()
	resp, err := c.http.Do(out)
	end := time.Now()
	if c.p2c != nil {
		c.p2c.Done(ref)
		if ctx.Err() == nil {
			failed := err != nil || resp.StatusCode >= 500
			c.p2c.Observe(end, ref, end.Sub(start), failed)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: endpoint %s: %w", req.Method, ep.Service, ref, err)
	}
	return resp, nil
}

// replayable reports whether req may be sent again: an idempotent method
// or an Idempotency-Key, and a body that can be replayed.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}
