package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// DefaultTTL is the TTL of a Registration that names none.
const DefaultTTL = 10 * time.Second

// Registration is an instance to register, and, as returned by Register,
// the handle of the registration kept alive by heartbeats (whose fields
// must then not be changed).
type Registration struct {
	Service string // a DNS label
	ID      string // unique within the service
	Address string // IP or hostname the instance is reached at
	Port    int
	Zone    string
	Tags    []string
	Meta    map[string]string
	Weight  int // 1-1000; the gateway's default (100) when 0
	// Drained registers the instance with weight 0: listed, but never
	// picked, proxied to or given a share of traffic (Weight is ignored).
	Drained bool
	// TTL is the instance's TTL check (default 10s, at least 1s):
	// heartbeats are sent every TTL/3 ± 10%.
	TTL time.Duration

	st *regState // set by Register
}

// regState is the live part of a Registration.
type regState struct {
	c      *Client
	ctx    context.Context // done when the heartbeats must stop
	cancel context.CancelFunc
	done   chan struct{} // closed when the heartbeat loop has returned

	mu           sync.Mutex
	instance     region.Instance // as the gateway last stored it
	deregistered bool

	heartbeats   atomic.Int64 // successful heartbeats
	reregistered atomic.Int64 // registrations after a heartbeat's 404
}

