// Package purity holds the test that keeps Meridian's deciding core free of
// I/O (DESIGN.md, "a core without I/O, two drivers"): core files may not
// import the network, Redis or Serf packages, read the clock, sleep or set
// timers, use the global math/rand source, or start goroutines. The list
// of core files, and the one of drivers that are excluded by design, is in
// purity_test.go; every file of region/ and federation/ must be on one of
// them. The package has no code of its own.
package purity
