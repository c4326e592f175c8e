package gateway

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/meridian-sd/meridian/region"
)

// Limits bounds what one client can take from a gateway. The zero value of
// a field means its default (DefaultLimits); a negative one turns that
// limit off.
type Limits struct {
	// MaxConnections caps the gateway's open HTTP connections; connections
	// past it are closed as soon as they are accepted. Default: 80% of the
	// process's file-descriptor limit, at least 64.
	MaxConnections int
	// MaxConnectionsPerClient caps the open connections of one client IP.
	// Default 200.
	MaxConnectionsPerClient int
	// WriteRate is the sustained rate of writes (register, deregister,
	// heartbeat, and every other PUT, POST or DELETE) one client may make
	// per second; a client is its ACL token when it sends one, else its
	// IP. Past it the gateway answers 429 with Retry-After. Default 500.
	WriteRate float64
	// WriteBurst is how many writes a client may make at once above the
	// rate. Default 2 x WriteRate.
	WriteBurst int
	// MaxInstances caps the instances of the region; a registration of a
	// new instance past it answers 507. Default 200,000. Checked against
	// the gateway's cache, so several gateways writing at once may pass it
	// by a few.
	MaxInstances int
	// MaxInstancesPerService caps the instances of one service, the same
	// way. Default 20,000.
	MaxInstancesPerService int
	// ReadTimeout bounds reading one request's body. Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response (a blocking query gets its
	// wait on top). Default 30s.
	WriteTimeout time.Duration
	// MaxCatalogWatches caps the watches (blocking sync requests of other
	// regions' gateways, the push path) the gateway holds at once, and
	// MaxCatalogWatchesPerClient those of one client IP; past them a watch
	// is answered 429. Defaults 4096 and 64: a gateway watches one gateway
	// per other region.
	MaxCatalogWatches          int
	MaxCatalogWatchesPerClient int
}

// maxWriteLimiters bounds the per-client write limiters kept; past it the
// idle ones (full buckets) are dropped first.
const maxWriteLimiters = 10000

// DefaultLimits returns the limits with every default filled in.
func DefaultLimits() Limits {
	var l Limits
	l.fill()
	return l
}

func (l *Limits) fill() {
	if l.MaxConnections == 0 {
		l.MaxConnections = defaultMaxConnections()
	}
	if l.MaxConnectionsPerClient == 0 {
		l.MaxConnectionsPerClient = 200
	}
	if l.WriteRate == 0 {
		l.WriteRate = 500
	}
	if l.WriteBurst <= 0 {
		l.WriteBurst = max(1, int(2*l.WriteRate))
	}
	if l.MaxInstances == 0 {
		l.MaxInstances = 200_000
	}
	if l.MaxInstancesPerService == 0 {
		l.MaxInstancesPerService = 20_000
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 10 * time.Second
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 30 * time.Second
	}
	if l.MaxCatalogWatches == 0 {
		l.MaxCatalogWatches = 4096
	}
	if l.MaxCatalogWatchesPerClient == 0 {
		l.MaxCatalogWatchesPerClient = 64
	}
}

// Validate checks the limits, naming the flag.
func (l *Limits) Validate() error {
	if l.WriteBurst < 0 {
		return errors.New("write-burst: must not be negative")
	}
	return nil
}

// defaultMaxConnections is 80% of the file-descriptor limit (the rest is
// for Redis, Serf, health checks and the proxy), at least 64.
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	n := min(rl.Cur, 1<<20) * 8 / 10
	return max(64, int(n))
}

// connLimiter is a listener that closes connections past its caps right
// after accepting them, so an excess client is refused fast instead of
// waiting in the accept queue.
type connLimiter struct {
	net.Listener
	total, perClient int
	mu               sync.Mutex
	open             int
	byIP             map[string]int
	refused          func(reason string)
}

func newConnLimiter(ln net.Listener, l Limits, refused func(reason string)) net.Listener {
	if l.MaxConnections < 0 && l.MaxConnectionsPerClient < 0 {
		return ln
	}
	return &connLimiter{Listener: ln, total: l.MaxConnections, perClient: l.MaxConnectionsPerClient,
		byIP: map[string]int{}, refused: refused}
}

func (c *connLimiter) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(conn.RemoteAddr())
		c.mu.Lock()
		reason := ""
		switch {
		case c.total > 0 && c.open >= c.total:
			reason = "max_connections"
		case c.perClient > 0 && c.byIP[ip] >= c.perClient:
			reason = "max_connections_per_client"
		default:
			c.open++
			c.byIP[ip]++
		}
		c.mu.Unlock()
		if reason != "" {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, not a lingering close
			}
			conn.Close()
			if c.refused != nil {
				c.refused(reason)
			}
			continue
		}
		return &limitedConn{Conn: conn, l: c, ip: ip}, nil
	}
}

