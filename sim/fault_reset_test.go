package sim

import (
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// TestNotifyLostValidate: notify_lost names one gateway of a known region.
func TestNotifyLostValidate(t *testing.T) {
	base := `name: x
duration: 5m
topology:
  regions:
    - {name: us-east, gateways: 2}
services:
  - {name: web}
timeline:
`
	wantFaultParse(t, base, []struct{ fault, want string }{
		{`{at: 1m, kind: notify_lost}`, "required"},
		{`{at: 1m, kind: notify_lost, gateway: us-east-3}`, "2 gateway"},
		{`{at: 1m, kind: notify_lost, gateway: eu-west-1}`, "known region"},
		{`{at: 1m, kind: notify_lost, region: us-east, gateway: us-east-1}`, "does not apply"},
		{`{at: 1m, kind: notify_lost, gateway: us-east-2, for: 1m}`, ""},
		{`{at: 0s, kind: notify_lost, gateway: us-east-1}`, ""},
	})
}

// TestNotifyLostDropsOneGatewaysNotifications: while notify_lost is in
// force, the store's notifications do not reach that gateway (its cache
// is not kicked); its region's other gateways get theirs, and after For it
// gets them again.
func TestNotifyLostDropsOneGatewaysNotifications(t *testing.T) {
	sc := twoRegions(3 * time.Minute)
	w := testWorld(t, sc, 1)
	one, two := w.gwByName["us-east-1"], w.gwByName["us-east-2"]
	one.running, two.running = true, true
	w.applyFault(&scenarios.Fault{Kind: scenarios.FaultNotifyLost, Gateway: "us-east-2", For: dur(time.Second)})
	if !w.lostNotify(two) || w.lostNotify(one) {
		t.Fatalf("notify_lost on us-east-2: lost for us-east-1 %v, us-east-2 %v", w.lostNotify(one), w.lostNotify(two))
	}
	two.notifyStore()
	if two.cachePending {
		t.Fatal("a notification reached us-east-2 while notify_lost is in force")
	}
	for w.q.len() > 0 { // the fault's end
		ev := w.q.pop()
		w.now = ev.at
		ev.fn()
	}
	if w.lostNotify(two) {
		t.Fatal("notify_lost still in force after its For")
	}
	one.notifyStore()
	two.notifyStore()
	if !one.cachePending || !two.cachePending {
		t.Fatalf("notifications after the fault: us-east-1 kicked %v, us-east-2 %v; want both", one.cachePending, two.cachePending)
	}
}
