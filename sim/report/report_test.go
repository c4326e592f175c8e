package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim"
)

// element is a parsed XML element, enough to check the report's structure.
type element struct {
	name     string
	attrs    map[string]string
	children []*element
	text     string
}

func parseXML(t *testing.T, data []byte) *element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	root := &element{name: "#root"}
	stack := []*element{root}
	for i := 0; i < 1_000_000; i++ {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			top := stack[len(stack)-1]
			top.children = append(top.children, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			stack[len(stack)-1].text += string(tok)
		}
	}
	return root
}

func (e *element) find(pred func(*element) bool) []*element {
	var out []*element
	var walk func(*element)
	walk = func(x *element) {
		if pred(x) {
			out = append(out, x)
		}
		for _, c := range x.children {
			walk(c)
		}
	}
	walk(e)
	return out
}

func byID(root *element, id string) *element {
	got := root.find(func(x *element) bool { return x.attrs["id"] == id })
	if len(got) != 1 {
		return nil
	}
	return got[0]
}

func (e *element) allText() string {
	var b strings.Builder
	for _, x := range e.find(func(*element) bool { return true }) {
		b.WriteString(x.text)
	}
	return b.String()
}

func runScenario(t *testing.T, name string) (*sim.Result, *scenarios.Scenario) {
	t.Helper()
	sc, err := scenarios.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(sc, sim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return res, sc
}

func TestReportStructure(t *testing.T) {
	res, sc := runScenario(t, "service-failure-failover")
	var b bytes.Buffer
	if err := Write(&b, res, sc); err != nil {
		t.Fatal(err)
	}
	root := parseXML(t, b.Bytes())

	if v := byID(root, "verdict"); v == nil || v.text != "PASS" {
		t.Errorf("verdict element missing or wrong: %+v", v)
	}
	svg := byID(root, "timeline")
	if svg == nil || svg.name != "svg" {
		t.Fatalf("no inline <svg id=timeline>")
	}
	// One heat strip bucket per region and time step.
	buckets := svg.find(func(x *element) bool { return x.name == "rect" && x.attrs["class"] == "bucket" })
	want := 0
	for _, row := range res.Timeline.Availability {
		want += len(row)
	}
	if want == 0 || len(buckets) != want {
		t.Errorf("%d heat-strip buckets, want %d", len(buckets), want)
	}
	// An availability line per region.
	for _, r := range res.Timeline.Regions {
		lines := svg.find(func(x *element) bool { return x.name == "polyline" && x.attrs["data-region"] == r })
		if len(lines) == 0 {
			t.Errorf("no availability line for region %s", r)
		}
	}
	// Every fault drawn as a bar with its label.
	bars := svg.find(func(x *element) bool { return x.name == "rect" && x.attrs["class"] == "fault" })
	if len(res.Timeline.Faults) == 0 || len(bars) != len(res.Timeline.Faults) {
		t.Errorf("%d fault bars, want %d", len(bars), len(res.Timeline.Faults))
	}
	if !strings.Contains(svg.allText(), "instances_fail") {
		t.Error("fault labels missing from the timeline")
	}
	// One row per expectation (plus the header), one per invariant.
	exp := byID(root, "expectations")
	if exp == nil {
		t.Fatal("no expectations table")
	}
	rows := exp.find(func(x *element) bool { return x.name == "tr" })
	if len(rows) != len(res.Expectations)+1 {
		t.Errorf("%d expectation rows, want %d", len(rows)-1, len(res.Expectations))
	}
	inv := byID(root, "invariants")
	if inv == nil || len(inv.find(func(x *element) bool { return x.name == "tr" })) != len(res.Invariants)+1 {
		t.Error("invariants table missing or incomplete")
	}
	if !strings.Contains(exp.allText(), "failover_time") {
		t.Error("expectations table does not name failover_time")
	}

	// Deterministic.
	var b2 bytes.Buffer
	if err := Write(&b2, res, sc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), b2.Bytes()) {
		t.Error("two renders of one result differ")
	}
}

