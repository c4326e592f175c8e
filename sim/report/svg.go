package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/sim"
)

// Layout of the timeline, in SVG user units.
const (
	svgWidth  = 1000
	labelW    = 130 // left column for region and fault labels
	plotW     = svgWidth - labelW - 20
	stripH    = 18 // one availability heat strip
	chartH    = 150
	faultH    = 16
	rowGap    = 4
	axisH     = 26
	maxFaults = 200 // fault rows drawn; the rest are counted
)

// lineColors are the chart's region colours, in region order (cycled).
var lineColors = []string{"#0969da", "#bc4c00", "#8250df", "#1a7f37", "#cf222e", "#6e7781", "#d4a72c", "#1b7c83"}

// faultColors by kind; others are grey.
var faultColors = map[string]string{
	"partition": "#cf222e", "cut": "#e16f24", "degrade": "#d4a72c", "heal": "#1a7f37",
	"gateway_crash": "#8250df", "gateway_restart": "#1a7f37", "rolling_restart": "#a475f9",
	"store_down": "#953800", "store_slow": "#bc4c00", "store_up": "#1a7f37",
	"instances_fail": "#cf222e", "instances_flap": "#e16f24", "instances_slow": "#d4a72c", "instances_heal": "#1a7f37",
	"register_storm": "#0969da", "deregister": "#6e7781",
}

// availColor maps an availability in [0, 1] to a colour from red (0.9 and
// below) through yellow to green (1); -1 (no lookups) is light grey.
func availColor(a float64) string {
	if a < 0 {
		return "#eaeef2"
	}
	// Stretch the interesting range: 0.9 -> 0, 1 -> 1.
	t := (a - 0.9) / 0.1
	t = min(max(t, 0), 1)
	var r, g int
	if t < 0.5 {
		r, g = 207, int(34+2*t*(167-34))
	} else {
		r, g = int(207-2*(t-0.5)*(207-26)), 167
	}
	return fmt.Sprintf("#%02x%02x%02x", r, g, 55)
}

