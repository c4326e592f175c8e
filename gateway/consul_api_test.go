package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// consulClient is HashiCorp's own Consul client aimed at a gateway.
func consulClient(t *testing.T, a *Agent, token string) *consul.Client {
	t.Helper()
	c, err := consul.NewClient(&consul.Config{Address: a.Addr(), Scheme: "http", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantStatus fails unless err is the Consul client's error for code.
func wantStatus(t *testing.T, err error, code int, what string) {
	t.Helper()
	var se consul.StatusError
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("%s: got error %v, want HTTP %d", what, err, code)
	}
}

// putEmpty PUTs body and wants Consul's answer to a write: 200, no body.
func putEmpty(t *testing.T, url, body string) {
	t.Helper()
	req, err := http.NewRequest("PUT", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("PUT %s %s: got %d %q, want 200 and no body", url, body, resp.StatusCode, b)
	}
}

func TestConsulClientEndToEnd(t *testing.T) {
	use := startFedNode(t, "us-east", "use-1", "")
	eu := startFedNode(t, "eu-west", "eu-1", "", use.serfAddr())
	c := consulClient(t, use.Agent, "")
	ceu := consulClient(t, eu.Agent, "")

	// Registration with a TTL check: critical until its first pass.
	reg := &consul.AgentServiceRegistration{ID: "web-1", Name: "web", Address: "127.0.0.1", Port: 9001,
		Tags: []string{"v1", "http"}, Meta: map[string]string{"version": "1.2"}, Weights: &consul.AgentWeights{Passing: 7, Warning: 1},
		Check: &consul.AgentServiceCheck{TTL: "30s", DeregisterCriticalServiceAfter: "10m"}}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	entries, meta, err := c.Health().Service("web", "v1", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("passing web before any TTL pass: got %d entries, want 0", len(entries))
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Fatalf("query meta: got index %d known leader %v, want index > 0 and a known leader", meta.LastIndex, meta.KnownLeader)
	}
	if err := c.Agent().PassTTL("service:web-1", "all good"); err != nil {
		t.Fatal(err)
	}
	entries, meta, err = c.Health().Service("web", "v1", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("passing web after a TTL pass: got %d entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Service.ID != "web-1" || e.Service.Service != "web" || e.Service.Port != 9001 || e.Service.Address != "127.0.0.1" ||
		e.Service.Weights.Passing != 7 || e.Service.Meta["version"] != "1.2" || !slices.Equal(e.Service.Tags, []string{"v1", "http"}) {
		t.Fatalf("service: got %+v", e.Service)
	}
	if e.Node.Datacenter != "us-east" || e.Node.Address != "127.0.0.1" {
		t.Fatalf("node: got %+v", e.Node)
	}
	if len(e.Checks) != 1 || e.Checks[0].CheckID != "service:web-1" || e.Checks[0].Status != consul.HealthPassing ||
		e.Checks[0].Output != "all good" || e.Checks[0].Type != "ttl" || e.Checks.AggregatedStatus() != consul.HealthPassing {
		t.Fatalf("checks: got %+v", e.Checks)
	}

	// A blocking query waits until the catalog changes, then wakes.
	idx := meta.LastIndex
	type result struct {
		entries []*consul.ServiceEntry
		meta    *consul.QueryMeta
		err     error
	}
	done := make(chan result, 1)
	go func() {
		es, m, err := c.Health().Service("web", "v1", true, &consul.QueryOptions{WaitIndex: idx, WaitTime: 20 * time.Second})
		done <- result{es, m, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("blocking query returned before any change: %+v %v", r.meta, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-2", Name: "web", Address: "127.0.0.1", Port: 9002,
		Check: &consul.AgentServiceCheck{TTL: "30s"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.meta.LastIndex <= idx {
			t.Fatalf("woken blocking query: index %d, want > %d", r.meta.LastIndex, idx)
		}
		t.Logf("blocking query woke %s after the registration", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query did not wake on a registration")
	}
	if err := c.Agent().UpdateTTL("service:web-2", "up", consul.HealthPassing); err != nil {
		t.Fatal(err)
	}
	if entries, _, err = c.Health().Service("web", "", true, nil); err != nil || len(entries) != 2 {
		t.Fatalf("passing web: got %d entries (err %v), want 2", len(entries), err)
	}
	// warn and fail take the instance out of ?passing; the catalog lists it.
	if err := c.Agent().WarnTTL("service:web-2", "slow"); err != nil {
		t.Fatal(err)
	}
	if entries, _, _ = c.Health().Service("web", "", true, nil); len(entries) != 1 {
		t.Fatalf("passing web after warn: got %d entries, want 1", len(entries))
	}
	if err := c.Agent().FailTTL("service:web-2", "down"); err != nil {
		t.Fatal(err)
	}
	entries, _, _ = c.Health().Service("web", "", false, nil)
	if len(entries) != 2 || entries[1].Checks[0].Status != consul.HealthCritical || entries[1].Checks[0].Output != "down" {
		t.Fatalf("all web after fail: got %d entries %+v", len(entries), entries)
	}
	svc, _, err := c.Agent().Service("web-1", nil)
	if err != nil || svc.ID != "web-1" || svc.Service != "web" || svc.Port != 9001 {
		t.Fatalf("agent service web-1: got %+v (err %v)", svc, err)
	}
	checks, _, err := c.Health().Checks("web", nil)
	if err != nil || len(checks) != 2 || checks.AggregatedStatus() != consul.HealthCritical {
		t.Fatalf("health checks of web: got %+v (err %v), want 2 checks, one critical", checks, err)
	}
	cs, _, err := c.Catalog().Service("web", "v1", nil)
	if err != nil || len(cs) != 1 || cs[0].ServiceID != "web-1" || cs[0].ServicePort != 9001 || cs[0].Datacenter != "us-east" {
		t.Fatalf("catalog service web tag v1: got %+v (err %v)", cs, err)
	}
	services, _, err := c.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(services["web"], []string{"http", "v1"}) {
		t.Fatalf("catalog services: got %v, want web: [http v1]", services)
	}

	// Deregistration; an unknown ID is 404; a TTL pass of it too.
	if err := c.Agent().ServiceDeregister("web-2"); err != nil {
		t.Fatal(err)
	}
	if entries, _, _ = c.Health().Service("web", "", false, nil); len(entries) != 1 {
		t.Fatalf("web after deregistering web-2: got %d entries, want 1", len(entries))
	}
	wantStatus(t, c.Agent().ServiceDeregister("web-2"), 404, "deregistering an unknown ID")
	wantStatus(t, c.Agent().PassTTL("service:nope", ""), 404, "passing an unknown check")
	wantStatus(t, c.Agent().PassTTL("web-1", ""), 404, "a check ID without service:")

	// The other region: register there, read it here with ?dc=.
	if err := ceu.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "api-1", Name: "api", Address: "127.0.0.2", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	var remote []*consul.ServiceEntry
	waitFor(t, 20*time.Second, "eu-west's api to replicate", func() bool {
		remote, meta, err = c.Health().Service("api", "", true, &consul.QueryOptions{Datacenter: "eu-west"})
		return err == nil && len(remote) == 1
	})
	if remote[0].Node.Datacenter != "eu-west" || remote[0].Service.Port != 8080 || remote[0].Service.Datacenter != "eu-west" {
		t.Fatalf("api from eu-west: got %+v %+v", remote[0].Node, remote[0].Service)
	}
	t.Logf("eu-west replica read from us-east: index %d, last contact %s, known leader %v", meta.LastIndex, meta.LastContact, meta.KnownLeader)
	// A blocking query on the other region's replica wakes when the
	// replica moves.
	rdone := make(chan result, 1)
	go func() {
		es, m, err := c.Health().Service("api", "", true, &consul.QueryOptions{Datacenter: "eu-west", WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		rdone <- result{es, m, err}
	}()
	select {
	case r := <-rdone:
		t.Fatalf("blocking query on eu-west returned before any change: %+v %v", r.meta, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := ceu.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "api-2", Name: "api", Address: "127.0.0.2", Port: 8081}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-rdone:
		if r.err != nil || len(r.entries) != 2 || r.meta.LastIndex <= meta.LastIndex {
			t.Fatalf("woken eu-west query: %d entries, index %d (was %d), err %v; want 2 entries and a newer index",
				len(r.entries), r.meta.LastIndex, meta.LastIndex, r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("blocking query on eu-west did not wake on a registration there")
	}
	if local, _, _ := c.Health().Service("api", "", false, nil); len(local) != 0 {
		t.Fatalf("api in us-east: got %d entries, want 0 (it is registered in eu-west)", len(local))
	}
	rs, _, err := c.Catalog().Services(&consul.QueryOptions{Datacenter: "eu-west"})
	if _, ok := rs["api"]; err != nil || !ok {
		t.Fatalf("eu-west catalog services: got %v (err %v)", rs, err)
	}
	_, _, err = c.Health().Service("api", "", false, &consul.QueryOptions{Datacenter: "nowhere"})
	wantStatus(t, err, 500, "an unknown datacenter")
	dcs, err := c.Catalog().Datacenters()
	if err != nil || len(dcs) != 2 || dcs[0] != "us-east" || dcs[1] != "eu-west" {
		t.Fatalf("datacenters: got %v (err %v), want [us-east eu-west]", dcs, err)
	}

	// What clients probe.
	self, err := c.Agent().Self()
	if err != nil || self["Config"]["Datacenter"] != "us-east" {
		t.Fatalf("agent self: got %v (err %v)", self["Config"], err)
	}
	if leader, err := c.Status().Leader(); err != nil || leader != use.Addr() {
		t.Fatalf("status leader: got %q (err %v), want %q", leader, err, use.Addr())
	}
	// Unsupported parts answer 501 with a JSON error.
	_, _, err = c.KV().Get("x", nil)
	wantStatus(t, err, 501, "KV get")
	r := call(t, "GET", use.URL()+"/v1/session/list", "").want(t, 501)
	if !strings.Contains(r.body["error"].(string), "sessions") {
		t.Fatalf("session list: got %s", r.raw)
	}
	call(t, "PUT", use.URL()+"/v1/acl/bootstrap", "").want(t, 501)
}

func TestConsulRegistrationRefused(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	url := a.URL() + "/v1/agent/service/register"
	for _, tc := range []struct {
		name, body, field string
		code              int
	}{
		{"no name", `{"Port":80}`, "Name", 400},
		{"not a DNS label", `{"Name":"Web_API","Port":80,"Address":"127.0.0.1"}`, "Name", 400},
		{"script check", `{"Name":"web","Port":80,"Check":{"Args":["/bin/true"],"Interval":"10s"}}`, "Check.ScriptArgs", 400},
		{"two checks", `{"Name":"web","Port":80,"Checks":[{"TTL":"10s"},{"TTL":"20s"}]}`, "Checks", 400},
		{"bad duration", `{"Name":"web","Port":80,"Check":{"TTL":"ten"}}`, "Check.TTL", 400},
		{"connect", `{"Name":"web","Port":80,"Connect":{"Native":true}}`, "Connect", 400},
		{"custom check id", `{"Name":"web","Port":80,"Check":{"CheckID":"mine","TTL":"10s"}}`, "Check.CheckID", 400},
		{"weight", `{"Name":"web","Port":80,"Weights":{"Passing":0,"Warning":1}}`, "Weights.Passing", 400},
		{"bad port", `{"Name":"web","Port":70000,"Address":"127.0.0.1"}`, "port", 400},
		{"metadata address", `{"Name":"web","Port":80,"Address":"169.254.169.254"}`, "address", 403},
		{"duplicate key", `{"Name":"web","Name":"api","Port":80}`, "", 400},
		{"not JSON", `{"Name":`, "", 400},
	} {
		r := call(t, "PUT", url, tc.body)
		if r.code != tc.code || (tc.field != "" && r.body["field"] != tc.field) || r.body["error"] == "" {
			t.Errorf("%s: got %d %s, want %d naming field %q", tc.name, r.code, r.raw, tc.code, tc.field)
		}
	}
	// An ID belongs to one service.
	putEmpty(t, url, `{"ID":"x-1","Name":"web","Port":80,"Address":"127.0.0.1"}`)
	call(t, "PUT", url, `{"ID":"x-1","Name":"api","Port":80,"Address":"127.0.0.1"}`).want(t, 409)
	// Address defaults to the registering client's.
	putEmpty(t, url, `{"Name":"noaddr","Port":81}`)
	r := call(t, "GET", a.URL()+"/v1/services/noaddr/instances/noaddr", "").want(t, 200)
	if r.body["address"] != "127.0.0.1" {
		t.Fatalf("registration without Address: got %s, want the client's address 127.0.0.1", r.raw)
	}
	call(t, "GET", url, "").want(t, 405)
	call(t, "GET", a.URL()+"/v1/health/service/web?filter=Service.Port==80", "").want(t, 400)
	call(t, "GET", a.URL()+"/v1/health/service/web?near=node-1", "").want(t, 400)
}

func TestConsulACLTokens(t *testing.T) {
	const root = "root-secret-123"
	a := startAgent(t, AgentConfig{ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: root}})
	anon := consulClient(t, a, "")
	reg := &consul.AgentServiceRegistration{ID: "db-1", Name: "db", Address: "127.0.0.1", Port: 5432}
	wantStatus(t, anon.Agent().ServiceRegister(reg), 401, "registering without a token")
	_, _, err := anon.Health().Service("db", "", false, nil)
	wantStatus(t, err, 401, "reading without a token")
	wantStatus(t, consulClient(t, a, "wrong-token-1").Agent().ServiceRegister(reg), 401, "registering with an unknown token")

	// A token that may read web only.
	r := callWithHeader(t, "PUT", a.URL()+"/v1/acl/tokens", `{"description":"web reader","rules":[{"service":"web","access":"read"}]}`,
		TokenHeader, root).want(t, 200)
	webReader, _ := r.body["secret"].(string)
	if webReader == "" {
		t.Fatalf("token create: %s", r.raw)
	}

	c := consulClient(t, a, root) // X-Consul-Token
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Address: "127.0.0.1", Port: 80}); err != nil {
		t.Fatal(err)
	}
	if es, _, err := c.Health().Service("db", "", false, nil); err != nil || len(es) != 1 {
		t.Fatalf("db with the management token: %d entries (err %v)", len(es), err)
	}
	wr := consulClient(t, a, webReader)
	wantStatus(t, wr.Agent().ServiceDeregister("db-1"), 403, "deregistering db with a web reader")
	_, _, err = wr.Agent().Service("db-1", nil)
	wantStatus(t, err, 403, "reading db-1 with a web reader")
	if svc, _, err := wr.Agent().Service("web-1", nil); err != nil || svc.ID != "web-1" {
		t.Fatalf("reading web-1 with a web reader: %+v (err %v)", svc, err)
	}
	wantStatus(t, wr.Agent().ServiceRegister(reg), 403, "registering db with a web reader")
	_, _, err = wr.Health().Service("db", "", false, nil)
	wantStatus(t, err, 403, "reading db with a web reader")
	services, meta, err := wr.Catalog().Services(nil)
	if err != nil || len(services) != 1 || services["web"] == nil || !meta.ResultsFilteredByACLs {
		t.Fatalf("services a web reader sees: %v filtered %v (err %v), want only web", services, meta != nil && meta.ResultsFilteredByACLs, err)
	}
	// ?token= works too on Consul's routes (and only there: Meridian's
	// own routes may forward their query).
	call(t, "GET", a.URL()+"/v1/health/service/web?token="+webReader, "").want(t, 200)
	call(t, "GET", a.URL()+"/v1/health/service/db?token="+webReader, "").want(t, 403)
	call(t, "GET", a.URL()+"/v1/proxy/web/x?token="+root, "").want(t, 401)
	call(t, "GET", a.URL()+"/v1/services/web?token="+root, "").want(t, 401)
	callWithHeader(t, "GET", a.URL()+"/v1/services/web", "", consulTokenHeader, root).want(t, 401)
}

// TestConsulBlockingFromEmpty: a watcher of an empty region (version 0)
// wakes on the first registration (Consul's indexes start at 1, so
// X-Consul-Index is the version plus one).
func TestConsulBlockingFromEmpty(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	c := consulClient(t, a, "")
	services, meta, err := c.Catalog().Services(nil)
	if err != nil || len(services) != 0 || meta.LastIndex != 1 {
		t.Fatalf("empty region: services %v index %d (err %v), want none at index 1", services, meta.LastIndex, err)
	}
	done := make(chan error, 1)
	go func() {
		s, m, err := c.Catalog().Services(&consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err == nil && (len(s) != 1 || m.LastIndex != 2) {
			err = fmt.Errorf("woke with %v at index %d, want web at index 2", s, m.LastIndex)
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Address: "127.0.0.1", Port: 80}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a blocking query on an empty region did not wake on the first registration")
	}
}

// TestConsulWritesShareTheNativeLimits: Consul registrations pass the
// native path's instance cap (507), write rate (429) and write ids
// (Idempotency-Key).
func TestConsulWritesShareTheNativeLimits(t *testing.T) {
	a := startAgent(t, AgentConfig{Limits: Limits{MaxInstancesPerService: 2, WriteRate: 5, WriteBurst: 5}})
	url := a.URL() + "/v1/agent/service/register"
	put := func(body string, header ...string) int {
		t.Helper()
		req, err := http.NewRequest("PUT", url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(`{"ID":"web-1","Name":"web","Address":"127.0.0.1","Port":80}`, "Idempotency-Key", "k-1"); code != 200 {
		t.Fatalf("first registration: %d", code)
	}
	before := a.Cache.Version()
	if code := put(`{"ID":"web-1","Name":"web","Address":"127.0.0.1","Port":80}`, "Idempotency-Key", "k-1"); code != 200 || a.Cache.Version() != before {
		t.Fatalf("the same write again: %d, version %d -> %d, want 200 and no new write", code, before, a.Cache.Version())
	}
	put(`{"ID":"web-2","Name":"web","Address":"127.0.0.1","Port":80}`)
	if code := put(`{"ID":"web-3","Name":"web","Address":"127.0.0.1","Port":80}`); code != 507 {
		t.Fatalf("a third web instance past --max-instances-per-service 2: %d, want 507", code)
	}
	got429 := false
	for range 10 {
		if put(`{"ID":"web-1","Name":"web","Address":"127.0.0.1","Port":81}`) == 429 {
			got429 = true
			break
		}
	}
	if !got429 {
		t.Fatal("no 429 past --write-rate 5 with burst 5")
	}
}
