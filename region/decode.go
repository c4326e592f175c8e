package region

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Registration is the body of PUT /v1/services/{service}/instances/{id}.
type Registration struct {
	Address string            `json:"address"`
	Port    int               `json:"port"`
	Zone    string            `json:"zone,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Weight  int               `json:"weight,omitempty"`
	Status  Status            `json:"status,omitempty"`
	Check   *Check            `json:"check,omitempty"`
}

// ErrBodyTooLarge is returned for request bodies over MaxBodyBytes.
var ErrBodyTooLarge = errors.New("request body is larger than 64 KiB")

// InitialStatus is the status of a new registration that names none: an
// instance without a check starts passing (it vouches for itself); an
// instance with a check starts critical and turns passing after
// success_before_passing good probes or its first passing heartbeat, so no
// traffic reaches it before it has been seen healthy.
func InitialStatus(c *Check) Status {
	if c == nil {
		return StatusPassing
	}
	return StatusCritical
}

// DecodeRegistration reads a registration body for service/id, fills
// defaults, and returns the validated instance with its times set to now.
// Errors are *FieldError (naming the field), ErrBodyTooLarge, or a syntax
// error naming the body.
func DecodeRegistration(body []byte, service, id string, now time.Time) (Instance, error) {
	if len(body) > MaxBodyBytes {
		return Instance{}, ErrBodyTooLarge
	}
	var r Registration
	if err := decodeStrict(body, &r); err != nil {
		return Instance{}, err
	}
	in := Instance{
		ID: id, Service: service,
		Address: r.Address, Port: r.Port, Zone: r.Zone,
		Tags: r.Tags, Meta: r.Meta, Weight: r.Weight, Status: r.Status,
		RegisteredAt: now, UpdatedAt: now,
	}
	if r.Check != nil {
		c := r.Check.withDefaults()
		in.Check = &c
	}
	if in.Weight == 0 {
		in.Weight = DefaultWeight
	}
	if in.Status == "" {
		in.Status = InitialStatus(in.Check)
	}
	if len(in.Tags) == 0 {
		in.Tags = nil
	}
	if len(in.Meta) == 0 {
		in.Meta = nil
	}
	if err := in.Validate(); err != nil {
		return Instance{}, err
	}
	return in, nil
}

// Heartbeat is the optional body of PUT .../heartbeat.
type Heartbeat struct {
	Status Status `json:"status,omitempty"`
	Output string `json:"output,omitempty"`
}

// DecodeHeartbeat reads a heartbeat body; an empty body means passing.
func DecodeHeartbeat(body []byte) (Heartbeat, error) {
	if len(body) > MaxBodyBytes {
		return Heartbeat{}, ErrBodyTooLarge
	}
	var h Heartbeat
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &h); err != nil {
			return Heartbeat{}, err
		}
	}
	if h.Status == "" {
		h.Status = StatusPassing
	}
	if _, err := ParseStatus(string(h.Status)); err != nil {
		return Heartbeat{}, fieldErr("status", "%v", err)
	}
	if len(h.Output) > MaxOutputLen {
		return Heartbeat{}, fieldErr("output", "at most %d bytes", MaxOutputLen)
	}
	return h, nil
}

// decodeStrict decodes one JSON object, rejecting unknown fields and
// trailing data, and turns encoding/json's errors into FieldErrors where a
// field is known.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "body", Msg: "unexpected data after the JSON object"}
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return &FieldError{Field: "body", Msg: "is empty; a JSON object is required"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Field: "body", Msg: "malformed JSON: unexpected end of input"}
	case errors.As(err, &syn):
		return &FieldError{Field: "body", Msg: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		f := typ.Field
		if f == "" {
			f = "body"
		}
		return &FieldError{Field: f, Msg: fmt.Sprintf("must be a JSON %s, got %s", jsonKind(typ.Type.String()), typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &FieldError{Field: name, Msg: "unknown field"}
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	// Errors from UnmarshalText (durations) arrive wrapped without a field.
	return &FieldError{Field: "body", Msg: err.Error()}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "number"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.HasPrefix(goType, "*"):
		return "object"
	case goType == "region.Duration":
		return "duration string"
	}
	return "string"
}