func (c *connLimiter) release(ip string) {
	c.mu.Lock()
	c.open--
	if c.byIP[ip]--; c.byIP[ip] <= 0 {
		delete(c.byIP, ip)
	}
	c.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// writeLimiters holds one token bucket per client, bounded.
type writeLimiters struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// allow takes one write from client's bucket; when empty it returns how
// long until the next write would be allowed.
func (w *writeLimiters) allow(client string, now time.Time) (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l, ok := w.m[client]
	if !ok {
		if len(w.m) >= maxWriteLimiters {
			w.evict(now)
		}
		l = rate.NewLimiter(w.rate, w.burst)
		w.m[client] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops the limiters whose buckets are full again (their clients
// have been idle), or half of them when none is.
func (w *writeLimiters) evict(now time.Time) {
	for k, l := range w.m {
		if l.TokensAt(now) >= float64(w.burst) {
			delete(w.m, k)
		}
	}
	for k := range w.m {
		if len(w.m) < maxWriteLimiters/2 {
			break
		}
		delete(w.m, k)
	}
}

// clientKey identifies the client a write is counted against: its ACL
// token's accessor id when it sends a known token, else its IP. An unknown
// or absent token counts as its IP, so a client cannot dodge the limit by
// sending a new made-up token with every request.
func (s *Server) clientKey(r *http.Request) string {
	if s.cfg.ACL != nil {
		if id := s.cfg.ACL.accessorOf(r); id != "" {
			return "t:" + id
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// isWrite reports whether a request changes state.
func isWrite(method string) bool {
	switch method {
	case http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch:
		return true
	}
	return false
}

// withLimits extends a blocking query's write deadline to cover its wait
// and applies the write rate.
// Proxied requests (/v1/proxy/) are counted by the proxy's own bounds, not
// as writes to the registry.
func (s *Server) withLimits(next http.Handler) http.Handler {
	l := s.cfg.Limits
	var wl *writeLimiters
	if l.WriteRate > 0 {
		wl = &writeLimiters{rate: rate.Limit(l.WriteRate), burst: l.WriteBurst, m: map[string]*rate.Limiter{}}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The agent's http.Server sets the read deadline (ReadTimeout)
		// and the write deadline (WriteTimeout) of every request; only a
		// blocking query moves its write deadline past its wait. (The
		// clock is read only when needed: a plain read does not.)
		if wait := s.blockingWait(r); wait > 0 {
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(l.WriteTimeout + wait))
		}
		if wl != nil && isWrite(r.Method) && !strings.HasPrefix(r.URL.Path, "/v1/proxy/") {
			if ok, d := wl.allow(s.clientKey(r), time.Now()); !ok {
				s.metrics.refused(r.Context(), "write_rate")
				secs := int((d + time.Second - 1) / time.Second)
				w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
				writeError(w, http.StatusTooManyRequests, "", "too many writes from this client: at most "+
					strconv.FormatFloat(l.WriteRate, 'f', -1, 64)+"/s (--write-rate); retry after "+strconv.Itoa(max(1, secs))+"s")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// blockingWait is how long a request may legitimately wait before it
// answers: a blocking query's wait (capped at MaxWait) plus its jitter.
func (s *Server) blockingWait(r *http.Request) time.Duration {
	q := r.URL.RawQuery
	if !strings.Contains(q, "index=") && !strings.Contains(q, "wait=") {
		return 0
	}
	wait := DefaultWait
	if v := r.URL.Query().Get("wait"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			wait = d
		}
	}
	wait = min(wait, s.cfg.MaxWait)
	return wait + wait/16
}

// limitListener applies the connection caps to ln.
func (s *Server) limitListener(ln net.Listener) net.Listener {
	return newConnLimiter(ln, s.cfg.Limits, func(reason string) { s.metrics.refused(s.drain, reason) })
}

// overCapacity answers 507 when registering k, a new instance, would pass
// the region's or the service's instance cap.
func (s *Server) overCapacity(w http.ResponseWriter, k region.Key) bool {
	l := s.cfg.Limits
	var exists bool
	var total, inService int
	s.cfg.Cache.Read(func(c *region.Catalog) {
		_, exists = c.Get(k)
		if !exists {
			inService = c.ServiceLen(k.Service)
			if l.MaxInstances > 0 {
				total = c.Len()
			}
		}
	})
	switch {
	case exists:
		return false
	case l.MaxInstancesPerService > 0 && inService >= l.MaxInstancesPerService:
		writeError(w, http.StatusInsufficientStorage, "id", "service "+k.Service+" already has its maximum of "+
			strconv.Itoa(l.MaxInstancesPerService)+" instances (--max-instances-per-service); deregister some first")
		return true
	case l.MaxInstances > 0 && total >= l.MaxInstances:
		writeError(w, http.StatusInsufficientStorage, "id", "the region already has its maximum of "+
			strconv.Itoa(l.MaxInstances)+" instances (--max-instances); deregister some first")
		return true
	}
	return false
}
