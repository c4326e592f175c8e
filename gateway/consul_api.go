package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meridian-sd/meridian/acl"
	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// The Consul-compatible subset of the HTTP API (README "Consul
// compatibility"): the agent's service registration and TTL checks, the
// catalog and health reads with blocking queries, datacenters (= regions),
// agent/self and status/leader. Writes go through the native handlers
// (register, deregister, handleHeartbeat), so they get the same validation,
// write ids, limits, egress policy and check-owner forwarding; reads answer
// from the same cache and replicas as /v1/services.
//
// Mapping: a Consul service ID is a Meridian instance id, its Name the
// Meridian service; a Consul datacenter is a region; an instance's only
// check is "service:<id>"; Weights.Passing is the instance's weight.
// Meridian has no nodes: each instance reads as the node named after its
// address.

// consulTokenHeader is Consul's token header, honoured next to Meridian's.
const consulTokenHeader = "X-Consul-Token"

// consulVersion is the Consul API level this subset follows, announced by
// /v1/agent/self for clients that probe it.
const consulVersion = "1.21.0"

// consulRoutes registers the Consul-compatible routes through New's route
// table (acl.go decides access).
func (s *Server) consulRoutes(route func(pattern, name string, acc access, h http.HandlerFunc)) {
	// Registration names its service in the body: the handler checks
	// service write for it (as Consul does), after a known token.
	route("/v1/agent/service/register", "consul_register", identified, s.consulRegister)
	route("/v1/agent/service/deregister/{id}", "consul_deregister", s.consulIDWrite("id"), s.consulDeregister)
	route("/v1/agent/check/{verb}/{check}", "consul_check", s.consulIDWrite("check"), s.consulCheckUpdate)
	route("/v1/agent/service/{id}", "consul_agent_service", s.consulIDRead("id"), s.consulAgentService)
	route("/v1/health/checks/{service}", "consul_health_checks", serviceRead, s.consulHealthChecks)
	route("/v1/catalog/services", "consul_catalog_services", identified, s.consulCatalogServices) // lists only readable services
	route("/v1/catalog/service/{service}", "consul_catalog_service", serviceRead, s.consulCatalogService)
	route("/v1/health/service/{service}", "consul_health_service", serviceRead, s.consulHealthService)
	route("/v1/catalog/datacenters", "consul_datacenters", identified, s.consulDatacenters)
	route("/v1/agent/self", "consul_agent_self", identified, s.consulAgentSelf)
	route("/v1/status/leader", "consul_status_leader", openRoute, s.consulStatusLeader) // open, as Consul's
	route("/v1/status/peers", "consul_status_peers", openRoute, s.consulStatusPeers)
	for _, u := range consulUnsupported {
		msg := "not supported by Meridian's Consul-compatible API: " + u.what + " (see the README, \"Consul compatibility\")"
		h := func(w http.ResponseWriter, r *http.Request) { writeError(w, http.StatusNotImplemented, "", msg) }
		route(u.prefix, "consul_unsupported", openRoute, h)
		if strings.HasSuffix(u.prefix, "/") {
			route(strings.TrimSuffix(u.prefix, "/"), "consul_unsupported", openRoute, h)
		}
	}
}

// consulUnsupported are Consul API paths answered 501 with what is missing,
// so a Consul tool fails with a clear message rather than a bare 404.
var consulUnsupported = []struct{ prefix, what string }{
	{"/v1/kv/", "the KV store"},
	{"/v1/session/", "sessions"},
	{"/v1/connect/", "Connect (service mesh)"},
	{"/v1/agent/connect/", "Connect (service mesh)"},
	{"/v1/acl/bootstrap", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/acl/login", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/acl/logout", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/acl/policy/", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/acl/policies", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/acl/role/", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/acl/token", "Consul's ACL API (Meridian's tokens are at /v1/acl/tokens)"},
	{"/v1/event/", "user events"},
	{"/v1/txn", "transactions"},
	{"/v1/query/", "prepared queries (Meridian's routing policies do failover: /v1/lookup)"},
	{"/v1/snapshot", "snapshots"},
	{"/v1/coordinate/", "network coordinates"},
	{"/v1/config/", "config entries"},
	{"/v1/operator/raft/", "Raft operations (Meridian has no Raft)"},
	{"/v1/operator/autopilot/", "autopilot"},
	{"/v1/peering/", "cluster peering"},
	{"/v1/namespace/", "namespaces"},
	{"/v1/partition/", "admin partitions"},
	{"/v1/discovery-chain/", "discovery chains"},
	{"/v1/agent/check/register", "standalone checks (register a service with its Check)"},
	{"/v1/agent/check/deregister/{id}", "standalone checks (deregister the service)"},
	{"/v1/catalog/register", "catalog registration (use /v1/agent/service/register)"},
	{"/v1/catalog/deregister", "catalog deregistration (use /v1/agent/service/deregister/{id})"},
	{"/v1/catalog/nodes", "nodes (Meridian registers services, not nodes)"},
	{"/v1/catalog/node/", "nodes (Meridian registers services, not nodes)"},
	{"/v1/health/node/", "nodes (Meridian registers services, not nodes)"},
	{"/v1/agent/members", "agent members (see /v1/regions)"},
	{"/v1/agent/join/", "agent join (gateways join with --join)"},
	{"/v1/agent/leave", "agent leave"},
	{"/v1/agent/maintenance", "maintenance mode"},
	{"/v1/agent/services", "the agent's service list (use /v1/catalog/services and /v1/health/service/{name})"},
	{"/v1/agent/checks", "the agent's check list (use /v1/health/checks/{name})"},
	{"/v1/health/state/", "checks by state (use /v1/health/service/{name})"},
	{"/v1/agent/service/maintenance/", "maintenance mode"},
}

