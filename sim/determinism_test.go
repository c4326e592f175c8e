package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/scenarios"
)

// busy is a scenario with a bit of every fault kind.
func busy() *scenarios.Scenario {
	sc := threeRegions(12 * time.Minute)
	sc.Services = append(sc.Services, scenarios.Service{Name: "api", Instances: 3, Check: "ttl", Interval: dur(6 * time.Second),
		FailuresBeforeCritical: 2, DeregisterCriticalAfter: dur(3 * time.Minute)})
	sc.Traffic = append(sc.Traffic,
		scenarios.Traffic{From: "eu-west", Service: "api", Rate: 5, Picker: "round_robin"},
		scenarios.Traffic{From: "us-east", Service: "api", Rate: 5, Picker: "weighted",
			Policy: failoverOrdered("ap-south", "eu-west")},
		scenarios.Traffic{From: "ap-south", Service: "web", Rate: 5, Picker: "hash",
			Policy: failover.Policy{Mode: failover.ModeNearest, NearestN: 1}})
	sc.Timeline = []scenarios.Fault{
		{At: dur(30 * time.Second), Kind: scenarios.FaultDegrade, From: "us-east", To: "eu-west", Latency: dur(80 * time.Millisecond), Loss: 0.05, For: dur(2 * time.Minute)},
		{At: dur(time.Minute), Kind: scenarios.FaultInstancesFlap, Region: "us-east", Service: "web", Count: 2, Period: dur(7 * time.Second), For: dur(2 * time.Minute)},
		{At: dur(90 * time.Second), Kind: scenarios.FaultGatewayCrash, Gateway: "eu-west-2", For: dur(time.Minute)},
		{At: dur(2 * time.Minute), Kind: scenarios.FaultCut, From: "ap-south", To: "us-east", For: dur(time.Minute)},
		{At: dur(3 * time.Minute), Kind: scenarios.FaultStoreSlow, Region: "ap-south", Latency: dur(300 * time.Millisecond), For: dur(time.Minute)},
		{At: dur(3 * time.Minute), Kind: scenarios.FaultInstancesSlow, Region: "eu-west", Service: "web", Count: 1, Latency: dur(3 * time.Second), For: dur(time.Minute)},
		{At: dur(4 * time.Minute), Kind: scenarios.FaultInstancesFail, Region: "eu-west", Service: "api", Count: 1},
		{At: dur(4 * time.Minute), Kind: scenarios.FaultRegisterStorm, Region: "us-east", Service: "web", Count: 200, Over: dur(30 * time.Second)},
		{At: dur(5 * time.Minute), Kind: scenarios.FaultStoreDown, Region: "us-east", For: dur(40 * time.Second)},
		{At: dur(6 * time.Minute), Kind: scenarios.FaultDeregister, Region: "us-east", Service: "web", Count: 50},
		{At: dur(6 * time.Minute), Kind: scenarios.FaultRollingRestart, Region: "ap-south", Every: dur(20 * time.Second), Down: dur(10 * time.Second)},
		{At: dur(7 * time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}},
		{At: dur(8 * time.Minute), Kind: scenarios.FaultHeal},
	}
	return sc
}

func runLog(t *testing.T, sc *scenarios.Scenario, opts Options) (string, string) {
	t.Helper()
	var log bytes.Buffer
	opts.EventLog = &log
	_, sum := runOK(t, sc, opts)
	return log.String(), sum
}

func TestDeterminism(t *testing.T) {
	log1, sum1 := runLog(t, busy(), Options{Seed: 42})
	log2, sum2 := runLog(t, busy(), Options{Seed: 42})
	if log1 != log2 {
		t.Fatalf("same seed, different event logs (%d vs %d bytes); first difference:\n%s", len(log1), len(log2), firstDiff(log1, log2))
	}
	if sum1 != sum2 {
		t.Fatalf("same seed, different summaries:\n%s\n---\n%s", sum1, sum2)
	}
	checkJSONLines(t, log1)
	log3, sum3 := runLog(t, busy(), Options{Seed: 43})
	if log3 == log1 || sum3 == sum1 {
		t.Fatalf("seeds 42 and 43 gave the same run")
	}
	t.Logf("event log %d bytes, %d lines\n%s", len(log1), bytes.Count([]byte(log1), []byte("\n")), sum1)
}

func firstDiff(a, b string) string {
	la, lb := bytes.Split([]byte(a), []byte("\n")), bytes.Split([]byte(b), []byte("\n"))
	for i := 0; i < len(la) && i < len(lb); i++ {
		if !bytes.Equal(la[i], lb[i]) {
			return "  " + string(la[i]) + "\n  " + string(lb[i])
		}
	}
	return "(one is a prefix of the other)"
}

// checkJSONLines checks that every line is a JSON object starting with
// "t", "seq" and "kind", with seq counting up from 1.
func checkJSONLines(t *testing.T, log string) {
	t.Helper()
	kinds := map[string]int{}
	for i, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		var ev struct {
			T    string `json:"t"`
			Seq  int    `json:"seq"`
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, line)
		}
		if !strings.HasPrefix(line, `{"t":"`) || !strings.Contains(line, fmt.Sprintf(`,"seq":%d,"kind":`, i+1)) || ev.Seq != i+1 {
			t.Fatalf("line %d: want t, seq=%d, kind first: %s", i+1, i+1, line)
		}
		if _, err := time.ParseDuration(ev.T); err != nil {
			t.Fatalf("line %d: t %q: %v", i+1, ev.T, err)
		}
		kinds[ev.Kind]++
	}
	for _, k := range []string{"fault", "member", "sync", "status", "register", "deregister", "traffic", "shard", "gateway"} {
		if kinds[k] == 0 {
			t.Errorf("no %q event in the log (kinds: %v)", k, kinds)
		}
	}
}

// The instance lists routing keeps and patches change by change always
// equal what the catalogs say.
func TestInstanceCacheFollowsCatalogs(t *testing.T) {
	for _, sc := range []*scenarios.Scenario{busy(), twoRegionsStorm()} {
		runHooked(t, sc, 21, testHooks{verifyInstances: true})
	}
}

func twoRegionsStorm() *scenarios.Scenario {
	sc := twoRegions(4 * time.Minute)
	sc.Timeline = []scenarios.Fault{
		{At: dur(time.Minute), Kind: scenarios.FaultRegisterStorm, Region: "us-east", Service: "web", Count: 300, Over: dur(20 * time.Second)},
		{At: dur(80 * time.Second), Kind: scenarios.FaultDeregister, Region: "us-east", Service: "web", Count: 100},
		{At: dur(90 * time.Second), Kind: scenarios.FaultPartition, Groups: [][]string{{"us-east"}, {"eu-west"}}, For: dur(30 * time.Second)},
		{At: dur(100 * time.Second), Kind: scenarios.FaultRegisterStorm, Region: "us-east", Service: "web", Count: 300, Over: dur(5 * time.Second)},
	}
	return sc
}
