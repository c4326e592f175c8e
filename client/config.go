package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/region"
)

// Config configures a Client. Zero fields take the values of
// DefaultConfig; Validate checks the result.
type Config struct {
	// Gateways are the region's gateways, as host:port or http(s) URLs.
	// Requests go to the one that answered last; a connection error or a
	// 5xx moves on to the next.
	Gateways []string
	// Zone is the caller's zone, sent with lookups for zone preference.
	Zone string
	// LB names the picker: p2c (default), round_robin, weighted or hash.
	LB string
	// Policy is sent as the lookup's policy parameter (local, ordered or
	// nearest); empty uses the gateway's policy for the service.
	Policy string
	// Token is the ACL token secret sent to gateways as X-Meridian-Token
	// on every request (never to the endpoints it calls); "" sends none.
	Token string
	// HTTPClient carries requests to gateways and endpoints. The default
	// has a 2s dial timeout and no overall timeout (blocking queries last
	// WatchWait, so a client given here needs a Timeout above it, or
	// none); Close closes the default's idle connections.
	HTTPClient *http.Client
	// TLS configures HTTPS to the gateways (https:// addresses): the CA
	// that signed their certificates and, for a gateway started with
	// --tls-verify-incoming, a client certificate. Build one from files
	// with meridiantls.ClientConfig(caFile, certFile, keyFile). Requests
	// to gateways then go through a transport of their own; requests to
	// endpoints (Do) keep HTTPClient.
	TLS *tls.Config
	// Logger receives one line per event (gateway switched, heartbeat
	// failing, re-registered, breaker state changes). slog.Default() when
	// nil.
	Logger *slog.Logger
	// Rand seeds the pickers, jitter and backoff. A randomly seeded PCG
	// when nil. The Client derives its own generators from it at New and
	// never draws from it afterwards.
	Rand *rand.Rand

	// RetryBudget is the fraction of requests that may be retried over
	// RetryWindow (default 0.1), on top of MinRetriesPerSecond. Negative
	// means no ratio: only the minimum.
	RetryBudget float64
	// MinRetriesPerSecond lets a few retries through even when there are
	// few requests (default 10, as Finagle and Linkerd do). Negative means
	// none.
	MinRetriesPerSecond float64
	// RetryWindow is how long a request counts towards the budget
	// (default 10s).
	RetryWindow time.Duration
	// MaxRetries is the number of retries of one request after the first
	// attempt (default 2). Negative turns retries off.
	MaxRetries int
	// BackoffBase and BackoffMax bound the full-jitter exponential backoff
	// between retries: sleep = rand[0, min(BackoffMax, BackoffBase x 2^n))
	// (defaults 25ms and 1s). The background watchers back off the same
	// way when no gateway answers.
	BackoffBase time.Duration
	BackoffMax  time.Duration

	// Breaker configures the circuit breaker kept for each endpoint.
	Breaker BreakerConfig

	// RequestTimeout bounds one request to a gateway (default 5s); a
	// blocking query gets WatchWait on top.
	RequestTimeout time.Duration
	// WatchWait is the wait of the watchers' blocking queries (default
	// 30s).
	WatchWait time.Duration
}

// BreakerConfig configures the per-endpoint circuit breakers.
type BreakerConfig struct {
	// ConsecutiveFailures trips the breaker after that many failures in a
	// row (default 5).
	ConsecutiveFailures uint32
	// FailureRatio trips it when at least that fraction of the requests in
	// Interval failed (default 0.5), once there were MinRequests of them
	// (default 10).
	FailureRatio float64
	MinRequests  uint32
	// Interval is the rolling window of the counts while closed (default
	// 10s, in 1s buckets).
	Interval time.Duration
	// OpenTimeout is how long the breaker stays open before it lets
	// HalfOpenRequests probes through (defaults 5s and 1).
	OpenTimeout      time.Duration
	HalfOpenRequests uint32
}

// Defaults.
const (
	DefaultLB                  = failover.PickerP2C
	DefaultRetryBudget         = 0.1
	DefaultMinRetriesPerSecond = 10
	DefaultRetryWindow         = 10 * time.Second
	DefaultMaxRetries          = 2
	DefaultBackoffBase         = 25 * time.Millisecond
	DefaultBackoffMax          = time.Second
	DefaultRequestTimeout      = 5 * time.Second
	DefaultWatchWait           = 30 * time.Second
)

// DefaultBreakerConfig returns the breaker defaults: 5 consecutive failures
// or >= 50% of >= 10 requests in a 10s window trip it; half-open after 5s
// with one probe.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 10,
		Interval: 10 * time.Second, OpenTimeout: 5 * time.Second, HalfOpenRequests: 1,
	}
}