// consulPath reports whether p is one of the Consul-compatible routes,
// the only ones that take a token from X-Consul-Token or ?token=: on
// Meridian's own routes those may be meant for the service behind
// /v1/proxy, and a query is forwarded (heartbeats) and would carry the
// token on.
func consulPath(p string) bool {
	for _, prefix := range []string{"/v1/agent/", "/v1/catalog/", "/v1/health/service/", "/v1/status/"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// consulIDWrite is the access of a route naming a Consul service ID (or a
// check "service:<id>") in path segment seg: service write on the service
// that ID belongs to. An unknown ID needs write on every service ("") so
// that only such a token learns that the ID does not exist.
func (s *Server) consulIDWrite(seg string) access { return s.consulIDAccess(seg, acl.ServiceWrite) }

// consulIDRead is consulIDWrite for reading.
func (s *Server) consulIDRead(seg string) access { return s.consulIDAccess(seg, acl.ServiceRead) }

func (s *Server) consulIDAccess(seg string, perm func(string) acl.Perm) access {
	return access{perm: func(r *http.Request) acl.Perm {
		id := r.PathValue(seg)
		if seg == "check" {
			id, _ = strings.CutPrefix(id, "service:")
		}
		name, _ := s.consulServiceOf(id)
		return perm(name)
	}}
}

// consulServiceOf finds the service of a local instance id: Consul's
// service IDs are unique per agent, Meridian's per service. Ambiguous
// (two services share the id) is ok=false with the first name.
func (s *Server) consulServiceOf(id string) (name string, ok bool) {
	if id == "" || !s.cfg.Cache.Loaded() {
		return "", false
	}
	n := 0
	s.cfg.Cache.Read(func(c *region.Catalog) {
		for _, svc := range c.ServiceNames() {
			if _, found := c.Get(region.Key{Service: svc, ID: id}); found {
				if n == 0 {
					name = svc
				}
				n++
			}
		}
	})
	return name, n == 1
}

// consulAuthorize answers 401/403 unless the request may do p (the
// handler-side check of routes whose permission depends on the body).
func (s *Server) consulAuthorize(w http.ResponseWriter, r *http.Request, p acl.Perm) bool {
	if s.cfg.ACL == nil {
		return true
	}
	_, ok := s.cfg.ACL.check(w, r, p, true)
	return ok
}

// consulRegistration is the body of PUT /v1/agent/service/register. Field
// names match case-insensitively, as in Consul; fields that would change
// what the registration means and that Meridian cannot honour are
// refused, others (EnableTagOverride, TaggedAddresses, Notes) are ignored.
type consulRegistration struct {
	Kind              string
	ID                string
	Name              string
	Tags              []string
	Port              int
	Address           string
	SocketPath        string
	EnableTagOverride bool
	Meta              map[string]string
	Weights           *struct{ Passing, Warning int }
	Check             *consulCheckDef
	Checks            []*consulCheckDef
	Proxy             json.RawMessage
	Connect           json.RawMessage
	Namespace         string
	Partition         string
	TaggedAddresses   json.RawMessage
}

// consulCheckDef is a service check as Consul's agent takes it.
type consulCheckDef struct {
	CheckID                        string
	Name                           string
	ScriptArgs                     []string
	Args                           []string
	DockerContainerID              string
	Interval                       string
	Timeout                        string
	TTL                            string
	HTTP                           string
	Header                         map[string][]string
	Method                         string
	Body                           string
	TCP                            string
	TCPUseTLS                      bool
	UDP                            string
	Status                         string
	Notes                          string
	TLSServerName                  string
	TLSSkipVerify                  bool
	GRPC                           string
	H2PING                         string
	AliasNode                      string
	AliasService                   string
	OSService                      string
	SuccessBeforePassing           int
	FailuresBeforeWarning          int
	FailuresBeforeCritical         int
	DeregisterCriticalServiceAfter string
}

func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null")) && !bytes.Equal(t, []byte("{}"))
}

// toMeridian maps a Consul registration onto Meridian's registration
// body. remoteIP stands in for a missing Address: a Consul agent uses its
// own node's address, and the registering client is the nearest thing.
func (c *consulRegistration) toMeridian(remoteIP string) (region.Key, region.Registration, error) {
	bad := func(field, msg string) error { return &region.FieldError{Field: field, Msg: msg} }
	var reg region.Registration
	if c.Name == "" {
		return region.Key{}, reg, bad("Name", "missing service name")
	}
	k := region.Key{Service: c.Name, ID: c.ID}
	if k.ID == "" {
		k.ID = c.Name
	}
	switch {
	case c.Kind != "" && c.Kind != "typical":
		return k, reg, bad("Kind", "service kind "+strconv.Quote(c.Kind)+" is not supported (Connect proxies and gateways are not)")
	case present(c.Proxy), present(c.Connect):
		return k, reg, bad("Connect", "Connect (service mesh) is not supported")
	case c.SocketPath != "":
		return k, reg, bad("SocketPath", "unix socket services are not supported")
	case c.Namespace != "" && c.Namespace != "default", c.Partition != "" && c.Partition != "default":
		return k, reg, bad("Namespace", "namespaces and partitions are not supported (only \"default\")")
	}
	reg.Address, reg.Port, reg.Tags, reg.Meta = c.Address, c.Port, c.Tags, c.Meta
	if reg.Address == "" {
		reg.Address = remoteIP
	}
	if c.Weights != nil {
		if c.Weights.Passing < 1 || c.Weights.Passing > region.MaxWeight {
			return k, reg, bad("Weights.Passing", "must be 1 to "+strconv.Itoa(region.MaxWeight)+", got "+strconv.Itoa(c.Weights.Passing))
		}
		w := c.Weights.Passing
		reg.Weight = &w
	}
	checks := c.Checks
	if c.Check != nil {
		checks = append([]*consulCheckDef{c.Check}, checks...)
	}
	checks = slices.DeleteFunc(checks, func(d *consulCheckDef) bool { return d == nil })
	if len(checks) > 1 {
		return k, reg, bad("Checks", "Meridian keeps one check per service instance; give one Check")
	}
	if len(checks) == 1 {
		chk, status, err := checks[0].toMeridian(k.ID)
		if err != nil {
			return k, reg, err
		}
		reg.Check, reg.Status = chk, status
	}
	return k, reg, nil
}

func (d *consulCheckDef) toMeridian(id string) (*region.Check, region.Status, error) {
	bad := func(field, msg string) error { return &region.FieldError{Field: "Check." + field, Msg: msg} }
	unsupported := func(field, what string) error {
		return bad(field, what+" checks are not supported; use HTTP, TCP or TTL")
	}
	switch {
	case len(d.ScriptArgs) > 0 || len(d.Args) > 0:
		return nil, "", unsupported("ScriptArgs", "script")
	case d.DockerContainerID != "":
		return nil, "", unsupported("DockerContainerID", "Docker")
	case d.GRPC != "":
		return nil, "", unsupported("GRPC", "gRPC")
	case d.H2PING != "":
		return nil, "", unsupported("H2PING", "H2 ping")
	case d.UDP != "":
		return nil, "", unsupported("UDP", "UDP")
	case d.AliasNode != "" || d.AliasService != "":
		return nil, "", unsupported("AliasService", "alias")
	case d.OSService != "":
		return nil, "", unsupported("OSService", "OS service")
	case len(d.Header) > 0:
		return nil, "", bad("Header", "HTTP check headers are not supported")
	case d.Method != "" && !strings.EqualFold(d.Method, http.MethodGet):
		return nil, "", bad("Method", "HTTP checks use GET; "+strconv.Quote(d.Method)+" is not supported")
	case d.Body != "":
		return nil, "", bad("Body", "HTTP check bodies are not supported")
	case d.TCPUseTLS, d.TLSSkipVerify, d.TLSServerName != "":
		return nil, "", bad("TLSSkipVerify", "TLS options of checks are not supported")
	case d.FailuresBeforeWarning != 0:
		return nil, "", bad("FailuresBeforeWarning", "is not supported (use FailuresBeforeCritical)")
	case d.CheckID != "" && d.CheckID != "service:"+id:
		return nil, "", bad("CheckID", "Meridian names a service's check \"service:"+id+"\"; leave CheckID empty or use that")
	}
	c := &region.Check{HTTP: d.HTTP, TCP: d.TCP,
		SuccessBeforePassing: d.SuccessBeforePassing, FailuresBeforeCritical: d.FailuresBeforeCritical}
	for _, f := range []struct {
		name, v string
		dst     *region.Duration
	}{
		{"TTL", d.TTL, &c.TTL}, {"Interval", d.Interval, &c.Interval}, {"Timeout", d.Timeout, &c.Timeout},
		{"DeregisterCriticalServiceAfter", d.DeregisterCriticalServiceAfter, &c.DeregisterCriticalAfter},
	} {
		if f.v == "" {
			continue
		}
		v, err := time.ParseDuration(f.v)
		if err != nil || v < 0 {
			return nil, "", bad(f.name, "not a duration (want e.g. \"10s\"): "+strconv.Quote(f.v))
		}
		*f.dst = region.Duration(v)
	}
	var status region.Status
	if d.Status != "" {
		st, err := region.ParseStatus(d.Status)
		if err != nil {
			return nil, "", bad("Status", err.Error())
		}
		status = st
	}
	if c.Kind() == "" {
		return nil, "", bad("HTTP", "a check needs HTTP, TCP or TTL")
	}
	return c, status, nil
}

// consulAck passes a native handler's answer through, except that a 2xx
// answer has no body: Consul's agent answers writes with an empty 200.
type consulAck struct {
	http.ResponseWriter
	ok bool
}

func (c *consulAck) WriteHeader(code int) {
	if code >= 200 && code < 300 {
		c.ok = true
		h := c.Header()
		h.Del("Content-Length")
		h.Del("Content-Type")
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *consulAck) Write(b []byte) (int, error) {
	if c.ok {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// nativeRequest is r aimed at a native route: path, path values, body
// and the request's token in Meridian's header (so a forwarded heartbeat
// carries it), without r's query (which may hold ?token=).
func nativeRequest(r *http.Request, k region.Key, suffix string, body []byte) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL = &url.URL{Path: "/v1/services/" + k.Service + "/instances/" + url.PathEscape(k.ID) + suffix}
	r2.RequestURI = r2.URL.RequestURI()
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Type", "application/json")
	if secret, bearer := secretOf(r); secret != "" && !bearer {
		r2.Header.Set(TokenHeader, secret)
	}
	r2.Header.Del(consulTokenHeader)
	r2.SetPathValue("service", k.Service)
	r2.SetPathValue("id", k.ID)
	return r2
}

func consulRemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

func (s *Server) consulRegister(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodPut) {
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if err := region.CheckDuplicateKeys(body); err != nil {
		writeStoreError(w, err)
		return
	}
	var c consulRegistration
	if err := json.Unmarshal(body, &c); err != nil {
		writeError(w, http.StatusBadRequest, "body", "request decode failed: "+err.Error())
		return
	}
	k, reg, err := c.toMeridian(consulRemoteIP(r))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if err := region.ValidateService(k.Service); err != nil {
		writeError(w, http.StatusBadRequest, "Name", "Meridian service names are DNS labels: "+err.Error())
		return
	}
	if err := region.ValidateID(k.ID); err != nil {
		writeError(w, http.StatusBadRequest, "ID", err.Error())
		return
	}
	if !s.consulAuthorize(w, r, acl.ServiceWrite(k.Service)) || s.loading(w) {
		return
	}
	if other, _ := s.consulServiceOf(k.ID); other != "" && other != k.Service {
		which := "another service" // not named unless the token may read it
		if s.canRead(r, other) {
			which = "service " + other
		}
		writeError(w, http.StatusConflict, "ID", "service ID "+strconv.Quote(k.ID)+" is already registered for "+
			which+"; Consul service IDs are unique per agent: deregister it first or pick another ID")
		return
	}
	mbody, err := json.Marshal(reg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "encoding the registration failed")
		return
	}
	s.register(&consulAck{ResponseWriter: w}, nativeRequest(r, k, "", mbody), k)
}

// consulLocalID resolves a Consul service ID to the local instance, or
// answers 404 as Consul does.
func (s *Server) consulLocalID(w http.ResponseWriter, r *http.Request, id, what string) (region.Key, bool) {
	if s.loading(w) {
		return region.Key{}, false
	}
	name, ok := s.consulServiceOf(id)
	switch {
	case name == "":
		writeError(w, http.StatusNotFound, "id", "Unknown "+what+" "+strconv.Quote(id)+
			": no instance of any service in region "+s.cfg.Region+" has this ID")
		return region.Key{}, false
	case !ok:
		writeError(w, http.StatusConflict, "id", "service ID "+strconv.Quote(id)+
			" is registered for several services; use Meridian's API (/v1/services/{service}/instances/{id})")
		return region.Key{}, false
	}
	// The route's guard authorized the service the ID had then; check
	// again in case it moved.
	p := acl.ServiceWrite(name)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		p = acl.ServiceRead(name)
	}
	if !s.consulAuthorize(w, r, p) {
		return region.Key{}, false
	}
	return region.Key{Service: name, ID: id}, true
}

func (s *Server) consulDeregister(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodPut) {
		return
	}
	k, ok := s.consulLocalID(w, r, r.PathValue("id"), "service ID")
	if !ok {
		return
	}
	s.deregister(&consulAck{ResponseWriter: w}, nativeRequest(r, k, "", nil), k)
}

