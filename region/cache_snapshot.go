package region

// Snapshot returns the cached catalog with the life of the store it comes
// from: Epoch and RestoredFrom are where the cache last saw the store (its
// StoreMark), read under the same lock as the catalog. A sync answer served
// from the cache carries them, so other regions can tell a catalog that
// lags from one of a store that lost its data and started over.
func (c *Cache) Snapshot() Snapshot {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.cat.Snapshot()
	s.Epoch, s.RestoredFrom = c.mark.Epoch, c.mark.RestoredFrom
	return s
}
