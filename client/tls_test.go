package client

import (
	"context"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/meridiantls"
)

// TestClientTLS: the client registers and looks up through a gateway that
// serves HTTPS and requires client certificates.
func TestClientTLS(t *testing.T) {
	ca, err := meridiantls.NewCA("", 30)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := meridiantls.WriteCA(ca, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	write := func(o meridiantls.CertOptions) (string, string) {
		c, err := ca.Sign(o)
		if err != nil {
			t.Fatal(err)
		}
		cf, kf, err := meridiantls.WriteCert(c, dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return cf, kf
	}
	gcf, gkf := write(meridiantls.CertOptions{Region: "us-east"})
	a, err := gateway.StartAgent(gateway.AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0",
		Logger: quietLogger(), CatchUp: 100 * time.Millisecond,
		TLS: meridiantls.Config{CertFile: gcf, KeyFile: gkf, CAFile: caFile, VerifyIncoming: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	waitFor(t, 5*time.Second, "the gateway's cache to load", func() bool { return a.Cache.Freshness().Loaded })

	ccf, ckf := write(meridiantls.CertOptions{Client: true})
	tc, err := meridiantls.ClientConfig(caFile, ccf, ckf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(a.URL())
	cfg.TLS = tc
	c := newClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Register(ctx, Registration{Service: "web", ID: "web-1", Address: "10.0.0.1", Port: 80, TTL: 30 * time.Second}); err != nil {
		t.Fatalf("register over HTTPS with a client certificate: %v", err)
	}
	waitFor(t, 5*time.Second, "the lookup to see web-1", func() bool {
		res, err := c.Lookup(ctx, "web")
		return err == nil && len(res.Endpoints) == 1
	})

	// Without a client certificate the gateway refuses the handshake.
	anon, err := meridiantls.ClientConfig(caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(a.URL())
	cfg2.TLS = anon
	cfg2.MaxRetries = -1
	c2 := newClient(t, cfg2)
	// TLS 1.3 reports the refusal after the handshake, so what the client
	// sees depends on timing ("certificate required", a broken pipe or reset
	// on its write, "http2: client conn could not be established"); the
	// client with a certificate above shows the gateway is up.
	if _, err := c2.Lookup(ctx, "web"); err == nil {
		t.Errorf("lookup without a client certificate succeeded, want it refused")
	}
}
