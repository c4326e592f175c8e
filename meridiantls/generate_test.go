package meridiantls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCAAndGatewayCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("", 30)
	if err != nil {
		t.Fatal(err)
	}
	caCert, caKey, err := WriteCA(ca, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Base(caCert), "meridian-agent-ca.pem"; got != want {
		t.Errorf("CA file %q, want %q", got, want)
	}
	if got, want := filepath.Base(caKey), "meridian-agent-ca-key.pem"; got != want {
		t.Errorf("CA key file %q, want %q", got, want)
	}
	checkMode(t, caKey, 0o600)
	if _, _, err := WriteCA(ca, dir, ""); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second WriteCA: %v, want an already-exists error", err)
	}

	loaded, err := LoadCA(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.IsCA || loaded.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA: IsCA %v, algorithm %v", loaded.Cert.IsCA, loaded.Cert.PublicKeyAlgorithm)
	}
	if pub := loaded.Key.PublicKey; pub.Curve != elliptic.P256() {
		t.Errorf("CA key curve %v, want P-256", pub.Curve.Params().Name)
	}
	if d := time.Until(loaded.Cert.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("CA valid for %s, want about 30 days", d)
	}

	o := CertOptions{Region: "us-east", Days: 10, DNSNames: []string{"gw1.example.com"}, IPs: []net.IP{net.ParseIP("10.0.0.7")}}
	c, err := loaded.Sign(o)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := WriteCert(c, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Base(certFile), "us-east-gateway-meridian-0.pem"; got != want {
		t.Errorf("cert file %q, want %q", got, want)
	}
	if got, want := filepath.Base(keyFile), "us-east-gateway-meridian-0-key.pem"; got != want {
		t.Errorf("key file %q, want %q", got, want)
	}
	checkMode(t, keyFile, 0o600)
	// A second run does not overwrite.
	c2, err := loaded.Sign(o)
	if err != nil {
		t.Fatal(err)
	}
	certFile2, _, err := WriteCert(c2, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Base(certFile2), "us-east-gateway-meridian-1.pem"; got != want {
		t.Errorf("second cert file %q, want %q", got, want)
	}

	b, _ := os.ReadFile(certFile)
	certs, err := PEMCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	leaf := certs[0]
	wantDNS := []string{"gateway.us-east.meridian", "localhost", "gw1.example.com"}
	if !slices.Equal(leaf.DNSNames, wantDNS) {
		t.Errorf("DNS SANs %v, want %v", leaf.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "10.0.0.7"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs %v, want %v", ips, want)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(leaf.ExtKeyUsage, want) {
		t.Errorf("EKU %v, want %v", leaf.ExtKeyUsage, want)
	}
	if leaf.IsCA {
		t.Error("gateway certificate is a CA")
	}
	if d := time.Until(leaf.NotAfter); d < 9*24*time.Hour || d > 11*24*time.Hour {
		t.Errorf("certificate valid for %s, want about 10 days", d)
	}
	pool := x509.NewCertPool()
	pool.AddCert(loaded.Cert)
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "gateway.us-east.meridian", KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("verify for %v: %v", u, err)
		}
	}
	// The key in the key file belongs to the certificate.
	kb, _ := os.ReadFile(keyFile)
	if !strings.Contains(string(kb), "EC PRIVATE KEY") {
		t.Errorf("key file is not an EC key: %.40s", kb)
	}
	if _, err := (Config{CertFile: certFile, KeyFile: keyFile, CAFile: caCert}).Load(); err != nil {
		t.Errorf("loading the gateway's files: %v", err)
	}
}

func TestClientCert(t *testing.T) {
	ca, err := NewCA("", 30)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Sign(CertOptions{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"client.meridian"}; !slices.Equal(c.Cert.DNSNames, want) {
		t.Errorf("DNS SANs %v, want %v", c.Cert.DNSNames, want)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}; !slices.Equal(c.Cert.ExtKeyUsage, want) {
		t.Errorf("EKU %v, want %v", c.Cert.ExtKeyUsage, want)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate verifies as a server certificate")
	}
	dir := t.TempDir()
	f, _, err := WriteCert(c, dir, CertOptions{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Base(f), "client-meridian-0.pem"; got != want {
		t.Errorf("client cert file %q, want %q", got, want)
	}
}

func TestSignRejects(t *testing.T) {
	ca, err := NewCA("", 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []CertOptions{{Region: ""}, {Region: "US_East"}, {Region: "a.b"}, {Region: "us-east", Days: -1}} {
		if _, err := ca.Sign(o); err == nil {
			t.Errorf("Sign(%+v) succeeded", o)
		}
	}
	if _, err := NewCA("", 0); err == nil {
		t.Error("NewCA with 0 days succeeded")
	}
	// A certificate never outlives its CA.
	c, err := ca.Sign(CertOptions{Region: "us-east", Days: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("certificate expires %v, after its CA %v", c.Cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestLoadCAWrongKey(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewCA("", 30)
	b, _ := NewCA("", 30)
	certA, _, err := WriteCA(a, dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	_, keyB, err := WriteCA(b, dir, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(certA, keyB); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("LoadCA with another CA's key: %v", err)
	}
	var _ *ecdsa.PrivateKey = a.Key
}

func checkMode(t *testing.T, f string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(f), got, want)
	}
}
