package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/meridian-sd/meridian/meridiantls"
)

const tlsUsage = `Usage:
  meridian tls ca create   [--dir D] [--domain meridian] [--days 1825]
  meridian tls cert create --region R [--client] [--ca F --ca-key F] [--dir D]
                           [--additional-dnsname X] [--additional-ipaddress IP] [--days 365]
`

// cmdTLS makes a CA and certificates, as consul tls does.
func cmdTLS(args []string) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Print(tlsUsage)
		return nil
	}
	if len(args) < 2 || args[1] != "create" || (args[0] != "ca" && args[0] != "cert") {
		fmt.Fprint(os.Stderr, tlsUsage)
		return fmt.Errorf("want 'tls ca create' or 'tls cert create'")
	}
	if args[0] == "ca" {
		return cmdTLSCACreate(args[2:])
	}
	return cmdTLSCertCreate(args[2:])
}

func cmdTLSCACreate(args []string) error {
	fs := flag.NewFlagSet("tls ca create", flag.ContinueOnError)
	dir := fs.String("dir", ".", "directory to write the CA's files into")
	domain := fs.String("domain", meridiantls.DefaultDomain, "domain of the federation's certificate names (gateway.<region>.<domain>)")
	days := fs.Int("days", meridiantls.DefaultCADays, "days the CA is valid")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ca, err := meridiantls.NewCA(*domain, *days)
	if err != nil {
		return err
	}
	certFile, keyFile, err := meridiantls.WriteCA(ca, *dir, *domain)
	if err != nil {
		return err
	}
	fmt.Printf("==> Saved %s\n==> Saved %s\n", certFile, keyFile)
	return nil
}

func cmdTLSCertCreate(args []string) error {
	fs := flag.NewFlagSet("tls cert create", flag.ContinueOnError)
	regionName := fs.String("region", "", "the region a gateway certificate names (gateway.<region>.<domain>); required unless --client")
	client := fs.Bool("client", false, "make a client certificate (client.<domain>, client authentication only)")
	dir := fs.String("dir", ".", "directory to write the certificate and key into")
	domain := fs.String("domain", meridiantls.DefaultDomain, "domain of the certificate's names")
	caFile := fs.String("ca", "", "CA certificate (default <dir>/<domain>-agent-ca.pem)")
	caKey := fs.String("ca-key", "", "CA key (default <dir>/<domain>-agent-ca-key.pem)")
	days := fs.Int("days", meridiantls.DefaultCertDays, "days the certificate is valid")
	var dnsNames, ips listFlag
	fs.Var(&dnsNames, "additional-dnsname", "more DNS names for the certificate (repeatable, or comma-separated)")
	fs.Var(&ips, "additional-ipaddress", "more IP addresses for the certificate (repeatable, or comma-separated)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *regionName == "" && !*client {
		return fmt.Errorf("--region is required for a gateway certificate (or --client for a client one)")
	}
	defCert, defKey := meridiantls.CAFileNames(*dir, *domain)
	if *caFile == "" {
		*caFile = defCert
	}
	if *caKey == "" {
		*caKey = defKey
	}
	ca, err := meridiantls.LoadCA(*caFile, *caKey)
	if err != nil {
		return err
	}
	o := meridiantls.CertOptions{Region: *regionName, Client: *client, Domain: *domain, Days: *days, DNSNames: dnsNames}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("additional-ipaddress: %q is not an IP address", s)
		}
		o.IPs = append(o.IPs, ip)
	}
	c, err := ca.Sign(o)
	if err != nil {
		return err
	}
	certFile, keyFile, err := meridiantls.WriteCert(c, *dir, o)
	if err != nil {
		return err
	}
	fmt.Printf("==> Using %s and %s\n==> Saved %s\n==> Saved %s\n", *caFile, *caKey, certFile, keyFile)
	return nil
}

// tlsFlags are the agent's --tls-* flags.
type tlsFlags struct {
	cert, key, ca *string
	verify        *bool
	domain        *string
}

func addTLSFlags(fs *flag.FlagSet) tlsFlags {
	return tlsFlags{
		cert:   fs.String("tls-cert", "", "the gateway's certificate (PEM; meridian tls cert create --region R); the API then serves HTTPS only and gateways talk mutual TLS"),
		key:    fs.String("tls-key", "", "the key of --tls-cert (PEM)"),
		ca:     fs.String("tls-ca", "", "the CA that signs gateway and client certificates (PEM); required with --tls-cert"),
		verify: fs.Bool("tls-verify-incoming", false, "require a client certificate signed by --tls-ca on every API request"),
		domain: fs.String("tls-domain", meridiantls.DefaultDomain, "domain of certificate names: a gateway of region R holds gateway.R.<domain>"),
	}
}

func (f tlsFlags) config() meridiantls.Config {
	return meridiantls.Config{CertFile: *f.cert, KeyFile: *f.key, CAFile: *f.ca, VerifyIncoming: *f.verify, Domain: *f.domain}
}

// clientTLSFlags are the client subcommands' --ca-file, --client-cert and
// --client-key (env MERIDIAN_CACERT, MERIDIAN_CLIENT_CERT,
// MERIDIAN_CLIENT_KEY, applied by withEnv).
type clientTLSFlags struct {
	caFile, cert, key *string
}

// cliTLS holds the TLS flags of the client subcommand being run (one a
// process); clientFlags sets it, newAPIClient reads it.
var cliTLS *clientTLSFlags

// clientTLSEnv maps the client TLS flags to their environment variables
// (Consul's names: CONSUL_CACERT and so on).
var clientTLSEnv = []struct{ flag, env string }{
	{"ca-file", "MERIDIAN_CACERT"},
	{"client-cert", "MERIDIAN_CLIENT_CERT"},
	{"client-key", "MERIDIAN_CLIENT_KEY"},
}

func addClientTLSFlags(fs *flag.FlagSet) {
	cliTLS = &clientTLSFlags{
		caFile: fs.String("ca-file", "", "CA certificate to verify the gateway's HTTPS certificate with (env MERIDIAN_CACERT)"),
		cert:   fs.String("client-cert", "", "client certificate for a gateway that verifies incoming connections (env MERIDIAN_CLIENT_CERT)"),
		key:    fs.String("client-key", "", "key of --client-cert (env MERIDIAN_CLIENT_KEY)"),
	}
}

// clientTransport is the client subcommands' transport: TLS as the flags
// say, or the default.
func clientTransport() (http.RoundTripper, error) {
	if cliTLS == nil || (*cliTLS.caFile == "" && *cliTLS.cert == "" && *cliTLS.key == "") {
		return http.DefaultTransport, nil
	}
	tc, err := meridiantls.ClientConfig(*cliTLS.caFile, *cliTLS.cert, *cliTLS.key)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.TLSHandshakeTimeout = 10 * time.Second
	return t, nil
}
