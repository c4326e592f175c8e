package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/meridian-sd/meridian/client"
)

type tracetestSpan = tracetest.SpanStub

// syncBuffer is a log sink tests grep (the agent logs from many
// goroutines).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// callTok is call with a token in X-Meridian-Token ("" sends none).
func callTok(t *testing.T, method, url, body, token string) response {
	t.Helper()
	if token == "" {
		return call(t, method, url, body)
	}
	return callWithHeader(t, method, url, body, TokenHeader, token)
}

func (r response) wantError(t *testing.T, code int, contains string) {
	t.Helper()
	r.want(t, code)
	msg, _ := r.body["error"].(string)
	if !strings.Contains(msg, contains) {
		t.Fatalf("HTTP %d error %q does not contain %q", code, msg, contains)
	}
}

type created struct{ id, secret string }

func createToken(t *testing.T, base, mgmt, body string) created {
	t.Helper()
	r := callTok(t, "PUT", base+"/v1/acl/tokens", body, mgmt).want(t, 200)
	id, _ := r.body["id"].(string)
	secret, _ := r.body["secret"].(string)
	if len(id) != 36 || len(secret) != 36 || id == secret {
		t.Fatalf("create answered id %q secret %q; want two different UUIDs: %s", id, secret, r.raw)
	}
	if ci, _ := r.body["create_index"].(float64); ci < 1 {
		t.Fatalf("create_index %v: %s", r.body["create_index"], r.raw)
	}
	return created{id, secret}
}

const rootSecret = "root-6f1c0b0e-2f5e-4f7a-9d0b-5c3e1a2b4d6f"

