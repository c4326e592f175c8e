package region

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of in to b: byte for byte what
// json.Marshal(in) writes (same field order, omitempty, sorted meta keys,
// HTML-safe string escaping, RFC 3339 times), without reflection. It
// returns false, and b unchanged, where json.Marshal would fail (a time
// that RFC 3339 cannot represent): the caller then uses json.Marshal for
// its error. FuzzInstanceAppendJSON holds it to json.Marshal.
//
// Registrations encode each instance twice (the stored document and the
// answer); this is the writes' hot path.
func (in *Instance) AppendJSON(b []byte) ([]byte, bool) {
	n0 := len(b)
	var ok bool
	b = append(b, `{"registered_at":`...)
	if b, ok = appendJSONTime(b, in.RegisteredAt); !ok {
		return b[:n0], false
	}
	b = append(b, `,"id":`...)
	b = appendJSONString(b, in.ID)
	b = append(b, `,"service":`...)
	b = appendJSONString(b, in.Service)
	b = append(b, `,"address":`...)
	b = appendJSONString(b, in.Address)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(in.Port), 10)
	if in.Zone != "" {
		b = append(b, `,"zone":`...)
		b = appendJSONString(b, in.Zone)
	}
	if len(in.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range in.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	}
	if len(in.Meta) > 0 {
		b = append(b, `,"meta":{`...)
		var arr [16]string
		keys := arr[:0]
		for k := range in.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, in.Meta[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"weight":`...)
	b = strconv.AppendInt(b, int64(in.Weight), 10)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(in.Status))
	if in.Output != "" {
		b = append(b, `,"output":`...)
		b = appendJSONString(b, in.Output)
	}
	if c := in.Check; c != nil {
		b = append(b, `,"check":`...)
		b = c.appendJSON(b)
	}
	b = append(b, `,"updated_at":`...)
	if b, ok = appendJSONTime(b, in.UpdatedAt); !ok {
		return b[:n0], false
	}
	b = append(b, `,"modify_index":`...)
	b = strconv.AppendUint(b, in.ModifyIndex, 10)
	if in.RegisteredBy != "" {
		b = append(b, `,"registered_by":`...)
		b = appendJSONString(b, in.RegisteredBy)
	}
	return append(b, '}'), true
}

// appendJSON appends what json.Marshal writes for c (every field
// omitempty; durations as their text).
func (c *Check) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	sep := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if c.HTTP != "" {
		sep("http")
		b = appendJSONString(b, c.HTTP)
	}
	if c.TCP != "" {
		sep("tcp")
		b = appendJSONString(b, c.TCP)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"ttl", c.TTL}, {"interval", c.Interval}, {"timeout", c.Timeout}} {
		if d.v != 0 {
			sep(d.name)
			b = appendJSONString(b, time.Duration(d.v).String())
		}
	}
	if c.SuccessBeforePassing != 0 {
		sep("success_before_passing")
		b = strconv.AppendInt(b, int64(c.SuccessBeforePassing), 10)
	}
	if c.FailuresBeforeCritical != 0 {
		sep("failures_before_critical")
		b = strconv.AppendInt(b, int64(c.FailuresBeforeCritical), 10)
	}
	if c.DeregisterCriticalAfter != 0 {
		sep("deregister_critical_after")
		b = appendJSONString(b, time.Duration(c.DeregisterCriticalAfter).String())
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false // AppendText returns nil
	}
	return append(out, '"'), true
}

const jsonHex = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping (its default): \" \\ \b \f \n \r \t, other control characters,
// <, > and & as \u00XX, U+2028 and U+2029 escaped, invalid UTF-8 as
// \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', jsonHex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
