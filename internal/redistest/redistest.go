package redistest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvVar names the environment variable FromEnv reads: the address
// ("127.0.0.1:6379") or URL ("redis://127.0.0.1:6379/0") of a Redis server
// that tests may share. scripts/test.sh sets it.
const EnvVar = "MERIDIAN_TEST_REDIS"

const (
	skipNoServer = "redis-server not found: install it (apt-get install redis-server) or run make test"
	skipNoCLI    = "redis-cli not found: install it (apt-get install redis-tools) or run make test"

	// startAttempts bounds how often Start picks a new port after losing a
	// race for the one it picked.
	startAttempts = 5
	// stopTimeout bounds how long Stop waits for a SIGTERMed server to exit
	// before it kills it.
	stopTimeout = 10 * time.Second
	// clusterReadyTimeout bounds the wait for cluster_state:ok on every node.
	clusterReadyTimeout = 20 * time.Second
	// clusterCreateTimeout bounds `redis-cli --cluster create`.
	clusterCreateTimeout = 30 * time.Second
	// logTailLines is how much of redis.log an error message quotes.
	logTailLines = 20
)

// errPortInUse reports that redis-server could not bind its port (or, in
// cluster mode, its cluster bus port): someone took it after we picked it.
var errPortInUse = errors.New("port already in use")

// Binary returns the path of the redis-server executable: the one on PATH,
// else /usr/bin/redis-server. It reports false if there is neither.
func Binary() (string, bool) {
	return lookBinary("redis-server")
}

func lookBinary(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	p := filepath.Join("/usr/bin", name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return p, true
	}
	return "", false
}

// Option changes how Start runs redis-server.
type Option func(*config)

type config struct {
	args         []string
	startTimeout time.Duration
	clusterBus   bool // the port+10000 cluster bus port must be free too
}

func defaultConfig() config {
	return config{startTimeout: 10 * time.Second}
}

// WithArgs appends command-line arguments to redis-server, after the ones
// Start sets (later arguments win): for example
// WithArgs("--maxmemory", "10mb", "--maxmemory-policy", "noeviction").
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithStartTimeout sets how long Start and Restart wait for the server to
// answer PING. The default is 10s.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d }
}

// withClusterMode turns a server into a cluster node: cluster mode on, and a
// port whose cluster bus port (port+10000) is free too.
func withClusterMode() Option {
	return func(c *config) {
		c.clusterBus = true
		c.args = append(c.args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		)
	}
}

// Server is a redis-server process owned by one test. Its port and working
// directory stay the same across Stop, Kill and Restart. Its methods may be
// called from several goroutines.
type Server struct {
	bin  string
	dir  string
	port int
	cfg  config

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of redis-server.
type process struct {
	cmd     *exec.Cmd
	console *os.File      // its stdout and stderr
	done    chan struct{} // closed when it has exited
	err     error         // cmd.Wait's result, set before done is closed
}

// Start runs redis-server on a free 127.0.0.1 port in a fresh t.TempDir(),
// waits until it answers PING and registers a t.Cleanup that stops it. The
// server has persistence on (appendonly yes, appendfsync always, no RDB
// snapshots), so Stop, Kill and Restart keep every acknowledged write. It
// skips the test if there is no redis-server binary and fails it if the
// server does not come up.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		t.Skip(skipNoServer)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	// TempDir registers its removal first, so the Cleanup below (which runs
	// before it) stops the server before its directory goes away.
	s := &Server{bin: bin, dir: t.TempDir(), cfg: cfg}
	t.Cleanup(s.shutdown)

	var err error
	for attempt := 0; attempt < startAttempts; attempt++ {
		s.port, err = freePort(cfg.clusterBus)
		if err != nil {
			break
		}
		if err = s.launch(); !errors.Is(err, errPortInUse) {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: start redis-server: %v", err)
	}
	return s
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the server's URL for database 0, "redis://127.0.0.1:port/0".
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// PID returns the process id of the running server, 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir returns the server's working directory, which holds its append-only
// files, its redis.log and, for a cluster node, its nodes.conf.
func (s *Server) Dir() string { return s.dir }

// Stop sends SIGTERM to the server and waits for it to exit; Redis flushes
// its append-only file on the way out. Stopping a stopped server does
// nothing. If the server has not exited after 10s it is killed and the test
// fails.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGTERM, stopTimeout); err != nil {
		t.Errorf("redistest: stop redis-server on %s: %v", s.Addr(), err)
	}
}

