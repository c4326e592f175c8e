package meridiantls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Config is a gateway's TLS configuration (meridian agent --tls-*). The
// zero value is off: the gateway serves plain HTTP.
type Config struct {
	CertFile string // --tls-cert: the gateway's certificate (PEM)
	KeyFile  string // --tls-key: its private key (PEM)
	CAFile   string // --tls-ca: the CA that signs gateways and clients
	// VerifyIncoming (--tls-verify-incoming) requires a client certificate
	// signed by the CA on every API request. Without it a certificate is
	// still asked for (and verified when given), so that gateways
	// authenticate each other.
	VerifyIncoming bool
	Domain         string // the domain of certificate names; DefaultDomain when empty
}

// Enabled reports whether TLS is configured.
func (c Config) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" || c.VerifyIncoming
}

// Validate checks the configuration, naming the flag.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	switch {
	case c.CertFile == "":
		return errors.New("tls-cert: required with the other --tls-* flags")
	case c.KeyFile == "":
		return errors.New("tls-key: required with --tls-cert")
	case c.CAFile == "":
		return errors.New("tls-ca: required with --tls-cert (gateways verify each other's certificates with it)")
	}
	for _, f := range []struct{ flag, path string }{{"tls-cert", c.CertFile}, {"tls-key", c.KeyFile}, {"tls-ca", c.CAFile}} {
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		fh.Close()
	}
	return nil
}

func (c Config) domain() string {
	if c.Domain == "" {
		return DefaultDomain
	}
	return c.Domain
}

// Gateway is a loaded gateway TLS configuration: its own certificate and
// the CA's pool. It builds the listener's and the gateway-to-gateway
// client's tls.Config and checks peers.
type Gateway struct {
	cfg            Config
	state          atomic.Pointer[gatewayState] // swapped by Reload
	verifyIncoming bool
	domain         string
}

// gatewayState is what Reload re-reads.
type gatewayState struct {
	cert  tls.Certificate
	leaf  *x509.Certificate
	roots *x509.CertPool
}

func (g *Gateway) st() *gatewayState { return g.state.Load() }

// Load validates c and reads its files.
func (c Config) Load() (*Gateway, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, errors.New("tls: not configured")
	}
	g := &Gateway{cfg: c, verifyIncoming: c.VerifyIncoming, domain: c.domain()}
	if err := g.Reload(); err != nil {
		return nil, err
	}
	return g, nil
}

// Reload re-reads the certificate, key and CA files (on SIGHUP): new
// connections use them; on an error the old ones stay.
func (g *Gateway) Reload() error {
	c := g.cfg
	if err := c.Validate(); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("tls-cert: %w", err)
	}
	cert.Leaf = leaf
	roots, err := LoadPool(c.CAFile)
	if err != nil {
		return fmt.Errorf("tls-ca: %w", err)
	}
	var chain []*x509.Certificate
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			chain = append(chain, c)
		}
	}
	st := &gatewayState{cert: cert, leaf: leaf, roots: roots}
	if _, err := verifyWith(st.roots, leaf, chain, x509.ExtKeyUsageServerAuth); err != nil {
		return fmt.Errorf("tls-cert: not a server certificate of the CA in --tls-ca: %w", err)
	}
	g.state.Store(st)
	return nil
}

// LoadPool reads a PEM file of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// Domain is the domain of certificate names.
func (g *Gateway) Domain() string { return g.domain }

// Names returns the DNS names of the gateway's own certificate.
func (g *Gateway) Names() []string { return g.st().leaf.DNSNames }

// NotAfter is when the gateway's certificate expires.
func (g *Gateway) NotAfter() time.Time { return g.st().leaf.NotAfter }

// NamesRegion reports whether the gateway's own certificate names region.
func (g *Gateway) NamesRegion(region string) bool {
	return hasName(g.st().leaf, GatewayName(region, g.domain))
}

// ServerConfig is the listener's configuration: TLS 1.2+, the gateway's
// certificate, and client certificates verified against the CA: required
// with VerifyIncoming, else verified when given.
func (g *Gateway) ServerConfig() *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if g.verifyIncoming {
		auth = tls.RequireAndVerifyClientCert
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: auth, NextProtos: []string{"h2", "http/1.1"}}
	// Each handshake takes the files Reload read last.
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		st := g.st()
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{st.cert}
		c.ClientCAs = st.roots
		return c, nil
	}
	return base
}

