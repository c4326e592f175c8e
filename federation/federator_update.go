package federation

// Update calls fn with the core under the federator's write lock. It does
// not tick the core: the Watcher, which calls it on every step, kicks the
// federator (Kick) only when an answer moved a replica (due for
// persisting); the federator ticks at least once a second anyway.
func (f *Federator) Update(fn func(*Core)) {
	f.mu.Lock()
	fn(f.core)
	f.mu.Unlock()
}

var _ CoreUpdater = (*Federator)(nil)
