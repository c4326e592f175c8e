package federation

// Update calls fn with the core under the federator's write lock, then
// wakes the federator's loop (fn may have made a replica due for
// persisting).
func (f *Federator) Update(fn func(*Core)) {
	f.mu.Lock()
	fn(f.core)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

var _ CoreUpdater = (*Federator)(nil)
