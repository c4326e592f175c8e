package region

// Mark returns where the cache last found its store: the version it has
// reached and the store's epoch ("" while not known).
func (c *Cache) Mark() StoreMark {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mark
}
