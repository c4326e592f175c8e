package failover

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/meridian-sd/meridian/region"
)

var (
	propStatuses = []region.Status{region.StatusPassing, region.StatusWarning, region.StatusCritical}
	propZones    = []string{"a", "b", "c"}
)

func genInstance(t *rapid.T, id int) region.Instance {
	var tags []string
	if rapid.Bool().Draw(t, "tag x") {
		tags = append(tags, "x")
	}
	if rapid.Bool().Draw(t, "tag y") {
		tags = append(tags, "y")
	}
	return region.Instance{
		ID: fmt.Sprintf("i%02d", id), Service: "web", Address: "10.0.0.1", Port: 8000 + id,
		Zone:   rapid.SampledFrom(propZones).Draw(t, "zone"),
		Tags:   tags,
		Weight: rapid.IntRange(1, 200).Draw(t, "weight"),
		Status: rapid.SampledFrom(propStatuses).Draw(t, "status"),
	}
}

func genViews(t *rapid.T) []RegionView {
	n := rapid.IntRange(1, 5).Draw(t, "regions")
	views := make([]RegionView, n)
	for r := range views {
		v := RegionView{Name: fmt.Sprintf("r%d", r)}
		for i := range rapid.IntRange(0, 20).Draw(t, "instances") {
			v.Instances = append(v.Instances, genInstance(t, i))
		}
		v.Stale = rapid.Bool().Draw(t, "stale")
		v.Age = time.Duration(rapid.IntRange(0, 60).Draw(t, "age s")) * time.Second
		v.Reachable = rapid.IntRange(0, 4).Draw(t, "reachable") > 0
		v.HasRTT = rapid.IntRange(0, 4).Draw(t, "has rtt") > 0
		if v.HasRTT {
			v.RTT = time.Duration(rapid.IntRange(0, 20).Draw(t, "rtt")) * 10 * time.Millisecond // ties happen
		}
		views[r] = v
	}
	return views
}

func genRequest(t *rapid.T, views []RegionView) Request {
	names := []string{"r9"} // a region nobody knows
	for _, v := range views {
		names = append(names, v.Name)
	}
	p := Policy{
		Mode:             rapid.SampledFrom([]Mode{ModeLocal, ModeOrdered, ModeNearest, ""}).Draw(t, "mode"),
		NearestN:         rapid.IntRange(0, 4).Draw(t, "nearest n"),
		Overprovisioning: rapid.SampledFrom([]float64{0, 1, 1.4, 2}).Draw(t, "overprovisioning"),
		PanicThreshold:   rapid.SampledFrom([]float64{0, 0.01, 0.3, 0.5, 1}).Draw(t, "panic threshold"),
		StalenessBound:   rapid.SampledFrom([]time.Duration{0, 10 * time.Second, 30 * time.Second}).Draw(t, "staleness bound"),
		ZonePreference:   rapid.SampledFrom([]*bool{nil, boolp(true), boolp(false)}).Draw(t, "zone preference"),
	}
	if p.Mode == ModeOrdered {
		p.Regions = rapid.SliceOfN(rapid.SampledFrom(names), 1, 6).Draw(t, "regions")
	}
	req := Request{
		Service:    "web",
		FromRegion: rapid.SampledFrom(names).Draw(t, "from region"),
		FromZone:   rapid.SampledFrom([]string{"", "a", "b", "c"}).Draw(t, "from zone"),
		Policy:     p,
		Limit:      rapid.IntRange(0, 5).Draw(t, "limit"),
	}
	if rapid.IntRange(0, 3).Draw(t, "tagged") == 0 {
		req.Tags = []string{"x"}
	}
	return req
}

// shuffled returns a deep copy of views with the regions and each region's
// instances in another order.
func shuffled(t *rapid.T, views []RegionView) []RegionView {
	out := rapid.Permutation(views).Draw(t, "view order")
	for i := range out {
		out[i].Instances = rapid.Permutation(slices.Clone(out[i].Instances)).Draw(t, "instance order")
	}
	return out
}

func TestRouteProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		views := genViews(t)
		req := genRequest(t, views)
		d := Route(views, req)
		p := req.Policy.WithDefaults()

		// Shares sum to 1 when there are endpoints; none otherwise.
		sum, psum := 0.0, 0.0
		for r, s := range d.Shares {
			if !(s > 0) {
				t.Fatalf("share of %s is %v, want > 0", r, s)
			}
			sum += s
		}
		for _, s := range d.PriorityShares {
			psum += s
		}
		if len(d.Endpoints) > 0 {
			if math.Abs(sum-1) > 1e-9 || math.Abs(psum-1) > 1e-9 {
				t.Fatalf("shares sum to %v, priority shares to %v; want 1 (shares %v)", sum, psum, d.Shares)
			}
		} else if len(d.Shares) != 0 {
			t.Fatalf("no endpoints but shares %v", d.Shares)
		}

		// Failover means traffic leaves the caller's region.
		out := false
		for r := range d.Shares {
			out = out || r != req.FromRegion
		}
		if d.Failover != out {
			t.Fatalf("failover %v, but shares %v from %s", d.Failover, d.Shares, req.FromRegion)
		}

		// No critical instance outside panic; priorities in order; limit.
		for i, e := range d.Endpoints {
			if !d.Panic && e.Status == region.StatusCritical {
				t.Fatalf("critical endpoint %s outside panic", e.Ref())
			}
			if i > 0 && e.Priority < d.Endpoints[i-1].Priority {
				t.Fatalf("endpoints out of priority order: %v", epStrings(d.Endpoints))
			}
			if d.PriorityShares[e.Priority] <= 0 {
				t.Fatalf("endpoint %s at priority %d with share 0", e.Ref(), e.Priority)
			}
		}
		if req.Limit > 0 && len(d.Endpoints) > req.Limit {
			t.Fatalf("%d endpoints, limit %d", len(d.Endpoints), req.Limit)
		}
		if !slices.IsSorted(d.StaleRegions) {
			t.Fatalf("stale regions not sorted: %v", d.StaleRegions)
		}

		// A local region that can carry everything keeps everything.
		if p.Validate() == nil && !d.Panic {
			for _, v := range views {
				if v.Name != req.FromRegion {
					continue
				}
				healthy, total := 0, 0
				for i := range v.Instances {
					in := &v.Instances[i]
					if len(req.Tags) > 0 && !in.HasTag(req.Tags[0]) {
						continue
					}
					total++
					if in.Status != region.StatusCritical {
						healthy++
					}
				}
				if total > 0 && float64(healthy)*p.Overprovisioning/float64(total) >= 1 {
					if d.Failover {
						t.Fatalf("local %d/%d healthy x %g >= 1 but failover: %s", healthy, total, p.Overprovisioning, d.Explanation)
					}
					for _, e := range d.Endpoints {
						if e.Region != req.FromRegion {
							t.Fatalf("local can carry all, yet endpoint %s", e.Ref())
						}
					}
				}
			}
		}

		// Deterministic, and independent of the order of views and instances.
		if again := Route(views, req); !reflect.DeepEqual(d, again) {
			t.Fatalf("same input, different decisions:\n%+v\n%+v", d, again)
		}
		if other := Route(shuffled(t, views), req); !reflect.DeepEqual(d, other) {
			t.Fatalf("shuffled input, different decision:\n got  %+v\n want %+v", other, d)
		}
	})
}
