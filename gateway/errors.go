package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/meridian-sd/meridian/region"
)

// apiError is the JSON body of every error response.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// Outcome is "unknown" on a 503 after which a write may or may not
	// have been applied: read it back (or repeat it with the same
	// Idempotency-Key) to learn which.
	Outcome string `json:"outcome,omitempty"`
}

// retryAfter is the Retry-After value, in seconds, on 503 responses.
const retryAfter = 2

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"encoding response failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	b = append(b, '\n')
	w.Write(b)
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

// writeStoreError maps an error from the region package to a response.
func writeStoreError(w http.ResponseWriter, err error) {
	var fe *region.FieldError
	switch {
	case errors.Is(err, region.ErrBodyTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body", err.Error())
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Field, fe.Error())
	case errors.Is(err, region.ErrNotFound):
		writeError(w, http.StatusNotFound, "id", err.Error())
	case errors.Is(err, region.ErrNotOwner):
		writeError(w, http.StatusServiceUnavailable, "", "check ownership is moving between gateways; retry: "+err.Error())
	case errors.Is(err, region.ErrConflict):
		// Only internal writes are conditional; a client never sees this
		// unless a health write raced it. Asking to retry is right.
		writeError(w, http.StatusServiceUnavailable, "", "instance changed concurrently; retry: "+err.Error())
	case errors.Is(err, region.ErrOutcomeUnknown):
		// The store's own error names its address: it goes to the log
		// (the caller logs it), never to the client.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, apiError{Outcome: "unknown",
			Error: "registry store did not answer: the write may or may not have been applied; read it back, or repeat it with the same Idempotency-Key header"})
	default:
		writeError(w, http.StatusServiceUnavailable, "", "registry store unavailable, nothing was written; retry later")
	}
}

// methods answers 405 unless r's method is one of allowed.
func methods(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	allow := ""
	for i, m := range allowed {
		if i > 0 {
			allow += ", "
		}
		allow += m
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "", "method "+r.Method+" not allowed; use "+allow)
	return false
}
