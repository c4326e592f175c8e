//go:build race

package gossip

// raceEnabled: the race detector slows real Serf down 5 to 10 times.
const raceEnabled = true
