package soak

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Rates of the mixed load, per second in all (two shared cores: a few
// hundred requests a second is plenty).
const (
	lookupRate    = 60
	writeRate     = 24 // registrations and deregistrations, over writers
	writers       = 4
	keysPerWriter = 40
	heartbeatRate = 16
	hbInstances   = 20
	proxyRate     = 16
	pickRate      = 30
	watchers      = 12
	watchWait     = 5 * time.Second
	slowBodies    = 3 // at a time; each sends one byte a second
	neverReaders  = 3 // at a time; each pipelines big reads, never reads
	bigInstances  = 200
	// writeResolve bounds how long a write whose outcome is unknown is
	// repeated (same Idempotency-Key) to learn its outcome.
	writeResolve = 60 * time.Second
)

// errs counts requests and errors by kind; an unexpected kind breaks a
// bound.
type errs struct {
	mu         sync.Mutex
	kinds      map[string]int
	unexpected map[string]bool
	requests   map[string]int
	oks        map[string]int
}

func newErrs() *errs {
	return &errs{kinds: map[string]int{}, unexpected: map[string]bool{}, requests: map[string]int{}, oks: map[string]int{}}
}

func (e *errs) request(op string) {
	e.mu.Lock()
	e.requests[op]++
	e.mu.Unlock()
}

func (e *errs) ok(op string) {
	e.mu.Lock()
	e.oks[op]++
	e.mu.Unlock()
}

func (e *errs) add(kind string, unexpected bool) {
	e.mu.Lock()
	e.kinds[kind]++
	if unexpected {
		e.unexpected[kind] = true
	}
	e.mu.Unlock()
}

// answer is one HTTP exchange.
type answer struct {
	code int
	body []byte
	hdr  http.Header
	err  error
	// down: the gateway was down (or killed) at some point of the
	// exchange, so a connection error is expected.
	down bool
	// stopped: the load ended while the request was in flight; it counts
	// for nothing.
	stopped bool
}

// apiErr is the gateway's JSON error body.
type apiErr struct {
	Error   string `json:"error"`
	Outcome string `json:"outcome"`
}

func (a answer) apiErr() apiErr {
	var e apiErr
	json.Unmarshal(a.body, &e)
	return e
}

// dialErr says the request never reached the gateway.
func dialErr(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func (s *run) do(ctx context.Context, c *http.Client, g *gateway, method, path string, body []byte, hdr map[string]string) answer {
	up0, gen0 := g.state()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base()+path, rd)
	if err != nil {
		return answer{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	var a answer
	if err == nil {
		a.code, a.hdr = resp.StatusCode, resp.Header
		a.body, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
	}
	a.err = err
	a.stopped = err != nil && ctx.Err() != nil
	up1, gen1 := g.state()
	a.down = !up0 || !up1 || gen0 != gen1
	return a
}

// judge counts a's errors under op and reports whether it was a success
// (one of ok codes).
func (s *run) judge(op string, g *gateway, a answer, ok ...int) bool {
	if a.stopped {
		return false
	}
	s.errs.request(op)
	if a.err != nil {
		switch {
		case a.down:
			s.errs.add(op+": connection error, gateway down", false)
		case s.inFault() && isTimeout(a.err):
			s.errs.add(op+": timeout during a fault", false)
		default:
			s.errs.add(op+": connection error, gateway up: "+errKind(a.err), true)
		}
		return false
	}
	for _, c := range ok {
		if a.code == c {
			s.errs.ok(op)
			return true
		}
	}
	switch {
	case a.code == http.StatusServiceUnavailable && (s.inFault() || a.down):
		s.errs.add(op+": 503 "+reason503(a.apiErr()), false)
	case a.code == http.StatusServiceUnavailable:
		s.errs.add(op+": 503 outside a fault: "+reason503(a.apiErr()), true)
	case a.code >= 500:
		s.errs.add(fmt.Sprintf("%s: %d %s", op, a.code, short(a.apiErr().Error)), true)
	default:
		s.errs.add(fmt.Sprintf("%s: %d %s", op, a.code, short(a.apiErr().Error)), true)
	}
	return false
}

// errKind names a transport error.
func errKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case isTimeout(err):
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return short(err.Error())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reason503 names the kind of a 503.
func reason503(e apiErr) string {
	m := e.Error
	switch {
	case e.Outcome == "unknown":
		return "outcome unknown"
	case strings.Contains(m, "loading"):
		return "loading"
	case strings.Contains(m, "nothing was written"):
		return "store unavailable, nothing written"
	case strings.Contains(m, "ownership"):
		return "check ownership moving"
	case strings.Contains(m, "unreachable"):
		return "check owner unreachable"
	case strings.Contains(m, "concurrently"):
		return "conflict"
	}
	return short(m)
}

func short(s string) string {
	if i := strings.IndexAny(s, ":;("); i > 0 && i < 60 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return strings.TrimSpace(s)
}

// noteIndex checks that X-Meridian-Index on a read never goes below what
// g had answered before the request was sent.
func (s *run) noteIndex(g *gateway, before uint64, a answer) {
	v, err := strconv.ParseUint(a.hdr.Get("X-Meridian-Index"), 10, 64)
	if err != nil {
		return
	}
	if v < before {
		s.errs.add(fmt.Sprintf("index went backwards on %s", g.name), true)
	}
	m := s.maxIndex[g.name]
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func newKey() string {
	var b [12]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// write runs one registration or deregistration to a definite outcome:
// when the answer leaves it unknown, it repeats the request with the same
// Idempotency-Key (on the other gateway too) for up to writeResolve.
func (s *run) write(op Op, k Key, body []byte, rng *rand.Rand) {
	idem := newKey()
	g := s.gws[rng.IntN(len(s.gws))]
	path := "/v1/services/" + k.Service + "/instances/" + k.ID
	method := http.MethodPut
	if op == OpDeregister {
		method = http.MethodDelete
		body = nil
	}
	deadline := time.Now().Add(writeResolve)
	name := op.String()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			name = op.String() + " (repeat)"
		}
		a := s.do(context.Background(), s.client, g, method, path, body, map[string]string{"Idempotency-Key": idem})
		ok := []int{http.StatusOK}
		if op == OpDeregister {
			ok = append(ok, http.StatusNotFound)
		}
		var o Outcome
		switch {
		case s.judge(name, g, a, ok...):
			o = Applied
		case a.err != nil && dialErr(a.err):
			o = NotApplied
		case a.err != nil:
			o = Unknown
		case a.code == http.StatusServiceUnavailable && a.apiErr().Outcome == "unknown":
			o = Unknown
		default:
			o = NotApplied
		}
		if o != Unknown || time.Now().After(deadline) {
			s.ledger.Record(op, k, o)
			return
		}
		time.Sleep(500 * time.Millisecond)
		g = s.gws[(indexOf(s.gws, g)+1)%len(s.gws)]
	}
}

func indexOf(gws []*gateway, g *gateway) int {
	for i, x := range gws {
		if x == g {
			return i
		}
	}
	return 0
}

// every calls f at rate per second until ctx ends.
func every(ctx context.Context, rate float64, f func()) {
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func regBody(addr string, port int, extra string) []byte {
	return []byte(fmt.Sprintf(`{"address":%q,"port":%d,"tags":["soak"]%s}`, addr, port, extra))
}

func (s *run) writer(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), 42))
	svc := fmt.Sprintf("soak-w%d", w)
	every(ctx, float64(writeRate)/writers, func() {
		i := rng.IntN(keysPerWriter)
		k := Key{svc, "i-" + strconv.Itoa(i)}
		op := OpRegister
		if s.ledger.Present(k) && rng.IntN(10) < 6 {
			op = OpDeregister
		}
		s.write(op, k, regBody("10.9."+strconv.Itoa(w)+"."+strconv.Itoa(i), 8000+rng.IntN(1000), ""), rng)
	})
}

func (s *run) lookups(ctx context.Context) {
	rng := rand.New(rand.NewPCG(1, 1))
	every(ctx, lookupRate, func() {
		g := s.gws[rng.IntN(len(s.gws))]
		var path, op string
		switch rng.IntN(4) {
		case 0:
			path, op = "/v1/services", "list services"
		case 1:
			path, op = fmt.Sprintf("/v1/lookup/soak-w%d", rng.IntN(writers)), "lookup"
		case 2:
			path, op = "/v1/services/soak-hb?passing=true", "read service"
		default:
			path, op = fmt.Sprintf("/v1/services/soak-w%d", rng.IntN(writers)), "read service"
		}
		before := s.maxIndex[g.name].Load()
		a := s.do(ctx, s.client, g, http.MethodGet, path, nil, nil)
		ok := []int{http.StatusOK}
		if op == "lookup" {
			ok = append(ok, http.StatusNotFound) // no instance registered right now
		}
		if s.judge(op, g, a, ok...) && op != "lookup" {
			s.noteIndex(g, before, a)
		}
	})
}

// watcher runs blocking queries back to back, like a client that follows
// a service.
func (s *run) watcher(ctx context.Context, n int) {
	g := s.gws[n%len(s.gws)]
	svc := fmt.Sprintf("soak-w%d", n%writers)
	var index uint64
	for ctx.Err() == nil {
		before := s.maxIndex[g.name].Load()
		a := s.do(ctx, s.watch, g, http.MethodGet,
			fmt.Sprintf("/v1/services/%s?index=%d&wait=%s", svc, index, watchWait), nil, nil)
		if s.judge("blocking query", g, a, http.StatusOK) {
			s.noteIndex(g, before, a)
			if v, err := strconv.ParseUint(a.hdr.Get("X-Meridian-Index"), 10, 64); err == nil {
				index = v
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *run) heartbeats(ctx context.Context) {
	rng := rand.New(rand.NewPCG(2, 2))
	every(ctx, heartbeatRate, func() {
		g := s.gws[rng.IntN(len(s.gws))]
		id := "hb-" + strconv.Itoa(rng.IntN(hbInstances))
		a := s.do(ctx, s.client, g, http.MethodPut, "/v1/services/soak-hb/instances/"+id+"/heartbeat",
			[]byte(`{"status":"passing"}`), nil)
		s.judge("heartbeat", g, a, http.StatusOK)
	})
}

func (s *run) proxyCalls(ctx context.Context) {
	rng := rand.New(rand.NewPCG(3, 3))
	every(ctx, proxyRate, func() {
		g := s.gws[rng.IntN(len(s.gws))]
		a := s.do(ctx, s.client, g, http.MethodGet, "/v1/proxy/soak-backend/echo", nil, nil)
		if s.judge("proxy", g, a, http.StatusOK) && string(a.body) != "soak-backend ok\n" {
			s.errs.add("proxy: wrong body from the backend", true)
		}
	})
}

func (s *run) picks(ctx context.Context) {
	rng := rand.New(rand.NewPCG(4, 4))
	var n atomic.Int64
	every(ctx, pickRate, func() {
		g := s.gws[rng.IntN(len(s.gws))]
		a := s.do(ctx, s.client, g, http.MethodGet, "/v1/pick/soak-unique-"+strconv.FormatInt(n.Add(1), 10), nil, nil)
		if a.err == nil && a.code == http.StatusServiceUnavailable && strings.Contains(a.apiErr().Error, "no endpoint") {
			// The gateway's answer for a service without endpoints:
			// what an unknown name must get (other 503s are judged).
			a.code = http.StatusNotFound
		}
		s.judge("pick unknown name", g, a, http.StatusNotFound)
	})
}

// backend serves the proxy's target on 127.0.0.1.
func startBackend() (net.Listener, *http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "soak-backend ok\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln, srv, nil
}
