// Package gossip is a pure model of Serf/memberlist failure detection and
// gossip spread, for the simulator. Given a profile's timing (the same
// settings serfmember.NewSerfMembership uses: ProfileByName) and the pool
// size, it samples from a passed *rand.Rand how long a crash or a cut
// takes to be detected, a broadcast to spread, and a healed or restarted
// member to be seen alive again. It never reads the clock, starts
// goroutines or touches the network; the same seed gives the same samples.
//
// # Which method for which event
//
//	a member crashes (or freezes)         DetectFailure(rng, n)
//	a cut: observer's side of size s      DetectCut(rng, n, s)     (s = n-1: one member cut off)
//	a tag change, join, graceful leave    Spread(rng, n)
//	a cut of length d heals               RejoinCut(rng, n, s, d)  (Rejoin: s = n-1, a long cut)
//	a crashed member restarts and joins   Restart(rng, n)
//	loss on a link no third member relays LossSpells(rng, n, lossAB, lossBA, span)  (per pair, both views)
//
// Each call samples one observer's view of one member; draw once per
// (observer, member) pair.
//
// # Formulas and their sources
//
// From hashicorp/memberlist v0.7.0 (and serf v0.11.0 where said):
//
//   - Probing (state.go probe, probeNode): each ProbeInterval a member
//     probes the next of its n-1 others in a shuffled round-robin list,
//     reshuffled each round (resetNodes), so the first probe of a crashed
//     member after the crash comes after a uniform phase plus 0..2(n-1)-1
//     intervals. A probe of an unreachable member (ping, ProbeTimeout,
//     IndirectChecks indirect pings and a TCP fallback) ends, failed, a
//     full probe interval after it started: the member is then suspected.
//   - Lifeguard awareness (awareness.go, probeNode): a failed probe whose
//     indirect helpers sent no nack raises the prober's score by one per
//     silent helper (by one with no helper), a successful probe lowers it
//     by one, capped at AwarenessMaxMultiplier-1; probes last
//     ProbeInterval × (score+1). It slows a cut-off member's probing of the
//     other side up to 8×.
//   - Suspicion (util.go suspicionTimeout; state.go suspectNode;
//     suspicion.go): min = SuspicionMult × max(1, log10 n) × ProbeInterval,
//     max = SuspicionMaxTimeoutMult × min, k = SuspicionMult-2 expected
//     confirmations, k = 0 when n-2 < k. The timer starts at max (at min
//     when k is 0) with the first suspect message and, after c ≤ k
//     confirmations (independent suspicions from other members, each
//     reaching the observer by gossip), is max - log(c+1)/log(k+1) ×
//     (max-min) from the start, at least min. When it fires the member is
//     dead, and the dead message spreads by gossip: an observer marks the
//     member failed at its own timeout or on the first member's dead
//     message, whichever is first. A member cut off from everyone gets no
//     confirmations and waits max (min when k is 0).
//   - Gossip (state.go schedule, gossip; util.go retransmitLimit;
//     queue.go): each GossipInterval, at a random phase per member, a
//     member sends its queued broadcasts to GossipNodes random others; a
//     broadcast goes out RetransmitMult × ceil(log10(n+1)) times from each
//     member that has it. If it dies out before reaching a member, push/pull
//     (state.go pushPullTrigger, util.go pushPullScale: every
//     PushPullInterval × (ceil(log2 n - log2 32) + 1) above 32 members,
//     with one random member) carries it.
//   - Rejoin (serf.go handleReconnect, reconnect): memberlist alone never
//     crosses a cut after both sides marked each other dead (it probes and
//     pushes/pulls only with members it holds alive). Every
//     ReconnectInterval each member with failed members joins one of them
//     at random, with probability failed/alive; a join into the cut blocks
//     the loop for TCPTimeout. In the first join after the heal both ends
//     see the whole other side alive; the news spreads by gossip.
//   - Restart: a restarted member's join shows it its own death; it
//     refutes with a higher incarnation (state.go refute) and gossips that
//     from its first gossip tick, one GossipInterval after it starts.
//
// # Simplifications
//
// Broadcasts piggybacked on probes and acks are ignored (they only speed
// spread up slightly). A cut-off prober's skipping of members it already
// marked dead is ignored (it makes an isolated member's detection of the
// last members in a big pool slower than real). Network latency is zero
// (the simulator's network adds its own). A heal right after detection,
// while dead messages are still being gossiped, can make real Serf flap
// (report a member of its own side failed, then alive); the model does not.
//
// # How the simulator uses it
//
// sim/membership.go draws, for each (observer, member) pair whose truth
// changes: DetectCut with the observer's side (the running gateways it
// still reaches, directly or through a third region, as memberlist's
// indirect probes do) when the member crashes or a partition or one-way
// cut separates them; RejoinCut with that side and the cut's length when
// the cut heals; Restart when the member restarts (after a crash or a
// graceful leave); Spread for a leave and for version tags. A restarted
// gateway learns the live members from its join's push/pull, one round
// trip. Loss on a link (a scenario's loss, or the degrade fault) reaches
// membership through LossSpells (sim/linkloss.go): for every pair of
// gateways on a lossy link that no running third region bridges, it
// replays, from the moment the link's loss or the pair's truth changes
// until it changes again, a six-hour LossSpells sample of that exposure
// (loss each way, members on the link; drawn once a run, from the run's
// seed) from an offset drawn from the pair's own seeded stream, and feeds
// the false failures each end raises about the other to the cores as
// failed and alive events, one spell at a time. A link a third region bridges gets none: memberlist's indirect
// probes and gossip go around it, and real Serf marks no one failed at 30%
// loss (lossy_test.go). A one-way cut is a cut (both ends see the other
// failed, as measured: see "Checked against real Serf").
//
// # Link loss
//
// LossSpells (loss.go) replays, event by event with zero latency, what
// memberlist does between two members whose every path crosses the lossy
// link: each probe tick walks the shuffled list of members, skipping
// itself and dead ones and giving up after as many steps as the list is
// long (state.go probe: with two members some ticks probe no one); a
// probe of the other lasts up to ProbeInterval × (awareness+1) and is a
// UDP ping (piggybacking its queued broadcasts; to a suspect member, the
// suspect message) that the other acks (piggybacking its own); when ping
// or ack is lost, up to IndirectChecks helpers (the other members on the
// link, n-2 at most) ping across it and a TCP ping runs over a stream,
// whose dial is lost with the packet loss but which, once up, loses
// nothing (TCP retransmits); all failed means suspect (state.go
// probeNode). The suspicion runs SuspicionMin(n) when no confirmation is
// expected (two members), else SuspicionMax(n) (the others reach the
// member, so nobody confirms), then the member is dead: a failed event.
// Hearing it is suspected or dead (piggybacked, gossiped, pulled), a member
// refutes with a higher incarnation (state.go refute, which also raises its
// awareness); hearing that, the other marks it alive again (a join event
// after dead). Broadcasts go out RetransmitLimit(n) times in all (queue.go),
// piggybacked or every GossipInterval, to a dead member only for
// GossipToTheDeadTime, after which it is forgotten (resetNodes) and any
// alive message about it is news; every PushPullPeriod(n) each
// pushes/pulls with a member it holds alive, and every ReconnectInterval
// serf joins a member it holds failed (serf.go reconnect); a lost dial
// blocks that loop for TCPTimeout.
//
// Against real Serf (lossmeasure_test.go, opt-in, 14s:
// go test ./sim/gossip/ -run TestLossMeasure -v -args -lossmeasure; two
// members alone on a link that loses each packet and each stream dial with
// the given probability, both ways, one hour of virtual time, seeds 1 and
// 2, two runs: real Serf's goroutines make runs differ), false failed
// events of both ends together per hour and the mean time until the member
// is seen alive again, real (four samples; mean) / model (mean of 20
// hours). TestLossModelMatchesSerf checks it in the normal run: rate within
// 2x where real Serf raises 10 an hour or more, within 4x for the rarer
// rows, dead spell within 2x where there are enough events.
//
//	local 30%  failed/h  56 46 55 53 (52.5) / 45.0     dead  3s 4s 4s 4s (3.75s) / 3.2s
//	local 60%  failed/h  177 165 166 165 (168) / 256   dead  7s 7s 6s 7s (6.75s) / 6.4s
//	lan 30%    failed/h  3 8 5 5 (5.25) / 5.0         dead  12s 9s 8s 19s (12s) / 14.4s
//	lan 60%    failed/h  71 69 71 82 (73.2) / 91.5    dead  30s 34s 29s 27s (30s) / 31s
//	wan 30%    failed/h  1 2 1 1 (1.25) / 0.6         dead  1s 9s 15s 48s (18s) / 30.4s
//	wan 60%    failed/h  11 11 16 15 (13.2) / 19.2    dead  72s 57s 38s 46s (53s) / 50.5s
//	relayed (3 members, 30%, local and wan): 0 in 20m / 0
//
// The rates are 0.86x to 1.52x of real Serf's (the model above real at 60%
// loss: some refutation path real memberlist has is still missing, or its
// goroutines space probes out more), 0.5x for the wan 30% row (a handful
// of events); the dead spells 0.85x to 1.2x (wan 30%: 1.7x, from 5
// events). The relayed row is the simulator's rule (no third region
// bridging the link), not a LossSpells call. Not
// modelled: latency; the other members on the link (more than one
// gateway per region) only as indirect-probe helpers, a longer suspicion
// and, roughly, as gossip relays (a broadcast also reaches the other end
// after a Spread, stretched by 1/(1-loss)); they are not probed through
// the loss themselves; partial relays (a third region that reaches only
// one end) count as no relay. Nothing real backs the rows with more than
// two members on the link: with two gateways a side the model gives no
// false failure in 23 hours at 30% loss (local).
//
// # Checked against real Serf
//
// modelcheck_test.go runs real Serf (serfmember.SerfMembership on a
// serfmember.MemNetwork, in testing/synctest virtual time) through these
// events for the local, lan and wan profiles, pools of 3 to 5 (15 runs
// each) and of 8 and 16 (4 runs; 16 with -modelcheck.full; fewer under
// -race, see checkPlans), and checks
// the model's distribution against the measurements (see
// TestModelMatchesSerf for the tolerances); run it with -v for the full
// table (min, median, max against the model's p5, p50, p95). Medians,
// real / model, from
//
//	go test ./sim/gossip/ -run TestModelMatchesSerf -v -modelcheck.full
//
// pools of 3 to 5 (15 runs a profile):
//
//	                                local          lan            wan
//	crash seen failed               4.73s/4.65s    5.83s/5.66s    39.4s/38.3s
//	cut 1|n-1: n-1 see it failed    4.80s/4.63s    5.57s/5.68s    38.2s/38.3s
//	cut 1|n-1: it sees n-1 failed   21.7s/21.6s    28.4s/27.4s    55.0s/49.3s
//	heal 1|n-1: n-1 see it alive    1.63s/1.84s    10.6s/11.6s    22.2s/15.6s
//	heal 1|n-1: it sees n-1 alive   1.08s/1.73s    10.4s/11.0s    22.2s/15.1s
//	cut halves: other side failed   5.76s/5.68s    12.7s/12.7s    42.1s/39.7s
//	heal halves: other side alive   1.31s/1.11s    5.77s/6.67s    18.0s/14.3s
//	restart seen alive              100ms/100ms    200ms/200ms    500ms/500ms
//	tag change spread               70ms/60ms      120ms/100ms    340ms/240ms
//	one-way 1->n-1: n-1 see failed  5.02s/4.66s    5.51s/5.68s    39.6s/38.1s
//	one-way 1->n-1: it sees failed  21.7s/21.6s    28.4s/27.5s    55.1s/49.4s
//
// (A one-way cut is checked against the cut's functions, as the simulator
// uses them: the cut-off member's acks and refutations are lost, so both
// sides see the other failed. The harness black-holes stream dials both
// ways through it, as a TCP handshake fails.)
//
// pools of 8 and 16 (16 runs a profile):
//
//	                                local          lan            wan
//	crash seen failed               5.47s/5.23s    6.25s/6.46s    44.1s/43.7s
//	cut 1|n-1: n-1 see it failed    5.28s/5.23s    6.27s/6.47s    43.6s/43.6s
//	cut 1|n-1: it sees n-1 failed   43.1s/46.3s    1m5.5s/1m5.7s  6m40s/6m40s
//	heal 1|n-1: n-1 see it alive    1.78s/1.97s    8.31s/11.4s    15.2s/14.8s
//	heal 1|n-1: it sees n-1 alive   1.71s/1.70s    8.20s/11.3s    15.0s/13.2s
//	cut halves: other side failed   6.08s/6.53s    8.23s/9.13s    57.3s/1m11s
//	heal halves: other side alive   390ms/400ms    2.99s/1.98s    2.18s/3.85s
//	restart seen alive              140ms/150ms    280ms/270ms    630ms/590ms
//	tag change spread               100ms/100ms    150ms/170ms    370ms/370ms
package gossip
