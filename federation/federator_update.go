package federation

// Update calls fn with the core under the federator's write lock, then
// kicks the federator's loop (fn may have made a replica due for
// persisting, or changed what the next tick decides).
func (f *Federator) Update(fn func(*Core)) {
	f.mu.Lock()
	fn(f.core)
	f.mu.Unlock()
	f.loop.Kick()
}

var _ CoreUpdater = (*Federator)(nil)