// consulCheckUpdate serves PUT /v1/agent/check/{pass,warn,fail}/service:ID
// (?note=) and /v1/agent/check/update/service:ID ({"Status","Output"}) as
// heartbeats of the instance's TTL check.
func (s *Server) consulCheckUpdate(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodPut) {
		return
	}
	var hb region.Heartbeat
	switch verb := r.PathValue("verb"); verb {
	case "pass", "warn", "fail":
		hb.Status = map[string]region.Status{"pass": region.StatusPassing, "warn": region.StatusWarning, "fail": region.StatusCritical}[verb]
		hb.Output = r.URL.Query().Get("note")
	case "update":
		body, err := readBody(w, r)
		if err != nil {
			writeStoreError(w, err)
			return
		}
		var u struct{ Status, Output string }
		if err := json.Unmarshal(body, &u); err != nil {
			writeError(w, http.StatusBadRequest, "body", "request decode failed: "+err.Error())
			return
		}
		st, err := region.ParseStatus(u.Status)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Status", err.Error())
			return
		}
		hb.Status, hb.Output = st, u.Output
	default:
		writeError(w, http.StatusNotFound, "", "no such endpoint: "+r.URL.Path+" (check verbs are pass, warn, fail and update)")
		return
	}
	// Consul truncates check output to 4 KiB; so does Meridian.
	if len(hb.Output) > region.MaxOutputLen {
		cut := region.MaxOutputLen
		for cut > 0 && !utf8.RuneStart(hb.Output[cut]) {
			cut--
		}
		hb.Output = hb.Output[:cut]
	}
	checkID := r.PathValue("check")
	id, ok := strings.CutPrefix(checkID, "service:")
	if !ok {
		writeError(w, http.StatusNotFound, "check", "Unknown check ID "+strconv.Quote(checkID)+
			": Meridian's checks are named service:<service ID>")
		return
	}
	k, ok := s.consulLocalID(w, r, id, "check ID")
	if !ok {
		return
	}
	body, err := json.Marshal(hb)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "encoding the heartbeat failed")
		return
	}
	s.handleHeartbeat(&consulAck{ResponseWriter: w}, nativeRequest(r, k, "/heartbeat", body))
}

