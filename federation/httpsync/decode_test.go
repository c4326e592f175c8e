package httpsync

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// checkDecodeAnswer decodes body both ways: streamed (decodeAnswer) and
// whole (json.Unmarshal into CatalogAnswer, the catalog by Load). Both
// must agree on success, and on the answer when both succeed.
func checkDecodeAnswer(t *testing.T, body string) {
	t.Helper()
	var whole federation.CatalogAnswer
	wholeErr := json.Unmarshal([]byte(body), &whole)
	got, built, err := decodeAnswer(strings.NewReader(body))
	if (err == nil) != (wholeErr == nil) {
		// A body that is valid JSON up to its first value and garbage
		// after is an error only for Unmarshal (a Decoder reads one value).
		if err == nil && json.Valid([]byte(body)) {
			t.Fatalf("decodeAnswer: no error, json.Unmarshal: %v\nbody %q", wholeErr, body)
		}
		if err != nil {
			t.Fatalf("decodeAnswer: %v, json.Unmarshal: no error\nbody %q", err, body)
		}
		return
	}
	if err != nil {
		return
	}
	if got.Region != whole.Region || got.Version != whole.Version || got.Full != whole.Full || !reflect.DeepEqual(got.Changes, whole.Changes) ||
		got.Epoch != whole.Epoch || got.RestoredFrom != whole.RestoredFrom {
		t.Fatalf("decoded %+v, json.Unmarshal %+v", got, whole)
	}
	want := region.NewCatalog()
	want.Load(region.Snapshot{Version: whole.Version, Instances: whole.Instances})
	var have []region.Instance
	if built != nil {
		have = built.Catalog(got.Version).All()
	}
	if w := want.All(); !reflect.DeepEqual(have, w) && !(len(have) == 0 && len(w) == 0) {
		t.Fatalf("built %v\nLoad   %v", have, w)
	}
}

func TestDecodeAnswer(t *testing.T) {
	t1 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	full, _ := json.Marshal(federation.FullResponse{Region: "us-east", Version: 7, Full: true, Instances: []region.Instance{
		{Service: "web", ID: "a", Address: "10.0.0.1", Port: 80, Status: region.StatusPassing, Tags: []string{"v1"}, RegisteredAt: t1, UpdatedAt: t1, ModifyIndex: 3},
		{Service: "db", ID: "b", Address: "10.0.0.2", Port: 5432, Status: region.StatusCritical, Meta: map[string]string{"k": "v"}, RegisteredAt: t1, UpdatedAt: t1, ModifyIndex: 7},
	}})
	in := region.Instance{Service: "web", ID: "c", Address: "10.0.0.3", Port: 80, Status: region.StatusPassing, RegisteredAt: t1, UpdatedAt: t1}
	delta, _ := json.Marshal(federation.DeltaResponse{Region: "us-east", Version: 9, Changes: []region.Change{
		{Version: 8, Op: region.OpPut, Service: "web", ID: "c", Instance: &in}, {Version: 9, Op: region.OpDelete, Service: "web", ID: "a"}}})
	for _, body := range []string{string(full), string(delta),
		`{"region":"us-east","version":1,"full":true,"instances":null}`,
		`{"region":"us-east","version":1,"full":true,"instances":[]}`,
		`{"extra":{"a":[1,2]},"instances":[{"service":"web","id":"a"}],"region":"us-east","full":true,"version":3}`,
		`{"region":"us-east","instances":{}}`, `{"region":"us-east","instances":[1]}`, `[]`, `{"region":`, ``,
		`{"region":"us-east","version":4,"full":true,"instances":[],"epoch":"e2","restored_from":"e1"}`,
		`{"region":"us-east","version":4,"full":false,"changes":[],"Epoch":"e2"}`, `{"region":"us-east","epoch":7}`,
	} {
		checkDecodeAnswer(t, body)
	}
	// The store's epoch travels with the answer (the core tells a lagging
	// catalog from a reset region by it).
	withEpoch, _ := json.Marshal(federation.FullResponse{Region: "us-east", Version: 4, Full: true, Instances: []region.Instance{},
		Epoch: "e2", RestoredFrom: "e1"})
	a, _, err := decodeAnswer(strings.NewReader(string(withEpoch)))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := a.Result("us-east"); err != nil || r.Epoch != "e2" || r.RestoredFrom != "e1" {
		t.Fatalf("answer %s: result epoch %q restored from %q (%v), want e2 from e1", withEpoch, r.Epoch, r.RestoredFrom, err)
	}
	got, built, err := decodeAnswer(strings.NewReader(string(full)))
	if err != nil || built == nil {
		t.Fatalf("full answer: %v", err)
	}
	if c := built.Catalog(got.Version); c.Len() != 2 || c.Version() != 7 {
		t.Fatalf("full answer: catalog of %d instances at v%d, want 2 at v7", c.Len(), c.Version())
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(`{"region":"us-east","version":1,"full":true,"instances":[{"service":"web","id":"a","port":80}]}`)
	f.Add(`{"region":"us-east","version":2,"changes":[{"version":2,"op":"delete","service":"web","id":"a"}]}`)
	f.Add(`{"instances":null}`)
	f.Fuzz(func(t *testing.T, body string) { checkDecodeAnswer(t, body) })
}
