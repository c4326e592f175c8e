package federation

import "hash/fnv"

// Owner picks, by rendezvous (highest random weight) hashing, which of the
// gateways owns key: each gateway scores hash(gateway, key) and the highest
// wins. When a gateway leaves, only its keys move; when one joins, it takes
// about 1/n of the keys from the others. Deterministic across processes.
// It returns "" when gateways is empty.
func Owner(key string, gateways []string) string {
	best, bestScore := "", uint64(0)
	for _, g := range gateways {
		s := score(g, key)
		if best == "" || s > bestScore || (s == bestScore && g < best) {
			best, bestScore = g, s
		}
	}
	return best
}

func score(gateway, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(gateway))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return mix64(h.Sum64())
}

// mix64 is splitmix64's finalizer: FNV alone spreads similar keys poorly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
