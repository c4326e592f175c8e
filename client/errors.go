package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Errors.
var (
	// ErrClosed is returned by a Client after Close.
	ErrClosed = errors.New("meridian client: closed")
	// ErrNoEndpoints: the lookup returned no endpoint for the service.
	ErrNoEndpoints = errors.New("no endpoints")
	// ErrCircuitOpen: every endpoint's circuit breaker refused the request.
	ErrCircuitOpen = errors.New("every endpoint's circuit breaker is open")
)

// APIError is an error answer of a gateway: {"error": "...", "field": "..."}.
type APIError struct {
	StatusCode int
	Message    string
	// Field names the offending input on 400 answers.
	Field string
	// RetryAfter is the Retry-After of 503 answers.
	RetryAfter time.Duration
	// Gateway is the base URL of the gateway that answered.
	Gateway string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("gateway %s answered %d %s", e.Gateway, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsNotFound reports whether err is a gateway's 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readAPIError consumes and closes an error answer.
func readAPIError(gateway string, resp *http.Response) *APIError {
	defer resp.Body.Close()
	e := &APIError{StatusCode: resp.StatusCode, Gateway: gateway}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Field = body.Error, body.Field
	} else if len(b) > 0 {
		e.Message = string(b[:min(len(b), 200)])
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// drain reads a little of a body so that its connection can be reused,
// and closes it.
func drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	body.Close()
}
