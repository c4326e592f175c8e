package gateway

import (
	"net/url"
	"strings"
)

// maxPlainQueryKeys bounds the keys parsePlainQuery fills in; a query with
// more is parsed by url.ParseQuery.
const maxPlainQueryKeys = 8

// parsePlainQuery fills q (empty, usually made by the caller with room for
// maxPlainQueryKeys so that it stays on the stack) from a raw query that
// needs no unescaping, with url.ParseQuery's result, and reports whether it
// did. A query with escapes ('%', '+'), a semicolon (which ParseQuery
// refuses) or more than maxPlainQueryKeys keys is left to ParseQuery: it
// returns false and q as it was. Keys and values are substrings of raw.
func parsePlainQuery(q url.Values, raw string) bool {
	if strings.ContainsAny(raw, "%+;") || strings.Count(raw, "&") >= 2*maxPlainQueryKeys {
		return false
	}
	for rest := raw; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := q[k]; !seen && len(q) == maxPlainQueryKeys {
			clear(q)
			return false
		}
		q[k] = append(q[k], v)
	}
	return true
}
