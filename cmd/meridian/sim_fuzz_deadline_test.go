package main

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// Shrinking stops at the time budget's end (a failing run can be slow: one
// took a minute per run), before running anything once it has passed.
func TestShrinkStopsAtDeadline(t *testing.T) {
	sc, err := scenarios.Load("testdata/impossible.yaml")
	if err != nil {
		t.Fatal(err)
	}
	small, runs := shrink(sc, 1, "expectation availability", 10, time.Now().Add(-time.Second))
	if runs != 0 || len(small.Timeline) != len(sc.Timeline) {
		t.Errorf("past the deadline: %d runs, %d of %d timeline entries; want no run", runs, len(small.Timeline), len(sc.Timeline))
	}
}
