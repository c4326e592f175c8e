package region

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDecodeRegistration(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	manyTags := `["` + strings.Repeat(`t","`, 64) + `t"]`
	manyMeta := "{"
	for i := range 65 {
		if i > 0 {
			manyMeta += ","
		}
		manyMeta += `"k` + strings.Repeat("x", i) + `":"v"`
	}
	manyMeta += "}"
	for _, tc := range []struct {
		name      string
		service   string
		id        string
		body      string
		wantField string // "" means valid
	}{
		{"minimal", "web", "web-1", `{"address":"10.0.0.5","port":8080}`, ""},
		{"full", "web", "web-1", `{"address":"10.0.0.5","port":8080,"zone":"a","tags":["v2"],"meta":{"k":"v"},"weight":100,"status":"passing",
			"check":{"http":"http://10.0.0.5:8080/health","interval":"10s","timeout":"2s","success_before_passing":1,"failures_before_critical":3,"deregister_critical_after":"10m"}}`, ""},
		{"hostname", "web", "w", `{"address":"web-1.internal.example","port":1}`, ""},
		{"ipv6", "web", "w", `{"address":"::1","port":65535}`, ""},
		{"ttl check", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"ttl":"30s"}}`, ""},
		{"tcp check", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"tcp":"10.0.0.5:80"}}`, ""},
		{"service upper", "Bad_Name!", "w", `{"address":"10.0.0.5","port":80}`, "service"},
		{"service empty", "", "w", `{"address":"10.0.0.5","port":80}`, "service"},
		{"service 63", long(63), "w", `{"address":"10.0.0.5","port":80}`, ""},
		{"service 64", long(64), "w", `{"address":"10.0.0.5","port":80}`, "service"},
		{"service leading dash", "-web", "w", `{"address":"10.0.0.5","port":80}`, "service"},
		{"id 128", "web", long(128), `{"address":"10.0.0.5","port":80}`, ""},
		{"id 129", "web", long(129), `{"address":"10.0.0.5","port":80}`, "id"},
		{"id slash", "web", "a/b", `{"address":"10.0.0.5","port":80}`, "id"},
		{"id control", "web", "a\x01", `{"address":"10.0.0.5","port":80}`, "id"},
		{"id printable punctuation", "web", "web-1:8080@host.x_y", `{"address":"10.0.0.5","port":80}`, ""},
		{"port 0", "web", "w", `{"address":"10.0.0.5","port":0}`, "port"},
		{"port missing", "web", "w", `{"address":"10.0.0.5"}`, "port"},
		{"port 65536", "web", "w", `{"address":"10.0.0.5","port":65536}`, "port"},
		{"port string", "web", "w", `{"address":"10.0.0.5","port":"80"}`, "port"},
		{"address missing", "web", "w", `{"port":80}`, "address"},
		{"address bad", "web", "w", `{"address":"not an address!","port":80}`, "address"},
		{"weight 0 drains", "web", "w", `{"address":"10.0.0.5","port":80,"weight":0}`, ""},
		{"duplicate key", "web", "w", `{"address":"10.0.0.5","port":80,"port":81}`, "port"},
		{"keys differing in case", "web", "w", `{"address":"10.0.0.5","port":80,"PORT":81}`, "PORT"},
		{"duplicate check key", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"ttl":"30s","TTL":"9s"}}`, "check.TTL"},
		{"duplicate meta key", "web", "w", `{"address":"10.0.0.5","port":80,"meta":{"a":"1","a":"2"}}`, "meta.a"},
		{"tag with newline", "web", "w", `{"address":"10.0.0.5","port":80,"tags":["a\nb"]}`, "tags[0]"},
		{"tag with NUL", "web", "w", `{"address":"10.0.0.5","port":80,"tags":["a\u0000"]}`, "tags[0]"},
		{"tag with ESC", "web", "w", `{"address":"10.0.0.5","port":80,"tags":["\u001b[31mred"]}`, "tags[0]"},
		{"meta value with CR", "web", "w", `{"address":"10.0.0.5","port":80,"meta":{"k":"a\rb"}}`, "meta.k"},
		{"meta key with bidi override", "web", "w", `{"address":"10.0.0.5","port":80,"meta":{"\u202ek":"v"}}`, "meta"},
		{"id dot", "web", ".", `{"address":"10.0.0.5","port":80}`, "id"},
		{"id dot dot", "web", "..", `{"address":"10.0.0.5","port":80}`, "id"},
		{"id with ESC", "web", "a\x1bb", `{"address":"10.0.0.5","port":80}`, "id"},
		{"weight 1001", "web", "w", `{"address":"10.0.0.5","port":80,"weight":1001}`, "weight"},
		{"weight negative", "web", "w", `{"address":"10.0.0.5","port":80,"weight":-1}`, "weight"},
		{"65 tags", "web", "w", `{"address":"10.0.0.5","port":80,"tags":` + manyTags + `}`, "tags"},
		{"tag 129 bytes", "web", "w", `{"address":"10.0.0.5","port":80,"tags":["` + long(129) + `"]}`, "tags[0]"},
		{"65 meta keys", "web", "w", `{"address":"10.0.0.5","port":80,"meta":` + manyMeta + `}`, "meta"},
		{"status bogus", "web", "w", `{"address":"10.0.0.5","port":80,"status":"dead"}`, "status"},
		{"zone bad", "web", "w", `{"address":"10.0.0.5","port":80,"zone":"US East"}`, "zone"},
		{"two checks", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"ttl":"30s","tcp":"a:1"}}`, "check"},
		{"no check kind", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"interval":"10s"}}`, "check"},
		{"bad http url", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"http":"ftp://x"}}`, "check.http"},
		{"bad tcp", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"tcp":"nohost"}}`, "check.tcp"},
		{"bad interval", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"tcp":"a:1","interval":"soon"}}`, "check.interval"},
		{"interval too short", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"tcp":"a:1","interval":"10ms"}}`, "check.interval"},
		{"timeout over interval", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"tcp":"a:1","interval":"5s","timeout":"6s"}}`, "check.timeout"},
		{"ttl too short", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"ttl":"100ms"}}`, "check.ttl"},
		{"sbp too big", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"ttl":"10s","success_before_passing":101}}`, "check.success_before_passing"},
		{"check unknown field", "web", "w", `{"address":"10.0.0.5","port":80,"check":{"ttl":"10s","script":"rm -rf"}}`, "check.script"},
		{"unknown field", "web", "w", `{"address":"10.0.0.5","port":80,"adress":"x"}`, "adress"},
		{"malformed", "web", "w", `{"address":`, "body"},
		{"not json", "web", "w", `hello`, "body"},
		{"empty", "web", "w", ``, "body"},
		{"trailing data", "web", "w", `{"address":"10.0.0.5","port":80} {}`, "body"},
		{"array", "web", "w", `[]`, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := DecodeRegistration([]byte(tc.body), tc.service, tc.id, t0)
			if got := FieldOf(err); got != tc.wantField || (tc.wantField == "" && err != nil) {
				t.Fatalf("field: got %q (err %v), want %q", got, err, tc.wantField)
			}
			if err == nil {
				if (in.Weight < 1 && tc.name != "weight 0 drains") || in.Status == "" || !in.RegisteredAt.Equal(t0) {
					t.Fatalf("defaults not filled: %+v", in)
				}
			}
		})
	}
}

