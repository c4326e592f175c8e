package observability

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meridian-sd/meridian/internal/buildinfo"
)

func TestBuildInfoMetric(t *testing.T) {
	clearOTELEnv(t)
	tel := setup(t, Config{TraceExporter: "none", SampleRate: -1})
	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	bi := buildinfo.Get()
	want := `meridian_build_info{commit="` + bi.Commit + `",go="` + bi.Go + `",version="` + bi.Version + `"} 1`
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s:\n%.3000s", want, rec.Body.String())
	}
}
