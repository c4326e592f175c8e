package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// redisProc is a redis-server with persistence on (appendonly, fsync on
// every write), so a restart keeps every acknowledged write.
type redisProc struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	done     chan struct{}
}

func startRedis(bin, dir string) (*redisProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &redisProc{bin: bin, dir: dir, port: port}
	return r, r.launch()
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisProc) launch() error {
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--protected-mode", "no", "--daemonize", "no", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	r.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if redisPing(r.addr()) == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("redis-server on %s exited at start; see %s", r.addr(), filepath.Join(r.dir, "redis.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("redis-server on %s did not answer PING within 15s", r.addr())
}

// stop ends redis-server with SIGTERM (it writes out its AOF) and waits.
func (r *redisProc) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGCONT) // in case it is paused
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// redisPing sends PING over RESP and expects +PONG (a loading server
// answers -LOADING).
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

// gateway is one meridian agent process. Its up state tells connection
// errors while it is down (expected) from those while it is up (not).
type gateway struct {
	name, bin, dir string
	httpAddr       string
	args           []string
	mu             sync.Mutex
	cmd            *exec.Cmd
	done           chan struct{}
	up             bool
	gen            int // bumped at every kill
	starts         int
	log            *os.File
}

func (g *gateway) base() string { return "http://" + g.httpAddr }

// state returns whether the gateway is up and its generation.
func (g *gateway) state() (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up, g.gen
}

func (g *gateway) pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil || g.cmd.Process == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

func (g *gateway) start(ctx context.Context) error {
	g.mu.Lock()
	g.starts++
	logf, err := os.OpenFile(filepath.Join(g.dir, g.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "---- soak: start %d\n", g.starts)
	cmd := exec.Command(g.bin, append([]string{"agent", "--http", g.httpAddr}, g.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		logf.Close()
		return fmt.Errorf("starting gateway %s: %w", g.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	if g.log != nil {
		g.log.Close() // the killed process's
	}
	g.cmd, g.done, g.log = cmd, done, logf
	g.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(g.base() + "/v1/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g.mu.Lock()
				g.up = true
				g.mu.Unlock()
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("gateway %s exited at start; see %s", g.name, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("gateway %s not healthy within 30s; see %s", g.name, logf.Name())
}

// kill sends SIGKILL and waits for the process to go.
func (g *gateway) kill() {
	if cmd, done := g.down(); cmd != nil {
		cmd.Process.Kill()
		<-done
	}
}

// stop ends the gateway with SIGTERM (a graceful shutdown), then SIGKILL.
func (g *gateway) stop() {
	cmd, done := g.down()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	g.log.Close()
}

// down marks the gateway down (a new generation) and returns its process
// and the channel closed when it exits; cmd is nil when none ran.
func (g *gateway) down() (*exec.Cmd, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up = false
	g.gen++
	return g.cmd, g.done
}

// rssBytes reads VmRSS of pid from /proc.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// goroutines reads go_goroutines from the gateway's /metrics.
func goroutines(client *http.Client, base string) (int64, error) {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no go_goroutines on /metrics")
}