// consulQuery is the part of a Consul read's query string Meridian reads.
type consulQuery struct {
	dc      string
	tags    []string
	passing bool
	near    bool
	index   uint64
	block   bool
	wait    time.Duration
}

func (s *Server) parseConsulQuery(r *http.Request) (consulQuery, error) {
	bad := func(field, msg string) error { return &region.FieldError{Field: field, Msg: msg} }
	q := r.URL.Query()
	cq := consulQuery{dc: q.Get("dc"), tags: q["tag"]}
	if cq.dc == "" {
		cq.dc = s.cfg.Region
	}
	if q.Has("passing") {
		// Consul: ?passing, ?passing=1 or true; an explicit false is false.
		if v := q.Get("passing"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cq, bad("passing", "must be true or false, got "+strconv.Quote(v))
			}
			cq.passing = b
		} else {
			cq.passing = true
		}
	}
	if v := q.Get("near"); v != "" {
		if v != "_agent" {
			return cq, bad("near", "only near=_agent is supported (Meridian has no nodes), got "+strconv.Quote(v))
		}
		cq.near = true
	}
	for _, p := range []string{"ns", "partition"} {
		if v := q.Get(p); v != "" && v != "default" {
			return cq, bad(p, "namespaces and partitions are not supported (only \"default\")")
		}
	}
	for _, p := range []string{"filter", "peer", "node-meta", "sameness-group", "hash"} {
		if q.Get(p) != "" {
			return cq, bad(p, "?"+p+"= is not supported by Meridian's Consul-compatible API")
		}
	}
	if v := q.Get("index"); v != "" {
		i, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cq, bad("index", "must be an unsigned integer, got "+strconv.Quote(v))
		}
		cq.index, cq.block = i, i > 0
	}
	cq.wait = DefaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return cq, bad("wait", "must be a duration such as 30s or 10000ms, got "+strconv.Quote(v))
		}
		if d > 0 {
			cq.wait = d
		}
	}
	cq.wait = min(cq.wait, s.cfg.MaxWait)
	return cq, nil
}