func TestACLDenyPolicyOverHTTP(t *testing.T) {
	logs := &syncBuffer{}
	a := startAgent(t, AgentConfig{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}})
	u := a.URL()

	// Anonymous and unknown tokens: 401, for reads and writes.
	callTok(t, "PUT", u+"/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80}`, "").wantError(t, 401, "ACL token required")
	callTok(t, "GET", u+"/v1/services/web", "", "").wantError(t, 401, "ACL token required")
	callTok(t, "GET", u+"/v1/services/web", "", "not-a-token-at-all").wantError(t, 401, "not found")
	// Health stays open.
	callTok(t, "GET", u+"/v1/health", "", "").want(t, 200)

	web := createToken(t, u, rootSecret, `{"description":"web deployer","rules":[{"service_prefix":"web","access":"write"}]}`)
	reader := createToken(t, u, rootSecret, `{"description":"web reader","rules":[{"service":"web","access":"read"}]}`)
	op := createToken(t, u, rootSecret, `{"description":"ops","rules":[{"operator":"read"}]}`)
	secrets := []string{rootSecret, web.secret, reader.secret, op.secret}

	// service_prefix:web:write registers web-1, not api-1.
	r := callTok(t, "PUT", u+"/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80,"check":{"ttl":"30s"}}`, web.secret).want(t, 200)
	if r.body["registered_by"] != web.id {
		t.Fatalf("registered_by = %v, want the accessor id %s", r.body["registered_by"], web.id)
	}
	callTok(t, "PUT", u+"/v1/services/api/instances/api-1", `{"address":"10.0.0.2","port":80}`, web.secret).wantError(t, 403, "permission denied: needs service:api:write")
	callTok(t, "PUT", u+"/v1/services/web/instances/web-2", `{"address":"10.0.0.1","port":80,"registered_by":"someone"}`, web.secret).want(t, 400)
	callTok(t, "PUT", u+"/v1/services/api/instances/api-1", `{"address":"10.0.0.2","port":80}`, rootSecret).want(t, 200)

	// A read-only token looks up but cannot heartbeat, register or deregister.
	if ids := instanceIDs(callTok(t, "GET", u+"/v1/services/web", "", reader.secret).want(t, 200)); len(ids) != 1 || ids[0] != "web-1" {
		t.Fatalf("reader sees %v", ids)
	}
	callTok(t, "GET", u+"/v1/lookup/web", "", reader.secret).want(t, 200)
	callTok(t, "GET", u+"/v1/services/web/instances/web-1", "", reader.secret).want(t, 200)
	callTok(t, "PUT", u+"/v1/services/web/instances/web-1/heartbeat", `{"status":"passing"}`, reader.secret).wantError(t, 403, "needs service:web:write")
	callTok(t, "DELETE", u+"/v1/services/web/instances/web-1", "", reader.secret).wantError(t, 403, "needs service:web:write")
	callTok(t, "GET", u+"/v1/services/api", "", reader.secret).wantError(t, 403, "needs service:api:read")
	callTok(t, "GET", u+"/v1/lookup/api", "", reader.secret).wantError(t, 403, "needs service:api:read")
	callTok(t, "GET", u+"/v1/pick/api", "", reader.secret).wantError(t, 403, "needs service:api:read")
	callTok(t, "GET", u+"/v1/proxy/api/x", "", reader.secret).wantError(t, 403, "needs service:api:read")
	callTok(t, "GET", u+"/v1/services/api?region=*", "", reader.secret).wantError(t, 403, "needs service:api:read")
	callTok(t, "PUT", u+"/v1/services/web/instances/web-1/heartbeat", `{"status":"passing"}`, web.secret).want(t, 200)

	// Read everything but api: the fast read routes (fastroutes.go) check
	// the service the path names, not an empty one that only the
	// catch-all prefix would match.
	allButAPI := createToken(t, u, rootSecret, `{"description":"all but api","rules":[{"service_prefix":"","access":"read"},{"service":"api","access":"deny"}]}`)
	for _, path := range []string{"/v1/services/api", "/v1/lookup/api", "/v1/pick/api", "/v1/services/api?passing=true"} {
		callTok(t, "GET", u+path, "", allButAPI.secret).wantError(t, 403, "needs service:api:read")
	}
	callTok(t, "GET", u+"/v1/lookup/web", "", allButAPI.secret).want(t, 200)

	// GET /v1/services lists only what the token may read.
	names := func(tok string) []string {
		var out []string
		list, _ := callTok(t, "GET", u+"/v1/services", "", tok).want(t, 200).body["services"].([]any)
		for _, s := range list {
			out = append(out, s.(map[string]any)["name"].(string))
		}
		return out
	}
	if got := strings.Join(names(reader.secret), ","); got != "web" {
		t.Fatalf("reader lists %q, want web", got)
	}
	if got := strings.Join(names(rootSecret), ","); got != "api,web" {
		t.Fatalf("root lists %q, want api,web", got)
	}
	if got := names(op.secret); len(got) != 0 {
		t.Fatalf("operator token lists %v, want nothing", got)
	}

	// Operator routes.
	callTok(t, "GET", u+"/v1/regions", "", reader.secret).wantError(t, 403, "needs operator:read")
	callTok(t, "GET", u+"/v1/regions", "", op.secret).want(t, 200)
	callTok(t, "DELETE", u+"/v1/regions/eu-west", "", op.secret).wantError(t, 403, "needs operator:write")
	callTok(t, "DELETE", u+"/v1/regions/eu-west", "", "").wantError(t, 401, "required")
	callTok(t, "GET", u+"/v1/federation/catalog", "", reader.secret).wantError(t, 403, "needs operator:read")
	callTok(t, "GET", u+ACLReplicationPath, "", reader.secret).wantError(t, 403, "needs operator:read")
	snap := callTok(t, "GET", u+ACLReplicationPath, "", op.secret).want(t, 200)
	if !strings.Contains(snap.raw, "secret_hash") {
		t.Fatalf("replication snapshot without hashes: %s", snap.raw)
	}

	// Token API: acl:write only; no secret shown after creation.
	callTok(t, "GET", u+"/v1/acl/tokens", "", web.secret).wantError(t, 403, "needs acl:write")
	callTok(t, "PUT", u+"/v1/acl/tokens", `{"rules":[{"acl":"write"}]}`, op.secret).wantError(t, 403, "needs acl:write")
	list := callTok(t, "GET", u+"/v1/acl/tokens", "", rootSecret).want(t, 200)
	if strings.Contains(list.raw, "secret") {
		t.Fatalf("token list shows secrets or hashes: %s", list.raw)
	}
	for _, c := range []created{web, reader, op} {
		if !strings.Contains(list.raw, c.id) {
			t.Fatalf("token list lacks %s: %s", c.id, list.raw)
		}
	}
	one := callTok(t, "GET", u+"/v1/acl/tokens/"+web.id, "", rootSecret).want(t, 200)
	if one.body["description"] != "web deployer" || strings.Contains(one.raw, "secret") {
		t.Fatalf("read token: %s", one.raw)
	}
	self := callTok(t, "GET", u+"/v1/acl/token/self", "", reader.secret).want(t, 200)
	if self.body["id"] != reader.id {
		t.Fatalf("self: %s", self.raw)
	}
	callTok(t, "GET", u+"/v1/acl/token/self", "", "").want(t, 401)
	callTok(t, "PUT", u+"/v1/acl/tokens", `{"rules":[{"service":"web","access":"root"}]}`, rootSecret).wantError(t, 400, "rules[0].access")
	callTok(t, "PUT", u+"/v1/acl/tokens", `{"rules":[],"secret":"chosen"}`, rootSecret).wantError(t, 400, "secret")
	repl := callTok(t, "GET", u+"/v1/acl/replication", "", "").want(t, 200)
	if repl.body["primary"] != "us-east" || repl.body["enabled"] != false || repl.body["stale"] != false {
		t.Fatalf("replication status: %s", repl.raw)
	}

	// Authorization: Bearer works too.
	req, _ := http.NewRequest("GET", u+"/v1/services/web", nil)
	req.Header.Set("Authorization", "Bearer "+reader.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("Bearer token: HTTP %d", resp.StatusCode)
	}

	// Deleting a token revokes it at once.
	callTok(t, "DELETE", u+"/v1/acl/tokens/"+web.id, "", rootSecret).want(t, 200)
	callTok(t, "DELETE", u+"/v1/acl/tokens/"+web.id, "", rootSecret).want(t, 404)
	callTok(t, "PUT", u+"/v1/services/web/instances/web-1/heartbeat", `{"status":"passing"}`, web.secret).wantError(t, 401, "not found")

	// No secret in the log, ever; the accessor ids are there.
	out := logs.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("a secret reached the log")
		}
	}
	if !strings.Contains(out, web.id) || !strings.Contains(out, "ACLs are on") {
		t.Fatalf("the log lacks the accessor id or the ACL startup line:\n%s", out)
	}
}

