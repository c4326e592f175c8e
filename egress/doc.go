// Package egress decides which addresses a gateway may dial on someone
// else's behalf: the targets of /v1/proxy and of HTTP and TCP health
// checks. It is pure (net/netip only, no sockets): the drivers call
// Policy.Check with the resolved ip:port right before they connect
// (net.Dialer.Control), so a hostname that resolves, or re-resolves, to a
// refused address is refused too.
//
// Always refused, whatever --egress-allow says:
//   - the gateway's own listeners (HTTP API, Serf) and its store's
//     addresses, as ip:port. A listener on 0.0.0.0 or ::, or on a loopback
//     or local address, makes its port refused on every local address
//     (loopback, the host's own addresses and the unspecified address).
//   - port 0.
//
// Refused unless --egress-allow re-opens the range:
//   - link-local and cloud metadata: 169.254.0.0/16, fe80::/10,
//     fd00:ec2::254/128;
//   - unspecified (0.0.0.0, ::), multicast, limited broadcast;
//   - loopback (127.0.0.0/8, ::1) unless the gateway itself listens on
//     loopback (one-machine setups such as meridian dev).
//
// --egress-deny beats everything. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are checked as the IPv4 address they carry.
package egress
