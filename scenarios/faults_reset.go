package scenarios

import "sort"

// FaultNotifyLost: Gateway's subscription to its region's store
// notifications is lost (a dropped pub/sub connection that reconnected
// silently, or a subscriber that fell behind and was cut off): its cache
// misses every notification and catches up only by its periodic catch-up
// read (about a second), so it lags changes the store has already served,
// until For ends (for the whole run when For is 0).
const FaultNotifyLost = "notify_lost"

func init() {
	FaultKinds = append(FaultKinds, FaultNotifyLost)
	sort.Strings(FaultKinds)
	faultFields[FaultNotifyLost] = []string{"gateway", "for"}
}

// notifyLostFault checks the gateway a notify_lost fault names.
func (v *validator) notifyLostFault(f *Fault, fe func(string, string, ...any)) {
	rn, n, ok := ParseGateway(f.Gateway)
	switch {
	case f.Gateway == "":
		fe("gateway", "required: the gateway (\"<region>-<n>\") whose store notifications are lost")
	case !ok || v.sc.region(rn) == nil:
		fe("gateway", "%q: want a gateway \"<region>-<n>\" of a known region (known: %s)", f.Gateway, v.knownRegions())
	case n > v.sc.region(rn).Gateways:
		fe("gateway", "%q: region %s has %d gateway(s)", f.Gateway, rn, v.sc.region(rn).Gateways)
	}
}
