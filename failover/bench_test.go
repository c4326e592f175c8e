package failover

import (
	"fmt"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// benchViews is 10 regions of 100 instances each over 3 zones; the local
// region (r0) is 60% healthy so that it spills to the next.
func benchViews() []RegionView {
	statuses := []region.Status{region.StatusPassing, region.StatusWarning, region.StatusCritical}
	views := make([]RegionView, 10)
	for r := range views {
		v := RegionView{Name: fmt.Sprintf("r%d", r), Reachable: r != 9, HasRTT: true, RTT: time.Duration(10*(r+1)) * time.Millisecond}
		if r == 4 {
			v.Stale, v.Age = true, time.Minute
		}
		for i := range 100 {
			st := statuses[i%3]
			if r != 0 {
				st = statuses[(i%10)/9*2] // 90% passing
			}
			v.Instances = append(v.Instances, region.Instance{
				ID: fmt.Sprintf("r%d-i%03d", r, (i*37)%100), Service: "web", Address: "10.0.0.1", Port: 8000 + i,
				Zone: []string{"a", "b", "c"}[i%3], Tags: []string{"v2"}, Weight: 100, Status: st,
			})
		}
		views[r] = v
	}
	return views
}

func BenchmarkRoute(b *testing.B) {
	views := benchViews()
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"local", Request{Service: "web", FromRegion: "r0", FromZone: "a"}},
		{"nearest", Request{Service: "web", FromRegion: "r0", Tags: []string{"v2"}, Policy: Policy{Mode: ModeNearest, NearestN: 3}}},
		{"ordered/limit10", Request{Service: "web", FromRegion: "r0", Policy: Policy{Mode: ModeOrdered, Regions: []string{"r5", "r3", "r1"}}, Limit: 10}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Route(views, bc.req)
			}
		})
	}
}

func BenchmarkPickers(b *testing.B) {
	eps := endpoints("r", 100)
	for i := range eps {
		eps[i].Weight = 1 + i%7*50
	}
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	for _, name := range []string{PickerRoundRobin, PickerWeighted, PickerP2C, PickerHash} {
		pk, err := NewPicker(name, seeded(1))
		if err != nil {
			b.Fatal(err)
		}
		if p2c, ok := pk.(*P2C); ok {
			now := time.Unix(1_000_000, 0)
			for i, e := range eps {
				p2c.Observe(now, e.Ref(), time.Duration(i+1)*time.Millisecond, false)
			}
		}
		b.Run(name+"/100", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				_, _ = pk.Pick(eps, keys[i%len(keys)])
			}
		})
	}
	b.Run("hash/100-equal-weights", func(b *testing.B) {
		var h Hash
		eq := endpoints("r", 100)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			_, _ = h.Pick(eq, keys[i%len(keys)])
		}
	})
}
