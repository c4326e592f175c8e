package region

import (
	"fmt"
	"time"
)

// Status is the health status of an instance.
type Status string

// The three statuses. An instance is routable when it is passing (and, where
// the caller accepts it, warning).
const (
	StatusPassing  Status = "passing"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
)

// ParseStatus returns the Status named by s, or an error.
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusPassing, StatusWarning, StatusCritical:
		return Status(s), nil
	}
	return "", fmt.Errorf("unknown status %q (want passing, warning or critical)", s)
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("10s", "1m30s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"10s\"): %q", b)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Check defines how a gateway decides an instance's health. Exactly one of
// HTTP, TCP and TTL is set.
type Check struct {
	HTTP string   `json:"http,omitempty"`
	TCP  string   `json:"tcp,omitempty"`
	TTL  Duration `json:"ttl,omitempty"`

	Interval Duration `json:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`

	// SuccessBeforePassing is how many consecutive passing probes turn a
	// non-passing instance passing. FailuresBeforeCritical is how many
	// consecutive failed probes turn it critical. Both default to 1.
	SuccessBeforePassing   int `json:"success_before_passing,omitempty"`
	FailuresBeforeCritical int `json:"failures_before_critical,omitempty"`

	// DeregisterCriticalAfter removes an instance that stayed critical this
	// long. Zero keeps it.
	DeregisterCriticalAfter Duration `json:"deregister_critical_after,omitempty"`
}

// Kind returns "http", "tcp" or "ttl".
func (c *Check) Kind() string {
	switch {
	case c.HTTP != "":
		return "http"
	case c.TCP != "":
		return "tcp"
	case c.TTL != 0:
		return "ttl"
	}
	return ""
}

// Check defaults.
const (
	DefaultCheckInterval = 10 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
)

// WithDefaults returns the check with its zero fields filled, as a
// registration stores it.
func (c Check) WithDefaults() Check { return c.withDefaults() }

// withDefaults fills the zero fields of a check.
func (c Check) withDefaults() Check {
	if c.Interval == 0 && c.Kind() != "ttl" {
		c.Interval = Duration(DefaultCheckInterval)
	}
	if c.Timeout == 0 && c.Kind() != "ttl" {
		c.Timeout = Duration(min(DefaultCheckTimeout, c.Interval.Std()))
	}
	if c.SuccessBeforePassing == 0 {
		c.SuccessBeforePassing = 1
	}
	if c.FailuresBeforeCritical == 0 {
		c.FailuresBeforeCritical = 1
	}
	return c
}

// Instance is one registered endpoint of a service.
//
// RegisteredAt is kept when an instance is registered again; UpdatedAt
// changes on every write. ModifyIndex is the catalog version of the last
// write to the instance (set by the Store, not by callers).
type Instance struct {
	RegisteredAt time.Time         `json:"registered_at"`
	ID           string            `json:"id"`
	Service      string            `json:"service"`
	Address      string            `json:"address"`
	Port         int               `json:"port"`
	Zone         string            `json:"zone,omitempty"`
	Tags         []string          `json:"tags,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"`
	Weight       int               `json:"weight"`
	Status       Status            `json:"status"`
	Output       string            `json:"output,omitempty"`
	Check        *Check            `json:"check,omitempty"`
	UpdatedAt    time.Time         `json:"updated_at"`
	ModifyIndex  uint64            `json:"modify_index"`
	// RegisteredBy is the accessor id of the ACL token that registered
	// the instance (never the secret); empty when ACLs are off. Set by
	// the gateway, never from a registration body.
	RegisteredBy string `json:"registered_by,omitempty"`
}

// Key is the instance's identity in a region: service and id.
func (in *Instance) Key() Key { return Key{Service: in.Service, ID: in.ID} }

// HasTag reports whether the instance carries tag t.
func (in *Instance) HasTag(t string) bool {
	for _, x := range in.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// Key identifies an instance within a region. Two services may use the same
// instance id.
type Key struct {
	Service string
	ID      string
}

func (k Key) String() string { return k.Service + "/" + k.ID }

// Less orders keys by service, then id.
func (k Key) Less(o Key) bool {
	if k.Service != o.Service {
		return k.Service < o.Service
	}
	return k.ID < o.ID
}

// UnmarshalJSON decodes a check, naming the field of a bad duration
// ("check.interval: not a duration").
func (c *Check) UnmarshalJSON(b []byte) error {
	var raw struct {
		HTTP                    string `json:"http"`
		TCP                     string `json:"tcp"`
		TTL                     string `json:"ttl"`
		Interval                string `json:"interval"`
		Timeout                 string `json:"timeout"`
		SuccessBeforePassing    int    `json:"success_before_passing"`
		FailuresBeforeCritical  int    `json:"failures_before_critical"`
		DeregisterCriticalAfter string `json:"deregister_critical_after"`
	}
	if err := decodeStrict(b, &raw); err != nil {
		if fe, ok := err.(*FieldError); ok && fe.Field != "body" {
			fe.Field = "check." + fe.Field
		}
		return err
	}
	out := Check{HTTP: raw.HTTP, TCP: raw.TCP,
		SuccessBeforePassing: raw.SuccessBeforePassing, FailuresBeforeCritical: raw.FailuresBeforeCritical}
	for _, f := range []struct {
		name string
		s    string
		dst  *Duration
	}{
		{"ttl", raw.TTL, &out.TTL},
		{"interval", raw.Interval, &out.Interval},
		{"timeout", raw.Timeout, &out.Timeout},
		{"deregister_critical_after", raw.DeregisterCriticalAfter, &out.DeregisterCriticalAfter},
	} {
		if f.s == "" {
			continue
		}
		if err := f.dst.UnmarshalText([]byte(f.s)); err != nil {
			return &FieldError{Field: "check." + f.name, Msg: err.Error()}
		}
	}
	*c = out
	return nil
}