func TestDecodeRegistrationDefaults(t *testing.T) {
	in, err := DecodeRegistration([]byte(`{"address":"10.0.0.5","port":80,"check":{"http":"http://10.0.0.5/h"}}`), "web", "w", t0)
	if err != nil {
		t.Fatal(err)
	}
	c := in.Check
	if in.Weight != 100 || in.Status != StatusCritical || c.Interval.Std() != 10*time.Second || c.Timeout.Std() != 2*time.Second ||
		c.SuccessBeforePassing != 1 || c.FailuresBeforeCritical != 1 {
		t.Fatalf("defaults: got weight %d status %s check %+v; want 100, critical (checked instances start critical), 10s/2s/1/1",
			in.Weight, in.Status, *c)
	}
	in, _ = DecodeRegistration([]byte(`{"address":"10.0.0.5","port":80}`), "web", "w", t0)
	if in.Status != StatusPassing {
		t.Fatalf("unchecked instance starts %s, want passing", in.Status)
	}
	_, err = DecodeRegistration([]byte(`{"address":"`+strings.Repeat("a", MaxBodyBytes)+`"}`), "web", "w", t0)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("oversized body: got %v, want ErrBodyTooLarge", err)
	}
}

func TestDecodeHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		body, want, field string
	}{
		{"", "passing", ""},
		{`{}`, "passing", ""},
		{`{"status":"warning","output":"slow"}`, "warning", ""},
		{`{"status":"up"}`, "", "status"},
		{`{"stat":"passing"}`, "", "stat"},
		{`{`, "", "body"},
	} {
		hb, err := DecodeHeartbeat([]byte(tc.body))
		if FieldOf(err) != tc.field || string(hb.Status) != tc.want {
			t.Errorf("%q: got %+v, %v; want status %q field %q", tc.body, hb, err, tc.want, tc.field)
		}
	}
}

// FuzzDecodeRegistration: no input panics, every accepted registration is
// valid and round-trips through the store's JSON, and every rejection names
// a field.
func FuzzDecodeRegistration(f *testing.F) {
	f.Add([]byte(`{"address":"10.0.0.5","port":8080,"zone":"a","tags":["v2"],"meta":{"k":"v"},"weight":100,"status":"passing","check":{"http":"http://10.0.0.5:8080/health","interval":"10s","timeout":"2s","success_before_passing":1,"failures_before_critical":3,"deregister_critical_after":"10m"}}`), "web", "web-1")
	f.Add([]byte(`{"address":"::1","port":1,"check":{"ttl":"30s"}}`), "a", "b")
	f.Add([]byte(`{"address":"h","port":1,"check":{"tcp":"h:1"}}`), "x-y", "id:1")
	f.Add([]byte(`{`), "web", "w")
	f.Fuzz(func(t *testing.T, body []byte, service, id string) {
		in, err := DecodeRegistration(body, service, id, t0)
		if err != nil {
			if FieldOf(err) == "" && !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("error names no field: %v", err)
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted an invalid instance: %v", err)
		}
		store := NewMemStore(10)
		ch, err := store.Put(t.Context(), in, Cond{})
		if err != nil {
			t.Fatal(err)
		}
		if ch.Instance.Service != service || ch.Instance.ID != id {
			t.Fatalf("stored %s/%s, want %s/%s", ch.Instance.Service, ch.Instance.ID, service, id)
		}
	})
}

func TestSplitHostPortMatchesNet(t *testing.T) {
	for _, s := range []string{"h:80", "10.0.0.5:8080", "[::1]:80", "[fe80::1%eth0]:9", "::1:80", "nohost", "h:", ":80", "[::1]", "[::1]80", "a:b:c", "[x]:1:2", "a]:1", "[a:1", "[a]b]:1"} {
		h, p, ok := splitHostPort(s)
		nh, np, err := net.SplitHostPort(s)
		if ok != (err == nil) || (ok && (h != nh || p != np)) {
			t.Errorf("splitHostPort(%q) = %q, %q, %v; net.SplitHostPort: %q, %q, %v", s, h, p, ok, nh, np, err)
		}
	}
}
