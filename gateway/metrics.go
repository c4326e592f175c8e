package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meridian-sd/meridian/region"
)

// metrics are the gateway's Prometheus series.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	writes   *prometheus.CounterVec
}

func newMetrics(regionName string, cache *region.Cache) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meridian_http_request_duration_seconds",
			Help:    "HTTP request latency by route (blocking queries included).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 300},
		}, []string{"route"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_store_writes_total",
			Help: "Writes to the region's store by operation and result (ok, not_found, unavailable).",
		}, []string{"op", "result"}),
	}
	labels := prometheus.Labels{"region": regionName}
	reg.MustRegister(m.requests, m.latency, m.writes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meridian_catalog_version", Help: "The cached catalog version of this region.", ConstLabels: labels,
		}, func() float64 { return float64(cache.Version()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meridian_cache_age_seconds", Help: "Seconds since the cache last read the store.", ConstLabels: labels,
		}, func() float64 { return cache.Freshness().Age.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meridian_store_up", Help: "1 when the last read of the store succeeded.", ConstLabels: labels,
		}, func() float64 {
			if cache.StoreErr() != nil {
				return 0
			}
			return 1
		}),
		&instancesCollector{cache: cache, desc: prometheus.NewDesc("meridian_instances",
			"Registered instances by service and status.", []string{"service", "status"}, labels)},
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument wraps h, counting requests and timing them under route.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	obs := m.latency.WithLabelValues(route)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		obs.Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instancesCollector reports instance counts from the cache at scrape time.
type instancesCollector struct {
	cache *region.Cache
	desc  *prometheus.Desc
}

func (c *instancesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *instancesCollector) Collect(ch chan<- prometheus.Metric) {
	var sums []region.ServiceSummary
	c.cache.Read(func(cat *region.Catalog) { sums = cat.Services() })
	for _, s := range sums {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.Passing), s.Name, "passing")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.Warning), s.Name, "warning")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.Critical), s.Name, "critical")
	}
}
