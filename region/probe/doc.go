// Package probe runs HTTP and TCP health checks on real sockets under the
// egress policy (Prober) and is the production region.ProbeTransport
// (Transport). The simulator probes its simulated instances instead.
package probe
