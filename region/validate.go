package region

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a registration may carry.
const (
	MaxServiceLen = 63
	MaxIDLen      = 128
	MaxTags       = 64
	MaxTagLen     = 128
	MaxMeta       = 64
	MaxMetaKeyLen = 128
	MaxMetaValLen = 512
	MaxZoneLen    = 63
	MaxOutputLen  = 4096
	MaxBodyBytes  = 64 << 10
	DefaultWeight = 100
	MaxWeight     = 1000
	MinCheckEvery = time.Second
)

// FieldError is a validation error that names the offending field, using the
// JSON names of the HTTP API ("port", "check.interval", "tags[3]").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FieldOf returns the field named by err, or "" when err is not a FieldError.
func FieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// ValidateService checks that s is a DNS label: 1-63 characters of
// lowercase a-z, 0-9 and '-', not starting or ending with '-'.
func ValidateService(s string) error {
	if s == "" || len(s) > MaxServiceLen {
		return fieldErr("service", "must be 1-%d characters, got %d", MaxServiceLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fieldErr("service", "%q is not a DNS label: only lowercase a-z, 0-9 and '-' are allowed", s)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return fieldErr("service", "%q is not a DNS label: it must not start or end with '-'", s)
	}
	return nil
}

// ValidateID checks that id is 1-128 printable characters without '/',
// and not "." or ".." (a URL path cannot name those).
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fieldErr("id", "must be 1-%d bytes, got %d", MaxIDLen, len(id))
	}
	if id == "." || id == ".." {
		return fieldErr("id", "%q cannot be used: a URL path cannot address it", id)
	}
	if !utf8.ValidString(id) {
		return fieldErr("id", "must be valid UTF-8")
	}
	for _, r := range id {
		if r == '/' {
			return fieldErr("id", "must not contain '/'")
		}
		if !unicode.IsPrint(r) {
			return fieldErr("id", "must be printable characters, got %q", r)
		}
	}
	return nil
}

// MaxWriteIDLen bounds Cond.WriteID.
const MaxWriteIDLen = 128

// ValidateWriteID checks a write id (Cond.WriteID, the Idempotency-Key
// header): 1-128 bytes of A-Z, a-z, 0-9, '.', '_', ':' and '-'.
func ValidateWriteID(id string) error {
	if id == "" || len(id) > MaxWriteIDLen {
		return fieldErr("idempotency_key", "must be 1-%d bytes, got %d", MaxWriteIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fieldErr("idempotency_key", "only A-Z, a-z, 0-9, '.', '_', ':' and '-' are allowed")
		}
	}
	return nil
}

