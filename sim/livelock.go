package sim

import (
	"fmt"
	"time"
)

// maxInstantEvents bounds the events processed at one simulated instant.
// Real work at one instant is bounded by the world's size (the largest
// built-in scenario processes a few thousand); a driver that re-arms itself
// at a deadline that is already due (a state machine whose NextDeadline and
// Tick disagree) would spin forever without time moving on. In production
// the same bug is a busy loop that writes or polls as fast as it can.
const maxInstantEvents = 1_000_000

// instantGuard counts the events at the current instant and returns an
// error once they exceed maxInstantEvents.
func (w *world) instantGuard(at time.Duration) error {
	if at != w.now || w.events == 0 {
		w.instantEvents = 0
	}
	w.instantEvents++
	if w.instantEvents > maxInstantEvents {
		return fmt.Errorf("livelock: more than %d events at simulated time %s without time moving on (something re-arms itself at a deadline that is already due)",
			maxInstantEvents, at)
	}
	return nil
}
