package observability

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-sd/meridian/internal/buildinfo"
)

// registerBuildInfo adds meridian_build_info{version,commit,go} 1 to reg,
// the Prometheus convention (as go_build_info, prometheus_build_info) for
// telling which build each scraped process runs.
func registerBuildInfo(reg prometheus.Registerer) error {
	bi := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "meridian_build_info",
		Help:        "Always 1; the labels say which build of meridian is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "go": bi.Go},
	})
	g.Set(1)
	return reg.Register(g)
}
