package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meridian-sd/meridian/acl"
	"github.com/meridian-sd/meridian/region"
)

// TokenHeader carries an ACL token's secret (or Authorization: Bearer).
const TokenHeader = "X-Meridian-Token"

// ACLConfig configures a gateway's ACLs (meridian agent --acl-*).
type ACLConfig struct {
	// DefaultPolicy is "allow" (the default: requests without a token
	// are allowed, ACLs are off) or "deny" (every API request needs a
	// token with the right rules).
	DefaultPolicy string
	// InitialToken is a management secret every gateway given it honours
	// (--acl-initial-token); the primary also stores it so it replicates.
	InitialToken string
	// PrimaryRegion is where tokens are created and stored; the gateway's
	// own region when empty.
	PrimaryRegion string
	// ReplicationToken is sent on this gateway's own requests to other
	// gateways (catalog sync, ACL replication, heartbeat forwarding);
	// InitialToken when empty.
	ReplicationToken string
	// Replication tunes a non-primary region's token replication.
	Replication acl.ReplicationConfig
}

// Validate checks the configuration, naming the flag.
func (c *ACLConfig) Validate() error {
	switch c.DefaultPolicy {
	case "", "allow", "deny":
	default:
		return fmt.Errorf("acl-default-policy: %q is not allow or deny", c.DefaultPolicy)
	}
	if c.PrimaryRegion != "" {
		if err := region.ValidateService(c.PrimaryRegion); err != nil {
			return fmt.Errorf("primary-region: %q is not a DNS label (lowercase a-z, 0-9, '-', 1-63 characters)", c.PrimaryRegion)
		}
	}
	for name, tok := range map[string]string{"acl-initial-token": c.InitialToken, "acl-replication-token": c.ReplicationToken} {
		if tok != "" && (len(tok) < 8 || len(tok) > 256 || strings.ContainsAny(tok, " \t\r\n")) {
			// Never echo the value.
			return fmt.Errorf("%s: must be 8 to 256 characters without spaces", name)
		}
	}
	return nil
}

// ACLs is a gateway's ACL state: the token table (the primary's, loaded
// from its Redis, or a replica), the default policy and the initial token.
// Resolving a request's token is one SHA-256 and one map lookup.
type ACLs struct {
	cfg          ACLConfig
	region       string
	primary      string
	defaultAllow bool
	initial      *acl.Entry // nil without an initial token
	initialHash  acl.Hash
	replToken    string
	rdb          redis.UniversalClient // nil: no storage (token writes answer 503)
	keys         aclKeys
	// refreshMu makes each reload of the primary's table (read, then
	// install) one step: a background reload that read the table before a
	// token write must not install it after the write's own reload.
	refreshMu sync.Mutex
	log       *slog.Logger
	now       func() time.Time

	table  atomic.Pointer[acl.Table]
	loaded atomic.Bool // the table came from the store or a replica

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the table changes
	repl    *acl.Replication

	// With TLS, replication fetches go over HTTPS and count only when the
	// peer's certificate names the primary region (set by StartAgent).
	scheme    string
	checkPeer func(addr, region string, cs *tls.ConnectionState) error
}

// initialAccessor is the accessor id of the initial token on a gateway
// that has not (yet) seen it in the primary's table.
const initialAccessor = "initial-management"

// NewACLs builds the ACL state of a gateway of regionName. rdb is the
// region's Redis (nil: tokens cannot be stored; only the initial token
// works).
func NewACLs(cfg ACLConfig, regionName string, rdb redis.UniversalClient, log *slog.Logger) (*ACLs, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	a := &ACLs{cfg: cfg, region: regionName, primary: cfg.PrimaryRegion, defaultAllow: cfg.DefaultPolicy != "deny",
		rdb: rdb, log: log, now: time.Now, changed: make(chan struct{})}
	if a.primary == "" {
		a.primary = regionName
	}
	a.keys = newACLKeys(regionName)
	if cfg.InitialToken != "" {
		a.initialHash = acl.HashSecret(cfg.InitialToken)
		a.initial = &acl.Entry{Token: acl.Token{ID: initialAccessor, SecretHash: a.initialHash.String(),
			Description: "initial management token (--acl-initial-token)", Management: true}, Authz: acl.Management()}
	}
	a.replToken = cfg.ReplicationToken
	if a.replToken == "" {
		a.replToken = cfg.InitialToken
	}
	a.table.Store(acl.EmptyTable())
	a.repl = acl.NewReplication(cfg.Replication, 0, time.Time{})
	return a, nil
}

