package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	"github.com/meridian-sd/meridian/region"
)

// idempotencyHeader carries a client's write id: a repeat of a write with
// the same key within region.WriteIDTTL returns the first write's result
// instead of applying it again, so a client that lost an answer can repeat
// its request safely, even through another gateway of the region.
const idempotencyHeader = "Idempotency-Key"

// writeID returns the store write id of a request: derived from its
// Idempotency-Key (scoped to the operation and instance, so the same key on
// another instance is another write), or a new random id.
func writeID(r *http.Request, op string, k region.Key) (string, error) {
	if key := r.Header.Get(idempotencyHeader); key != "" {
		if err := region.ValidateWriteID(key); err != nil {
			return "", err
		}
		h := sha256.Sum256([]byte(key + "\x00" + op + "\x00" + k.Service + "\x00" + k.ID))
		return "c:" + hex.EncodeToString(h[:16]), nil
	}
	var b [16]byte
	rand.Read(b[:])
	return "g:" + hex.EncodeToString(b[:]), nil
}

// registrar is the logic of the registration handlers (region.Registrar).
func (s *Server) registrar() *region.Registrar {
	return &region.Registrar{Store: s.cfg.Store, Cache: s.cfg.Cache, Logger: s.cfg.Logger}
}

// loading answers 503 with Retry-After while the gateway has not loaded its
// region's catalog: an empty answer then would be wrong (and its version,
// 0, would go backwards for a client that polled another gateway).
func (s *Server) loading(w http.ResponseWriter) bool {
	if s.cfg.Cache.Loaded() {
		return false
	}
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the gateway is still loading its region's catalog from the store; retry shortly"})
	return true
}

// storeErrorText describes a store failure for an answer: what kind of
// failure, never the store's address or its own words (they go to the log),
// since /v1/health is open to anyone.
func storeErrorText(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "the registry store does not answer in time (details in the gateway's log)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the registry store refuses connections (details in the gateway's log)"
	}
	return "the registry store is unreachable or failing (details in the gateway's log)"
}

// writeInstance answers 200 with in, as writeJSON would, encoded without
// reflection (region.Instance.AppendJSON): the registration's answer.
func writeInstance(w http.ResponseWriter, in *region.Instance) {
	buf := instanceBufs.Get().(*[]byte)
	defer instanceBufs.Put(buf)
	b, ok := in.AppendJSON((*buf)[:0])
	if !ok {
		writeJSON(w, http.StatusOK, in) // answers its error
		return
	}
	b = append(b, '\n')
	*buf = b
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b) // copied into the connection's buffer
}

// instanceBufs holds writeInstance's buffers.
var instanceBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
