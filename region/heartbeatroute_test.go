package region_test

import (
	"testing"

	"github.com/meridian-sd/meridian/region"
)

func TestHeartbeatRoute(t *testing.T) {
	k := region.Key{Service: "web", ID: "a"}
	other := func(region.Key) string { return "10.0.0.2:8700" }
	self := func(region.Key) string { return "" }
	for _, tc := range []struct {
		name      string
		forwarded bool
		owner     func(region.Key) string
		want      string
	}{
		{"owned elsewhere: forward", false, other, "10.0.0.2:8700"},
		{"owned here: take", false, self, ""},
		{"no sharding: take", false, nil, ""},
		{"forwarded once: take, even if the owner looks elsewhere", true, other, ""},
	} {
		if got := region.HeartbeatRoute(k, tc.forwarded, tc.owner); got != tc.want {
			t.Errorf("%s: HeartbeatRoute = %q, want %q", tc.name, got, tc.want)
		}
	}
}
