package region

// HeartbeatRoute decides where a gateway takes a TTL heartbeat of k: here
// (""), or at the address of the region's gateway that runs k's checks,
// as owner says ("" when that is this gateway or no owner is known; nil
// owner: no sharding). A heartbeat that was already forwarded once is
// taken here whatever this gateway thinks: it travels one hop at most, so
// two gateways that disagree about the owner cannot bounce it between
// them; HealthRunner.Heartbeat then answers ErrNotOwner when this gateway
// does not run the check after all. The gateway's heartbeat handler and the
// simulator both route through it.
func HeartbeatRoute(k Key, forwarded bool, owner func(Key) string) string {
	if forwarded || owner == nil {
		return ""
	}
	return owner(k)
}