// consulRead is one region's catalog as a Consul read sees it.
type consulRead struct {
	region  string
	version uint64
	stale   bool
	age     time.Duration
}

// errNoPath is Consul's answer for an unknown datacenter.
type errNoPath struct{ dc string }

func (e errNoPath) Error() string { return "No path to datacenter " + strconv.Quote(e.dc) }

// consulBlock waits, for a blocking query, until region dc's version
// passes cq.index (or the wait ends), and then reads it with fn.
func (s *Server) consulBlock(r *http.Request, cq consulQuery, fn func(c *region.Catalog)) (consulRead, error) {
	local := cq.dc == s.cfg.Region
	if !local && s.cfg.Fed == nil {
		return consulRead{}, errNoPath{cq.dc}
	}
	if cq.block {
		// Spread the wake-ups of many watchers, as Consul does (wait/16).
		wait := cq.wait + rand.N(cq.wait/16+1)
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		stop := context.AfterFunc(s.drain, cancel)
		// X-Consul-Index is the version plus one (consulMeta): the
		// client's index names version index-1.
		if local {
			s.cfg.Cache.Wait(ctx, cq.index-1)
		} else {
			s.waitReplica(ctx, cq.dc, cq.index-1)
		}
		stop()
		cancel()
	}
	if local {
		f := s.cfg.Cache.Freshness()
		out := consulRead{region: s.cfg.Region, stale: f.Stale, age: f.Age}
		s.cfg.Cache.Read(func(c *region.Catalog) {
			out.version = c.Version()
			fn(c)
		})
		return out, nil
	}
	var out consulRead
	var err error
	now := s.cfg.Now()
	s.cfg.Fed.Read(func(c *federation.Core) {
		rep, stale, known := c.Lookup(cq.dc)
		switch {
		case !known:
			err = errNoPath{cq.dc}
		case rep == nil:
			err = errNoPath{cq.dc}
		default:
			out = consulRead{region: cq.dc, version: rep.Version(), stale: stale, age: max(now.Sub(rep.LastSync), 0)}
			fn(rep.Catalog)
		}
	})
	return out, err
}

