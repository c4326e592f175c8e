package gateway

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/meridiantls"

	"github.com/meridian-sd/meridian/federation/httpsync"
)

// Gateway-to-gateway traffic under TLS (Config.TLS):
//
//   - the sync endpoint answers only a caller whose CA-verified client
//     certificate names some gateway (gateway.<region>.<domain>); a
//     client certificate, or none, gets 403;
//   - a heartbeat forwarded by another gateway of the region
//     (X-Meridian-Forwarded) is taken only from a certificate naming this
//     region's gateways;
//   - this gateway's own calls to other gateways (heartbeat forwarding)
//     go over HTTPS with its certificate, and the answer counts only when
//     the peer's certificate names this region.
//
// Catalog fetches are checked per region by the federator
// (httpsync.FetchOptions.CheckPeer).

// peerScheme is the scheme of requests to other gateways.
func (s *Server) peerScheme() string {
	if s.cfg.TLS != nil {
		return "https"
	}
	return "http"
}

// requireGateway lets the request through when TLS is off or its client
// certificate names a gateway (of want's region, when want is not "");
// otherwise it answers 403 and returns false.
func (s *Server) requireGateway(w http.ResponseWriter, r *http.Request, want, what string) bool {
	if s.cfg.TLS == nil {
		return true
	}
	reg, ok := s.cfg.TLS.GatewayClient(r.TLS)
	if ok && (want == "" || reg == want) {
		return true
	}
	name := meridiantls.GatewayName("REGION", s.cfg.TLS.Domain())
	if want != "" {
		name = meridiantls.GatewayName(want, s.cfg.TLS.Domain())
	}
	writeError(w, http.StatusForbidden, "", what+" needs a gateway certificate signed by the CA naming "+name)
	return false
}

// peerTransport is the transport of gateway-to-gateway requests.
func peerTransport(g *meridiantls.Gateway) http.RoundTripper {
	if g == nil {
		return http.DefaultTransport
	}
	return g.PeerTransport()
}

// loadTLS reads the agent's TLS files; nil when TLS is off.
func loadTLS(cfg AgentConfig, log *slog.Logger) (*meridiantls.Gateway, error) {
	if !cfg.TLS.Enabled() {
		return nil, nil
	}
	g, err := cfg.TLS.Load()
	if err != nil {
		return nil, err
	}
	if !g.NamesRegion(cfg.Region) {
		// Other gateways will refuse this region's catalog from here.
		log.Error("the TLS certificate does not name this gateway's region: other regions will not take its catalog",
			"want", meridiantls.GatewayName(cfg.Region, cfg.TLS.Domain), "names", strings.Join(g.Names(), ","))
	}
	log.Info("TLS on: the API serves HTTPS only, gateways talk mutual TLS",
		"verify_incoming", cfg.TLS.VerifyIncoming, "names", strings.Join(g.Names(), ","), "expires", g.NotAfter().UTC().Format(time.RFC3339))
	return g, nil
}

// serve serves the API on ln, over TLS when it is on.
func (a *Agent) serve(ln net.Listener) error {
	if a.tls == nil {
		return a.http.Serve(ln)
	}
	// Failed handshakes (plain HTTP, unknown certificates, scanners) go
	// to the server's ErrorLog, at debug level (StartAgent).
	a.http.TLSConfig = a.tls.ServerConfig()
	return a.http.ServeTLS(ln, "", "")
}

// fetchClient is the client and options of sync fetches: with TLS, HTTPS
// with this gateway's certificate and the check that the peer's
// certificate names the region whose catalog it serves.
func (a *Agent) fetchClient(timeout time.Duration) (*http.Client, httpsync.FetchOptions) {
	c := a.cfg.FetchClient
	if a.tls == nil {
		return c, httpsync.FetchOptions{}
	}
	if c == nil {
		c = &http.Client{Transport: a.tls.PeerTransport(), Timeout: timeout}
	}
	return c, httpsync.FetchOptions{Scheme: "https", CheckPeer: a.tls.CheckPeer}
}

// ReloadTLS re-reads the TLS certificate, key and CA files (meridian agent
// does so on SIGHUP); new connections use them. It is a no-op without TLS;
// on an error the loaded files stay in use.
func (a *Agent) ReloadTLS() error {
	if a.tls == nil {
		return nil
	}
	if err := a.tls.Reload(); err != nil {
		return err
	}
	a.cfg.Logger.Info("TLS files reloaded", "region", a.cfg.Region, "names", strings.Join(a.tls.Names(), ","),
		"expires", a.tls.NotAfter().UTC().Format(time.RFC3339))
	return nil
}
