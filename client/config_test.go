package client

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig("127.0.0.1:8700")
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no gateways", func(c *Config) { c.Gateways = nil }, "gateways:"},
		{"bad gateway", func(c *Config) { c.Gateways = []string{"127.0.0.1:1", "nohostport"} }, "gateways[1]:"},
		{"bad scheme", func(c *Config) { c.Gateways = []string{"ftp://x:1"} }, "gateways[0]:"},
		{"bad zone", func(c *Config) { c.Zone = "Zone A" }, "zone:"},
		{"bad lb", func(c *Config) { c.LB = "random" }, "lb:"},
		{"bad policy", func(c *Config) { c.Policy = "closest" }, "policy:"},
		{"budget over 1", func(c *Config) { c.RetryBudget = 2 }, "retry_budget:"},
		{"negative backoff", func(c *Config) { c.BackoffBase = -time.Second }, "backoff_base:"},
		{"max below base", func(c *Config) { c.BackoffBase, c.BackoffMax = time.Second, time.Millisecond }, "backoff_max:"},
		{"breaker ratio", func(c *Config) { c.Breaker.FailureRatio = 1.5 }, "breaker.failure_ratio:"},
		{"request timeout", func(c *Config) { c.RequestTimeout = -1 }, "request_timeout:"},
	} {
		c := ok
		c.Gateways = append([]string(nil), ok.Gateways...)
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: err = %v, want one starting %q", tc.name, err, tc.field)
		}
		if _, nerr := New(c); nerr == nil {
			t.Errorf("%s: New accepted the config", tc.name)
		}
	}
}

func TestGatewayURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:8700", "http://127.0.0.1:8700"},
		{"http://gw.example:8700/", "http://gw.example:8700"},
		{"https://gw.example/meridian/", "https://gw.example/meridian"},
		{"[::1]:8700", "http://[::1]:8700"},
	} {
		got, err := gatewayURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("gatewayURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{Gateways: []string{"127.0.0.1:1"}}.WithDefaults()
	d := DefaultConfig("127.0.0.1:1")
	if c.LB != "p2c" || c.RetryBudget != d.RetryBudget || c.MaxRetries != 2 || c.BackoffBase != 25*time.Millisecond ||
		c.BackoffMax != time.Second || c.Breaker != DefaultBreakerConfig() || c.MinRetriesPerSecond != 10 {
		t.Errorf("WithDefaults = %+v", c)
	}
}
