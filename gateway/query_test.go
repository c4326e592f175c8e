package gateway

import (
	"net/url"
	"reflect"
	"testing"
)

// parsePlainQuery answers what url.ParseQuery answers, or declines.
func TestParsePlainQuery(t *testing.T) {
	for _, c := range []struct {
		raw      string
		declines bool
	}{
		{"", false},
		{"passing=true", false},
		{"passing=true&tag=v2&tag=canary", false},
		{"tag=&tag==&=x&&a", false},
		{"index=12&wait=5s&zone=a&region=eu-west", false},
		{"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8", false},
		{"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", true}, // more keys than it keeps
		{"a=1&a=2&a=3&a=4&a=5&a=6&a=7&a=8&a=9", false},
		{"tag=a%20b", true},
		{"tag=a+b", true},
		{"passing=true;tag=v2", true},
	} {
		want, _ := url.ParseQuery(c.raw)
		got := make(url.Values, maxPlainQueryKeys)
		ok := parsePlainQuery(got, c.raw)
		if ok == c.declines {
			t.Errorf("parsePlainQuery(%q) = %v, want %v", c.raw, ok, !c.declines)
			continue
		}
		if !ok {
			if len(got) != 0 {
				t.Errorf("parsePlainQuery(%q) declined but left %v", c.raw, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parsePlainQuery(%q) = %v, url.ParseQuery says %v", c.raw, got, want)
		}
	}
}

// A service read with a plain query costs no query map on the heap, and
// answers the same as with the query parsed by url.ParseQuery.
func TestServiceQueryAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector")
	}
	g := newLookupGateway(t, 3)
	plain, _ := lookupAllocs(t, g.h, "/v1/services/web?passing=true")
	none, _ := lookupAllocs(t, g.h, "/v1/services/web")
	t.Logf("GET /v1/services/web %v allocs, ?passing=true %v", none, plain)
	if plain > none+1 {
		t.Errorf("?passing=true costs %v allocations, /v1/services/web %v: the query costs more than its value's slice", plain, none)
	}
	a, b := g.get(t, "/v1/services/web?passing=true&tag=v2"), g.get(t, "/v1/services/web?passing=%74rue&tag=v%32")
	if !reflect.DeepEqual(a, b) || len(a.Instances) != 3 {
		t.Errorf("plain and escaped queries answer differently:\n%+v\n%+v", a, b)
	}
}