func (b *builder) timeline(r *sim.Result) {
	tl := &r.Timeline
	total := r.Duration
	if total <= 0 {
		total = time.Second
	}
	x := func(d time.Duration) float64 {
		d = min(max(d, 0), total)
		return labelW + float64(plotW)*float64(d)/float64(total)
	}
	nr := len(tl.Regions)
	faults := tl.Faults
	hidden := 0
	if len(faults) > maxFaults {
		hidden = len(faults) - maxFaults
		faults = faults[:maxFaults]
	}
	stripsTop := 10
	chartTop := stripsTop + nr*(stripH+rowGap) + 14
	faultTop := chartTop + chartH + 24
	viol := violationRows(tl)
	violTop := faultTop + len(faults)*(faultH+rowGap) + 6
	if len(viol) > 0 {
		violTop += 18
	}
	axisTop := violTop + len(viol)*(faultH+rowGap) + 6
	height := axisTop + axisH

	b.f("<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", svgWidth, height, svgWidth, height)
	b.f("<title>availability per region over time, with faults</title>\n")

	// Heat strips: one per region, one rect per bucket.
	b.f("<g id=\"strips\" shape-rendering=\"crispEdges\">\n")
	for i, name := range tl.Regions {
		y := stripsTop + i*(stripH+rowGap)
		b.f("<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", 4, y+13, esc(name))
		if i >= len(tl.Availability) || tl.Step <= 0 {
			continue
		}
		for j, a := range tl.Availability[i] {
			s, e := time.Duration(j)*tl.Step, time.Duration(j+1)*tl.Step
			x0, x1 := x(s), x(e)
			if x1 <= x0 {
				continue
			}
			b.f("<rect class=\"bucket\" x=\"%s\" y=\"%d\" width=\"%s\" height=\"%d\" fill=\"%s\"><title>%s %s-%s: %s</title></rect>\n",
				num(x0, 1), y, num(x1-x0+0.3, 1), stripH, availColor(a), esc(name), dur(s), dur(e), availText(a))
		}
	}
	b.f("</g>\n")

	// Line chart of availability, y from 0 to 1, gaps where no lookups.
	b.f("<g id=\"chart\">\n")
	b.f("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#d0d7de\"/>\n", labelW, chartTop, plotW, chartH)
	for _, v := range []float64{0, 0.5, 0.9, 1} {
		y := float64(chartTop) + float64(chartH)*(1-v)
		b.f("<line x1=\"%d\" y1=\"%s\" x2=\"%d\" y2=\"%s\" stroke=\"#eaeef2\"/>\n", labelW, num(y, 1), labelW+plotW, num(y, 1))
		b.f("<text x=\"%d\" y=\"%s\" font-size=\"10\" text-anchor=\"end\">%s</text>\n", labelW-4, num(y+3, 1), num(v, 1))
	}
	b.f("<text x=\"4\" y=\"%d\" font-size=\"12\">availability</text>\n", chartTop+12)
	for i, name := range tl.Regions {
		color := lineColors[i%len(lineColors)]
		b.f("<text x=\"4\" y=\"%d\" font-size=\"11\" fill=\"%s\">&#9632; %s</text>\n", chartTop+30+i*14, color, esc(name))
		if i >= len(tl.Availability) || tl.Step <= 0 {
			continue
		}
		for _, seg := range segments(tl.Availability[i]) {
			var pts []string
			for _, j := range seg {
				a := tl.Availability[i][j]
				mid := time.Duration(j)*tl.Step + tl.Step/2
				y := float64(chartTop) + float64(chartH)*(1-a)
				pts = append(pts, num(x(mid), 1)+","+num(y, 1))
			}
			if len(pts) == 1 {
				b.f("<circle cx=\"%s\" r=\"2\" fill=\"%s\"/>\n", strings.Replace(pts[0], ",", "\" cy=\"", 1), color)
				continue
			}
			b.f("<polyline class=\"avail\" data-region=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>\n", esc(name), color, strings.Join(pts, " "))
		}
	}
	b.f("</g>\n")

	// Faults, one row each, as labelled bars (instants as thin bars).
	b.f("<g id=\"faults\">\n")
	b.f("<text x=\"4\" y=\"%d\" font-size=\"12\">faults</text>\n", faultTop-6)
	for i, f := range faults {
		y := faultTop + i*(faultH+rowGap)
		end := f.End
		if end < f.Start {
			end = total // still open when the run ended
		}
		x0, x1 := x(f.Start), x(end)
		w := max(x1-x0, 2)
		color, ok := faultColors[f.Kind]
		if !ok {
			color = "#6e7781"
		}
		label := f.Kind
		if f.Label != "" {
			label += ": " + f.Label
		}
		b.f("<rect class=\"fault\" data-kind=\"%s\" x=\"%s\" y=\"%d\" width=\"%s\" height=\"%d\" fill=\"%s\" fill-opacity=\"0.75\"><title>%s, %s-%s</title></rect>\n",
			esc(f.Kind), num(x0, 1), y, num(w, 1), faultH, color, esc(label), dur(f.Start), dur(end))
		// Put the label right of the bar, or left of it when it would overflow.
		tx, anchor := x0+w+4, "start"
		if tx > float64(labelW+plotW)-180 {
			tx, anchor = x0-4, "end"
		}
		b.f("<text x=\"%s\" y=\"%d\" font-size=\"11\" text-anchor=\"%s\">%s</text>\n", num(tx, 1), y+12, anchor, esc(truncate(label, 70)))
	}
	if hidden > 0 {
		b.f("<text x=\"4\" y=\"%d\" font-size=\"11\">(%d more faults not drawn)</text>\n", violTop-2, hidden)
	}
	b.f("</g>\n")

	// Violations, one row per invariant that fired: a mark per time step
	// with violations, its count in the tooltip.
	if len(viol) > 0 {
		b.f("<g id=\"violations\">\n")
		b.f("<text x=\"4\" y=\"%d\" font-size=\"12\">violations</text>\n", violTop-6)
		step := max(tl.Step, time.Second)
		for i, row := range viol {
			y := violTop + i*(faultH+rowGap)
			b.f("<text x=\"4\" y=\"%d\" font-size=\"11\" fill=\"#cf222e\">%s (%d)</text>\n", y+12, esc(row.inv), row.total)
			for _, c := range row.cells {
				s, e := time.Duration(c.bucket)*step, time.Duration(c.bucket+1)*step
				x0, x1 := x(s), x(e)
				b.f("<rect class=\"violation\" data-invariant=\"%s\" x=\"%s\" y=\"%d\" width=\"%s\" height=\"%d\" fill=\"#cf222e\"><title>%s: %d violation(s) %s-%s</title></rect>\n",
					esc(row.inv), num(x0, 1), y, num(max(x1-x0, 2), 1), faultH, esc(row.inv), c.n, dur(s), dur(e))
			}
		}
		b.f("</g>\n")
	}

	// Time axis.
	b.f("<g id=\"axis\">\n")
	b.f("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#57606a\"/>\n", labelW, axisTop, labelW+plotW, axisTop)
	tick := tickStep(total)
	for t := time.Duration(0); t <= total && t/tick <= 100; t += tick {
		xt := x(t)
		b.f("<line x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\" stroke=\"#57606a\"/>\n", num(xt, 1), axisTop, num(xt, 1), axisTop+4)
		b.f("<text x=\"%s\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%s</text>\n", num(xt, 1), axisTop+16, tickLabel(t))
		b.f("<line x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\" stroke=\"#d0d7de\" stroke-dasharray=\"2,3\"/>\n", num(xt, 1), stripsTop, num(xt, 1), axisTop)
	}
	b.f("</g>\n</svg>\n")
	b.f("<p class=\"muted\">Heat strips and lines: share of each region's lookups answered with a live instance per %s (grey: no lookups; the colour scale runs from red at 0.9 and below to green at 1). Bars: faults from start to end; red marks: invariant violations per step (all of them; the event log has each one with the router's explanation).</p>\n", dur(tl.Step))
}

