package gateway

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/meridian-sd/meridian/observability"
)

// histVec is an explicit-bucket histogram of float64 values, one series
// per attribute combination. Given a producer (Telemetry.Producers) its
// series count in atomic integers and are exported through it as the
// cumulative histogram the SDK would report for a synchronous
// Float64Histogram of the same name, unit, description and bounds: same
// series, bucket counts, count, sum, min and max, so /metrics and OTLP
// read the same. A synchronous Record resolves its attribute set, finds
// its series in the SDK's map and takes the series' hot/cold counters on
// every call; counted here, a measurement costs a few atomic operations
// once its series is known. Exemplars are not kept.
//
// Without a producer the vector records into the SDK's synchronous
// histogram instead (a MeterProvider given without its producer, as in
// tests with a manual reader).
//
// The combinations are bounded by their callers (routes, APIs), so series
// are never dropped.
type histVec struct {
	name, unit, desc string
	bounds           []float64
	start            time.Time // the series' start time: when the vector was made
	sdk              metric.Float64Histogram

	series seriesSet[histSeries]
}

// histSeries is one attribute combination of a histVec.
type histSeries struct {
	v      *histVec
	attrs  attribute.Set
	opt    []metric.RecordOption // for the SDK's histogram, built once
	counts []atomic.Uint64       // per bucket: len(bounds)+1
	// The sum as the SDK keeps it (so it adds up to the same float):
	// whole values in sumInt, the others in sumFrac (float64 bits).
	sumInt  atomic.Int64
	sumFrac atomic.Uint64
	min     atomic.Uint64 // float64 bits, +Inf until the first value
	max     atomic.Uint64 // float64 bits, -Inf until the first value
}

// newHistVec makes the histogram name on m, counted in atomics and added
// to producers when producers is not nil.
func newHistVec(m metric.Meter, producers *observability.Producers, name, unit, desc string, bounds []float64) *histVec {
	v := &histVec{name: name, unit: unit, desc: desc, bounds: bounds}
	if producers == nil {
		// Instrument errors come only from invalid names or units, fixed
		// by the callers; the SDK returns a working instrument anyway.
		v.sdk, _ = m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(bounds...))
		return v
	}
	v.start = time.Now()
	producers.Add(histProducer{v})
	return v
}

// get returns the series of k, making it with the attributes kvs (the
// combination k names) when it is new.
func (v *histVec) get(k optKey, kvs ...attribute.KeyValue) *histSeries {
	return v.series.get(k, func() *histSeries {
		s := &histSeries{v: v, attrs: attribute.NewSet(kvs...), counts: make([]atomic.Uint64, len(v.bounds)+1)}
		s.opt = []metric.RecordOption{metric.WithAttributeSet(s.attrs)}
		s.min.Store(math.Float64bits(math.Inf(1)))
		s.max.Store(math.Float64bits(math.Inf(-1)))
		return s
	})
}

// record adds the value x, measured in the request of context ctx (only
// the SDK's histogram reads it, for exemplars).
func (s *histSeries) record(ctx context.Context, x float64) {
	v := s.v
	if v.sdk != nil {
		v.sdk.Record(ctx, x, s.opt...)
		return
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return // as the SDK: not a measurement
	}
	// The bucket whose upper bound is the first >= x (bounds are
	// inclusive above, as sort.SearchFloat64s finds in the SDK).
	lo, hi := 0, len(v.bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if v.bounds[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if i := int64(x); float64(i) == x {
		s.sumInt.Add(i)
	} else {
		for {
			old := s.sumFrac.Load()
			if s.sumFrac.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+x)) {
				break
			}
		}
	}
	for {
		old := s.min.Load()
		if x >= math.Float64frombits(old) || s.min.CompareAndSwap(old, math.Float64bits(x)) {
			break
		}
	}
	for {
		old := s.max.Load()
		if x <= math.Float64frombits(old) || s.max.CompareAndSwap(old, math.Float64bits(x)) {
			break
		}
	}
	// The bucket last: a collection that sees the count sees the sum.
	s.counts[lo].Add(1)
}

// histProducer exports a histVec's series as the SDK's cumulative
// histogram of the same instrument.
type histProducer struct{ v *histVec }

// Produce returns the vector's series that have a measurement.
func (p histProducer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	v := p.v
	order := v.series.all()
	now := time.Now()
	var dps []metricdata.HistogramDataPoint[float64]
	for _, s := range order {
		counts := make([]uint64, len(s.counts))
		var n uint64
		for i := range s.counts {
			counts[i] = s.counts[i].Load()
			n += counts[i]
		}
		if n == 0 {
			continue // made, not yet measured: the SDK has no such series
		}
		dps = append(dps, metricdata.HistogramDataPoint[float64]{
			Attributes:   s.attrs,
			StartTime:    v.start,
			Time:         now,
			Count:        n,
			Bounds:       v.bounds,
			BucketCounts: counts,
			Min:          metricdata.NewExtrema(math.Float64frombits(s.min.Load())),
			Max:          metricdata.NewExtrema(math.Float64frombits(s.max.Load())),
			Sum:          math.Float64frombits(s.sumFrac.Load()) + float64(s.sumInt.Load()),
		})
	}
	if len(dps) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: instrumentationName},
		Metrics: []metricdata.Metrics{{
			Name:        v.name,
			Description: v.desc,
			Unit:        v.unit,
			Data:        metricdata.Histogram[float64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality},
		}},
	}}, nil
}