// IsPrimary reports whether this gateway's region is the ACL primary.
func (a *ACLs) IsPrimary() bool { return a.primary == a.region }

// Primary is the primary region.
func (a *ACLs) Primary() string { return a.primary }

// DefaultAllow reports the default policy.
func (a *ACLs) DefaultAllow() bool { return a.defaultAllow }

// Table returns the current token table.
func (a *ACLs) Table() *acl.Table { return a.table.Load() }

// install replaces the table and wakes blocked replication queries.
func (a *ACLs) install(t *acl.Table) {
	a.mu.Lock()
	old := a.table.Swap(t)
	a.loaded.Store(true)
	if old.Version() != t.Version() || old.Len() != t.Len() {
		close(a.changed)
		a.changed = make(chan struct{})
	}
	a.mu.Unlock()
}

// waitChange blocks until the table's version differs from index, or ctx
// ends.
func (a *ACLs) waitChange(ctx context.Context, index uint64) {
	for {
		a.mu.Lock()
		v, ch := a.table.Load().Version(), a.changed
		a.mu.Unlock()
		if v != index {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// secretOf returns the token a request carries ("" when none), and
// whether it came from Authorization: Bearer.
func secretOf(r *http.Request) (secret string, bearer bool) {
	if s := r.Header.Get(TokenHeader); s != "" {
		return s, false
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	// Consul's ways, on the Consul-compatible routes only (consul_api.go):
	// elsewhere the header and the query may be meant for the service
	// behind /v1/proxy, and a query is forwarded and traced.
	if consulPath(r.URL.Path) {
		if s := r.Header.Get(consulTokenHeader); s != "" {
			return s, false
		}
		if strings.Contains(r.URL.RawQuery, "token=") {
			if s := r.URL.Query().Get("token"); s != "" {
				return s, false
			}
		}
	}
	return "", false
}

// resolve finds the request's token: (nil, true) for an anonymous
// request, (nil, false) for an unknown token. Under the allow policy an
// unknown Authorization: Bearer value counts as anonymous: it may be
// meant for a service behind /v1/proxy, as before ACLs.
func (a *ACLs) resolve(r *http.Request) (e *acl.Entry, ok bool) {
	secret, bearer := secretOf(r)
	if secret == "" {
		return nil, true
	}
	if e := a.lookup(secret); e != nil {
		return e, true
	}
	return nil, bearer && a.defaultAllow
}

// lookup resolves a secret: one SHA-256 and one map lookup.
func (a *ACLs) lookup(secret string) *acl.Entry {
	h := acl.HashSecret(secret)
	if e, ok := a.table.Load().ByHash(h); ok {
		return e
	}
	if a.initial != nil && h == a.initialHash {
		return a.initial
	}
	return nil
}

// stripToken removes a request's Meridian token from headers about to
// be proxied to a service: X-Meridian-Token always, Authorization when it
// carried the Meridian token (a Bearer for the service itself passes).
func (a *ACLs) stripToken(in *http.Request, out http.Header) {
	out.Del(TokenHeader)
	if secret, bearer := secretOf(in); bearer && a != nil && a.lookup(secret) != nil {
		out.Del("Authorization")
	}
}

// errTokenRequired and errTokenUnknown are the 401 answers.
const (
	msgTokenRequired = "ACL token required: send it as " + TokenHeader + ": SECRET or Authorization: Bearer SECRET"
	msgTokenUnknown  = "ACL token not found (unknown or deleted)"
)

// check answers 401/403 unless the request may do p (need false: any
// known token, or anonymous under the allow policy, will do). It returns the
// resolved token (nil when anonymous).
func (a *ACLs) check(w http.ResponseWriter, r *http.Request, p acl.Perm, need bool) (*acl.Entry, bool) {
	e, ok := a.resolve(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "", msgTokenUnknown)
		return nil, false
	}
	if e == nil {
		if a.defaultAllow {
			return nil, true
		}
		writeError(w, http.StatusUnauthorized, "", msgTokenRequired)
		return nil, false
	}
	if need && !e.Authz.Allowed(p, a.defaultAllow) {
		writeError(w, http.StatusForbidden, "", "permission denied: needs "+p.String())
		return e, false
	}
	return e, true
}

// may reports whether the request's token (already checked) has p.
func (a *ACLs) may(r *http.Request, p acl.Perm) bool {
	e, ok := a.resolve(r)
	switch {
	case !ok:
		return false
	case e == nil:
		return a.defaultAllow
	}
	return e.Authz.Allowed(p, a.defaultAllow)
}

// accessorOf is the accessor id of the request's token ("" anonymous).
func (a *ACLs) accessorOf(r *http.Request) string {
	if e, ok := a.resolve(r); ok && e != nil {
		return e.Token.ID
	}
	return ""
}

// newSecret returns 128 random bits as a UUID-shaped string (the form of
// Consul's secrets); newAccessor returns a random (version 4) UUID.
func newSecret() (string, error) { return randomUUID(false) }

// NewACLSecret returns a new random token secret, the form the gateway
// gives the tokens it creates: for --acl-initial-token (meridian acl token
// generate).
func NewACLSecret() (string, error) { return newSecret() }

func newAccessor() (string, error) { return randomUUID(true) }

func randomUUID(v4 bool) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	if v4 {
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// access is what a route needs: nothing (open), a known token
// (identified), or a permission computed from the request.
type access struct {
	open bool
	perm func(r *http.Request) acl.Perm // nil: any known token
}

var (
	openRoute  = access{open: true}
	identified = access{}
)

func needs(p acl.Perm) access { return access{perm: func(*http.Request) acl.Perm { return p }} }

// serviceRead, serviceWrite: the {service} path segment.
var (
	serviceRead  = access{perm: func(r *http.Request) acl.Perm { return acl.ServiceRead(pathValue(r, "service")) }} // fastroutes.go
	serviceWrite = access{perm: func(r *http.Request) acl.Perm { return acl.ServiceWrite(r.PathValue("service")) }}
	// serviceReadWrite: GET and HEAD read, other methods write.
	serviceReadWrite = access{perm: func(r *http.Request) acl.Perm {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return acl.ServiceRead(r.PathValue("service"))
		}
		return acl.ServiceWrite(r.PathValue("service"))
	}}
	operatorRead  = needs(acl.OperatorRead)
	operatorWrite = needs(acl.OperatorWrite)
	aclWrite      = needs(acl.ACLWrite)
	// operatorReadWrite: GET and HEAD need operator read, others write.
	operatorReadWrite = access{perm: func(r *http.Request) acl.Perm {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return acl.OperatorRead
		}
		return acl.OperatorWrite
	}}
)

// guard wraps h with the route's authorization.
func (s *Server) guard(acc access, h http.HandlerFunc) http.HandlerFunc {
	if acc.open {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.ACL == nil {
			h(w, r)
			return
		}
		var p acl.Perm
		if acc.perm != nil {
			p = acc.perm(r)
		}
		if _, ok := s.cfg.ACL.check(w, r, p, acc.perm != nil); !ok {
			return
		}
		h(w, r)
	}
}

// canRead reports whether the request may read service name (true when
// ACLs are not configured).
func (s *Server) canRead(r *http.Request, name string) bool {
	return s.cfg.ACL == nil || s.cfg.ACL.may(r, acl.ServiceRead(name))
}

// registeredBy is the accessor id to record on a registration.
func (s *Server) registeredBy(r *http.Request) string {
	if s.cfg.ACL == nil {
		return ""
	}
	return s.cfg.ACL.accessorOf(r)
}

// tokenTransport adds this gateway's replication token to its own
// requests to other gateways, unless the request already carries one (a
// forwarded client request keeps the client's token).
type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.token == "" || r.Header.Get(TokenHeader) != "" || r.Header.Get("Authorization") != "" {
		return base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set(TokenHeader, t.token)
	return base.RoundTrip(r)
}

// withToken returns a client like c (a new one when nil) whose transport
// adds token; c itself is not changed.
func withToken(c *http.Client, token string, timeout time.Duration) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: timeout}
	}
	if token == "" {
		return c
	}
	out := *c
	out.Transport = tokenTransport{base: c.Transport, token: token}
	return &out
}

var errNoStore = errors.New("this gateway has no ACL store")