func TestACLAllowPolicy(t *testing.T) {
	logs := &syncBuffer{}
	a := startAgent(t, AgentConfig{Logger: slog.New(slog.NewTextHandler(logs, nil)), ACL: ACLConfig{InitialToken: rootSecret}})
	u := a.URL()
	// Anonymous requests do everything, as before ACLs.
	r := callTok(t, "PUT", u+"/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80}`, "").want(t, 200)
	if _, ok := r.body["registered_by"]; ok {
		t.Fatalf("registered_by set without a token: %s", r.raw)
	}
	callTok(t, "DELETE", u+"/v1/regions/eu-west", "", "").want(t, 404) // federation off: past the ACL check
	// A token's explicit deny still holds; what its rules do not cover
	// follows the default policy.
	d := createToken(t, u, "", `{"rules":[{"service":"web","access":"deny"}]}`)
	callTok(t, "GET", u+"/v1/services/web", "", d.secret).wantError(t, 403, "needs service:web:read")
	callTok(t, "GET", u+"/v1/services/api", "", d.secret).want(t, 200)
	callTok(t, "GET", u+"/v1/services/web", "", "unknown-token-value").want(t, 401)
	if !strings.Contains(logs.String(), "ACLs are off") {
		t.Fatal("no startup line saying ACLs are off")
	}
	if strings.Contains(logs.String(), d.secret) || strings.Contains(logs.String(), rootSecret) {
		t.Fatal("a secret reached the log")
	}
}

// TestACLGoClientToken: the Go client sends its Token to gateways (and
// registers, heartbeats and discovers under deny) but never to endpoints.
func TestACLGoClientToken(t *testing.T) {
	a := startAgent(t, AgentConfig{ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}})
	tok := createToken(t, a.URL(), rootSecret, `{"rules":[{"service":"web","access":"write"}]}`)
	leaked := make(chan string, 16)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(TokenHeader) + r.Header.Get("Authorization"); v != "" {
			leaked <- v
		}
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	host, portStr, _ := net.SplitHostPort(backend.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	ctx := context.Background()

	anon, err := client.New(client.Config{Gateways: []string{a.URL()}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Register(ctx, client.Registration{Service: "web", ID: "web-0", Address: host, Port: port}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("register without a token: err %v, want a 401", err)
	}

	c, err := client.New(client.Config{Gateways: []string{a.URL()}, Logger: quietLogger(), Token: tok.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Register(ctx, client.Registration{Service: "web", ID: "web-1", Address: host, Port: port, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodGet, "/x", nil)
		resp, err := c.Do(ctx, "web", req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat or two
	in := callTok(t, "GET", a.URL()+"/v1/services/web/instances/web-1", "", tok.secret).want(t, 200)
	if in.body["status"] != "passing" || in.body["registered_by"] != tok.id {
		t.Fatalf("instance after heartbeats: %s", in.raw)
	}
	select {
	case v := <-leaked:
		t.Fatalf("the client sent a token to an endpoint (%d bytes)", len(v))
	default:
	}
}

// TestACLProxyStripsToken: /v1/proxy needs service read and never hands
// the Meridian secret to the service; a Bearer meant for the service
// passes.
func TestACLProxyStripsToken(t *testing.T) {
	seen := make(chan http.Header, 8)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer backend.Close()
	host, portStr, _ := net.SplitHostPort(backend.Listener.Addr().String())
	for _, policy := range []string{"deny", "allow"} {
		a := startAgent(t, AgentConfig{ACL: ACLConfig{DefaultPolicy: policy, InitialToken: rootSecret}})
		callTok(t, "PUT", a.URL()+"/v1/services/web/instances/web-1", `{"address":"`+host+`","port":`+portStr+`}`, rootSecret).want(t, 200)
		rd := createToken(t, a.URL(), rootSecret, `{"rules":[{"service":"web","access":"read"}]}`)
		send := func(hdr map[string]string) (int, http.Header) {
			req, _ := http.NewRequest("GET", a.URL()+"/v1/proxy/web/hello", nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return resp.StatusCode, nil
			}
			return 200, <-seen
		}
		code, h := send(map[string]string{TokenHeader: rd.secret, "Authorization": "Bearer for-the-backend"})
		if code != 200 || h.Get(TokenHeader) != "" || h.Get("Authorization") != "Bearer for-the-backend" {
			t.Fatalf("%s: X-Meridian-Token + Bearer: HTTP %d, backend saw %v", policy, code, h)
		}
		code, h = send(map[string]string{"Authorization": "Bearer " + rd.secret})
		if code != 200 || h.Get("Authorization") != "" {
			t.Fatalf("%s: Bearer token: HTTP %d, backend saw %v", policy, code, h)
		}
		code, h = send(map[string]string{"Authorization": "Bearer for-the-backend"})
		switch {
		case policy == "deny" && code != 401:
			t.Fatalf("deny: an unknown Bearer got HTTP %d, want 401", code)
		case policy == "allow" && (code != 200 || h.Get("Authorization") != "Bearer for-the-backend"):
			t.Fatalf("allow: an unknown Bearer (meant for the service): HTTP %d, backend saw %v", code, h)
		}
	}
}

// TestACLSecretsNotInTraces: spans of accepted, refused and token-API
// requests carry no secret (attributes, events, status).
func TestACLSecretsNotInTraces(t *testing.T) {
	tr := newTracing(t)
	a := startAgent(t, AgentConfig{Telemetry: tr.telemetry(), ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}})
	u := a.URL()
	tok := createToken(t, u, rootSecret, `{"rules":[{"service":"web","access":"write"}]}`)
	callTok(t, "PUT", u+"/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80}`, tok.secret).want(t, 200)
	callTok(t, "PUT", u+"/v1/services/api/instances/api-1", `{"address":"10.0.0.1","port":80}`, tok.secret).want(t, 403)
	callTok(t, "GET", u+"/v1/services/web", "", "wrong-"+tok.secret).want(t, 401)
	callTok(t, "GET", u+"/v1/acl/token/self", "", tok.secret).want(t, 200)
	tr.waitSpan(t, "the last request's span", func(s tracetestSpan) bool { return strings.Contains(s.Name, "/v1/acl/token/self") })
	spans := tr.exp.GetSpans()
	if len(spans) < 5 {
		t.Fatalf("only %d spans recorded", len(spans))
	}
	for _, s := range spans {
		dump := fmt.Sprintf("%s %v %v %v %v", s.Name, s.Attributes, s.Events, s.Status, s.Links)
		for _, secret := range []string{rootSecret, tok.secret} {
			if strings.Contains(dump, secret) {
				t.Fatalf("span %q carries a secret", s.Name)
			}
		}
	}
}
