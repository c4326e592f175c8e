package redisstore

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/meridian-sd/meridian/region"
)

// TestDecodesAsItself checks the group commit's shortcut against the real
// round trip: whenever decodesAsItself says an instance needs no decoding,
// decoding its JSON gives exactly the normalized instance (reflect.DeepEqual
// sees time locations and monotonic readings, nil and empty slices), and it
// says so for what registrations write.
func TestDecodesAsItself(t *testing.T) {
	now := time.Now()
	base := region.Instance{ID: "i-1", Service: "web", Address: "10.0.0.1", Port: 8080, Zone: "a",
		Tags: []string{"v1", "<b>&"}, Weight: 100, Status: region.StatusPassing,
		RegisteredAt: now, UpdatedAt: now.Add(time.Nanosecond)}
	with := func(f func(in *region.Instance)) region.Instance {
		in := base
		f(&in)
		return in
	}
	cases := []struct {
		name string
		in   region.Instance
		want bool // decodesAsItself
	}{
		{"registration, local time", base, true},
		{"UTC", with(func(in *region.Instance) { in.RegisteredAt, in.UpdatedAt = now.UTC(), now.UTC() }), true},
		{"zero times", with(func(in *region.Instance) { in.RegisteredAt, in.UpdatedAt = time.Time{}, time.Time{} }), true},
		{"offset zero, another zone", with(func(in *region.Instance) { in.UpdatedAt = now.In(time.FixedZone("Z0", 0)) }), true},
		{"offset +2h, another zone", with(func(in *region.Instance) { in.UpdatedAt = now.In(time.FixedZone("X", 7200)) }), false},
		{"empty tags and meta", with(func(in *region.Instance) { in.Tags, in.Meta = []string{}, map[string]string{} }), true},
		{"meta, check, output, registered_by", with(func(in *region.Instance) {
			in.Meta = map[string]string{"b": "2", "a": "é"}
			in.Check = &region.Check{HTTP: "http://10.0.0.1:8080/health", Interval: region.Duration(10 * time.Second),
				Timeout: region.Duration(1500 * time.Millisecond), SuccessBeforePassing: 1, FailuresBeforeCritical: 3,
				DeregisterCriticalAfter: region.Duration(time.Minute)}
			in.Output, in.RegisteredBy, in.Status = "HTTP 503\n", "acc-1", region.StatusCritical
		}), true},
		{"ttl check", with(func(in *region.Instance) { in.Check = &region.Check{TTL: region.Duration(30 * time.Second)} }), true},
		{"invalid UTF-8 in a tag", with(func(in *region.Instance) { in.Tags = []string{"a\xff"} }), false},
		{"invalid UTF-8 in meta", with(func(in *region.Instance) { in.Meta = map[string]string{"k": "\xc3"} }), false},
		{"invalid UTF-8 in output", with(func(in *region.Instance) { in.Output = "\xff" }), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			b, err := json.Marshal(&in)
			if err != nil {
				t.Fatal(err)
			}
			got := decodesAsItself(&in)
			if got != tc.want {
				t.Fatalf("decodesAsItself = %v, want %v", got, tc.want)
			}
			if b2, _ := json.Marshal(&in); string(b2) != string(b) {
				t.Fatalf("normalizing changed the JSON:\n%s\n%s", b, b2)
			}
			var dec region.Instance
			if err := json.Unmarshal(b, &dec); err != nil {
				t.Fatal(err)
			}
			if same := reflect.DeepEqual(dec, in); got && !same {
				t.Fatalf("decoded differs from the normalized instance:\ndecoded    %#v\nnormalized %#v", dec, in)
			}
		})
	}
}

// TestPutChangeMatchesStoredInstance: the change a new put returns (built
// from the instance, not decoded) is exactly what reading the instance
// back from Redis gives, and so is the change of a put that kept an
// earlier registered_at (decoded from what the script stored).
func TestPutChangeMatchesStoredInstance(t *testing.T) {
	mr := miniredis.RunT(t)
	s, err := NewRedisStore(RedisOptions{URL: "redis://" + mr.Addr() + "/0", Region: "us-east"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now() // local, with a monotonic reading
	in := region.Instance{Service: "web", ID: "w1", Address: "10.0.0.1", Port: 80, Tags: []string{}, Meta: map[string]string{"k": "v"},
		Weight: 100, Status: region.StatusPassing, RegisteredAt: now, UpdatedAt: now}
	for i, want := range []time.Time{now, now} {
		if i == 1 {
			in.RegisteredAt, in.UpdatedAt = now.Add(time.Hour), now.Add(time.Hour) // the store keeps the first registered_at
		}
		ch, err := s.Put(ctx, in, region.Cond{WriteID: "w-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := s.Snapshot(ctx)
		if err != nil || len(snap.Instances) != 1 {
			t.Fatalf("snapshot: %d instances, %v", len(snap.Instances), err)
		}
		if !reflect.DeepEqual(*ch.Instance, snap.Instances[0]) {
			t.Fatalf("put %d: the change's instance differs from the stored one:\nchange %#v\nstored %#v", i, *ch.Instance, snap.Instances[0])
		}
		if !ch.Instance.RegisteredAt.Equal(want) {
			t.Fatalf("put %d: registered_at %v, want %v", i, ch.Instance.RegisteredAt, want)
		}
	}
}