// DefaultConfig returns the defaults for gateways (no zone, no policy).
func DefaultConfig(gateways ...string) Config {
	return Config{
		Gateways: gateways, LB: DefaultLB,
		RetryBudget: DefaultRetryBudget, MinRetriesPerSecond: DefaultMinRetriesPerSecond,
		RetryWindow: DefaultRetryWindow, MaxRetries: DefaultMaxRetries,
		BackoffBase: DefaultBackoffBase, BackoffMax: DefaultBackoffMax,
		Breaker:        DefaultBreakerConfig(),
		RequestTimeout: DefaultRequestTimeout, WatchWait: DefaultWatchWait,
	}
}

// WithDefaults returns c with its zero fields filled from DefaultConfig.
// HTTPClient, Logger and Rand stay nil; New fills them.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.LB == "" {
		c.LB = d.LB
	}
	if c.RetryBudget == 0 {
		c.RetryBudget = d.RetryBudget
	}
	if c.MinRetriesPerSecond == 0 {
		c.MinRetriesPerSecond = d.MinRetriesPerSecond
	}
	if c.RetryWindow == 0 {
		c.RetryWindow = d.RetryWindow
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = d.MaxRetries
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = d.BackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = d.BackoffMax
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.WatchWait == 0 {
		c.WatchWait = d.WatchWait
	}
	c.Breaker = c.Breaker.WithDefaults()
	return c
}

// WithDefaults returns b with its zero fields filled from
// DefaultBreakerConfig.
func (b BreakerConfig) WithDefaults() BreakerConfig {
	d := DefaultBreakerConfig()
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = d.ConsecutiveFailures
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = d.FailureRatio
	}
	if b.MinRequests == 0 {
		b.MinRequests = d.MinRequests
	}
	if b.Interval == 0 {
		b.Interval = d.Interval
	}
	if b.OpenTimeout == 0 {
		b.OpenTimeout = d.OpenTimeout
	}
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = d.HalfOpenRequests
	}
	return b
}

// Validate reports the first problem with c after defaults, naming the
// field.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if len(c.Gateways) == 0 {
		return errors.New("gateways: at least one gateway address is needed")
	}
	for i, g := range c.Gateways {
		if _, err := gatewayURL(g); err != nil {
			return fmt.Errorf("gateways[%d]: %w", i, err)
		}
	}
	if c.Zone != "" {
		if err := region.ValidateZone(c.Zone); err != nil {
			return err // "zone: ..."
		}
	}
	if _, err := failover.NewPicker(c.LB, rand.New(rand.NewPCG(1, 2))); err != nil {
		return fmt.Errorf("lb: %q is not round_robin, weighted, p2c or hash", c.LB)
	}
	switch failover.Mode(c.Policy) {
	case "", failover.ModeLocal, failover.ModeOrdered, failover.ModeNearest:
	default:
		return fmt.Errorf("policy: %q is not local, ordered or nearest", c.Policy)
	}
	if math.IsNaN(c.RetryBudget) || c.RetryBudget > 1 {
		return fmt.Errorf("retry_budget: must be at most 1, got %g", c.RetryBudget)
	}
	if math.IsNaN(c.MinRetriesPerSecond) || math.IsInf(c.MinRetriesPerSecond, 0) {
		return fmt.Errorf("min_retries_per_second: must be a finite number, got %g", c.MinRetriesPerSecond)
	}
	if c.RetryWindow < 0 {
		return fmt.Errorf("retry_window: must be positive, got %s", c.RetryWindow)
	}
	if c.BackoffBase < 0 {
		return fmt.Errorf("backoff_base: must be positive, got %s", c.BackoffBase)
	}
	if c.BackoffMax < c.BackoffBase {
		return fmt.Errorf("backoff_max: must be at least backoff_base (%s), got %s", c.BackoffBase, c.BackoffMax)
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("request_timeout: must be positive, got %s", c.RequestTimeout)
	}
	if c.WatchWait < 0 {
		return fmt.Errorf("watch_wait: must be positive, got %s", c.WatchWait)
	}
	if err := c.Breaker.Validate(); err != nil {
		return fmt.Errorf("breaker.%w", err)
	}
	return nil
}

// Validate reports the first problem with b after defaults, naming the
// field.
func (b BreakerConfig) Validate() error {
	b = b.WithDefaults()
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		return fmt.Errorf("failure_ratio: must be within (0, 1], got %g", b.FailureRatio)
	}
	if b.Interval < 0 {
		return fmt.Errorf("interval: must be positive, got %s", b.Interval)
	}
	if b.OpenTimeout < 0 {
		return fmt.Errorf("open_timeout: must be positive, got %s", b.OpenTimeout)
	}
	return nil
}

// gatewayURL turns "host:port" or "http(s)://host:port[/prefix]" into a
// base URL without a trailing slash.
func gatewayURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty address")
	}
	if !strings.Contains(s, "://") {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("%q is neither host:port nor an http(s) URL", s)
		}
		return "http://" + s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: must not have a query or fragment", s)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}
