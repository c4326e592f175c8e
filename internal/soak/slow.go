package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Slow clients: how long the gateway may take to cut them off. Its read
// deadline for a request body is 10s and its write deadline 30s
// (gateway.Limits); the margins cover a loaded machine.
const (
	slowBodyCut   = 20 * time.Second
	neverReadHold = 45 * time.Second
)

// pipelineFor returns how many reads of an answer of size bytes a
// never-reader pipelines: enough for twice the kernel's largest TCP send
// buffer (net.ipv4.tcp_wmem), so the gateway's writes must block and only
// its write deadline can free the connection.
func pipelineFor(size int) int {
	wmem := 4 << 20
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if v, err := strconv.Atoi(f[2]); err == nil && v > 0 {
				wmem = v
			}
		}
	}
	return min(1000, 2*wmem/max(size, 1)+1)
}

// sleepCtx sleeps d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// slowBody sends registrations whose body arrives one byte a second, one
// after another, and checks that the gateway cuts each off in time.
func (s *run) slowBody(ctx context.Context, n int) {
	s.slowClient(ctx, n, "slow body", func(g *gateway, i int) string {
		k := Key{"soak-slow", fmt.Sprintf("s-%d-%d", n, i)}
		s.ledger.Record(OpRegister, k, NotApplied) // never complete: must stay absent
		return s.slowBodyOnce(ctx, g, k)
	})
}

// slowClient runs once against the gateways in turn until ctx ends, and
// counts each outcome under name: "" is a success, "stopped" the end of
// the run, anything else an error (not a broken bound while the gateway
// was down or restarted meanwhile).
func (s *run) slowClient(ctx context.Context, n int, name string, once func(g *gateway, i int) string) {
	for i := 0; ctx.Err() == nil; i++ {
		g := s.gws[(n+i)%len(s.gws)]
		if up, _ := g.state(); !up {
			sleepCtx(ctx, time.Second)
			continue
		}
		_, gen0 := g.state()
		res := once(g, i)
		up1, gen1 := g.state()
		if res != "stopped" {
			s.errs.request(name)
		}
		switch {
		case res == "":
			s.errs.ok(name)
		case res == "stopped":
		case !up1 || gen0 != gen1:
			s.errs.add(name+": connection error, gateway down", false)
		default:
			s.errs.add(name+": "+res, true)
		}
	}
}

func (s *run) slowBodyOnce(ctx context.Context, g *gateway, k Key) string {
	c, err := net.DialTimeout("tcp", g.httpAddr, 2*time.Second)
	if err != nil {
		return "dial: " + short(err.Error())
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "PUT /v1/services/%s/instances/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
		k.Service, k.ID, g.httpAddr)
	cut := make(chan string, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(slowBodyCut + 5*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			cut <- "closed: " + short(err.Error())
			return
		}
		resp.Body.Close()
		cut <- resp.Status
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return "stopped"
		case how := <-cut:
			if strings.HasPrefix(how, "closed: ") && strings.Contains(how, "timeout") {
				return "not cut off within " + slowBodyCut.String()
			}
			if d := time.Since(start); d > slowBodyCut {
				return fmt.Sprintf("cut off only after %s", d.Round(time.Second))
			}
			if strings.HasPrefix(how, "2") {
				return "accepted: " + how
			}
			return ""
		case <-t.C:
			if time.Since(start) > slowBodyCut+5*time.Second {
				return "not cut off within " + slowBodyCut.String()
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte(" ")); err != nil {
				// The gateway closed the connection: it cut us off.
				select {
				case how := <-cut:
					if strings.HasPrefix(how, "2") {
						return "accepted: " + how
					}
				case <-time.After(time.Second):
				}
				if d := time.Since(start); d > slowBodyCut {
					return fmt.Sprintf("cut off only after %s", d.Round(time.Second))
				}
				return ""
			}
		}
	}
}

// neverReader pipelines big catalog reads on a connection with a small
// receive buffer and never reads them; after neverReadHold it checks that
// the gateway gave up on it (its write deadline) rather than holding the
// answers.
func (s *run) neverReader(ctx context.Context, n int) {
	s.slowClient(ctx, n, "never-reading client", func(g *gateway, _ int) string { return s.neverReadOnce(ctx, g) })
}

// neverReadOnce runs one never-reading connection against g and says how
// it ended ("" when the gateway gave up on it in time).
func (s *run) neverReadOnce(ctx context.Context, g *gateway) string {
	d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.DialContext(ctx, "tcp", g.httpAddr)
	if err != nil {
		if ctx.Err() != nil {
			return "stopped"
		}
		return "dial: " + short(err.Error())
	}
	defer c.Close()
	req := "GET /v1/services/soak-big HTTP/1.1\r\nHost: " + g.httpAddr + "\r\n\r\n"
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	pipelined := s.pipelined
	if _, err := io.WriteString(c, strings.Repeat(req, pipelined)); err != nil {
		return "sending the requests: " + short(err.Error())
	}
	if !sleepCtx(ctx, neverReadHold) {
		return "stopped"
	}
	// Now read what is there: a gateway that gave up sent only part of
	// the answers; one that kept the connection sends them all.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	got := 0
	for got < pipelined {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			break
		}
		got++
	}
	if got == pipelined {
		return fmt.Sprintf("not cut off: all %d answers still delivered after %s", pipelined, neverReadHold)
	}
	return ""
}
