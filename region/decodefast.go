package region

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// decodeRegistrationFast decodes the common registration body without
// encoding/json's reflection: an object of the lower-case keys address,
// port, zone, tags, meta, weight and status whose strings carry no escapes
// and are valid UTF-8 and whose numbers are plain integers. It returns
// false for anything else (a check, null, an escape, a key in another
// case, a number with a fraction or exponent, a duplicate key, bad JSON),
// and the caller decodes with decodeStrict, which names the problem. When
// it returns true, r is what decodeStrict gives for body
// (FuzzDecodeRegistrationFast holds it to that).
func decodeRegistrationFast(body []byte, r *Registration) bool {
	if !noDuplicateKeys(body) {
		return false // also: valid JSON, one value, nothing after it
	}
	s := fastScan{b: body}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		return true
	}
	for {
		s.ws()
		k, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		s.i++ // ':' (the scan above checked the grammar)
		s.ws()
		switch string(k) {
		case "address":
			v, ok := s.plainString()
			if !ok {
				return false
			}
			r.Address = string(v)
		case "zone":
			v, ok := s.plainString()
			if !ok {
				return false
			}
			r.Zone = string(v)
		case "status":
			v, ok := s.plainString()
			if !ok {
				return false
			}
			r.Status = Status(v)
		case "port":
			if r.Port, ok = s.plainInt(); !ok {
				return false
			}
		case "weight":
			w, ok := s.plainInt()
			if !ok {
				return false
			}
			r.Weight = &w
		case "tags":
			if s.b[s.i] != '[' {
				return false
			}
			s.i++
			r.Tags = []string{}
			s.ws()
			if s.b[s.i] == ']' {
				s.i++
				break
			}
			for {
				s.ws()
				v, ok := s.plainString()
				if !ok {
					return false
				}
				r.Tags = append(r.Tags, string(v))
				s.ws()
				c := s.b[s.i]
				s.i++
				if c == ']' {
					break
				}
			}
		case "meta":
			if s.b[s.i] != '{' {
				return false
			}
			s.i++
			r.Meta = map[string]string{}
			s.ws()
			if s.b[s.i] == '}' {
				s.i++
				break
			}
			for {
				s.ws()
				mk, ok := s.plainString()
				if !ok {
					return false
				}
				s.ws()
				s.i++ // ':'
				s.ws()
				mv, ok := s.plainString()
				if !ok {
					return false
				}
				r.Meta[string(mk)] = string(mv)
				s.ws()
				c := s.b[s.i]
				s.i++
				if c == '}' {
					break
				}
			}
		default:
			return false // check, another case, or unknown: decodeStrict
		}
		s.ws()
		c := s.b[s.i]
		s.i++
		if c == '}' {
			return true
		}
	}
}

// plainString scans a string without escapes that is valid UTF-8 and
// returns its bytes; false for anything else.
func (s *fastScan) plainString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(s.b[s.i+1:], '"')
	if end < 0 {
		return nil, false
	}
	v := s.b[s.i+1 : s.i+1+end]
	if bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
		return nil, false
	}
	s.i += end + 2
	return v, true
}

// plainInt scans an integer without fraction or exponent that fits an
// int; false for anything else.
func (s *fastScan) plainInt() (int, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	n, err := strconv.Atoi(string(s.b[start:s.i]))
	return n, err == nil
}
