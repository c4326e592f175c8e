package gateway

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/region"
)

// The hand-built lookup answer must be exactly what json.Marshal gives,
// and the cached instance encoding must follow every write.
func TestWriteServiceAnswerMatchesJSONAndFollowsWrites(t *testing.T) {
	s := &Server{}
	t1 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ins := []region.Instance{{ID: "a<&>\"", Service: "web", Address: "10.0.0.1", Port: 80, Weight: 100,
		Status: region.StatusPassing, Tags: []string{"é", "<b>"}, Meta: map[string]string{"k": "\u2028"},
		RegisteredAt: t1, UpdatedAt: t1, ModifyIndex: 3}}
	check := func(ins []region.Instance) {
		t.Helper()
		ans := regionAnswer{Region: "us-east", Version: 9, Stale: true, AgeMS: 12, Instances: ins}
		rec := httptest.NewRecorder()
		s.writeServiceAnswer(rec, "web", region.Filter{}, ans)
		wantIns := ins
		if wantIns == nil {
			wantIns = []region.Instance{} // "instances":[], never null
		}
		want, _ := json.Marshal(serviceResponse{Service: "web",
			freshness: freshness{Region: "us-east", Version: 9, Stale: true, AgeMS: 12}, Instances: wantIns})
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	check(ins)
	check(ins) // from the cache
	ins2 := append([]region.Instance(nil), ins...)
	ins2[0].Port, ins2[0].ModifyIndex, ins2[0].UpdatedAt = 81, 4, t1.Add(time.Second)
	check(ins2) // a write: re-encoded
	check(nil)  // none left: []
}
