package gateway

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/internal/redistest"
	"github.com/meridian-sd/meridian/meridiantls"
)

// testPKI is a CA and certificates written to a test's temporary directory,
// as `meridian tls ca create` and `meridian tls cert create` write them.
type testPKI struct {
	t      *testing.T
	dir    string
	ca     *meridiantls.CA
	caFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := meridiantls.NewCA("", 30)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := meridiantls.WriteCA(ca, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, dir: dir, ca: ca, caFile: caFile}
}

func (p *testPKI) files(o meridiantls.CertOptions) (certFile, keyFile string) {
	p.t.Helper()
	c, err := p.ca.Sign(o)
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile, err = meridiantls.WriteCert(c, p.dir, o)
	if err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile
}

// gateway is the TLS configuration of a gateway whose certificate names
// certRegion.
func (p *testPKI) gateway(certRegion string, verifyIncoming bool) meridiantls.Config {
	cf, kf := p.files(meridiantls.CertOptions{Region: certRegion})
	return meridiantls.Config{CertFile: cf, KeyFile: kf, CAFile: p.caFile, VerifyIncoming: verifyIncoming}
}

// client is an HTTPS client trusting the CA, with a client certificate
// when withCert, and a gateway certificate of region when gatewayOf is set.
func (p *testPKI) client(withCert bool, gatewayOf string) *http.Client {
	p.t.Helper()
	var cf, kf string
	switch {
	case gatewayOf != "":
		cf, kf = p.files(meridiantls.CertOptions{Region: gatewayOf})
	case withCert:
		cf, kf = p.files(meridiantls.CertOptions{Client: true})
	}
	tc, err := meridiantls.ClientConfig(p.caFile, cf, kf)
	if err != nil {
		p.t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
}

// tcall is call with a given client; err is the transport's error.
func tcall(c *http.Client, method, url, body string) (response, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	return r, nil
}

func mustCall(t *testing.T, c *http.Client, method, url, body string) response {
	t.Helper()
	r, err := tcall(c, method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func TestTLSAPI(t *testing.T) {
	p := newTestPKI(t)
	a := startAgent(t, AgentConfig{Region: "us-east", TLS: p.gateway("us-east", false)})
	if !strings.HasPrefix(a.URL(), "https://") {
		t.Fatalf("URL %q, want https://", a.URL())
	}
	anon := p.client(false, "")
	mustCall(t, anon, "PUT", a.URL()+"/v1/services/web/instances/web-1", `{"address":"10.0.0.1","port":80}`).want(t, 200)
	r := mustCall(t, anon, "GET", a.URL()+"/v1/services/web", "").want(t, 200)
	if fmt.Sprint(instanceIDs(r)) != "[web-1]" {
		t.Fatalf("HTTPS read: %s", r.raw)
	}

	// Plain HTTP on the same address gets nothing useful.
	plain := "http://" + a.Addr()
	if r, err := tcall(http.DefaultClient, "GET", plain+"/v1/services/web", ""); err == nil && (r.code != 400 || strings.Contains(r.raw, "web-1")) {
		t.Fatalf("plain HTTP to the TLS port: HTTP %d %s", r.code, r.raw)
	}
	// A client that does not trust the CA refuses the gateway.
	if _, err := tcall(&http.Client{Timeout: 5 * time.Second}, "GET", a.URL()+"/v1/health", ""); err == nil {
		t.Fatal("a client without the CA trusted the gateway's certificate")
	}
	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}}}
	if _, err := tcall(old, "GET", a.URL()+"/v1/health", ""); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}

	// The sync endpoint answers gateways only.
	cat := a.URL() + "/v1/federation/catalog?since=0"
	r = mustCall(t, anon, "GET", cat, "").want(t, 403)
	if !strings.Contains(r.body["error"].(string), "gateway certificate") {
		t.Errorf("403 body %s", r.raw)
	}
	mustCall(t, p.client(true, ""), "GET", cat, "").want(t, 403)
	r = mustCall(t, p.client(false, "eu-west"), "GET", cat, "").want(t, 200)
	if r.body["region"] != "us-east" || !strings.Contains(r.raw, "web-1") {
		t.Errorf("a gateway's catalog fetch: %s", r.raw)
	}
	// A certificate of another CA is refused at the handshake.
	other := newTestPKI(t)
	tc, err := meridiantls.ClientConfig(p.caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ocf, okf := other.files(meridiantls.CertOptions{Region: "eu-west"})
	oc, err := tls.LoadX509KeyPair(ocf, okf)
	if err != nil {
		t.Fatal(err)
	}
	tc.Certificates = []tls.Certificate{oc}
	// (The client sends no certificate the gateway's CA did not sign, or
	// the handshake fails.)
	if r, err := tcall(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, "GET", cat, ""); err == nil && r.code != 403 {
		t.Errorf("a gateway certificate of another CA: HTTP %d %s, want 403 or a refused handshake", r.code, r.raw)
	}
	// A forwarded heartbeat is taken from this region's gateways only.
	r = mustCall(t, p.client(true, ""), "PUT", a.URL()+"/v1/services/web/instances/web-1/heartbeat", "")
	if r.code == 403 {
		t.Errorf("a plain heartbeat was refused: %s", r.raw)
	}
	req, _ := http.NewRequest("PUT", a.URL()+"/v1/services/web/instances/web-1/heartbeat", nil)
	req.Header.Set("X-Meridian-Forwarded", "us-east")
	for _, c := range []*http.Client{p.client(true, ""), p.client(false, "eu-west")} {
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("a forwarded heartbeat without a us-east gateway certificate: HTTP %d, want 403", resp.StatusCode)
		}
	}
}

