// Command run is `make soak`: it runs the soak of package soak against a
// meridian binary and a redis-server and exits 1 when a bound is broken.
//
//	go run ./internal/soak/run --meridian bin/meridian --minutes 5
//
// SOAK_MINUTES sets the default of --minutes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/meridian-sd/meridian/internal/soak"
)

func main() {
	os.Exit(run())
}

func run() int {
	def := 5.0
	if v := os.Getenv("SOAK_MINUTES"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			fmt.Fprintf(os.Stderr, "soak: SOAK_MINUTES must be a positive number of minutes, got %q\n", v)
			return 2
		}
		def = f
	}
	minutes := flag.Float64("minutes", def, "minutes of load (env SOAK_MINUTES); at least 3 for the RSS and goroutine bounds to apply")
	bin := flag.String("meridian", "bin/meridian", "the meridian binary to soak")
	redis := flag.String("redis-server", "redis-server", "the redis-server binary")
	keep := flag.Bool("keep", false, "keep the data and log directory even when the soak passes")
	flag.Parse()
	if *minutes <= 0 || *minutes > 24*60 {
		fmt.Fprintf(os.Stderr, "soak: --minutes must be in (0, 1440], got %v\n", *minutes)
		return 2
	}
	redisBin, err := exec.LookPath(*redis)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: redis-server not found (scripts/ensure-tools.sh redis installs it): %v\n", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "meridian-soak.")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, soak.Config{Meridian: *bin, RedisServer: redisBin,
		Duration: time.Duration(*minutes * float64(time.Minute)), Dir: dir, Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v (logs in %s)\n", err, dir)
		return 1
	}
	rep.Print(os.Stdout)
	if len(rep.Broken) > 0 || *keep {
		fmt.Printf("soak: Redis data and gateway logs kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	if len(rep.Broken) > 0 {
		return 1
	}
	return 0
}