// waitReplica polls region name's replica until its version passes index
// or ctx ends (replicas have no change notification to wait on).
func (s *Server) waitReplica(ctx context.Context, name string, index uint64) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		var v uint64
		s.cfg.Fed.Read(func(c *federation.Core) {
			if rep, _, _ := c.Lookup(name); rep != nil {
				v = rep.Version()
			}
		})
		if v > index || v < index {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// consulMeta sets Consul's query headers: the region's version plus one
// as X-Consul-Index (Consul's indexes start at 1, and a client treats 0 as
// "do not block"; an empty region is at version 0), KnownLeader false when
// the data is stale, LastContact the age of the data in ms.
func (s *Server) consulMeta(w http.ResponseWriter, rd consulRead) {
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(rd.version+1, 10))
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(!rd.stale))
	h.Set("X-Consul-LastContact", strconv.FormatInt(rd.age.Milliseconds(), 10))
	h.Set("X-Meridian-Index", strconv.FormatUint(rd.version, 10))
	h.Set("X-Meridian-Region", rd.region)
	if s.cfg.ACL != nil {
		pol := "allow"
		if !s.cfg.ACL.DefaultAllow() {
			pol = "deny"
		}
		h.Set("X-Consul-Default-ACL-Policy", pol)
	}
}

func (s *Server) writeConsulReadError(w http.ResponseWriter, err error) {
	if e, ok := err.(errNoPath); ok {
		// Consul answers 500 for an unknown datacenter.
		writeError(w, http.StatusInternalServerError, "dc", e.Error()+": no gateway of that region is known here")
		return
	}
	writeStoreError(w, err)
}