func TestTLSVerifyIncoming(t *testing.T) {
	p := newTestPKI(t)
	a := startAgent(t, AgentConfig{Region: "us-east", TLS: p.gateway("us-east", true)})
	if _, err := tcall(p.client(false, ""), "GET", a.URL()+"/v1/services", ""); err == nil {
		t.Fatal("--tls-verify-incoming let a client without a certificate in")
	}
	mustCall(t, p.client(true, ""), "GET", a.URL()+"/v1/services", "").want(t, 200)
	mustCall(t, p.client(true, ""), "GET", a.URL()+"/v1/federation/catalog", "").want(t, 403)
}

func TestTLSConfigErrorsNameTheFlag(t *testing.T) {
	p := newTestPKI(t)
	g := p.gateway("us-east", false)
	for _, tc := range []struct {
		tls  meridiantls.Config
		want string
	}{
		{meridiantls.Config{CertFile: g.CertFile, CAFile: g.CAFile}, "tls-key"},
		{meridiantls.Config{CertFile: g.CertFile, KeyFile: g.KeyFile}, "tls-ca"},
		{meridiantls.Config{CertFile: g.CertFile, KeyFile: g.KeyFile, CAFile: p.dir + "/missing.pem"}, "tls-ca"},
		{meridiantls.Config{VerifyIncoming: true}, "tls-cert"},
	} {
		_, err := StartAgent(AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", TLS: tc.tls, Logger: quietLogger()})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%+v: %v, want an error naming %s", tc.tls, err, tc.want)
		}
	}
}