// Kill sends SIGKILL to the server and waits for it to exit, as a crash
// would. Writes it acknowledged survive: appendfsync always synced them.
// Killing a stopped server does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGKILL, stopTimeout); err != nil {
		t.Errorf("redistest: kill redis-server on %s: %v", s.Addr(), err)
	}
}

// Pause stops the server's process (SIGSTOP) without closing its
// connections, as a stalled server would look: commands are accepted by the
// kernel and run only after Resume. Stop, Kill and the test's cleanup resume
// a paused server first.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		t.Fatalf("redistest: redis-server on %s is not running", s.Addr())
	}
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("redistest: send %v to redis-server on %s: %v", sig, s.Addr(), err)
	}
}

// Restart starts the server again on the same port and in the same
// directory, stopping it first if it is running, and waits until it answers
// PING (which it does only once it has loaded its data).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	// Someone may have bound the port while the server was down; give them
	// a moment to let go.
	var err error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if err = s.launch(); !errors.Is(err, errPortInUse) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr(), err)
	}
}

// shutdown is the t.Cleanup hook: stop the server if it still runs.
func (s *Server) shutdown() {
	if err := s.stop(syscall.SIGTERM, stopTimeout); err != nil {
		fmt.Fprintf(os.Stderr, "redistest: stop redis-server on %s: %v\n", s.Addr(), err)
	}
}

// stop signals the running process, if any, and waits for it to exit. If it
// has not exited within timeout it is killed and an error is returned.
func (s *Server) stop(sig syscall.Signal, timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	defer p.console.Close()
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.cmd.Process.Pid, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("pid %d did not exit within %v of %v; killed it\n%s",
			p.cmd.Process.Pid, timeout, sig, s.logTail())
	}
}

// launch starts redis-server on s.port and waits until it answers PING.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("already running as pid %d", s.proc.cmd.Process.Pid)
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", s.logPath(),
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--save", "",
	}
	args = append(args, s.cfg.args...)

	// Errors that come before the log file is open (bad arguments) go to
	// the console.
	console, err := os.OpenFile(s.consolePath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open console log: %w", err)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		console.Close()
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, console: console, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	if err := s.waitReady(p); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		console.Close()
		return err
	}
	s.proc = p
	return nil
}

// waitReady polls PING until the server answers, exits, or the start
// timeout passes. A server loading its data answers -LOADING, not PONG.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(s.cfg.startTimeout)
	for {
		select {
		case <-p.done:
			tail := s.logTail()
			if strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("%s: %w", s.Addr(), errPortInUse)
			}
			return fmt.Errorf("redis-server on %s exited before answering PING (%v)\n%s", s.Addr(), p.err, tail)
		default:
		}
		reply, err := command(s.Addr(), "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("PING answered %q", reply)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer PING within %v (last error: %v)\n%s",
				s.Addr(), s.cfg.startTimeout, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) logPath() string     { return filepath.Join(s.dir, "redis.log") }
func (s *Server) consolePath() string { return filepath.Join(s.dir, "console.log") }

// logTail returns the last lines of the server's console output and log,
// labelled, for error messages.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, path := range []string{s.consolePath(), s.logPath()} {
		data, err := os.ReadFile(path)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		fmt.Fprintf(&b, "--- last lines of %s ---\n%s\n", path, strings.Join(lines, "\n"))
	}
	if b.Len() == 0 {
		return "(redis-server wrote no log)"
	}
	return b.String()
}