// violRow is one invariant's violations, counted per time step.
type violRow struct {
	inv   string
	total int
	cells []violCell
}

type violCell struct{ bucket, n int }

// violationRows groups the timeline's violation marks by invariant (in
// order of first violation) and time step.
func violationRows(tl *sim.Timeline) []violRow {
	step := max(tl.Step, time.Second)
	var rows []violRow
	idx := map[string]int{}
	for _, v := range tl.Violations {
		i, ok := idx[v.Invariant]
		if !ok {
			i = len(rows)
			idx[v.Invariant] = i
			rows = append(rows, violRow{inv: v.Invariant})
		}
		r := &rows[i]
		r.total++
		bk := int(v.At / step)
		if n := len(r.cells); n > 0 && r.cells[n-1].bucket == bk {
			r.cells[n-1].n++
		} else {
			r.cells = append(r.cells, violCell{bucket: bk, n: 1})
		}
	}
	return rows
}

// tickLabel writes 90s as "1m30s" and 2m as "2m" (not "2m0s").
func tickLabel(t time.Duration) string {
	if t == 0 {
		return "0"
	}
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func availText(a float64) string {
	if a < 0 {
		return "no lookups"
	}
	return num(a, 4)
}

// segments splits bucket indexes into runs without -1 (no lookups).
func segments(av []float64) [][]int {
	var out [][]int
	var cur []int
	for j, a := range av {
		if a < 0 {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, j)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// tickStep picks a round tick interval giving at most about 12 ticks.
func tickStep(total time.Duration) time.Duration {
	for _, s := range []time.Duration{
		10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour,
	} {
		if total/s <= 12 {
			return s
		}
	}
	return total/12 + 1
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "\u2026"
}
