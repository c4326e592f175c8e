package serfmember

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// inprocHTTP is an in-process HTTP network for tests of the Federator: the
// twin of the gateways' listeners and the sockets between them. Hosts are
// fake addresses ("us-east-http:80") mapped to handlers; no socket is ever
// opened, so it runs in a testing/synctest bubble.
//
// Faults, like MemNetwork's: a host can be crashed (requests to and from
// it are black-holed) and pairs of hosts cut (a partition, both ways). A
// black-holed request waits for its context to end, as a TCP connect into
// a partition does, so the driver's fetch timeout is what ends it. A host
// nobody serves is refused at once. It is safe for concurrent use.
type inprocHTTP struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
	crashed  map[string]bool
	cut      map[[2]string]bool
	served   map[string]int // requests answered, by host
	latency  time.Duration  // added to every answered request
}

// inprocBlackholeMax ends a black-holed request whose context has no
// deadline (Fetch always sets one), so no goroutine outlives a bubble.
const inprocBlackholeMax = time.Minute

func newInprocHTTP() *inprocHTTP {
	return &inprocHTTP{handlers: map[string]http.Handler{}, crashed: map[string]bool{},
		cut: map[[2]string]bool{}, served: map[string]int{}}
}

// Handle serves host ("name:port", as in a request's URL) with h.
func (n *inprocHTTP) Handle(host string, h http.Handler) {
	n.mu.Lock()
	n.handlers[host] = h
	n.mu.Unlock()
}

// SetLatency makes every answered request take d (virtual time under
// synctest). Without it a request takes no time at all, and a driver that
// fetches in a loop stops virtual time.
func (n *inprocHTTP) SetLatency(d time.Duration) {
	n.mu.Lock()
	n.latency = d
	n.mu.Unlock()
}

// Client returns a client whose requests come from host from.
func (n *inprocHTTP) Client(from string) *http.Client {
	return &http.Client{Transport: &inprocTransport{net: n, from: from}}
}

// Crash black-holes every request to and from host until Revive.
func (n *inprocHTTP) Crash(host string) {
	n.mu.Lock()
	n.crashed[host] = true
	n.mu.Unlock()
}

// Revive undoes Crash.
func (n *inprocHTTP) Revive(host string) {
	n.mu.Lock()
	delete(n.crashed, host)
	n.mu.Unlock()
}

// Partition cuts every host of a off from every host of b, both ways.
// Partitions add up until Heal.
func (n *inprocHTTP) Partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}], n.cut[[2]string{y, x}] = true, true
		}
	}
}

// Heal removes every partition (crashes stay).
func (n *inprocHTTP) Heal() {
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
}

// Served returns how many requests host answered.
func (n *inprocHTTP) Served(host string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.served[host]
}

// route returns the handler for a request from one host to another, or
// whether it is black-holed.
func (n *inprocHTTP) route(from, to string) (h http.Handler, latency time.Duration, blackholed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.crashed[from] || n.crashed[to] || n.cut[[2]string{from, to}] {
		return nil, 0, true
	}
	h = n.handlers[to]
	if h != nil {
		n.served[to]++
	}
	return h, n.latency, false
}

// inprocTransport is one host's http.RoundTripper on an inprocHTTP.
type inprocTransport struct {
	net  *inprocHTTP
	from string
}

var _ http.RoundTripper = (*inprocTransport)(nil)

// RoundTrip implements http.RoundTripper: the handler writes into a
// recorder, whose result is the response.
func (t *inprocTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	to := req.URL.Host
	h, latency, blackholed := t.net.route(t.from, to)
	fail := func(err error) (*http.Response, error) {
		return nil, &net.OpError{Op: "dial", Net: "inproc", Err: err}
	}
	switch {
	case blackholed:
		timer := time.NewTimer(inprocBlackholeMax)
		defer timer.Stop()
		select {
		case <-req.Context().Done():
			return fail(req.Context().Err())
		case <-timer.C:
			return fail(os.ErrDeadlineExceeded)
		}
	case h == nil:
		return fail(errors.New("connection refused (no handler for " + to + ")"))
	case latency > 0:
		timer := time.NewTimer(latency)
		defer timer.Stop()
		select {
		case <-req.Context().Done():
			return fail(req.Context().Err())
		case <-timer.C:
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// catalogHandler serves CatalogPath from src, as a gateway does.
func catalogHandler(src federation.CatalogSource) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+federation.CatalogPath, func(w http.ResponseWriter, r *http.Request) {
		since, err := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		if err != nil {
			http.Error(w, "since: want a version", http.StatusBadRequest)
			return
		}
		ans, err := src.Answer(r.Context(), since)
		if err != nil {
			http.Error(w, "catalog unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(ans); err != nil {
			http.Error(w, "encoding the catalog: "+err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}
