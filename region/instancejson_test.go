package region

import (
	"encoding/json"
	"testing"
	"time"
)

// instanceFromFuzz builds an instance whose every field comes from the
// fuzzer's input.
func instanceFromFuzz(s1, s2, s3 string, n1, n2 int, u uint64, sec, nsec int64, zone int, withCheck bool) Instance {
	loc := time.UTC
	switch zone % 3 {
	case 1:
		loc = time.FixedZone("X", zone%100000)
	case 2:
		loc = time.Local
	}
	t := time.Unix(sec, nsec).In(loc)
	in := Instance{RegisteredAt: t, ID: s1, Service: s2, Address: s3, Port: n1, Zone: s1 + s3,
		Weight: n2, Status: Status(s2), Output: s3 + s2, UpdatedAt: time.Now().Add(time.Duration(nsec)),
		ModifyIndex: u, RegisteredBy: s2 + s1}
	if n1%2 == 0 {
		in.Tags = []string{s1, s2, s3, ""}
	} else if n1%3 == 0 {
		in.Tags = []string{}
	}
	if n2%2 == 0 {
		in.Meta = map[string]string{s1: s2, s2: s3, s3: s1, "<&>": "\u2028\u2029"}
	} else if n2%3 == 0 {
		in.Meta = map[string]string{}
	}
	if withCheck {
		in.Check = &Check{HTTP: s1, TCP: s2, TTL: Duration(sec), Interval: Duration(nsec), Timeout: Duration(n1),
			SuccessBeforePassing: n1, FailuresBeforeCritical: n2, DeregisterCriticalAfter: Duration(u)}
	}
	return in
}

func checkAppendJSON(t *testing.T, in Instance) {
	t.Helper()
	want, err := json.Marshal(&in)
	got, ok := in.AppendJSON([]byte("prefix"))
	if err != nil {
		if ok || string(got) != "prefix" {
			t.Fatalf("json.Marshal fails (%v) but AppendJSON gives %q, %v", err, got, ok)
		}
		return
	}
	if !ok || string(got) != "prefix"+string(want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\ngot  %s (%v)\nwant prefix%s", got, ok, want)
	}
}

func TestInstanceAppendJSON(t *testing.T) {
	for _, in := range []Instance{
		{},
		instanceFromFuzz("web-1", "web", "10.0.0.1", 8080, 100, 7, 1700000000, 123456789, 0, false),
		instanceFromFuzz("a\"b\\c\n\t\r\b\f\x01\x1f", "<script>&", "é\u2028\u2029\xff\xc3", 2, 4, 1<<63, -1, 1, 2, true),
		instanceFromFuzz("x", "y", "z", 3, 3, 0, 1e9, 5, 3600*5+1, true),
		instanceFromFuzz("x", "y", "z", 1, 1, 0, 253402300800, 0, 0, false),     // year 10000: Marshal fails
		instanceFromFuzz("x", "y", "z", 1, 1, 0, 1700000000, 0, 24*3600, false), // offset 24h: Marshal fails
	} {
		checkAppendJSON(t, in)
	}
}

func FuzzInstanceAppendJSON(f *testing.F) {
	f.Add("web-1", "web", "10.0.0.1", 8080, 100, uint64(7), int64(1700000000), int64(123456789), 0, true)
	f.Add("a\"b\\c\n\x01", "<&>", "é\u2028\xff", 2, 4, uint64(1<<63), int64(-1), int64(1), 2, false)
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, n1, n2 int, u uint64, sec, nsec int64, zone int, withCheck bool) {
		checkAppendJSON(t, instanceFromFuzz(s1, s2, s3, n1, n2, u, sec, nsec, zone, withCheck))
	})
}
