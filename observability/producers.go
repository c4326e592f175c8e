package observability

import (
	"context"
	"errors"
	"sync"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Producers is a metric producer that readers read alongside the SDK's
// instruments, and to which components add their own producers after the
// readers exist: a reader takes its producers when it is built, before the
// components that measure are. The gateway exports the histograms it
// records in atomics this way (gateway/metrics_histograms.go).
//
// Producers merges what its producers return: metrics of the same scope
// and name that are both float64 histograms become one metric with the
// data points of both (two gateways in one process, as `meridian dev`
// runs them, each report their own region's series of the same
// histogram). Metrics of other kinds are passed on as they are.
//
// The zero value is ready to use.
type Producers struct {
	mu sync.RWMutex
	ps []sdkmetric.Producer
}

var _ sdkmetric.Producer = (*Producers)(nil)

// Add makes p read by every reader built with this Producers.
func (s *Producers) Add(p sdkmetric.Producer) {
	s.mu.Lock()
	s.ps = append(s.ps, p)
	s.mu.Unlock()
}

// Produce returns the merged metrics of every producer added.
func (s *Producers) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	s.mu.RLock()
	ps := s.ps
	s.mu.RUnlock()
	var out []metricdata.ScopeMetrics
	var errs []error
	for _, p := range ps {
		sms, err := p.Produce(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		for _, sm := range sms {
			out = mergeScope(out, sm)
		}
	}
	return out, errors.Join(errs...)
}

// mergeScope adds sm to out, into the entry of the same scope if there is
// one.
func mergeScope(out []metricdata.ScopeMetrics, sm metricdata.ScopeMetrics) []metricdata.ScopeMetrics {
	for i := range out {
		if out[i].Scope != sm.Scope {
			continue
		}
		for _, m := range sm.Metrics {
			out[i].Metrics = mergeMetric(out[i].Metrics, m)
		}
		return out
	}
	return append(out, sm)
}

// mergeMetric adds m to ms, appending its data points to a float64
// histogram of the same name, unit and temporality if there is one.
func mergeMetric(ms []metricdata.Metrics, m metricdata.Metrics) []metricdata.Metrics {
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		return append(ms, m)
	}
	for i := range ms {
		prev, ok := ms[i].Data.(metricdata.Histogram[float64])
		if !ok || ms[i].Name != m.Name || ms[i].Unit != m.Unit || prev.Temporality != h.Temporality {
			continue
		}
		prev.DataPoints = append(prev.DataPoints, h.DataPoints...)
		ms[i].Data = prev
		return ms
	}
	return append(ms, m)
}
