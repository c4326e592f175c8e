package meridiantls

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pki writes a CA and certificates into a temporary directory.
type pki struct {
	t      *testing.T
	dir    string
	ca     *CA
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := NewCA("", 30)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := WriteCA(ca, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, dir: dir, ca: ca, caFile: caFile}
}

func (p *pki) cert(o CertOptions) (certFile, keyFile string) {
	p.t.Helper()
	c, err := p.ca.Sign(o)
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile, err = WriteCert(c, p.dir, o)
	if err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile
}

func (p *pki) gateway(region string, verifyIncoming bool) *Gateway {
	p.t.Helper()
	cf, kf := p.cert(CertOptions{Region: region})
	g, err := Config{CertFile: cf, KeyFile: kf, CAFile: p.caFile, VerifyIncoming: verifyIncoming}.Load()
	if err != nil {
		p.t.Fatal(err)
	}
	return g
}

func TestValidateNamesTheFlag(t *testing.T) {
	p := newPKI(t)
	cf, kf := p.cert(CertOptions{Region: "us-east"})
	missing := filepath.Join(p.dir, "nope.pem")
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{CertFile: cf}, "tls-key"},
		{Config{KeyFile: kf}, "tls-cert"},
		{Config{VerifyIncoming: true}, "tls-cert"},
		{Config{CertFile: cf, KeyFile: kf}, "tls-ca"},
		{Config{CertFile: missing, KeyFile: kf, CAFile: p.caFile}, "tls-cert"},
		{Config{CertFile: cf, KeyFile: missing, CAFile: p.caFile}, "tls-key"},
		{Config{CertFile: cf, KeyFile: kf, CAFile: missing}, "tls-ca"},
		{Config{CertFile: cf, KeyFile: cf, CAFile: p.caFile}, "tls-cert/tls-key"},
	} {
		_, err := tc.c.Load()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%+v: got %v, want an error naming %s", tc.c, err, tc.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	// A certificate of another CA is refused at load.
	other := newPKI(t)
	ocf, okf := other.cert(CertOptions{Region: "us-east"})
	if _, err := (Config{CertFile: ocf, KeyFile: okf, CAFile: p.caFile}).Load(); err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Errorf("certificate of another CA: %v", err)
	}
}

// serve answers every request with the region named by the caller's
// gateway certificate, if any.
func serve(t *testing.T, g *Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg, ok := g.GatewayClient(r.TLS)
		if !ok {
			reg = "-"
		}
		io.WriteString(w, reg)
	}), TLSConfig: g.ServerConfig()}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestPeerChecks(t *testing.T) {
	p := newPKI(t)
	us := p.gateway("us-east", false)
	eu := p.gateway("eu-west", false)
	addr := serve(t, eu)
	c := &http.Client{Transport: us.PeerTransport()}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "us-east" {
		t.Errorf("server saw client region %q, want us-east", b)
	}
	if err := us.CheckPeer(addr, "eu-west", resp.TLS); err != nil {
		t.Errorf("eu-west peer for eu-west: %v", err)
	}
	err = us.CheckPeer(addr, "us-east", resp.TLS)
	if err == nil || !strings.Contains(err.Error(), "does not name us-east") {
		t.Errorf("eu-west peer for us-east: %v, want 'does not name us-east'", err)
	}
	if err := us.CheckPeer(addr, "eu-west", nil); err == nil {
		t.Error("plain HTTP accepted as a peer")
	}

	// A peer with a certificate of another CA is refused at the handshake.
	rogue := newPKI(t).gateway("eu-west", false)
	raddr := serve(t, rogue)
	if _, err := c.Get("https://" + raddr + "/"); err == nil {
		t.Error("a gateway of another CA was accepted")
	}
	// A client certificate (no serverAuth) is no peer.
	ccf, ckf := p.cert(CertOptions{Client: true})
	cc, err := tls.LoadX509KeyPair(ccf, ckf)
	if err != nil {
		t.Fatal(err)
	}
	caddr := serveWith(t, cc)
	if _, err := c.Get("https://" + caddr + "/"); err == nil {
		t.Error("a server with a client certificate was accepted as a gateway")
	}
}

func serveWith(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestVerifyIncomingAndClientConfig(t *testing.T) {
	p := newPKI(t)
	g := p.gateway("us-east", true)
	addr := serve(t, g)
	get := func(tc *tls.Config) (string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	anon, err := ClientConfig(p.caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(anon); err == nil {
		t.Error("verify-incoming let a client without a certificate in")
	}
	ccf, ckf := p.cert(CertOptions{Client: true})
	withCert, err := ClientConfig(p.caFile, ccf, ckf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := get(withCert)
	if err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	if got != "-" {
		t.Errorf("a client certificate passed as a gateway (%q)", got)
	}
	// Without the CA the gateway's certificate is not trusted.
	if _, err := get(&tls.Config{}); err == nil {
		t.Error("client without the CA trusted the gateway")
	}
	if _, err := ClientConfig(p.caFile, ccf, ""); err == nil || !strings.HasPrefix(err.Error(), "client-key") {
		t.Errorf("cert without key: %v", err)
	}
	if _, err := ClientConfig(filepath.Join(p.dir, "x.pem"), "", ""); err == nil || !strings.HasPrefix(err.Error(), "ca-file") {
		t.Errorf("missing CA: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "junk.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ClientConfig(filepath.Join(p.dir, "junk.pem"), "", ""); err == nil {
		t.Error("junk CA file accepted")
	}
}

func TestReload(t *testing.T) {
	p := newPKI(t)
	cf, kf := p.cert(CertOptions{Region: "us-east"})
	g, err := Config{CertFile: cf, KeyFile: kf, CAFile: p.caFile}.Load()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, g)
	serial := func() string {
		t.Helper()
		tc, err := ClientConfig(p.caFile, "", "")
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", resp.Proto)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// New files under the same names, as a certificate rotation writes them.
	next, err := p.ca.Sign(CertOptions{Region: "us-east", DNSNames: []string{"rotated.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf, next.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, next.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	after := serial()
	if after == before || after != next.Cert.SerialNumber.String() {
		t.Errorf("after Reload the gateway serves serial %s, want %s (was %s)", after, next.Cert.SerialNumber, before)
	}
	// A broken file keeps the loaded certificate.
	if err := os.WriteFile(kf, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err == nil {
		t.Error("Reload of a broken key succeeded")
	}
	if got := serial(); got != after {
		t.Errorf("after a failed Reload the gateway serves %s, want %s", got, after)
	}
}
