package mutants

// Mutant is one deliberate bug: in File (a path relative to the module
// root), the snippet Find, which must occur exactly once, is replaced by
// Replace. Anchoring on code rather than on line numbers lets a mutant
// survive refactors that move code around; when a refactor changes the
// snippet itself, Apply says "does not apply: snippet not found in FILE" and
// the mutant must be re-anchored (edit File, Find and Replace here).
type Mutant struct {
	Name    string // unique, kebab-case
	Area    string // region, federation, failover, driver, store
	File    string
	Find    string
	Replace string
	Desc    string // the realistic bug, in one line
	// Reach says where the simulator can see the bug today, when it
	// cannot: it documents an expected miss (the code is not run by the
	// simulator yet) instead of hiding it. Empty: within reach.
	Reach string
}

// Reach values.
const (
	// ReachSeam: the code is driver glue the simulator does not run yet
	// (it has its own copy); catchable once the drivers run on the rt seam
	// in the simulator (issue 12, "One driver, two runtimes").
	ReachSeam = "seam"
	// ReachRedis: the code is the Redis store's Lua and no scenario runs
	// it (scenarios with topology.store: redis run the production Redis
	// store over an in-process Redis; the others run MemStore).
	ReachRedis = "redis"
	// ReachHandler: request decoding and validation in the HTTP layer; the
	// simulator registers instances through the store directly.
	ReachHandler = "handler"
)