// logBuffer collects a gateway's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTLSFederationRogueRegion: gateways federate over mutual TLS, and a
// gateway that advertises region R in gossip but holds a certificate
// naming another region never becomes the source of R's replica.
func TestTLSFederationRogueRegion(t *testing.T) {
	skipShort(t, "several gateways federating over real Serf and TLS; meridiantls unit tests cover verification")
	p := newTestPKI(t)
	shared := redistest.FromEnv(t) // the real region's store
	real := fmt.Sprintf("sec-%06x", rand.Uint32()&0xffffff)
	logs := &logBuffer{}
	withTLS := func(certRegion string, log *slog.Logger) func(*AgentConfig) {
		return func(c *AgentConfig) {
			c.TLS = p.gateway(certRegion, false)
			c.FetchClient = nil // the agent's own mutual-TLS client
			if log != nil {
				c.Logger = log
			}
		}
	}
	obs := startFedNodeWith(t, withTLS("ap-south", slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))), "ap-south", "ap-1", "")
	// The rogue learned how to join (the gossip key, if any) and says it
	// is `real`, but its certificate names eu-west.
	rogue := startFedNodeWith(t, withTLS("eu-west", nil), real, "rogue-1", "", obs.serfAddr())
	anon := p.client(false, "")
	mustCall(t, anon, "PUT", rogue.URL()+"/v1/services/web/instances/hijack-1", `{"address":"10.66.0.1","port":80}`).want(t, 200)

	regions := func(n *fedNode) map[string]map[string]any {
		r := mustCall(t, anon, "GET", n.URL()+"/v1/regions", "").want(t, 200)
		out := map[string]map[string]any{}
		list, _ := r.body["regions"].([]any)
		for _, x := range list {
			m := x.(map[string]any)
			out[m["name"].(string)] = m
		}
		return out
	}
	var lastErr string
	waitFor(t, 15*time.Second, "the observer to try the rogue and refuse it", func() bool {
		lastErr, _ = regions(obs)[real]["last_error"].(string)
		return lastErr != ""
	})
	if !strings.Contains(lastErr, "certificate does not name "+real) {
		t.Fatalf("fetch error %q, want it to say the certificate does not name %s", lastErr, real)
	}

	// The real gateway of the region joins; its registrations reach the
	// observer over mutual TLS, the rogue's never do.
	good := startFedNodeWith(t, withTLS(real, nil), real, "real-1", shared, obs.serfAddr(), rogue.serfAddr())
	mustCall(t, anon, "PUT", good.URL()+"/v1/services/web/instances/real-1", `{"address":"10.0.0.1","port":80}`).want(t, 200)
	waitFor(t, 15*time.Second, "the real region's registration to reach the observer", func() bool {
		r := mustCall(t, anon, "GET", obs.URL()+"/v1/services/web?region="+real, "")
		return r.code == 200 && fmt.Sprint(instanceIDs(r)) == "[real-1]"
	})
	// Let several more syncs rotate through both gateways.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		r := mustCall(t, anon, "GET", obs.URL()+"/v1/services/web?region=*", "")
		if strings.Contains(r.raw, "hijack-1") {
			t.Fatalf("the rogue's instance reached the observer: %s", r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if src := regions(obs)[real]; src == nil {
		t.Fatalf("no replica of %s", real)
	}
	// The real gateway also syncs from the observer over mutual TLS.
	mustCall(t, anon, "PUT", obs.URL()+"/v1/services/api/instances/ap-api-1", `{"address":"10.2.0.1","port":80}`).want(t, 200)
	waitFor(t, 15*time.Second, "the observer's registration to reach the real region", func() bool {
		r := mustCall(t, anon, "GET", good.URL()+"/v1/services/api?region=ap-south", "")
		return r.code == 200 && fmt.Sprint(instanceIDs(r)) == "[ap-api-1]"
	})
	if n := strings.Count(logs.String(), "refusing a gateway's catalog"); n != 1 {
		t.Errorf("the refused peer was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestTLSHeartbeatForwarding: a heartbeat sent to the gateway that does
// not own the instance's check is forwarded to the owner over mutual TLS.
func TestTLSHeartbeatForwarding(t *testing.T) {
	skipShort(t, "two gateways over real Serf and mutual TLS; TestTLSAPI covers TLS on one gateway")
	p := newTestPKI(t)
	shared := redistest.FromEnv(t)
	reg := fmt.Sprintf("hbt-%06x", rand.Uint32()&0xffffff)
	withTLS := func(c *AgentConfig) { c.TLS = p.gateway(reg, false); c.FetchClient = nil }
	g1 := startFedNodeWith(t, withTLS, reg, reg+"-1", shared)
	g2 := startFedNodeWith(t, withTLS, reg, reg+"-2", shared, g1.serfAddr())
	anon := p.client(false, "")
	for i := range 10 {
		mustCall(t, anon, "PUT", fmt.Sprintf("%s/v1/services/svc/instances/i%d", g1.URL(), i), `{"address":"10.0.0.9","port":80,"check":{"ttl":"30s"}}`).want(t, 200)
	}
	waitFor(t, 10*time.Second, "both gateways to see each other", func() bool {
		return len(g1.Fed.LocalGateways()) == 2 && len(g2.Fed.LocalGateways()) == 2
	})
	for i := range 10 {
		k := regionKey("svc", fmt.Sprint("i", i))
		if g1.Health.Owns(k) == g2.Health.Owns(k) {
			t.Fatalf("i%d: owned by both gateways or by neither", i)
		}
		via := g1 // always the gateway that does not own the check
		if g1.Health.Owns(k) {
			via = g2
		}
		r := mustCall(t, anon, "PUT", fmt.Sprintf("%s/v1/services/svc/instances/i%d/heartbeat", via.URL(), i), "")
		if r.code != 200 || r.body["status"] != "passing" {
			t.Fatalf("heartbeat i%d via %s: HTTP %d %s", i, via.cfg.NodeName, r.code, r.raw)
		}
	}
}
