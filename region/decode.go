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
	// Weight is 1-1000, DefaultWeight when absent; 0 drains the instance:
	// it stays registered and listed but is never picked, proxied to or
	// given a share of traffic.
	Weight *int   `json:"weight,omitempty"`
	Status Status `json:"status,omitempty"`
	Check  *Check `json:"check,omitempty"`
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
	if !decodeRegistrationFast(body, &r) { // the common case (decodefast.go)
		r = Registration{}
		if err := decodeStrict(body, &r); err != nil {
			return Instance{}, err
		}
	}
	in := Instance{
		ID: id, Service: service,
		Address: r.Address, Port: r.Port, Zone: r.Zone,
		Tags: r.Tags, Meta: r.Meta, Weight: DefaultWeight, Status: r.Status,
		RegisteredAt: now, UpdatedAt: now,
	}
	if r.Weight != nil {
		in.Weight = *r.Weight
	}
	if r.Check != nil {
		c := r.Check.withDefaults()
		in.Check = &c
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

// decodeStrict decodes one JSON object, rejecting unknown fields, duplicate
// keys and trailing data, and turns encoding/json's errors into FieldErrors
// where a field is known.
func decodeStrict(body []byte, v any) error {
	if err := CheckDuplicateKeys(body); err != nil {
		return err
	}
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

// maxJSONDepth bounds the nesting of a request body.
const maxJSONDepth = 32

// CheckDuplicateKeys rejects a JSON document in which an object repeats a
// key, or, in an object that decodes into a struct (the top level and
// "check"; encoding/json matches those names case-insensitively), has two
// keys differing only in case ("port":80,"PORT":81): encoding/json would
// silently keep the last one. Map objects such as "meta" may hold keys that
// differ in case. Syntax errors are left to the decoder, which names them.
func CheckDuplicateKeys(body []byte) error {
	if noDuplicateKeys(body) {
		return nil // the common case, without a token stream (dupkeys.go)
	}
	return checkDuplicateKeysSlow(body)
}

// checkDuplicateKeysSlow is CheckDuplicateKeys on encoding/json's token
// stream: it names the problem.
func checkDuplicateKeysSlow(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var value func(path string, depth int) error
	value = func(path string, depth int) error {
		if depth > maxJSONDepth {
			return fieldErr("body", "JSON nested deeper than %d levels", maxJSONDepth)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			exact := map[string]bool{}
			folded := map[string]string{}
			structLike := path == "" || path == "check"
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil
				}
				k, _ := kt.(string)
				field := k
				if path != "" {
					field = path + "." + k
				}
				if exact[k] {
					return fieldErr(field, "duplicate key %q", k)
				}
				exact[k] = true
				if structLike {
					lk := strings.ToLower(k)
					if prev, ok := folded[lk]; ok {
						return fieldErr(field, "duplicate key: %q and %q differ only in case", prev, k)
					}
					folded[lk] = k
				}
				if err := value(field, depth+1); err != nil {
					return err
				}
			}
			dec.Token()
		case '[':
			for i := 0; dec.More(); i++ {
				if err := value(fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
					return err
				}
			}
			dec.Token()
		}
		return nil
	}
	return value("", 0)
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