// All is the mutant set, in the order `make mutants` runs and prints them.
// The first eight are the bugs issue 12 describes.
var All = []Mutant{
	// --- The classics of issue 12. ---
	{
		Name: "health-flap-damping-ignored", Area: "region", File: "region/health.go",
		Find:    "if st.failures >= st.check.FailuresBeforeCritical {",
		Replace: "if st.failures >= 1 {",
		Desc:    "flap damping ignored: one failed probe marks an instance critical whatever failures_before_critical says",
	},
	{
		Name: "catalog-gap-applied", Area: "region", File: "region/catalog.go",
		Find:    "if ch.Version != c.version+1 {",
		Replace: "if ch.Version < c.version+1 {",
		Desc:    "a delta with a gap is applied: a change that skips versions is taken as if it followed the catalog",
	},
	{
		Name: "register-ack-not-stored", Area: "driver", File: "region/registrar.go",
		Find:    "\tif err != nil {\n\t\tr.logger().Warn(\"register failed\"",
		Replace: "\tif err != nil && !errors.Is(err, ErrOutcomeUnknown) {\n\t\tr.logger().Warn(\"register failed\"",
		Desc:    "acknowledged but not stored: the registration handler answers 200 when the store write's outcome is unknown",
	},
	{
		Name: "core-replica-dropped-on-failure", Area: "federation", File: "federation/core.go",
		Find:    "if !alive && rs.seen && now.Sub(rs.lastAlive) >= c.cfg.ReapAfter {",
		Replace: "if !alive && rs.seen {",
		Desc:    "a region whose gateways all look failed is forgotten at once (no self-preservation): a partition wipes its replica",
	},
	{
		Name: "core-advertised-counts-failed", Area: "federation", File: "federation/core.go",
		Find:    "if m.Region == regionName && m.Status == StatusAlive {",
		Replace: "if m.Region == regionName && m.Status != StatusLeft {",
		Desc:    "failed gateways still count as alive (only a graceful leave is excluded): a cut-off region looks reachable",
	},
	{
		Name: "route-spill-into-unreachable", Area: "failover", File: "failover/route.go",
		Find:    "if l.unreach && reachableHealthy {",
		Replace: "if l.unreach && !reachableHealthy {",
		Desc:    "inverted guard: an unreachable region gets its spillover share while reachable regions have healthy instances",
	},
	{
		Name: "health-contested-livelock", Area: "region", File: "region/health.go",
		Find:    "return healthLater(st.changedAt, st.setAt.Add(st.writeGap())), true",
		Replace: "return st.changedAt, true",
		Desc:    "a contested status is written back at once: two owners of one check rewrite it after every write of the other",
	},
	{
		Name: "core-one-way-cut-reachable", Area: "federation", File: "federation/core.go",
		Find:    "if rs != nil && c.cfg.UnreachableAfter > 0 && rs.failures >= c.cfg.UnreachableAfter {",
		Replace: "if rs != nil && c.cfg.UnreachableAfter > 0 && rs.failures >= c.cfg.UnreachableAfter && !v.Reachable {",
		Desc:    "failing fetches no longer make a region unreachable while gossip shows it alive (one-way cut sends traffic into a hole)",
	},

	// --- region/: health machine. ---
	{
		Name: "health-success-damping-ignored", Area: "region", File: "region/health.go",
		Find:    "if st.successes >= st.check.SuccessBeforePassing {",
		Replace: "if st.successes >= 1 {",
		Desc:    "one passing probe brings an instance back whatever success_before_passing says",
	},
	{
		Name: "health-warning-lifts-critical", Area: "region", File: "region/health.go",
		Find:    "\t\tif st.status != StatusCritical {\n\t\t\tnext = StatusWarning\n\t\t}",
		Replace: "\t\tnext = StatusWarning",
		Desc:    "a warning result (HTTP 429) lifts a critical instance to warning, so it takes traffic again at once",
	},
	{
		Name: "health-ttl-doubled", Area: "region", File: "region/health.go",
		Find:    "if !st.ttlExpired && now.After(st.ttlDeadline) {",
		Replace: "if !st.ttlExpired && now.After(st.ttlDeadline.Add(st.check.TTL.Std())) {",
		Desc:    "the TTL is added twice: an instance that stopped heartbeating stays passing for two TTLs",
	},
	{
		Name: "health-restart-starts-critical", Area: "region", File: "region/health.go",
		Find:    "\tst.status, st.output = in.Status, healthTruncate(in.Output)\n",
		Replace: "\tst.status, st.output = InitialStatus(&c), \"\"\n",
		Desc:    "a new check state ignores the status in the store: after a gateway restart every checked instance starts critical",
	},
	{
		Name: "health-deregister-zero-means-now", Area: "region", File: "region/health.go",
		Find:    "if d <= 0 || st.status != StatusCritical {",
		Replace: "if d < 0 || st.status != StatusCritical {",
		Desc:    "deregister_critical_after 0 (off) is read as 0s: every instance that turns critical is deregistered at once",
	},

	// --- region/: catalog, cache, store-loss handling. ---
	{
		Name: "catalog-delete-wrong-key", Area: "region", File: "region/catalog.go",
		Find:    "\tdelete(set.byID, k.ID)",
		Replace: "\tdelete(set.byID, k.Service)",
		Desc:    "a delete removes the wrong map key: deregistered instances stay in caches and replicas",
	},
	{
		Name: "catalog-load-merges", Area: "region", File: "region/catalog.go",
		Find:    "\tc.strs = interner{}\n\tc.services = make(map[string]*serviceSet, len(counts))\n\tfor svc, n := range counts {\n\t\tc.services[c.strs.str(svc)] = &serviceSet{byID: make(map[string]*Instance, n)}\n\t}",
		Replace: "\tc.strs = interner{}\n\tif c.services == nil {\n\t\tc.services = make(map[string]*serviceSet, len(counts))\n\t}\n\tfor svc, n := range counts {\n\t\tif c.services[svc] == nil {\n\t\t\tc.services[c.strs.str(svc)] = &serviceSet{byID: make(map[string]*Instance, n)}\n\t\t}\n\t}",
		Desc:    "loading a snapshot merges it into the old contents: instances deleted since survive a full sync or reload",
	},
	{
		Name: "cache-trusts-behind-store", Area: "region", File: "region/cache.go",
		Find:    "return c.trustsLocked(epoch) && version >= c.cat.Version()",
		Replace: "return c.trustsLocked(epoch)",
		Desc:    "the sync endpoint serves a store snapshot that is behind the gateway's cache: other regions' replicas go back",
	},
	{
		Name: "cache-single-change-silent", Area: "region", File: "region/cache.go",
		Find:    "\tif len(done) > 0 {\n\t\tfor _, fn := range c.onChange {",
		Replace: "\tif len(done) > 1 {\n\t\tfor _, fn := range c.onChange {",
		Desc:    "off by one: a catch-up that applies a single change does not tell OnChange (version not published, no new check)",
	},
	{
		Name: "cache-detectloss-args-swapped", Area: "region", File: "region/cache.go",
		Find:    "if lost, reason := DetectLoss(mark, snap.Mark()); lost {",
		Replace: "if lost, reason := DetectLoss(snap.Mark(), mark); lost {",
		Desc:    "seen and found swapped: an emptied store is not taken as data loss, the cache loads it and forgets acknowledged writes",
	},
	{
		Name: "restore-version-not-above-seen", Area: "region", File: "region/storeloss.go",
		Find:    "return max(seen, store) + RestoreVersionGap",
		Replace: "return store + RestoreVersionGap",
		Desc:    "a restore numbers the catalog from the emptied store's version, below what readers saw: versions go back",
	},
	{
		Name: "restore-merge-inverted", Area: "region", File: "region/storeloss.go",
		Find:    "\t\tif !have[in.Key()] {",
		Replace: "\t\tif have[in.Key()] {",
		Desc:    "a restore writes back only the instances the store still has: registrations lost with the data stay lost",
	},
	{
		Name: "validate-port-zero", Area: "region", File: "region/validate.go",
		Find:    "if in.Port < 1 || in.Port > 65535 {",
		Replace: "if in.Port < 0 || in.Port > 65535 {",
		Desc:    "port 0 is accepted at registration: lookups hand out an address nobody can dial",
	},

	// --- store: in-memory twin and the Redis Lua scripts. ---
	{
		Name: "memstore-cas-stale-index", Area: "store", File: "region/memstore.go",
		Find:    "if c.IfIndex != 0 && cur.ModifyIndex != c.IfIndex {",
		Replace: "if c.IfIndex != 0 && cur.ModifyIndex < c.IfIndex {",
		Desc:    "compare-and-set accepts a stale index: a health write based on an old record overwrites a newer registration",
	},
	{
		Name: "memstore-loss-answers-current", Area: "store", File: "region/memstore.go",
		Find:    "return nil, false, nil // the store went back (data lost): reload",
		Replace: "return nil, true, nil // the store went back (data lost): reload",
		Desc:    "asked for changes since a version it no longer has, the store answers 'nothing new' instead of 'reload'",
	},
	{
		Name: "redis-lua-cas-delete-only", Area: "store", File: "region/redisstore/groupcommit.go",
		Find:    "elseif ifidx ~= '0' and redis.call('HGET', KEYS[2], field) ~= ifidx then",
		Replace: "elseif ifidx ~= '0' and op ~= 'put' and redis.call('HGET', KEYS[2], field) ~= ifidx then",
		Desc:    "the Redis apply script checks IfIndex on deletes only: conditional puts overwrite newer records",
	},
	{
		Name: "redis-lua-log-reach-off-by-one", Area: "store", File: "region/redisstore/redisstore.go",
		Find:    "if fv > since + 1 then return {ver, 0} end",
		Replace: "if fv > since + 2 then return {ver, 0} end",
		Desc:    "the Redis changes-since script accepts a trimmed log that misses one change: readers get a delta with a gap",
	},

	// --- federation/: core, replica, sync protocol. ---
	{
		Name: "core-gap-no-full-sync", Area: "federation", File: "federation/core.go",
		Find:    "\t\t\t\trs.needFull = true\n",
		Replace: "\t\t\t\trs.needFull = false\n",
		Desc:    "a delta that does not apply (gap) is retried as a delta forever instead of asking for a snapshot",
	},
	// core-timeout-from-last-fetch replaces core-fetch-never-times-out
	// (Tick timing fetches out after ReapAfter), which is equivalent: the
	// federator's context ends every fetch at FetchTimeout, so the transport
	// reports the failure when the core's timeout would have fired (README,
	// "Replaced mutants").
	{
		Name: "core-timeout-from-last-fetch", Area: "federation", File: "federation/core.go",
		Find:    "if rs.inflight && now.Sub(rs.fetchAt) >= c.cfg.FetchTimeout {",
		Replace: "if rs.inflight && now.Sub(rs.lastFetch) >= c.cfg.FetchTimeout {",
		Desc:    "wrong field: the fetch timeout counts from the last completed fetch, so a fetch issued after a quiet period times out at the next tick",
	},
	{
		Name: "core-older-snapshot-accepted", Area: "federation", File: "federation/core.go",
		Find:    "r.Catalog.Version() < rs.replica.Version() && !c.regionReset(now, f.Region, rs, r) {",
		Replace: "r.Catalog.Version() < rs.replica.Version() && c.regionReset(now, f.Region, rs, r) {",
		Desc:    "inverted reset test: a snapshot older than the replica replaces it unless the region was reset",
	},
	{
		Name: "core-late-snapshot-regresses", Area: "federation", File: "federation/core.go",
		Find:    "if r.Catalog == nil || r.Catalog.Version() <= have {",
		Replace: "if r.Catalog == nil {",
		Desc:    "a late (timed-out) snapshot is applied even when older than the replica: the replica goes back",
	},
	{
		Name: "core-stale-ignores-fetch-error", Area: "federation", File: "federation/core.go",
		Find:    "rs.replica.Version() < adv || rs.lastErr != \"\" ||",
		Replace: "rs.replica.Version() < adv ||",
		Desc:    "a replica whose last fetch failed is not marked stale: answers from a region we cannot sync look fresh",
	},
	{
		Name: "core-no-backoff", Area: "federation", File: "federation/core.go",
		Find:    "\trs.nextTry = now.Add(d)",
		Replace: "\trs.nextTry = now",
		Desc:    "the retry backoff is computed but not used: a failing region is fetched again at once, every tick",
	},
	{
		Name: "syncproto-snapshot-behind-cache", Area: "federation", File: "federation/syncproto.go",
		Find:    "trusts := func(v uint64, epoch string) bool { return s.Cache == nil || s.Cache.Trusts(v, epoch) }",
		Replace: "trusts := func(v uint64, epoch string) bool { return s.Cache == nil || s.Cache.TrustsChanges(epoch) }",
		Desc:    "the sync endpoint checks only the store's epoch, not its version: a store snapshot behind the gateway's cache is served",
	},

	// --- failover/: routing and pickers. ---
	{
		Name: "route-sort-typo", Area: "failover", File: "failover/route.go",
		Find:    "if c := statusRank(a.Status) - statusRank(b.Status); c != 0 {",
		Replace: "if c := statusRank(a.Status) - statusRank(a.Status); c != 0 {",
		Desc:    "typo a/b: instances are no longer sorted healthy first, so the endpoint list stops at the first unhealthy one",
	},
	{
		Name: "route-no-overprovisioning", Area: "failover", File: "failover/route.go",
		Find:    "a := float64(l.healthy) * p.Overprovisioning / float64(len(l.insts))",
		Replace: "a := float64(l.healthy) / float64(len(l.insts))",
		Desc:    "the overprovisioning factor is dropped: a region spills traffic away as soon as one instance is unhealthy",
	},
	{
		Name: "route-stale-bound-units", Area: "failover", File: "failover/route.go",
		Find:    "case v.Stale && v.Age > p.StalenessBound:",
		Replace: "case v.Stale && v.Age > p.StalenessBound*time.Second:",
		Desc:    "unit bug: the staleness bound is multiplied by a second again, so stale regions are never demoted",
	},
	{
		Name: "route-panic-local-only", Area: "failover", File: "failover/route.go",
		Find:    "frac := float64(healthy) / float64(total)",
		Replace: "frac := float64(levels[0].healthy) / float64(len(levels[0].insts))",
		Desc:    "panic is judged on the first level only: a mostly dead local region routes to its dead instances although other regions are healthy",
	},
	{
		Name: "picker-p2c-inverted", Area: "failover", File: "failover/picker.go",
		Find:    "if sb < sa || (sb == sa && la == lb && unobserved(b) && !unobserved(a)) {",
		Replace: "if sb > sa || (sb == sa && la == lb && unobserved(b) && !unobserved(a)) {",
		Desc:    "power of two choices picks the worse of the two: slow and failing endpoints attract traffic",
	},
	{
		Name: "picker-p2c-failure-penalty-min", Area: "failover", File: "failover/picker.go",
		Find:    "lat = max(lat, float64(p.cfg.FailurePenalty))",
		Replace: "lat = min(lat, float64(p.cfg.FailurePenalty))",
		Desc:    "max/min mix-up: fast failures are not penalized, so an instance that refuses at once looks fastest",
	},

	// --- drivers: health runner, federator, publisher, handlers. ---
	{
		Name: "healthrunner-write-without-cas", Area: "driver", File: "region/statuswriter.go",
		Find:    "ch, err = w.Store.Put(ctx, in, Cond{IfIndex: e.IfIndex})",
		Replace: "ch, err = w.Store.Put(ctx, in, Cond{})",
		Desc:    "the health runner writes statuses unconditionally: a status based on an old record overwrites a re-registration",
	},
	{
		Name: "healthrunner-heartbeat-ack-unwritten", Area: "driver", File: "region/healthrunner.go",
		Find:    "\t\t\tif !errors.Is(werr, ErrConflict) {\n\t\t\t\treturn Instance{}, werr\n\t\t\t}",
		Replace: "\t\t\t_ = werr",
		Desc:    "a heartbeat is acknowledged although writing its status failed (the store is down): the client thinks it is passing",
	},
	{
		Name: "federator-failure-reported-by-addr", Area: "driver", File: "federation/federator.go",
		Find:    "f.core.FetchFailed(now, e, err)",
		Replace: "f.core.SyncFailed(now, e.Region, e.Addr, err)",
		Desc:    "a failed fetch is reported under the gateway's address instead of its name: the core ignores it and waits for the timeout",
	},
	{
		Name: "federator-persist-inverted", Area: "driver", File: "federation/federator.go",
		Find:    "\t\t\tif f.cfg.Replicas == nil {\n\t\t\t\tcontinue",
		Replace: "\t\t\tif f.cfg.Replicas != nil {\n\t\t\t\tcontinue",
		Desc:    "inverted nil check: replicas are never persisted, so a restarted gateway knows nothing of other regions",
	},
	{
		Name: "publisher-drops-pending-version", Area: "driver", File: "federation/publisher.go",
		Find:    "\t\tp.loop.After(wait)\n",
		Replace: "\t\t_ = wait // the Set that kicked us is taken as handled\n",
		Desc:    "the publisher drops a version wanted during its interval instead of waiting it out: the last version is advertised only at the next change",
	},
}
