package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// devBackend is one demo instance's HTTP server in meridian dev, so that
// /v1/pick and /v1/proxy lead somewhere: it answers every request with
// JSON naming the service, instance and region that served it.
type devBackend struct {
	service, id, region string
	zone                string
	addr                string // host:port to listen on; the bound address after start
	srv                 *http.Server
}

// devBackendPort is the port of region ri's k-th demo instance: 9101.. for
// the first region, 9201.. for the second, 9301.. for the third.
func devBackendPort(ri, k int) int { return 9101 + 100*ri + k }

// startDevBackends starts every backend that can bind its address; one
// that cannot is logged and skipped (its instance stays registered, and
// proxying to it answers 502).
func startDevBackends(backends []*devBackend, log *slog.Logger) {
	for _, b := range backends {
		ln, err := net.Listen("tcp", b.addr)
		if err != nil {
			log.Warn("dev: demo backend not started; proxying to it will answer 502", "instance", b.service+"/"+b.id, "region", b.region, "err", err)
			continue
		}
		b.addr = ln.Addr().String()
		body, _ := json.Marshal(map[string]string{"service": b.service, "instance": b.id, "region": b.region,
			"message": fmt.Sprintf("hello from %s/%s in %s", b.service, b.id, b.region)})
		b.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(append(body, '\n'))
		})}
		go func(b *devBackend, ln net.Listener) {
			if err := b.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("dev: demo backend stopped", "instance", b.service+"/"+b.id, "err", err)
			}
		}(b, ln)
	}
}

// stopDevBackends closes the backends that started.
func stopDevBackends(ctx context.Context, backends []*devBackend) {
	for _, b := range backends {
		if b.srv != nil {
			b.srv.Shutdown(ctx)
		}
	}
}
