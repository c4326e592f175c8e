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
}
