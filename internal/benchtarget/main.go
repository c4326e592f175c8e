// Command benchtarget serves the bytes of one file, as application/json, on
// every path: the trivial server that scripts/bench.sh load-tests next to the
// gateway, so the gateway's throughput and latency read as a ratio to what
// net/http alone does on the same machine with the same body.
//
//	benchtarget --addr 127.0.0.1:8701 --file web.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtarget:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8701", "HTTP listen address")
	file := flag.String("file", "", "file whose bytes every response carries (required)")
	flag.Parse()
	if *file == "" {
		return errors.New("--file is required")
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("reading the response body: %w", err)
	}
	length := strconv.Itoa(len(body))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		w.Write(body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	// The same server settings as the gateway's (gateway.StartAgent).
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	slog.Info("benchtarget serving", "http", ln.Addr().String(), "file", *file, "bytes", len(body))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
