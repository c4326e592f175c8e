// Package report renders a simulator run as one self-contained HTML file:
// a summary, the expectations and invariants, the per-route metrics and an
// inline SVG timeline that draws each region's availability over time (a
// heat strip and a line chart) with the faults as labelled bars underneath.
//
// The output is deterministic (the same result gives the same bytes) and
// well-formed XML, so it can be checked by a parser; it loads no scripts,
// fonts or styles from elsewhere.
package report

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim"
)

// Write renders r (a run of sc) as HTML to w. sc may be nil; the report then
// lacks the scenario's description and file.
func Write(w io.Writer, r *sim.Result, sc *scenarios.Scenario) error {
	if r == nil {
		return fmt.Errorf("report: no result")
	}
	b := &builder{}
	b.page(r, sc)
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

type builder struct{ bytes.Buffer }

func (b *builder) f(format string, args ...any) { fmt.Fprintf(b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// num formats a float with fixed precision (deterministic, no exponent).
func num(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }

func ratio(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return num(x, 4)
}

func dur(d time.Duration) string {
	if d >= time.Millisecond || d <= -time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

const css = `body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d232a;max-width:1100px}
h1{font-size:22px;margin:0 0 4px 0}h2{font-size:17px;margin:28px 0 8px 0}
.pass{color:#fff;background:#1a7f37;padding:1px 8px;border-radius:4px;font-size:14px}
.fail{color:#fff;background:#cf222e;padding:1px 8px;border-radius:4px;font-size:14px}
.skip{color:#fff;background:#6e7781;padding:1px 8px;border-radius:4px;font-size:14px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#57606a;font-size:13px}svg text{font-family:system-ui,Helvetica,Arial,sans-serif}`

func (b *builder) page(r *sim.Result, sc *scenarios.Scenario) {
	verdict, cls := "PASS", "pass"
	if !r.Passed() {
		verdict, cls = "FAIL", "fail"
	}
	b.f("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	b.f("<title>%s seed %d: %s</title>\n<style>%s</style>\n</head>\n<body>\n", esc(r.Scenario), r.Seed, verdict, css)
	b.f("<h1 id=\"title\">%s <span class=\"%s\" id=\"verdict\">%s</span></h1>\n", esc(r.Scenario), cls, verdict)
	if sc != nil && sc.Description != "" {
		b.f("<p>%s</p>\n", esc(sc.Description))
	}
	b.f("<p class=\"muted\">seed %d, %s simulated, %d events logged", r.Seed, dur(r.Duration), r.EventsLogged)
	if sc != nil && sc.File != "" {
		b.f(", scenario file %s", esc(sc.File))
	}
	b.f(". Replay: <code>meridian sim run %s --seed %d</code></p>\n", esc(replayArg(r, sc)), r.Seed)

	b.summary(r)
	b.f("<h2>Timeline</h2>\n")
	b.timeline(r)
	b.expectations(r, sc)
	b.invariants(r)
	b.routes(r)
	b.outages(r)
	b.f("</body>\n</html>\n")
}

func replayArg(r *sim.Result, sc *scenarios.Scenario) string {
	if sc != nil && sc.File != "" && !scenarios.IsBuiltin(sc.Name) {
		return sc.File
	}
	return r.Scenario
}

func (b *builder) summary(r *sim.Result) {
	m := &r.Metrics
	b.f("<h2>Summary</h2>\n<table id=\"summary\">\n")
	row := func(k, v string) { b.f("<tr><th>%s</th><td class=\"n\">%s</td></tr>\n", esc(k), esc(v)) }
	row("lookups", strconv.FormatInt(m.Lookups, 10))
	row("availability", ratio(m.Availability))
	row("dead share", ratio(m.DeadShare))
	row("unreachable sent", strconv.FormatInt(m.UnreachableSent, 10))
	row("failover time (max)", fmt.Sprintf("%s over %d outage(s)", dur(m.FailoverTimeMax), len(m.Failovers)))
	row("convergence p50 / p99", fmt.Sprintf("%s / %s (%d registrations, %d not converged)", dur(m.ConvergenceP50), dur(m.ConvergenceP99), len(m.Convergence), m.NotConverged))
	row("syncs", fmt.Sprintf("%d (%d full, %d failed), %d bytes", m.Syncs, m.FullSyncs, m.SyncFailed, m.SyncBytes))
	row("registrations / deregistrations", fmt.Sprintf("%d / %d", m.Registrations, m.Deregistered))
	row("status writes", strconv.FormatInt(m.StatusWrites, 10))
	row("membership events", strconv.FormatInt(m.MemberEvents, 10))
	b.f("</table>\n")
}

func passSpan(ok bool) string {
	if ok {
		return "<span class=\"pass\">PASS</span>"
	}
	return "<span class=\"fail\">FAIL</span>"
}

func bound(e scenarios.Expectation) string {
	s := ""
	if e.Min != nil {
		s += "&#8805; " + esc(strconv.FormatFloat(*e.Min, 'g', -1, 64))
	}
	if e.Max != nil {
		if s != "" {
			s += ", "
		}
		s += "&#8804; " + esc(strconv.FormatFloat(*e.Max, 'g', -1, 64))
	}
	if e.MaxDuration > 0 {
		if s != "" {
			s += ", "
		}
		s += "&#8804; " + esc(e.MaxDuration.D().String())
	}
	return s
}

func (b *builder) expectations(r *sim.Result, sc *scenarios.Scenario) {
	b.f("<h2>Expectations</h2>\n")
	if len(r.Expectations) == 0 {
		b.f("<p class=\"muted\">none (invariants only)</p>\n")
		return
	}
	b.f("<table id=\"expectations\">\n<tr><th>result</th><th>metric</th><th>region</th><th>service</th><th>bound</th><th>value</th><th>message</th></tr>\n")
	for _, e := range r.Expectations {
		x := e.Expectation
		where := ""
		if sc != nil && sc.File != "" && x.Line > 0 {
			where = fmt.Sprintf(" (%s:%d)", sc.File, x.Line)
		}
		b.f("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"n\">%s</td><td>%s</td></tr>\n",
			passSpan(e.Pass), esc(x.Metric), esc(orAll(x.Region)), esc(orAll(x.Service)), bound(x),
			esc(num(e.Value, 4)), esc(e.Message+where))
	}
	b.f("</table>\n")
}

func orAll(s string) string {
	if s == "" {
		return "all"
	}
	return s
}

func (b *builder) invariants(r *sim.Result) {
	b.f("<h2>Invariants</h2>\n<table id=\"invariants\">\n<tr><th>result</th><th>invariant</th><th>violations</th><th>note</th><th>first violation</th></tr>\n")
	for _, inv := range r.Invariants {
		status := passSpan(inv.Count == 0)
		if !inv.Checked && inv.Count == 0 {
			status = "<span class=\"skip\">SKIP</span>"
		}
		first := ""
		for _, v := range r.Violations {
			if v.Invariant == inv.Name {
				first = "at " + dur(v.At) + ": " + v.Detail
				if v.Explanation != "" {
					first += " (router: " + v.Explanation + ")"
				}
				break
			}
		}
		b.f("<tr><td>%s</td><td>%s</td><td class=\"n\">%d</td><td>%s</td><td>%s</td></tr>\n",
			status, esc(inv.Name), inv.Count, esc(inv.Note), esc(first))
	}
	b.f("</table>\n")
}

func (b *builder) routes(r *sim.Result) {
	if len(r.Metrics.PerRoute) == 0 {
		return
	}
	b.f("<h2>Lookups per region and service</h2>\n<table id=\"routes\">\n<tr><th>region</th><th>service</th><th>lookups</th><th>availability</th><th>dead share</th><th>served by another region</th></tr>\n")
	for _, rm := range r.Metrics.PerRoute {
		b.f("<tr><td>%s</td><td>%s</td><td class=\"n\">%d</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%d</td></tr>\n",
			esc(rm.Region), esc(rm.Service), rm.Lookups, ratio(rm.Availability), ratio(rm.DeadShare), rm.Failover)
	}
	b.f("</table>\n")
}

func (b *builder) outages(r *sim.Result) {
	if len(r.Metrics.Failovers) == 0 {
		return
	}
	b.f("<h2>Local outages</h2>\n<table id=\"outages\">\n<tr><th>region</th><th>service</th><th>start</th><th>served elsewhere after</th></tr>\n")
	for _, f := range r.Metrics.Failovers {
		t := dur(f.Time)
		if !f.Served {
			t = "never (" + t + ")"
		}
		b.f("<tr><td>%s</td><td>%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n", esc(f.Region), esc(f.Service), dur(f.Start), esc(t))
	}
	b.f("</table>\n")
}
