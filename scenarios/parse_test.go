package scenarios

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
)

// base is a valid scenario; tests append or replace lines to break it.
const base = `name: t
duration: 10m
topology:
  regions:
    - {name: us-east, gateways: 2, zones: [a, b]}
    - {name: eu-west}
services:
  - {name: web, instances: 3}
  - {name: api, regions: [eu-west]}
traffic:
  - {from: us-east, service: web}
timeline:
  - {at: 1m, kind: heal}
expect:
  - {metric: availability, min: 0.9}
`

func TestParseValid(t *testing.T) {
	sc, err := Parse("x.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "t" || sc.Duration.D() != 10*time.Minute || sc.File != "x.yaml" {
		t.Errorf("got name %q duration %s file %q", sc.Name, sc.Duration.D(), sc.File)
	}
	// Defaults.
	if sc.Settle.D() != DefaultSettle || !sc.Start.Equal(DefaultStart) || sc.Topology.GossipProfile != "lan" {
		t.Errorf("defaults: settle %s start %s profile %q", sc.Settle.D(), sc.Start, sc.Topology.GossipProfile)
	}
	if r := sc.Topology.Regions[1]; r.Gateways != 1 || !reflect.DeepEqual(r.Zones, []string{"a"}) {
		t.Errorf("region defaults: %+v", r)
	}
	if s := sc.Services[0]; !reflect.DeepEqual(s.Regions, []string{"us-east", "eu-west"}) || s.Check != "http" || s.Interval.D() != 10*time.Second || s.FailuresBeforeCritical != 1 {
		t.Errorf("service defaults: %+v", s)
	}
	tr := sc.Traffic[0]
	if tr.Zone != "a" || tr.Rate != 10 || tr.Picker != "p2c" || tr.Policy.Mode != failover.ModeLocal {
		t.Errorf("traffic defaults: %+v", tr)
	}
	if sc.Timeline[0].Line != 13 || sc.Expect[0].Line != 15 {
		t.Errorf("lines: fault %d expectation %d, want 13 and 15", sc.Timeline[0].Line, sc.Expect[0].Line)
	}
	if sc.Lines["traffic[0].service"] != 11 {
		t.Errorf("Lines[traffic[0].service] = %d, want 11", sc.Lines["traffic[0].service"])
	}
	// The name defaults to the file's.
	sc, err = Parse("dir/my-run.yaml", []byte(strings.Replace(base, "name: t\n", "", 1)))
	if err != nil || sc.Name != "my-run" {
		t.Errorf("default name: %v, %v", sc, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // replaces base when it starts with "!", else appended to the timeline or given whole
		want string
	}{
		{"unknown top-level key", base + "colour: blue\n", `x.yaml:16: colour: unknown field "colour"`},
		{"unknown nested key", strings.Replace(base, "{name: eu-west}", "{name: eu-west, gatways: 2}", 1), `x.yaml:6: topology.regions[1].gatways: unknown field "gatways"`},
		{"unknown region in traffic", strings.Replace(base, "{from: us-east, service: web}", "{from: us-wset, service: web}", 1), `x.yaml:11: traffic[0].from: unknown region "us-wset" (known: us-east, eu-west)`},
		{"unknown service", strings.Replace(base, "service: web}", "service: wbe}", 1), `x.yaml:11: traffic[0].service: unknown service "wbe" (known: web, api)`},
		{"missing duration", strings.Replace(base, "duration: 10m\n", "", 1), `x.yaml:1: duration: required`},
		{"zero duration", strings.Replace(base, "duration: 10m", "duration: 0s", 1), `x.yaml:2: duration: must be > 0`},
		{"bad duration", strings.Replace(base, "duration: 10m", "duration: 10", 1), `x.yaml:2: duration: want a duration such as 250ms or 5m, got "10"`},
		{"wrong type", strings.Replace(base, "instances: 3", "instances: three", 1), `x.yaml:8: services[0].instances: want an integer, got "three"`},
		{"list for a mapping", strings.Replace(base, "topology:\n", "topology: []\nx:\n", 1), `x.yaml:3: topology: want a mapping, got a list`},
		{"duplicate key", base + "duration: 5m\n", `x.yaml:16: duration: duplicate key (first at line 2)`},
		{"no regions", strings.Replace(base, "topology:\n  regions:\n    - {name: us-east, gateways: 2, zones: [a, b]}\n    - {name: eu-west}\n", "topology: {}\n", 1), `x.yaml:3: topology.regions: required`},
		{"duplicate region", strings.Replace(base, "{name: eu-west}", "{name: us-east}", 1), `x.yaml:6: topology.regions[1].name: duplicate region "us-east"`},
		{"zero gateways", strings.Replace(base, "gateways: 2", "gateways: 0", 1), `x.yaml:5: topology.regions[0].gateways: must be > 0`},
		{"loss out of range", strings.Replace(base, "topology:\n", "topology:\n  network: {loss: 1}\n", 1), `x.yaml:4: topology.network.loss: must be within [0, 1), got 1`},
		{"bad check", strings.Replace(base, "instances: 3}", "instances: 3, check: tcp}", 1), `x.yaml:8: services[0].check: unknown check "tcp"`},
		{"zero rate", strings.Replace(base, "service: web}", "service: web, rate: 0}", 1), `x.yaml:11: traffic[0].rate: must be > 0`},
		{"negative rate", strings.Replace(base, "service: web}", "service: web, rate: -1}", 1), `x.yaml:11: traffic[0].rate: must be within (0, 10000]`},
		{"bad zone", strings.Replace(base, "service: web}", "service: web, zone: c}", 1), `x.yaml:11: traffic[0].zone: unknown zone "c" of region us-east (known: a, b)`},
		{"bad mode", strings.Replace(base, "service: web}", "service: web, policy: {mode: closest}}", 1), `x.yaml:11: traffic[0].policy.mode: unknown mode "closest"`},
		{"ordered without regions", strings.Replace(base, "service: web}", "service: web, policy: {mode: ordered}}", 1), `x.yaml:11: traffic[0].policy.regions: mode ordered needs at least one region`},
		{"ordered unknown region", strings.Replace(base, "service: web}", "service: web, policy: {mode: ordered, regions: [mars]}}", 1), `x.yaml:11: traffic[0].policy.regions[0]: unknown region "mars"`},
		{"bad picker", strings.Replace(base, "service: web}", "service: web, picker: random}", 1), `x.yaml:11: traffic[0].picker: unknown picker "random" (want hash, p2c, round_robin, weighted)`},
		{"unknown kind", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: meteor}\n", `x.yaml:14: timeline[1].kind: unknown fault kind "meteor"`},
		{"missing at", base[:strings.Index(base, "expect:")] + "  - {kind: heal}\n", `x.yaml:14: timeline[1].at: required`},
		{"at after the end", base[:strings.Index(base, "expect:")] + "  - {at: 11m, kind: heal}\n", `x.yaml:14: timeline[1].at: 11m0s is not within the run [0s, 10m0s)`},
		{"for past the end", base[:strings.Index(base, "expect:")] + "  - {at: 9m, kind: store_down, region: us-east, for: 2m}\n", `x.yaml:14: timeline[1].for: at 9m0s + for 2m0s ends after the run`},
		{"fault unknown region", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: store_down, region: us-wset}\n", `x.yaml:14: timeline[1].region: unknown region "us-wset" (known: us-east, eu-west)`},
		{"fault field not for kind", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: heal, region: us-east}\n", `x.yaml:14: timeline[1].region: does not apply to kind heal`},
		{"cut needs to", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: cut, from: us-east}\n", `x.yaml:14: timeline[1].to: required`},
		{"cut to itself", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: cut, from: us-east, to: us-east}\n", `x.yaml:14: timeline[1].to: must differ from from`},
		{"partition region twice", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: partition, groups: [[us-east], [us-east, eu-west]]}\n", `x.yaml:14: timeline[1].groups[1][0]: region "us-east" is already in groups[0]`},
		{"partition of nothing", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: partition, groups: [[us-east, eu-west]]}\n", `x.yaml:14: timeline[1].groups: one group with every region separates nothing`},
		{"gateway out of range", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: gateway_crash, gateway: eu-west-2}\n", `x.yaml:14: timeline[1].gateway: "eu-west-2": region eu-west has 1 gateway(s)`},
		{"gateway bad name", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: gateway_crash, gateway: us-east}\n", `x.yaml:14: timeline[1].gateway: "us-east": want "<region>-<n>"`},
		{"gateway and region", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: gateway_crash, gateway: us-east-1, region: us-east}\n", `x.yaml:14: timeline[1].region: give either gateway or region, not both`},
		{"degrade needs something", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: degrade, from: us-east, to: eu-west}\n", `x.yaml:14: timeline[1]: degrade needs latency or loss`},
		{"instances need count", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: instances_fail, region: us-east, service: web}\n", `x.yaml:14: timeline[1].count: required`},
		{"service not in region", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: instances_fail, region: us-east, service: api, count: 1}\n", `x.yaml:14: timeline[1].service: service api does not run in region us-east`},
		{"fraction over 1", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: instances_fail, region: us-east, service: web, fraction: 1.5}\n", `x.yaml:14: timeline[1].fraction: must be within (0, 1], got 1.5`},
		{"flap needs period", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: instances_flap, region: us-east, service: web, count: 1}\n", `x.yaml:14: timeline[1].period: required`},
		{"rolling needs every", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: rolling_restart, down: 10s}\n", `x.yaml:14: timeline[1].every: required`},
		{"storm needs count", base[:strings.Index(base, "expect:")] + "  - {at: 2m, kind: register_storm, region: us-east, service: web}\n", `x.yaml:14: timeline[1].count: required`},
		{"unknown metric", strings.Replace(base, "metric: availability", "metric: uptime", 1), `x.yaml:15: expect[0].metric: unknown metric "uptime"`},
		{"no bound", strings.Replace(base, "{metric: availability, min: 0.9}", "{metric: availability}", 1), `x.yaml:15: expect[0]: needs min or max`},
		{"share out of range", strings.Replace(base, "min: 0.9}", "min: 99}", 1), `x.yaml:15: expect[0].min: availability is a share: must be within [0, 1], got 99`},
		{"min above max", strings.Replace(base, "min: 0.9}", "min: 0.9, max: 0.5}", 1), `x.yaml:15: expect[0].min: min 0.9 is above max 0.5`},
		{"time metric needs max_duration", strings.Replace(base, "{metric: availability, min: 0.9}", "{metric: failover_time, max: 30}", 1), `x.yaml:15: expect[0].max_duration: failover_time is a time: bound it with max_duration`},
		{"max_duration on a share", strings.Replace(base, "min: 0.9}", "min: 0.9, max_duration: 1m}", 1), `x.yaml:15: expect[0].max_duration: applies to time metrics only`},
		{"expect unknown region", strings.Replace(base, "min: 0.9}", "min: 0.9, region: mars}", 1), `x.yaml:15: expect[0].region: unknown region "mars"`},
		{"bad start", "start: yesterday\n" + base, `x.yaml:1: start: want an RFC 3339 time`},
		{"alias", "description: &a hi\n" + base, `x.yaml:1: description: YAML anchors and aliases are not supported`},
		{"syntax error", "duration: [\n", `x.yaml:`},
		{"empty", "", `x.yaml:1: empty scenario`},
		{"scalar document", "hello\n", `x.yaml:1: want a mapping, got "hello"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n  got  %s\n  want %s", err, tt.want)
			}
			var fe *FieldError
			var es Errors
			if !errors.As(err, &fe) && !errors.As(err, &es) {
				t.Errorf("error %T is neither *FieldError nor Errors", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	y := strings.Replace(base, "{from: us-east, service: web}", "{from: mars, service: wbe}", 1)
	_, err := Parse("x.yaml", []byte(y))
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("want two errors, got %v", err)
	}
	if es[0].Path != "traffic[0].from" || es[1].Path != "traffic[0].service" || es[0].Line != 11 {
		t.Errorf("got %q", err)
	}
}

func TestBuiltins(t *testing.T) {
	names := Names()
	if len(names) < 13 {
		t.Fatalf("%d built-in scenarios, want at least 13", len(names))
	}
	want := []string{"steady-state", "region-cutoff", "full-split", "asymmetric-partition", "gateway-crash-restart",
		"region-gateways-down", "redis-outage", "flapping-instances", "service-failure-failover", "slow-wan-link",
		"thundering-herd", "rolling-restart", "registration-storm", "redis-data-loss", "wan-propagation"}
	for _, n := range want {
		if !IsBuiltin(n) {
			t.Errorf("built-in %q missing", n)
		}
	}
	infos := List()
	for i, in := range infos {
		if i > 0 && infos[i-1].Name >= in.Name {
			t.Errorf("List not sorted at %q", in.Name)
		}
		sc, err := Builtin(in.Name)
		if err != nil {
			t.Errorf("%s: %v", in.Name, err)
			continue
		}
		if sc.Name != in.Name || sc.Description == "" || in.Description != sc.Description {
			t.Errorf("%s: name %q description %q", in.Name, sc.Name, sc.Description)
		}
		if len(sc.Expect) == 0 {
			t.Errorf("%s: no expectations", in.Name)
		}
		if d := sc.Duration.D(); d < 5*time.Minute || d > 30*time.Minute {
			t.Errorf("%s: duration %s, want 5m-30m to keep CI fast", in.Name, d)
		}
		if sc.File != "scenarios/"+in.Name+".yaml" {
			t.Errorf("%s: File %q", in.Name, sc.File)
		}
	}
	if _, err := Builtin("nope"); err == nil || !strings.Contains(err.Error(), "steady-state") {
		t.Errorf("Builtin(nope) = %v, want an error listing the known names", err)
	}
	if _, err := Builtin("../scenarios/steady-state"); err == nil {
		t.Error("Builtin accepted a path")
	}
}

// TestMarshalRoundTrip: Marshal writes what Parse reads back unchanged.
func TestMarshalRoundTrip(t *testing.T) {
	check := func(t *testing.T, sc *Scenario) {
		t.Helper()
		data, err := Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("rt.yaml", data)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		a, b := *sc, *back
		a.Lines, b.Lines, a.File, b.File = nil, nil, "", ""
		for i := range b.Timeline {
			b.Timeline[i].Line = 0
		}
		for i := range b.Expect {
			b.Expect[i].Line = 0
		}
		at, ae := append([]Fault(nil), a.Timeline...), append([]Expectation(nil), a.Expect...)
		for i := range at {
			at[i].Line = 0
		}
		for i := range ae {
			ae[i].Line = 0
		}
		a.Timeline, a.Expect = at, ae
		if !reflect.DeepEqual(a, b) {
			t.Errorf("round trip differs:\n%+v\n%+v\n%s", a, b, data)
		}
	}
	for _, n := range Names() {
		sc, err := Builtin(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(n, func(t *testing.T) { check(t, sc) })
	}
	for seed := uint64(0); seed < 50; seed++ {
		check(t, Generate(seed))
	}
}

func TestParseAllowEmptyAndSyncFailed(t *testing.T) {
	y := base + "  - {metric: failover_time, max_duration: 10s, allow_empty: true}\n  - {metric: sync_failed, region: eu-west, max: 3}\n"
	sc, err := Parse("x.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	n := len(sc.Expect)
	if e := sc.Expect[n-2]; e.Metric != MetricFailoverTime || !e.AllowEmpty {
		t.Errorf("allow_empty not decoded: %+v", e)
	}
	if e := sc.Expect[n-1]; e.Metric != MetricSyncFailed || e.AllowEmpty || e.Max == nil || *e.Max != 3 {
		t.Errorf("sync_failed: %+v", e)
	}
	out, err := Marshal(sc)
	if err != nil || !strings.Contains(string(out), "allow_empty: true") {
		t.Errorf("Marshal lost allow_empty (%v):\n%s", err, out)
	}
	if _, err := Parse("x.yaml", []byte(base+"  - {metric: lookups, min: 1, allow_empty: maybe}\n")); err == nil {
		t.Error("allow_empty: maybe accepted")
	}
}