// Register registers r with a TTL check (starting passing) and starts
// heartbeats that keep it passing until Deregister or Close. When a
// gateway no longer knows the instance (its heartbeat answers 404), the
// instance is registered again; when no gateway answers, heartbeats keep
// being tried. Register itself retries, with backoff, until a gateway
// accepts the instance, rejects it (a 4xx answer, returned as an
// *APIError naming the field), ctx ends or the client closes.
func (c *Client) Register(ctx context.Context, r Registration) (*Registration, error) {
	if r.TTL == 0 {
		r.TTL = DefaultTTL
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("registering %s/%s: %w", r.Service, r.ID, err)
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	reg := r
	reg.Tags = append([]string(nil), r.Tags...)
	if r.Meta != nil {
		reg.Meta = make(map[string]string, len(r.Meta))
		for k, v := range r.Meta {
			reg.Meta[k] = v
		}
	}
	st := &regState{c: c, done: make(chan struct{})}
	st.ctx, st.cancel = context.WithCancel(c.ctx)
	reg.st = st
	// Retry until ctx ends or the client closes.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	for attempt := 0; ; attempt++ {
		err := reg.put(rctx)
		if err == nil {
			break
		}
		if permanent(err) || !sleep(rctx, c.backoff(attempt)) {
			st.cancel()
			return nil, fmt.Errorf("registering %s/%s: %w", r.Service, r.ID, err)
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		st.cancel()
		close(st.done)
		reg.deregister(ctx)
		return nil, ErrClosed
	}
	c.regs[st] = &reg
	c.wg.Go(reg.heartbeatLoop)
	c.mu.Unlock()
	c.log.Info("registered", "service", reg.Service, "id", reg.ID, "address", reg.Address, "port", reg.Port,
		"ttl", reg.TTL, "gateway", c.Gateway())
	return &reg, nil
}

func (r *Registration) validate() error {
	if err := region.ValidateService(r.Service); err != nil {
		return err
	}
	if err := region.ValidateID(r.ID); err != nil {
		return err
	}
	if err := region.ValidateAddress(r.Address); err != nil {
		return err
	}
	if r.Port < 1 || r.Port > 65535 {
		return &region.FieldError{Field: "port", Msg: fmt.Sprintf("must be 1-65535, got %d", r.Port)}
	}
	if r.TTL < region.MinCheckEvery {
		return &region.FieldError{Field: "ttl", Msg: fmt.Sprintf("must be at least %s, got %s", region.MinCheckEvery, r.TTL)}
	}
	return nil
}

// path is the instance's API path.
func (r *Registration) path() string {
	return "/v1/services/" + url.PathEscape(r.Service) + "/instances/" + url.PathEscape(r.ID)
}

// put registers (or registers again) the instance.
func (r *Registration) put(ctx context.Context) error {
	c := r.st.c
	var weight *int
	switch {
	case r.Drained:
		weight = new(int)
	case r.Weight != 0:
		weight = &r.Weight
	}
	body, err := json.Marshal(region.Registration{
		Address: r.Address, Port: r.Port, Zone: r.Zone, Tags: r.Tags, Meta: r.Meta, Weight: weight,
		Status: region.StatusPassing, Check: &region.Check{TTL: region.Duration(r.TTL)},
	})
	if err != nil {
		return err
	}
	resp, err := c.gatewayDo(ctx, http.MethodPut, r.path(), body, c.cfg.RequestTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var in region.Instance
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return fmt.Errorf("reading the gateway's answer: %w", err)
	}
	r.st.mu.Lock()
	r.st.instance = in
	r.st.mu.Unlock()
	return nil
}

// heartbeat renews the TTL check once.
func (r *Registration) heartbeat(ctx context.Context) error {
	c := r.st.c
	resp, err := c.gatewayDo(ctx, http.MethodPut, r.path()+"/heartbeat", nil, min(r.TTL, c.cfg.RequestTimeout))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var in region.Instance
	if err := json.NewDecoder(resp.Body).Decode(&in); err == nil {
		r.st.mu.Lock()
		r.st.instance = in
		r.st.mu.Unlock()
	}
	return nil
}

// heartbeatLoop sends a heartbeat every TTL/3 ± 10% until the
// registration's context ends.
func (r *Registration) heartbeatLoop() {
	st, c := r.st, r.st.c
	defer close(st.done)
	log := c.log.With("service", r.Service, "id", r.ID)
	every := r.TTL / 3
	failing := false
	t := time.NewTimer(c.jitter(every))
	defer t.Stop()
	for {
		select {
		case <-st.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(st.ctx, min(r.TTL, c.cfg.RequestTimeout))
		err := r.heartbeat(ctx)
		if IsNotFound(err) {
			log.Warn("the gateway lost the instance: registering it again", "gateway", c.Gateway())
			if err = r.put(ctx); err == nil {
				st.reregistered.Add(1)
			}
		} else if err == nil {
			st.heartbeats.Add(1)
		}
		cancel()
		if st.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			log.Warn("heartbeat failing; will keep trying", "err", err)
		case err == nil && failing:
			log.Info("heartbeat recovered", "gateway", c.Gateway())
		}
		failing = err != nil
		t.Reset(c.jitter(every))
	}
}

// Instance returns the instance as the gateway last stored it (the answer
// to the last registration or heartbeat).
func (r *Registration) Instance() region.Instance {
	if r.st == nil {
		return region.Instance{}
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	return r.st.instance
}

// Deregister stops the heartbeats and removes the instance from the
// region (an instance the gateway no longer knows counts as removed).
// When no gateway answers it returns the error, and may be called again.
func (r *Registration) Deregister(ctx context.Context) error {
	st := r.st
	if st == nil {
		return errors.New("deregistering " + r.Service + "/" + r.ID + ": not registered through Client.Register")
	}
	st.cancel()
	<-st.done
	return r.deregister(ctx)
}

func (r *Registration) deregister(ctx context.Context) error {
	st, c := r.st, r.st.c
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.deregistered {
		return nil
	}
	resp, err := c.gatewayDo(ctx, http.MethodDelete, r.path(), nil, c.cfg.RequestTimeout)
	if err == nil {
		drain(resp.Body)
	}
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deregistering %s/%s: %w", r.Service, r.ID, err)
	}
	st.deregistered = true
	c.mu.Lock()
	delete(c.regs, st)
	c.mu.Unlock()
	c.log.Info("deregistered", "service", r.Service, "id", r.ID)
	return nil
}
