package observability

import (
	"fmt"
	"net/url"
	"strings"
)

// endpointURL is an OTLP receiver's base URL, as in
// OTEL_EXPORTER_OTLP_ENDPOINT: scheme, host:port and an optional path
// prefix to which the signal path (/v1/traces, /v1/metrics) is appended.
type endpointURL struct {
	host     string // host:port
	insecure bool   // http:// rather than https://
	scheme   string
	path     string // prefix without a trailing slash
}

func parseEndpoint(s string) (*endpointURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: want an http:// or https:// URL such as http://127.0.0.1:4318", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	return &endpointURL{
		host:     u.Host,
		insecure: u.Scheme == "http",
		scheme:   u.Scheme,
		path:     strings.TrimSuffix(u.Path, "/"),
	}, nil
}

// signalURL is the full URL for a signal path such as "/v1/traces".
func (e *endpointURL) signalURL(signal string) string {
	return e.scheme + "://" + e.host + e.path + signal
}
