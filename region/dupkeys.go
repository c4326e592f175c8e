package region

import (
	"bytes"
	"unicode/utf8"
)

// maxFastKeys is the most keys per object the fast duplicate-key scan
// compares pairwise; an object with more goes to the slow check.
const maxFastKeys = 64

// noDuplicateKeys is the fast path of CheckDuplicateKeys: one pass over
// the bytes, no allocation. It returns true only for a syntactically valid
// JSON document (one value, surrounded by white space) within maxJSONDepth
// in which no object repeats a key and no struct-like object (the top level
// and the top level's "check") has two keys equal but for ASCII case, and
// whose keys are valid UTF-8 without escapes (ASCII in struct-like objects) and
// whose objects hold at most maxFastKeys keys. For any other body it
// returns false and CheckDuplicateKeys decides (and names the problem), so
// the fast path never accepts what the slow one rejects.
func noDuplicateKeys(body []byte) bool {
	s := fastScan{b: body}
	s.ws()
	if !s.value(0, true) { // the top level decodes into a struct
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

type fastScan struct {
	b []byte
	i int
}

func (s *fastScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value at nesting depth (the slow check counts a value
// inside depth containers as depth); structLike says it is the value of
// an object that decodes into a struct.
func (s *fastScan) value(depth int, structLike bool) bool {
	if depth > maxJSONDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth, structLike)
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.value(depth+1, false) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			if s.b[s.i] == ']' {
				s.i++
				return true
			}
			if s.b[s.i] != ',' {
				return false
			}
			s.i++
		}
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.num()
	}
	return false
}

// object scans an object; its keys are compared pairwise.
func (s *fastScan) object(depth int, structLike bool) bool {
	var keys [maxFastKeys][]byte
	n := 0
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		k, ok := s.str()
		// Escaped or invalid UTF-8 keys decode to other strings (two raw
		// keys may decode to one): the slow check compares those.
		if !ok || bytes.IndexByte(k, '\\') >= 0 || !utf8.Valid(k) || n == maxFastKeys {
			return false
		}
		for _, prev := range keys[:n] {
			if bytes.Equal(prev, k) || structLike && asciiEqualFold(prev, k) {
				return false
			}
		}
		if structLike && !isASCII(k) {
			return false // the slow check folds with strings.ToLower
		}
		keys[n] = k
		n++
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		// Below the top level, the slow check folds case only in what it
		// names "check": the top level's "check" (or its "", which it
		// names as the top level itself).
		if !s.value(depth+1, depth == 0 && (string(k) == "check" || len(k) == 0)) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		if s.b[s.i] == '}' {
			s.i++
			return true
		}
		if s.b[s.i] != ',' {
			return false
		}
		s.i++
	}
}

// str scans a string and returns its raw contents (escapes not decoded).
// Control characters are invalid in JSON strings; escapes are checked
// loosely (the character after a backslash must be one JSON allows).
func (s *fastScan) str() ([]byte, bool) {
	s.i++ // '"'
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false
					}
				}
				s.i += 6
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

func (s *fastScan) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// num scans a number in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fastScan) num() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more digits.
func (s *fastScan) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