// PeerConfig is the client configuration of gateway-to-gateway requests:
// it presents the gateway's certificate and accepts only a peer whose
// certificate the CA signed for a gateway (some gateway.<region>.<domain>).
// Host names are not checked (gateways are reached at whatever address
// they gossip); which region the peer may serve is checked per request
// with CheckPeer.
func (g *Gateway) PeerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &g.st().cert, nil
		},
		InsecureSkipVerify: true, // replaced by VerifyConnection: chain, EKU, a gateway name
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the peer sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			if _, err := g.verify(leaf, cs.PeerCertificates[1:], x509.ExtKeyUsageServerAuth); err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			if _, ok := g.gatewayRegion(leaf); !ok {
				return fmt.Errorf("peer certificate names no gateway (%s): %s", GatewayName("<region>", g.domain), strings.Join(leaf.DNSNames, ", "))
			}
			return nil
		},
	}
}

// PeerTransport is an HTTP transport for gateway-to-gateway requests with
// PeerConfig.
func (g *Gateway) PeerTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = g.PeerConfig()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// PeerError says that a peer's certificate does not let it serve a region.
type PeerError struct {
	Addr, Region string
	Msg          string
}

func (e *PeerError) Error() string {
	return "gateway " + e.Addr + ": " + e.Msg
}

// CheckPeer verifies, for one response, that the connection it came on
// was TLS with a CA-signed certificate naming gateway.<region>.<domain>:
// only such a peer may serve region's catalog (or, for a forwarded
// heartbeat, act for region's gateways).
func (g *Gateway) CheckPeer(addr, region string, cs *tls.ConnectionState) error {
	want := GatewayName(region, g.domain)
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return &PeerError{Addr: addr, Region: region, Msg: "answered without TLS; want a certificate naming " + want}
	}
	leaf := cs.PeerCertificates[0]
	if _, err := g.verify(leaf, cs.PeerCertificates[1:], x509.ExtKeyUsageServerAuth); err != nil {
		return &PeerError{Addr: addr, Region: region, Msg: "certificate not signed by the CA: " + err.Error()}
	}
	if !hasName(leaf, want) {
		return &PeerError{Addr: addr, Region: region,
			Msg: fmt.Sprintf("certificate does not name %s (%s); it names %s", region, want, strings.Join(leaf.DNSNames, ", "))}
	}
	return nil
}

// GatewayClient returns the region named by the verified client
// certificate of an incoming connection, when it is a gateway's
// (gateway.<region>.<domain>); ok is false for no certificate, a client
// certificate, or one the CA did not sign.
func (g *Gateway) GatewayClient(cs *tls.ConnectionState) (region string, ok bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", false
	}
	return g.gatewayRegion(cs.PeerCertificates[0])
}

// gatewayRegion returns the region of the first gateway.<region>.<domain>
// name of cert.
func (g *Gateway) gatewayRegion(cert *x509.Certificate) (string, bool) {
	suffix := "." + g.domain
	for _, n := range cert.DNSNames {
		n = strings.ToLower(n)
		if !strings.HasPrefix(n, "gateway.") || !strings.HasSuffix(n, suffix) {
			continue
		}
		r := strings.TrimSuffix(strings.TrimPrefix(n, "gateway."), suffix)
		if isLabel(r) {
			return r, true
		}
	}
	return "", false
}

func (g *Gateway) verify(leaf *x509.Certificate, rest []*x509.Certificate, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	return verifyWith(g.st().roots, leaf, rest, usage)
}

func verifyWith(roots *x509.CertPool, leaf *x509.Certificate, rest []*x509.Certificate, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	inter := x509.NewCertPool()
	for _, c := range rest {
		inter.AddCert(c)
	}
	return leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
}

func hasName(cert *x509.Certificate, name string) bool {
	for _, n := range cert.DNSNames {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// ClientConfig builds the TLS configuration of an API client (the
// meridian client subcommands' --ca-file, --client-cert, --client-key; the
// Go client's Config.TLS): the gateway's certificate is verified against
// caFile (the system roots when empty) and the host name; certFile and
// keyFile, both or neither, are presented to a gateway that verifies
// incoming connections.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca-file: %w", err)
		}
		c.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile == "":
		return nil, errors.New("client-key: required with --client-cert")
	case certFile == "" && keyFile != "":
		return nil, errors.New("client-cert: required with --client-key")
	case certFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client-cert/client-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// PEMCertificates decodes the certificates of a PEM bundle (for tests and
// tools).
func PEMCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// PeerRefused marks the error for the federator, which logs each refused
// peer once.
func (e *PeerError) PeerRefused() bool { return true }
