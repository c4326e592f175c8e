package region

import (
	crand "crypto/rand"
	"encoding/hex"
)

// NewEpoch returns a random store epoch (16 hex digits).
func NewEpoch() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