// command sends one command to the server at addr over a fresh connection
// and returns its reply, which must be a simple string or a bulk string. An
// error reply is returned as an error. It is the readiness probe: it needs
// no client library, keeps no pool state between attempts and logs nothing.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return "", err
	}
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(req.String())); err != nil {
		return "", fmt.Errorf("send %s: %w", args[0], err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read reply to %s: %w", args[0], err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply to %s", args[0])
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("%s: %s", args[0], line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk reply to %s: %q", args[0], line)
		}
		buf := make([]byte, n+2) // with the trailing CRLF
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("read reply to %s: %w", args[0], err)
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply to %s: %q", args[0], line)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. With
// clusterBus it also makes sure that port+10000, where a cluster node
// listens for its peers, was free and is a valid port.
func freePort(clusterBus bool) (int, error) {
	const tries = 50
	var lastErr error
	for i := 0; i < tries; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !clusterBus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			lastErr = fmt.Errorf("port %d: cluster bus port %d is out of range", port, port+10000)
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l.Close()
		if err != nil {
			lastErr = fmt.Errorf("port %d: cluster bus port: %w", port, err)
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, fmt.Errorf("pick a free port with a free cluster bus port (%d tries): %w", tries, lastErr)
}

// Cluster is a three-master Redis Cluster (no replicas) owned by one test.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts three redis-server processes in cluster mode (node
// timeout 2s), each on its own free port and in its own temporary directory,
// joins them with `redis-cli --cluster create` (slots split evenly, no
// replicas) and waits until every node reports cluster_state:ok. The nodes
// are stopped by t.Cleanup. It skips the test if redis-server or redis-cli is
// missing.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, ok := Binary(); !ok {
		t.Skip(skipNoServer)
	}
	cli, ok := lookBinary("redis-cli")
	if !ok {
		t.Skip(skipNoCLI)
	}
	began := time.Now()
	c := &Cluster{}
	for i := 0; i < 3; i++ {
		c.nodes = append(c.nodes, Start(t, withClusterMode()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	started := time.Now()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	created := time.Now()

	if err := c.waitReady(clusterReadyTimeout); err != nil {
		t.Fatalf("redistest: cluster %v: %v", c.Addrs(), err)
	}
	t.Logf("redistest: cluster %v ready in %v (servers %v, cluster create %v, state ok %v)",
		c.Addrs(), time.Since(began).Round(time.Millisecond), started.Sub(began).Round(time.Millisecond),
		created.Sub(started).Round(time.Millisecond), time.Since(created).Round(time.Millisecond))
	return c
}

// Addrs returns the nodes' addresses, "127.0.0.1:port", in the order they
// were started.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Nodes returns the cluster's servers, so a test can stop, kill or restart
// one of them. Each is a master with a third of the slots and no replica:
// while one is down its slots are unavailable.
func (c *Cluster) Nodes() []*Server {
	return append([]*Server(nil), c.nodes...)
}

// waitReady polls CLUSTER INFO on every node until each one reports
// cluster_state:ok and knows all the nodes.
func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	want := fmt.Sprintf("cluster_known_nodes:%d", len(c.nodes))
	for _, n := range c.nodes {
		for {
			info, err := command(n.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				if err != nil {
					return fmt.Errorf("node %s: %w", n.Addr(), err)
				}
				return fmt.Errorf("node %s not ready within %v (want cluster_state:ok and %s):\n%s",
					n.Addr(), timeout, want, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// FromEnv returns the Redis server tests should use: the value of
// MERIDIAN_TEST_REDIS (an address or a redis:// URL, shared with other tests
// and packages) if it is set, otherwise the URL of a private server started
// with Start.
func FromEnv(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvVar); v != "" {
		return v
	}
	return Start(t).URL()
}

// KeyPrefix returns a key prefix unique to this test run, such as
// "test:TestStore_Put:3f9a1c0e:", for tests that share a server through
// FromEnv. It contains no '{', so keys under it still spread over a
// cluster's slots.
func KeyPrefix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("redistest: random key prefix: %v", err)
	}
	name := strings.Map(func(r rune) rune {
		switch r {
		case '{', '}', ' ', ':':
			return '_'
		}
		return r
	}, t.Name())
	return "test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}