// printable rejects invalid UTF-8 and characters that are not printable:
// control characters (NUL, CR, LF, ESC...) and format characters such as
// bidi overrides, which would corrupt or disguise what a terminal or a log
// shows. Spaces are allowed.
func printable(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("must be valid UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("must not contain control or format characters, got %q", r)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ValidateZone checks an optional zone name (a DNS label, or empty).
func ValidateZone(z string) error {
	if z == "" {
		return nil
	}
	if err := ValidateService(z); err != nil {
		return fieldErr("zone", "%q is not a DNS label (lowercase a-z, 0-9, '-', 1-%d characters)", z, MaxZoneLen)
	}
	return nil
}

// ValidateAddress checks that a is an IP address or a hostname.
func ValidateAddress(a string) error {
	if a == "" {
		return fieldErr("address", "is required")
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return nil
	}
	if !isHostname(a) {
		return fieldErr("address", "%q is neither an IP address nor a hostname", a)
	}
	return nil
}

func isHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Validate checks every field of an instance. It does not fill defaults:
// Normalize does that first.
func (in *Instance) Validate() error {
	if err := ValidateService(in.Service); err != nil {
		return err
	}
	if err := ValidateID(in.ID); err != nil {
		return err
	}
	if err := ValidateAddress(in.Address); err != nil {
		return err
	}
	if in.Port < 1 || in.Port > 65535 {
		return fieldErr("port", "must be 1-65535, got %d", in.Port)
	}
	if err := ValidateZone(in.Zone); err != nil {
		return err
	}
	if len(in.Tags) > MaxTags {
		return fieldErr("tags", "at most %d tags, got %d", MaxTags, len(in.Tags))
	}
	for i, t := range in.Tags {
		if t == "" || len(t) > MaxTagLen {
			return fieldErr(fmt.Sprintf("tags[%d]", i), "must be 1-%d bytes, got %d", MaxTagLen, len(t))
		}
		if err := printable(t); err != nil {
			return fieldErr(fmt.Sprintf("tags[%d]", i), "%v", err)
		}
	}
	if len(in.Meta) > MaxMeta {
		return fieldErr("meta", "at most %d keys, got %d", MaxMeta, len(in.Meta))
	}
	for _, k := range sortedKeys(in.Meta) {
		v := in.Meta[k]
		if k == "" || len(k) > MaxMetaKeyLen {
			return fieldErr("meta", "keys must be 1-%d bytes, got %q", MaxMetaKeyLen, k)
		}
		if err := printable(k); err != nil {
			return fieldErr("meta", "key %q: %v", k, err)
		}
		if len(v) > MaxMetaValLen {
			return fieldErr("meta."+k, "must be at most %d bytes", MaxMetaValLen)
		}
		if err := printable(v); err != nil {
			return fieldErr("meta."+k, "%v", err)
		}
	}
	if in.Weight < 0 || in.Weight > MaxWeight {
		return fieldErr("weight", "must be 0 (drained) to %d, got %d", MaxWeight, in.Weight)
	}
	if _, err := ParseStatus(string(in.Status)); err != nil {
		return fieldErr("status", "%v", err)
	}
	if len(in.Output) > MaxOutputLen {
		return fieldErr("output", "at most %d bytes", MaxOutputLen)
	}
	if in.Check != nil {
		if err := in.Check.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a check definition (after defaults are filled).
func (c *Check) Validate() error {
	n := 0
	if c.HTTP != "" {
		n++
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr("check.http", "must be an http:// or https:// URL, got %q", c.HTTP)
		}
	}
	if c.TCP != "" {
		n++
		host, port, ok := splitHostPort(c.TCP)
		if !ok || host == "" || port == "" {
			return fieldErr("check.tcp", "must be host:port, got %q", c.TCP)
		}
	}
	if c.TTL != 0 {
		n++
		if c.TTL.Std() < MinCheckEvery {
			return fieldErr("check.ttl", "must be at least %s, got %s", MinCheckEvery, c.TTL.Std())
		}
	}
	if n != 1 {
		return fieldErr("check", "exactly one of http, tcp and ttl must be set, got %d", n)
	}
	if c.Kind() != "ttl" {
		if c.Interval.Std() < MinCheckEvery {
			return fieldErr("check.interval", "must be at least %s, got %s", MinCheckEvery, c.Interval.Std())
		}
		if c.Timeout <= 0 || c.Timeout > c.Interval {
			return fieldErr("check.timeout", "must be positive and at most the interval (%s), got %s", c.Interval.Std(), c.Timeout.Std())
		}
	}
	if c.SuccessBeforePassing < 1 || c.SuccessBeforePassing > 100 {
		return fieldErr("check.success_before_passing", "must be 1-100, got %d", c.SuccessBeforePassing)
	}
	if c.FailuresBeforeCritical < 1 || c.FailuresBeforeCritical > 100 {
		return fieldErr("check.failures_before_critical", "must be 1-100, got %d", c.FailuresBeforeCritical)
	}
	if c.DeregisterCriticalAfter < 0 {
		return fieldErr("check.deregister_critical_after", "must not be negative")
	}
	if c.DeregisterCriticalAfter != 0 && c.DeregisterCriticalAfter.Std() < MinCheckEvery {
		return fieldErr("check.deregister_critical_after", "must be at least %s, got %s", MinCheckEvery, c.DeregisterCriticalAfter.Std())
	}
	return nil
}

// splitHostPort splits "host:port" or "[v6]:port" as net.SplitHostPort
// does, without importing net into the registry's pure code.
func splitHostPort(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 >= len(s) || s[end+1] != ':' || strings.ContainsAny(s[end+2:], "[]:") ||
			strings.ContainsAny(s[1:end], "[]") {
			return "", "", false
		}
		return s[1:end], s[end+2:], true
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[:i], ':') >= 0 || strings.ContainsAny(s, "[]") {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
