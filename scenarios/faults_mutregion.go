package scenarios

import "sort"

// FaultInstancesOverload: Count (or Fraction) of Service's registered
// instances in Region, whatever their state (a crashed one comes back
// swamped by its backlog), shed load: they answer every request, health
// probes included, with HTTP 429 Too Many Requests (a warning result), so
// they serve no lookup, until For ends; then they answer normally.
const FaultInstancesOverload = "instances_overload"

func init() {
	FaultKinds = append(FaultKinds, FaultInstancesOverload)
	sort.Strings(FaultKinds)
	faultFields[FaultInstancesOverload] = []string{"region", "service", "count", "fraction", "for"}
	// deregister through one gateway (gateway: "<region>-<n>"), as a
	// deployment tool configured with one gateway's address does.
	faultFields[FaultDeregister] = append(faultFields[FaultDeregister], "gateway")
}

// viaGateway checks the gateway a deregister fault goes through (a
// deployment tool configured with one gateway's address): one of the
// fault's region.
func (v *validator) viaGateway(f *Fault, fe func(string, string, ...any)) {
	rn, n, ok := ParseGateway(f.Gateway)
	switch {
	case !ok || rn != f.Region:
		fe("gateway", "%q: want a gateway of region %s, e.g. %q", f.Gateway, f.Region, GatewayName(f.Region, 1))
	default:
		if r := v.sc.region(rn); r != nil && n > r.Gateways {
			fe("gateway", "%q: region %s has %d gateway(s)", f.Gateway, rn, r.Gateways)
		}
	}
}
