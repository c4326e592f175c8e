package sim

import (
	"strings"
	"testing"
	"time"
)

func TestInstantGuard(t *testing.T) {
	w := &world{}
	step := func(at time.Duration) error {
		err := w.instantGuard(at)
		w.now = at
		w.events++
		return err
	}
	// Time moving on resets the count.
	for i := range 3 * maxInstantEvents / 2 {
		if err := step(time.Duration(i/1000) * time.Millisecond); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	at := w.now + time.Second
	for i := range maxInstantEvents {
		if err := step(at); err != nil {
			t.Fatalf("event %d at one instant: %v", i, err)
		}
	}
	err := step(at)
	if err == nil || !strings.Contains(err.Error(), "livelock") {
		t.Fatalf("event %d at one instant: err = %v, want a livelock error", maxInstantEvents+1, err)
	}
}
