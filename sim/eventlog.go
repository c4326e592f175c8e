package sim

import (
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// eventLog writes the JSON Lines event log: one object per line, keys in a
// fixed order ({"t","seq","kind", then the event's own fields}), written by
// hand so that no map order can reach it.
type eventLog struct {
	w   io.Writer
	buf []byte
	seq int64
	err error
}

// field is one key of an event.
type field struct {
	k   string
	typ uint8 // 0 string, 1 int, 2 bool, 3 strings
	s   string
	i   int64
	ss  []string
}

func kv(k, v string) field          { return field{k: k, s: v} }
func kvInt(k string, v int64) field { return field{k: k, typ: 1, i: v} }
func kvBool(k string, v bool) field {
	f := field{k: k, typ: 2}
	if v {
		f.i = 1
	}
	return f
}
func kvStrs(k string, v []string) field { return field{k: k, typ: 3, ss: v} }

func newEventLog(w io.Writer) *eventLog { return &eventLog{w: w} }

// event logs one event at simulated time t.
func (l *eventLog) event(t time.Duration, kind string, fields ...field) {
	l.seq++
	if l.w == nil || l.err != nil {
		return
	}
	b := l.buf
	b = append(b, `{"t":"`...)
	b = append(b, t.String()...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, l.seq, 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, kind)
	for _, f := range fields {
		b = append(b, ',')
		b = appendJSONString(b, f.k)
		b = append(b, ':')
		switch f.typ {
		case 0:
			b = appendJSONString(b, f.s)
		case 1:
			b = strconv.AppendInt(b, f.i, 10)
		case 2:
			b = strconv.AppendBool(b, f.i != 0)
		case 3:
			b = append(b, '[')
			for i, s := range f.ss {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, s)
			}
			b = append(b, ']')
		}
	}
	b = append(b, "}\n"...)
	l.buf = b
	if len(l.buf) >= 64<<10 {
		l.flush()
	}
}

func (l *eventLog) flush() {
	if l.w == nil || l.err != nil || len(l.buf) == 0 {
		return
	}
	_, l.err = l.w.Write(l.buf)
	l.buf = l.buf[:0]
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
