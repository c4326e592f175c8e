//go:build !race

package gateway

// raceEnabled: under the race detector sync.Pool drops items at random,
// so allocation counts are not comparable between runs.
const raceEnabled = false
