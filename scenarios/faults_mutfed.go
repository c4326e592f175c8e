package scenarios

// Fault kinds for the federation's sync paths (gap recovery, watches,
// per-gateway peer checks).
const (
	// FaultLogTrimmed: Region's gateways answer a catalog request since a
	// version their change log no longer reaches with what the log still
	// holds (a delta with a gap) instead of a snapshot, as a store whose
	// reach check is wrong does (the Redis changes-since script off by
	// one, or a log trimmed under the reader). Until For ends it.
	FaultLogTrimmed = "log_trimmed"
	// FaultWatchUnsupported: Region's gateways run a release without the
	// push path: a watch is answered at once without the watch header, so
	// watchers fail and back off and only the pull (gossip digests,
	// anti-entropy) syncs the region. Until For ends it.
	FaultWatchUnsupported = "watch_unsupported"
	// FaultGatewayRefused: From's gateways refuse one gateway, Gateway, as
	// a source of its region's catalog (its certificate was misissued and
	// names another region); the region's other gateways are accepted.
	FaultGatewayRefused = "gateway_refused"
	// FaultStoreRestart: Region's Redis restarts without persistence (its
	// data is gone, as store_wipe), and nothing tells the gateways: their
	// pub/sub subscriptions reconnect silently, so each cache finds out at
	// its next catch-up read or at the next write's notification.
	FaultStoreRestart = "store_restart"
	// FaultRegionReset: every gateway of Region crashes and its store loses
	// all its data while they are down, so nobody can write the catalog
	// back: the region starts over at version 0. Its instances register
	// again once its gateways are back (after For), as clients and
	// deployers do when they find themselves gone; other regions must
	// follow the reset although it moves their replicas back.
	FaultRegionReset = "region_reset"
)

// mutfedFault checks the fields of the fault kinds of this file.
func (v *validator) mutfedFault(p string, f *Fault, fe func(string, string, ...any)) {
	switch f.Kind {
	case FaultLogTrimmed, FaultWatchUnsupported, FaultStoreRestart, FaultRegionReset:
		v.regionRef(p+".region", f.Region, true)
	case FaultGatewayRefused:
		v.regionRef(p+".from", f.From, true)
		rn, n, ok := ParseGateway(f.Gateway)
		switch {
		case f.Gateway == "":
			fe("gateway", "required: the refused gateway (\"<region>-<n>\")")
		case !ok || v.sc.region(rn) == nil:
			fe("gateway", "%q: want a gateway \"<region>-<n>\" of a known region (known: %s)", f.Gateway, v.knownRegions())
		case n > v.sc.region(rn).Gateways:
			fe("gateway", "%q: region %s has %d gateway(s)", f.Gateway, rn, v.sc.region(rn).Gateways)
		case rn == f.From:
			fe("gateway", "%q: must be a gateway of another region than from (%q)", f.Gateway, f.From)
		}
	}
}
