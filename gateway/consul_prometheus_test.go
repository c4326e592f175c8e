package gateway

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	promconsul "github.com/prometheus/prometheus/discovery/consul"
	"github.com/prometheus/prometheus/discovery/targetgroup"
)

// promSD runs Prometheus' consul_sd_configs discoverer (its own code,
// github.com/prometheus/prometheus/discovery/consul) against a gateway and
// keeps the latest target groups it sent. (Debian's prometheus binary is
// built without Consul discovery, so the test runs the library.)
type promSD struct {
	ch     chan []*targetgroup.Group
	groups map[string]*targetgroup.Group
}

func startPromSD(t *testing.T, a *Agent) *promSD {
	t.Helper()
	conf := promconsul.DefaultSDConfig
	conf.Server = a.Addr()
	conf.RefreshInterval = model.Duration(time.Second)
	reg := prometheus.NewRegistry()
	rm := discovery.NewRefreshMetrics(reg)
	if err := rm.Register(); err != nil {
		t.Fatal(err)
	}
	metrics := conf.NewDiscovererMetrics(reg, rm)
	if err := metrics.Register(); err != nil {
		t.Fatal(err)
	}
	d, err := promconsul.NewDiscovery(&conf, quietLogger(), metrics)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sd := &promSD{ch: make(chan []*targetgroup.Group, 16), groups: map[string]*targetgroup.Group{}}
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, sd.ch) }()
	t.Cleanup(func() { cancel(); <-done })
	return sd
}

// targets returns service -> its targets' labels (group labels merged in),
// after waiting up to d for cond to hold.
func (sd *promSD) waitFor(t *testing.T, d time.Duration, what string, cond func(map[string][]model.LabelSet) bool) map[string][]model.LabelSet {
	t.Helper()
	deadline := time.After(d)
	for {
		cur := map[string][]model.LabelSet{}
		for _, g := range sd.groups {
			for _, tl := range g.Targets {
				ls := g.Labels.Merge(tl)
				svc := string(ls["__meta_consul_service"])
				cur[svc] = append(cur[svc], ls)
			}
		}
		for _, ts := range cur {
			sort.Slice(ts, func(i, j int) bool { return ts[i]["__address__"] < ts[j]["__address__"] })
		}
		if cond(cur) {
			return cur
		}
		select {
		case gs := <-sd.ch:
			for _, g := range gs {
				sd.groups[g.Source] = g
			}
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s; targets: %v", d, what, cur)
		}
	}
}

func addrs(ts []model.LabelSet) string {
	var out []string
	for _, l := range ts {
		out = append(out, string(l["__address__"]))
	}
	return strings.Join(out, ",")
}

// TestPrometheusConsulSD: Prometheus' consul_sd_configs discovers a
// gateway's services through its catalog and health blocking queries,
// with the labels Consul would give, and follows registrations.
func TestPrometheusConsulSD(t *testing.T) {
	a := startAgent(t, AgentConfig{Region: "us-east"})
	c := consulClient(t, a, "")
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Address: "127.0.0.1", Port: 19001,
		Tags: []string{"v1"}, Meta: map[string]string{"team": "edge"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "db-1", Name: "db", Address: "127.0.0.1", Port: 15432}); err != nil {
		t.Fatal(err)
	}
	sd := startPromSD(t, a)
	cur := sd.waitFor(t, 20*time.Second, "web-1 and db-1", func(m map[string][]model.LabelSet) bool {
		return addrs(m["web"]) == "127.0.0.1:19001" && addrs(m["db"]) == "127.0.0.1:15432"
	})
	l := cur["web"][0]
	for k, want := range map[model.LabelName]string{
		"__meta_consul_service": "web", "__meta_consul_service_id": "web-1", "__meta_consul_dc": "us-east",
		"__meta_consul_tags": ",v1,", "__meta_consul_service_metadata_team": "edge", "__meta_consul_health": "passing",
		"__meta_consul_service_port": "19001", "__meta_consul_service_address": "127.0.0.1", "__meta_consul_node": "127.0.0.1",
	} {
		if string(l[k]) != want {
			t.Errorf("label %s: got %q, want %q (all: %v)", k, l[k], want, l)
		}
	}
	// A registration, a new service and a deregistration reach Prometheus
	// through its blocking queries.
	start := time.Now()
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-2", Name: "web", Address: "127.0.0.1", Port: 19002}); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "cache-1", Name: "cache", Address: "127.0.0.1", Port: 16379}); err != nil {
		t.Fatal(err)
	}
	sd.waitFor(t, 20*time.Second, "web-2 and cache-1", func(m map[string][]model.LabelSet) bool {
		return addrs(m["web"]) == "127.0.0.1:19001,127.0.0.1:19002" && addrs(m["cache"]) == "127.0.0.1:16379"
	})
	t.Logf("registrations discovered after %s", time.Since(start))
	if err := c.Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatal(err)
	}
	sd.waitFor(t, 20*time.Second, "web-1 to go", func(m map[string][]model.LabelSet) bool {
		return addrs(m["web"]) == "127.0.0.1:19002"
	})
}