func (s *Server) consulCatalogServices(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.loading(w) {
		return
	}
	cq, err := s.parseConsulQuery(r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	out := map[string][]string{}
	filtered := false
	rd, err := s.consulBlock(r, cq, func(c *region.Catalog) {
		for name, tags := range s.consulTags.get(cq.dc, c) {
			if !s.canRead(r, name) {
				filtered = true
				continue
			}
			out[name] = tags
		}
	})
	if err != nil {
		s.writeConsulReadError(w, err)
		return
	}
	s.consulMeta(w, rd)
	if filtered {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
	writeJSON(w, http.StatusOK, out)
}

// consulInstances reads a service's instances for a catalog or health
// read, ordered as the router ranks them with near=_agent.
func (s *Server) consulInstances(w http.ResponseWriter, r *http.Request) ([]region.Instance, consulRead, bool) {
	if !methods(w, r, http.MethodGet) || s.loading(w) {
		return nil, consulRead{}, false
	}
	name := r.PathValue("service")
	if err := region.ValidateService(name); err != nil {
		writeStoreError(w, err)
		return nil, consulRead{}, false
	}
	cq, err := s.parseConsulQuery(r)
	if err != nil {
		writeStoreError(w, err)
		return nil, consulRead{}, false
	}
	var ins []region.Instance
	rd, err := s.consulBlock(r, cq, func(c *region.Catalog) {
		ins = c.Instances(name, region.Filter{Tags: cq.tags, Passing: cq.passing})
	})
	if err != nil {
		s.writeConsulReadError(w, err)
		return nil, consulRead{}, false
	}
	if cq.near {
		// No coordinates per instance: nearest is the router's order
		// within a region, healthiest first.
		slices.SortStableFunc(ins, func(a, b region.Instance) int { return cmp.Compare(statusOrder(a.Status), statusOrder(b.Status)) })
	}
	s.consulMeta(w, rd)
	return ins, rd, true
}

func statusOrder(s region.Status) int {
	switch s {
	case region.StatusPassing:
		return 0
	case region.StatusWarning:
		return 1
	}
	return 2
}

// Consul's JSON shapes (github.com/hashicorp/consul/api), the fields that
// clients read.
type (
	consulNode struct {
		ID              string
		Node            string
		Address         string
		Datacenter      string
		TaggedAddresses map[string]string
		Meta            map[string]string
		CreateIndex     uint64
		ModifyIndex     uint64
	}
	consulWeights struct{ Passing, Warning int }
	consulService struct {
		ID                string
		Service           string
		Tags              []string
		Meta              map[string]string
		Port              int
		Address           string
		Weights           consulWeights
		EnableTagOverride bool
		Datacenter        string
		CreateIndex       uint64
		ModifyIndex       uint64
	}
	consulCheckDefinition struct {
		HTTP                           string `json:",omitempty"`
		TCP                            string `json:",omitempty"`
		Interval                       string
		Timeout                        string
		DeregisterCriticalServiceAfter string
	}
	consulCheck struct {
		Node        string
		CheckID     string
		Name        string
		Status      string
		Notes       string
		Output      string
		ServiceID   string
		ServiceName string
		ServiceTags []string
		Type        string
		Definition  consulCheckDefinition
		CreateIndex uint64
		ModifyIndex uint64
	}
	consulServiceEntry struct {
		Node    consulNode
		Service consulService
		Checks  []consulCheck
	}
	consulCatalogService struct {
		ID                       string
		Node                     string
		Address                  string
		Datacenter               string
		TaggedAddresses          map[string]string
		NodeMeta                 map[string]string
		ServiceID                string
		ServiceName              string
		ServiceAddress           string
		ServiceTags              []string
		ServiceMeta              map[string]string
		ServicePort              int
		ServiceWeights           consulWeights
		ServiceEnableTagOverride bool
		CreateIndex              uint64
		ModifyIndex              uint64
	}
)

func nonNilTags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

func nonNilMeta(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// consulNodeOf is the node an instance reads as: named after its address,
// with its zone as node meta.
func consulNodeOf(in *region.Instance, dc string) consulNode {
	n := consulNode{Node: in.Address, Address: in.Address, Datacenter: dc,
		TaggedAddresses: map[string]string{"lan": in.Address, "wan": in.Address}, Meta: map[string]string{},
		CreateIndex: in.ModifyIndex, ModifyIndex: in.ModifyIndex}
	if in.Zone != "" {
		n.Meta["meridian-zone"] = in.Zone
	}
	return n
}

func consulServiceOfInstance(in *region.Instance, dc string) consulService {
	return consulService{ID: in.ID, Service: in.Service, Tags: nonNilTags(in.Tags), Meta: nonNilMeta(in.Meta),
		Port: in.Port, Address: in.Address, Weights: consulWeights{Passing: in.Weight, Warning: in.Weight},
		Datacenter: dc, CreateIndex: in.ModifyIndex, ModifyIndex: in.ModifyIndex}
}

func consulCheckOf(in *region.Instance) consulCheck {
	c := consulCheck{Node: in.Address, CheckID: "service:" + in.ID, Name: "Service '" + in.Service + "' check",
		Status: string(in.Status), Output: in.Output, ServiceID: in.ID, ServiceName: in.Service,
		ServiceTags: nonNilTags(in.Tags), CreateIndex: in.ModifyIndex, ModifyIndex: in.ModifyIndex,
		Definition: consulCheckDefinition{Interval: "0s", Timeout: "0s", DeregisterCriticalServiceAfter: "0s"}}
	if in.Check != nil {
		c.Type = in.Check.Kind()
		c.Definition = consulCheckDefinition{HTTP: in.Check.HTTP, TCP: in.Check.TCP,
			Interval: in.Check.Interval.Std().String(), Timeout: in.Check.Timeout.Std().String(),
			DeregisterCriticalServiceAfter: in.Check.DeregisterCriticalAfter.Std().String()}
	}
	return c
}

func (s *Server) consulHealthService(w http.ResponseWriter, r *http.Request) {
	ins, rd, ok := s.consulInstances(w, r)
	if !ok {
		return
	}
	out := make([]consulServiceEntry, len(ins))
	for i := range ins {
		in := &ins[i]
		out[i] = consulServiceEntry{Node: consulNodeOf(in, rd.region), Service: consulServiceOfInstance(in, rd.region),
			Checks: []consulCheck{consulCheckOf(in)}}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) consulCatalogService(w http.ResponseWriter, r *http.Request) {
	ins, rd, ok := s.consulInstances(w, r)
	if !ok {
		return
	}
	out := make([]consulCatalogService, len(ins))
	for i := range ins {
		in := &ins[i]
		n := consulNodeOf(in, rd.region)
		out[i] = consulCatalogService{ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: rd.region,
			TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
			ServiceID: in.ID, ServiceName: in.Service, ServiceAddress: in.Address, ServiceTags: nonNilTags(in.Tags),
			ServiceMeta: nonNilMeta(in.Meta), ServicePort: in.Port, ServiceWeights: consulWeights{Passing: in.Weight, Warning: in.Weight},
			CreateIndex: in.ModifyIndex, ModifyIndex: in.ModifyIndex}
	}
	writeJSON(w, http.StatusOK, out)
}

// consulDatacenters lists the known regions, this one first and the others
// by estimated RTT (then name), as Consul sorts its datacenters.
func (s *Server) consulDatacenters(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	views, _ := s.views("", false)
	rest := views[1:]
	slices.SortStableFunc(rest, func(a, b failover.RegionView) int {
		switch {
		case a.HasRTT != b.HasRTT:
			if a.HasRTT {
				return -1
			}
			return 1
		case a.HasRTT && a.RTT != b.RTT:
			return cmp.Compare(a.RTT, b.RTT)
		}
		return strings.Compare(a.Name, b.Name)
	})
	out := make([]string, 0, len(views))
	for _, v := range views {
		out = append(out, v.Name)
	}
	writeJSON(w, http.StatusOK, out)
}

// localAddr is the address the request came in on (this gateway's).
func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

// consulAgentSelf answers what clients probe: Config.Datacenter (Prometheus
// reads it), NodeName, Version; nothing secret.
func (s *Server) consulAgentSelf(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	node := s.cfg.Node
	if node == "" {
		node = s.cfg.Region
	}
	addr := localAddr(r)
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	primary := s.cfg.Region
	if s.cfg.ACL != nil {
		primary = s.cfg.ACL.Primary()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Config": map[string]any{
			"Datacenter": s.cfg.Region, "PrimaryDatacenter": primary, "NodeName": node, "NodeID": "",
			"Server": true, "Version": consulVersion, "Revision": "meridian", "Meridian": true,
		},
		"Member": map[string]any{"Name": node, "Addr": host, "Port": port, "Status": 1,
			"Tags": map[string]string{"dc": s.cfg.Region, "role": "meridian"}},
		"Meta":  map[string]string{},
		"Stats": map[string]any{},
		"Coord": nil,
	})
}

// consulStatusLeader answers this gateway's address while its store
// answers (the region has a writer), "" otherwise, as Consul without a
// leader.
func (s *Server) consulStatusLeader(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	leader := localAddr(r)
	if s.cfg.Cache.StoreErr() != nil || !s.cfg.Cache.Loaded() {
		leader = ""
	}
	writeJSON(w, http.StatusOK, leader)
}

func (s *Server) consulStatusPeers(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	peers := []string{}
	if a := localAddr(r); a != "" {
		peers = append(peers, a)
	}
	writeJSON(w, http.StatusOK, peers)
}

// consulTagsCache keeps /v1/catalog/services' answer (service -> its
// instances' tags) per region and catalog version (a version names one
// catalog state), so the blocking queries of many watchers (Prometheus) do
// not each walk every instance. One entry per region.
type consulTagsCache struct {
	mu sync.Mutex
	m  map[string]consulTagsEntry
}

type consulTagsEntry struct {
	version uint64
	n       int                 // instances: with the version, tells a catalog that restarted from an emptied store
	tags    map[string][]string // shared: read-only
}

// get returns the service tags of region name's catalog c; the caller
// holds c's read lock.
func (tc *consulTagsCache) get(name string, c *region.Catalog) map[string][]string {
	tc.mu.Lock()
	e, ok := tc.m[name]
	tc.mu.Unlock()
	if ok && e.version == c.Version() && e.n == c.Len() {
		return e.tags
	}
	out := map[string][]string{}
	for _, svc := range c.ServiceNames() {
		var tags []string
		for _, in := range c.Instances(svc, region.Filter{}) {
			tags = append(tags, in.Tags...)
		}
		slices.Sort(tags)
		out[svc] = append([]string{}, slices.Compact(tags)...)
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.m == nil || len(tc.m) >= 256 {
		tc.m = map[string]consulTagsEntry{} // more regions than that: start over
	}
	tc.m[name] = consulTagsEntry{version: c.Version(), n: c.Len(), tags: out}
	return out
}

// consulAgentService serves GET /v1/agent/service/{id}: the local
// instance with that ID as Consul's AgentService.
func (s *Server) consulAgentService(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	k, ok := s.consulLocalID(w, r, r.PathValue("id"), "service ID")
	if !ok {
		return
	}
	var in region.Instance
	var version uint64
	s.cfg.Cache.Read(func(c *region.Catalog) {
		version = c.Version()
		in, ok = c.Get(k)
	})
	if !ok {
		writeError(w, http.StatusNotFound, "id", "Unknown service ID "+strconv.Quote(k.ID))
		return
	}
	f := s.cfg.Cache.Freshness()
	s.consulMeta(w, consulRead{region: s.cfg.Region, version: version, stale: f.Stale, age: f.Age})
	writeJSON(w, http.StatusOK, consulServiceOfInstance(&in, s.cfg.Region))
}

// consulHealthChecks serves GET /v1/health/checks/{service}: the checks of
// the service's instances (one each), with ?dc=, ?passing, blocking.
func (s *Server) consulHealthChecks(w http.ResponseWriter, r *http.Request) {
	ins, _, ok := s.consulInstances(w, r)
	if !ok {
		return
	}
	out := make([]consulCheck, len(ins))
	for i := range ins {
		out[i] = consulCheckOf(&ins[i])
	}
	writeJSON(w, http.StatusOK, out)
}