func TestReportFailingAndEscaped(t *testing.T) {
	res, sc := runScenario(t, "steady-state")
	// Make an expectation fail and put markup in a label: the report says
	// FAIL and stays well-formed.
	res.Expectations[0].Pass = false
	res.Expectations[0].Message = `availability = 0.5 <b>&</b>, want >= 0.999`
	res.Timeline.Faults = append(res.Timeline.Faults, sim.FaultSpan{Kind: "partition", Label: "<[a] | [b]>", Start: 60e9, End: -1})
	var b bytes.Buffer
	if err := Write(&b, res, sc); err != nil {
		t.Fatal(err)
	}
	root := parseXML(t, b.Bytes())
	if v := byID(root, "verdict"); v == nil || v.text != "FAIL" {
		t.Errorf("verdict: %+v", v)
	}
	if !strings.Contains(byID(root, "expectations").allText(), "<b>&</b>") {
		t.Error("message not shown verbatim")
	}
	if !strings.Contains(byID(root, "timeline").allText(), "<[a] | [b]>") {
		t.Error("fault label not shown verbatim")
	}
	if err := Write(&b, nil, nil); err == nil {
		t.Error("Write(nil result) succeeded")
	}
}

func TestTickLabel(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 30 * time.Second: "30s", 2 * time.Minute: "2m", 90 * time.Second: "1m30s", 2 * time.Hour: "2h",
	} {
		if got := tickLabel(d); got != want {
			t.Errorf("tickLabel(%s) = %q, want %q", d, got, want)
		}
	}
}

// Violations are marked on the timeline, one row per invariant, one mark
// per time step with violations, and the first one's router explanation
// is shown.
func TestReportMarksViolations(t *testing.T) {
	res, sc := runScenario(t, "steady-state")
	if len(res.Timeline.Violations) != 0 {
		t.Fatalf("steady-state has violations: %v", res.Timeline.Violations)
	}
	var b bytes.Buffer
	if err := Write(&b, res, sc); err != nil {
		t.Fatal(err)
	}
	if byID(parseXML(t, b.Bytes()), "violations") != nil {
		t.Error("a violations row without violations")
	}
	step := res.Timeline.Step
	res.Timeline.Violations = []sim.ViolationMark{
		{Invariant: sim.InvUnreachable, At: 3 * step}, {Invariant: sim.InvUnreachable, At: 3*step + 1}, {Invariant: sim.InvUnreachable, At: 10 * step},
		{Invariant: sim.InvStaleness, At: 5 * step},
	}
	res.Violations = append(res.Violations, sim.Violation{Invariant: sim.InvUnreachable, At: 3 * step, Detail: "sent to eu-west", Explanation: "us-east: 0 healthy; eu-west <takes 100%>"})
	for i := range res.Invariants {
		if res.Invariants[i].Name == sim.InvUnreachable {
			res.Invariants[i].Count = 3
		}
	}
	b.Reset()
	if err := Write(&b, res, sc); err != nil {
		t.Fatal(err)
	}
	root := parseXML(t, b.Bytes())
	g := byID(root, "violations")
	if g == nil {
		t.Fatal("no violations row on the timeline")
	}
	marks := g.find(func(x *element) bool { return x.attrs["class"] == "violation" })
	var got []string
	for _, m := range marks {
		got = append(got, m.attrs["data-invariant"]+" "+m.allText())
	}
	want := []string{
		sim.InvUnreachable + " " + sim.InvUnreachable + ": 2 violation(s) " + dur(3*step) + "-" + dur(4*step),
		sim.InvUnreachable + " " + sim.InvUnreachable + ": 1 violation(s) " + dur(10*step) + "-" + dur(11*step),
		sim.InvStaleness + " " + sim.InvStaleness + ": 1 violation(s) " + dur(5*step) + "-" + dur(6*step),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("marks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(byID(root, "invariants").allText(), "router: us-east: 0 healthy; eu-west <takes 100%>") {
		t.Error("the router's explanation is not shown")
	}
}
