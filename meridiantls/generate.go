package meridiantls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultDomain is the domain of gateway and client certificate names.
const DefaultDomain = "meridian"

// Default lifetimes (Consul's: five years for the CA, one for the rest).
const (
	DefaultCADays   = 1825
	DefaultCertDays = 365
)

// GatewayName is the DNS SAN that lets a gateway serve region's catalog:
// gateway.<region>.<domain>.
func GatewayName(region, domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return "gateway." + region + "." + domain
}

// ClientName is the DNS SAN of client certificates: client.<domain>.
func ClientName(domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return "client." + domain
}

// CA is a certificate authority held in memory.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// newKey makes an ECDSA P-256 key, a random serial number and the key's
// subject key id, for a new certificate.
func newKey() (*ecdsa.PrivateKey, *big.Int, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating the key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, nil, err
	}
	ski, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, serial, ski, nil
}

// sign makes tmpl for key, signed by parent's signer, and returns it
// parsed and both PEM encodings.
func sign(tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// NewCA makes a self-signed ECDSA P-256 CA valid for days days.
func NewCA(domain string, days int) (*CA, error) {
	if domain == "" {
		domain = DefaultDomain
	}
	if days <= 0 {
		return nil, fmt.Errorf("days: must be positive, got %d", days)
	}
	key, serial, ski, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Meridian Agent CA %s", serial.Text(10)),
			Organization: []string{"Meridian"},
		},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(0, 0, days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          ski,
		AuthorityKeyId:        ski,
	}
	cert, certPEM, keyPEM, err := sign(tmpl, tmpl, key, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// LoadCA reads a CA certificate and its key (PEM files).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA key: %w", err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", certFile)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM key", keyFile)
	}
	key, err := parseECKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not belong to the CA certificate %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// CertOptions describes a certificate to sign.
type CertOptions struct {
	// Region is the region a gateway certificate names
	// (gateway.<Region>.<Domain>); required unless Client.
	Region string
	// Client makes a client-only certificate (client.<Domain>, clientAuth).
	Client bool
	Domain string // DefaultDomain when empty
	Days   int    // DefaultCertDays when 0
	// DNSNames and IPs are added to the defaults (localhost and
	// 127.0.0.1 for gateways).
	DNSNames []string
	IPs      []net.IP
}

// Cert is a signed certificate and its key, PEM-encoded.
type Cert struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Sign makes a certificate signed by the CA: a gateway certificate
// (serverAuth and clientAuth, since gateways dial each other with it) or,
// with Client, a client-only one.
func (ca *CA) Sign(o CertOptions) (*Cert, error) {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Days == 0 {
		o.Days = DefaultCertDays
	}
	if o.Days < 0 {
		return nil, fmt.Errorf("days: must be positive, got %d", o.Days)
	}
	var cn string
	var dns []string
	var ips []net.IP
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if o.Client {
		cn = ClientName(o.Domain)
		dns = []string{cn}
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		if !isLabel(o.Region) {
			return nil, fmt.Errorf("region: %q is not a DNS label (lowercase a-z, 0-9, '-', 1-63 characters)", o.Region)
		}
		cn = GatewayName(o.Region, o.Domain)
		dns = []string{cn, "localhost"}
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	for _, d := range o.DNSNames {
		if d = strings.TrimSpace(d); d != "" {
			dns = append(dns, d)
		}
	}
	ips = append(ips, o.IPs...)
	key, serial, ski, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.AddDate(0, 0, o.Days)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		SubjectKeyId:          ski,
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
	}
	cert, certPEM, keyPEM, err := sign(tmpl, ca.Cert, key, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	return &Cert{Cert: cert, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// CAFileNames returns the CA's certificate and key file names in dir:
// <domain>-agent-ca.pem and <domain>-agent-ca-key.pem.
func CAFileNames(dir, domain string) (certFile, keyFile string) {
	if domain == "" {
		domain = DefaultDomain
	}
	return filepath.Join(dir, domain+"-agent-ca.pem"), filepath.Join(dir, domain+"-agent-ca-key.pem")
}

// WriteCA writes the CA's files into dir (CAFileNames; the key with mode
// 0600). It refuses to overwrite an existing CA.
func WriteCA(ca *CA, dir, domain string) (certFile, keyFile string, err error) {
	certFile, keyFile = CAFileNames(dir, domain)
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err == nil {
			return "", "", fmt.Errorf("%s already exists; not overwriting a CA", f)
		}
	}
	if err := writeNew(certFile, ca.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := writeNew(keyFile, ca.KeyPEM, 0o600); err != nil {
		os.Remove(certFile)
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteCert writes a certificate and its key (mode 0600) into dir under
// the first free name <prefix>-<domain>-N.pem / -N-key.pem, N = 0, 1, ...,
// where prefix is "<region>-gateway" or "<region>-client" ("client"
// without a region).
func WriteCert(c *Cert, dir string, o CertOptions) (certFile, keyFile string, err error) {
	domain := o.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	prefix := o.Region + "-gateway"
	if o.Client {
		prefix = "client"
		if o.Region != "" {
			prefix = o.Region + "-client"
		}
	}
	for n := 0; n < 10000; n++ {
		certFile = filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pem", prefix, domain, n))
		keyFile = filepath.Join(dir, fmt.Sprintf("%s-%s-%d-key.pem", prefix, domain, n))
		if exists(certFile) || exists(keyFile) {
			continue
		}
		if err := writeNew(certFile, c.CertPEM, 0o644); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return "", "", err
		}
		if err := writeNew(keyFile, c.KeyPEM, 0o600); err != nil {
			os.Remove(certFile)
			return "", "", err
		}
		return certFile, keyFile, nil
	}
	return "", "", fmt.Errorf("no free file name for %s-%s-N.pem in %s", prefix, domain, dir)
}

func exists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

// writeNew creates f (never overwriting) with mode perm.
func writeNew(f string, b []byte, perm os.FileMode) error {
	fh, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", f, err)
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		os.Remove(f)
		return fmt.Errorf("writing %s: %w", f, err)
	}
	if err := fh.Close(); err != nil {
		os.Remove(f)
		return fmt.Errorf("writing %s: %w", f, err)
	}
	return nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyID is the SHA-256 of the public key, cut to 20 bytes.
func keyID(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseECKey(b *pem.Block) (*ecdsa.PrivateKey, error) {
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an EC private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA private key")
	}
	return ek, nil
}

// isLabel: a DNS label as region names are (lowercase a-z, 0-9, '-').
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
