// Package meridiantls makes and loads the certificates of a Meridian
// federation and builds the TLS configurations of its three kinds of
// connection: clients to a gateway (HTTPS, optionally with a client
// certificate), gateways to each other (always mutual TLS), and the
// gateway's own listener.
//
// Names follow Consul's: a CA (meridian-agent-ca.pem), gateway
// certificates whose DNS SAN gateway.<region>.<domain> names the region a
// gateway may serve (Consul's server.<dc>.<domain>), and client
// certificates naming client.<domain>. A gateway accepts region R's
// catalog only from a peer whose CA-verified certificate names
// gateway.R.<domain>; the check runs for every fetch, on the connection
// that carried it (CheckPeer), so a pooled connection to a gateway of one
// region never serves another's catalog.
package meridiantls
