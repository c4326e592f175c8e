package purity

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// coreFiles are the files of the deciding core, relative to the module
// root. A path ending in "/" is a whole tree (its non-test .go files,
// subdirectories included, so new files are covered as they come).
//
//   - acl/: ACL rules, tokens, the authorizer and the token replication
//     state machine; secrets arrive hashed, time and randomness come in.
//   - failover/: routing decisions and pickers, pure functions of a view,
//     randomness from a passed *rand.Rand.
//   - egress/: the egress policy of the proxy and health checks (netip
//     only; the drivers call it from net.Dialer.Control).
//   - sim/: the simulator and its subpackages (sim/gossip, sim/report): one
//     goroutine, virtual time, one seeded RNG.
//   - federation: Core (the replication state machine), the replica set,
//     rendezvous sharding, and the Membership types and interface. Not
//     serf.go, federator.go, syncproto.go, memtransport.go,
//     faulttransport.go, replicastore.go (see drivers).
//   - region: the catalog, its change records and their decoding, health
//     state (Health is driven by Tick/Observe with a passed time), the
//     instance model and its validation, and the Store interface (the seam,
//     declarations only).
var coreFiles = []string{
	"acl/",
	"egress/",
	"failover/",
	"sim/",
	"federation/core.go",
	"federation/core_remote.go", // allocation-free views of the remote replicas (Core.AppendRemoteReplicas)
	"federation/doc.go",
	"federation/syncproto.go", // the sync protocol's answers (CatalogSource)
	"federation/membership.go",
	"federation/replica.go",
	"federation/shard.go",
	"federation/shards.go",    // check ownership among a region's gateways
	"federation/publisher.go", // the version publisher, on the rt seam
	"federation/watchcore.go", // the push path's decisions (Core.Watches, WatchDone)
	"region/catalog.go",
	"region/catalogbuild.go",
	"region/intern.go",
	"region/healthdeadlines.go",
	"region/heartbeatroute.go",
	"region/change.go",
	"region/decode.go",
	"region/decodefast.go",   // the registration decoder's fast path
	"region/dupkeys.go",      // the duplicate-key check's fast path
	"region/instancejson.go", // Instance.AppendJSON
	"region/doc.go",
	"region/health.go",
	"region/instance.go",
	"region/store.go",
	"region/storeloss.go",
	"region/validate.go",
	"region/statuswriter.go", // health writes: store calls through the Store seam
	"scenarios/generate.go",  // swarm-fuzzing schedules, from a seed
}

// drivers are the files of region/ and federation/ that do I/O by design:
// the production drivers around the core, and the in-memory and
// fault-injecting twins of the I/O seams (which start goroutines and use
// timers to behave like the real thing).
var drivers = []string{
	"federation/federator.go",    // the driver of Core on the rt seam
	"federation/replicastore.go", // ReplicaStore and its in-memory twin
	"federation/transport.go",    // SyncTransport and its HTTP implementation
	"federation/watch.go",        // the push path's driver (Watcher) on the rt seam
	"federation/federator_update.go",
	"region/registrar.go",    // registration logic; sleeps between retries
	"region/cache.go",        // catalog cache kept current from Redis
	"region/faultstore.go",   // Store decorator injecting faults
	"region/healthrunner.go", // runs probes on a timer
	"region/healthrunner_telemetry.go",
	"region/cache_snapshot.go",
	"region/cache_mark.go", // Cache.Mark: where the cache found its store
	"region/memstore.go",   // in-memory Store twin
	"region/epoch.go",      // random store epochs
}

// classifiedDirs are the directories whose every non-test file must be
// either core or a driver, so that a new file gets a decision.
var classifiedDirs = []string{"federation", "region"}

// knownViolations are accepted breaches of the rules in core files, each
// pinned to the file, the import and the exact names used from it: a new
// use, or the breach going away, fails the test (then update this list).
var knownViolations = []allowed{}

type allowed struct {
	file       string
	importPath string
	names      []string // the package-level names used through the import
}

// forbiddenImport reports why a core file may not import path ("" if it
// may). Of the net tree, net/url and net/netip are plain parsing and
// allowed; the rest (net, net/http..., net/rpc, net/smtp...) is I/O.
func forbiddenImport(path string) string {
	switch {
	case path == "net/url" || path == "net/netip":
		return ""
	case path == "net/http" || strings.HasPrefix(path, "net/http/"):
		return "HTTP I/O"
	case path == "net" || strings.HasPrefix(path, "net/"):
		return "network I/O"
	case path == "os/exec":
		return "runs processes"
	case strings.HasPrefix(path, "github.com/redis/go-redis"):
		return "Redis I/O"
	case strings.HasPrefix(path, "github.com/hashicorp/serf"), strings.HasPrefix(path, "github.com/hashicorp/memberlist"):
		return "gossip I/O"
	}
	return ""
}

// forbiddenTime are the time functions that read the clock or wait.
var forbiddenTime = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "Tick": true,
	"NewTimer": true, "NewTicker": true, "AfterFunc": true,
}

// randPkgs are the packages with a global source. Through them only the
// constructors (New…) and the types may be used: every other top-level
// name is a function on the global source (IntN, Float64, Shuffle, N, …).
var randPkgs = map[string]bool{"math/rand": true, "math/rand/v2": true}

var randTypes = map[string]bool{"Rand": true, "Source": true, "Source64": true, "PCG": true, "ChaCha8": true, "Zipf": true}

// violation is one breach of the rules at a source position.
type violation struct {
	pos  token.Position
	rule string
}

func (v violation) String() string {
	return fmt.Sprintf("%s:%d: %s", v.pos.Filename, v.pos.Line, v.rule)
}

// check parses one file and returns its violations, and for each import
// the package-level names the file uses through it (for knownViolations).
func check(fset *token.FileSet, name string, src any) ([]violation, map[string][]string, error) {
	// Object resolution stays on: a local variable shadowing an import
	// (Ident.Obj set) is told apart from the package.
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		return nil, nil, err
	}
	var out []violation
	add := func(n ast.Node, format string, args ...any) {
		out = append(out, violation{fset.Position(n.Pos()), fmt.Sprintf(format, args...)})
	}
	// The file's name for each import (its alias, or the path's last
	// element, or "v2"'s parent for math/rand/v2).
	local := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if why := forbiddenImport(path); why != "" {
			add(imp, "imports %q (%s)", path, why)
		}
		name := defaultName(path)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "." && (path == "time" || randPkgs[path]) {
			add(imp, "dot-imports %q (its clock and global-source functions cannot be told apart)", path)
		}
		local[name] = path
	}
	used := map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			add(n, "starts a goroutine (go statement)")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok || id.Obj != nil { // a local variable, not a package
				return true
			}
			path, ok := local[id.Name]
			if !ok {
				return true
			}
			sel := n.Sel.Name
			if !slices.Contains(used[path], sel) {
				used[path] = append(used[path], sel)
			}
			switch {
			case path == "time" && forbiddenTime[sel]:
				add(n, "uses time.%s (time comes in as an argument)", sel)
			case randPkgs[path] && !strings.HasPrefix(sel, "New") && !randTypes[sel]:
				add(n, "uses the global source: %s.%s (pass a *rand.Rand)", path, sel)
			}
		}
		return true
	})
	for _, names := range used {
		slices.Sort(names)
	}
	return out, used, nil
}

// defaultName is the package name an import path gets without an alias
// (the repo's and the standard library's packages are named after their
// last element; a trailing /vN is skipped).
func defaultName(path string) string {
	parts := strings.Split(path, "/")
	last := parts[len(parts)-1]
	if len(parts) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		last = parts[len(parts)-2]
	}
	return strings.TrimSuffix(last, ".go")
}

// moduleRoot finds the directory holding go.mod above the test's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	t.Fatal("no go.mod above the test directory")
	return ""
}

func isSource(name string) bool {
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
}

// expand lists the non-test .go files of coreFiles, relative to root with
// forward slashes, and fails on an entry that matches nothing (a renamed
// file must not drop out silently).
func expand(t *testing.T, root string, entries []string) []string {
	t.Helper()
	var files []string
	for _, e := range entries {
		n := len(files)
		if strings.HasSuffix(e, "/") {
			err := filepath.WalkDir(filepath.Join(root, e), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				if !d.IsDir() && isSource(d.Name()) {
					rel, _ := filepath.Rel(root, p)
					files = append(files, filepath.ToSlash(rel))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("listing %s: %v", e, err)
			}
		} else if _, err := os.Stat(filepath.Join(root, e)); err == nil {
			files = append(files, e)
		}
		if len(files) == n {
			t.Errorf("core entry %q matches no file: renamed or removed? update coreFiles", e)
		}
	}
	return files
}

// TestCoreIsPure checks every core file against the rules.
func TestCoreIsPure(t *testing.T) {
	root := moduleRoot(t)
	files := expand(t, root, coreFiles)
	fset := token.NewFileSet()
	seen := map[string]bool{} // knownViolations still in use
	var bad []string
	for _, rel := range files {
		vs, used, err := check(fset, rel, mustRead(t, filepath.Join(root, rel)))
		if err != nil {
			t.Errorf("parsing %s: %v", rel, err)
			continue
		}
		for _, v := range vs {
			if a, ok := known(rel, v, used); ok {
				seen[a.file+" "+a.importPath] = true
				t.Logf("known violation (see knownViolations): %v; uses %s.%v", v, a.importPath, used[a.importPath])
				continue
			}
			bad = append(bad, v.String())
		}
	}
	for _, a := range knownViolations {
		if !seen[a.file+" "+a.importPath] {
			t.Errorf("knownViolations: %s no longer uses %q as listed (fixed, or uses more of it): update the list", a.file, a.importPath)
		}
	}
	if len(bad) > 0 {
		t.Errorf("core files break the no-I/O rule (DESIGN.md, \"a core without I/O\"):\n  %s", strings.Join(bad, "\n  "))
	}
	t.Logf("checked %d core files", len(files))
}

// known reports whether v is an accepted import with exactly the listed
// uses.
func known(file string, v violation, used map[string][]string) (allowed, bool) {
	for _, a := range knownViolations {
		if a.file == file && strings.Contains(v.rule, strconv.Quote(a.importPath)) && slices.Equal(used[a.importPath], a.names) {
			return a, true
		}
	}
	return allowed{}, false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryFileClassified: each non-test file of region/ and federation/
// is core or a driver, and both lists name existing files.
func TestEveryFileClassified(t *testing.T) {
	root := moduleRoot(t)
	listed := map[string]string{}
	for _, f := range coreFiles {
		listed[f] = "core"
	}
	for _, f := range drivers {
		if listed[f] != "" {
			t.Errorf("%s is both core and a driver", f)
		}
		listed[f] = "driver"
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("driver %s: %v (renamed or removed? update drivers)", f, err)
		}
	}
	for _, dir := range classifiedDirs {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			rel := dir + "/" + e.Name()
			if !e.IsDir() && isSource(e.Name()) && listed[rel] == "" {
				t.Errorf("%s is neither in coreFiles nor in drivers (internal/purity/purity_test.go): decide which", rel)
			}
		}
	}
}

// TestCheckerFindsEachViolation feeds the checker sources with each
// forbidden construct (under aliases too) and clean ones, so that the
// purity test can fail.
func TestCheckerFindsEachViolation(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // substrings of the reported rules, in order; none for clean code
	}{
		{"net", `package p; import "net"; var _ = net.ParseIP`, []string{`imports "net"`}},
		{"net as sub-path", `package p; import "net/rpc"; var _ = rpc.Dial`, []string{`imports "net/rpc"`}},
		{"net/http", `package p; import "net/http"; var _ = http.Get`, []string{`imports "net/http"`}},
		{"httptest", `package p; import "net/http/httptest"; var _ = httptest.NewServer`, []string{`imports "net/http/httptest"`}},
		{"os/exec", `package p; import "os/exec"; var _ = exec.Command`, []string{`imports "os/exec"`}},
		{"go-redis", `package p; import "github.com/redis/go-redis/v9"; var _ redis.Cmdable`, []string{`imports "github.com/redis/go-redis/v9"`}},
		{"serf", `package p; import "github.com/hashicorp/serf/serf"; var _ serf.Event`, []string{`imports "github.com/hashicorp/serf/serf"`}},
		{"memberlist", `package p; import ml "github.com/hashicorp/memberlist"; var _ ml.Node`, []string{`imports "github.com/hashicorp/memberlist"`}},
		{"time.Now", `package p; import "time"; func f() time.Time { return time.Now() }`, []string{"time.Now"}},
		{"time aliased", `package p; import clock "time"; func f() { clock.Sleep(1); _ = clock.Since; <-clock.After(1) }`, []string{"time.Sleep", "time.Since", "time.After"}},
		{"timers", `package p; import "time"; func f() { time.NewTimer(1); time.NewTicker(1); time.AfterFunc(1, nil); time.Tick(1); time.Until(time.Time{}) }`,
			[]string{"time.NewTimer", "time.NewTicker", "time.AfterFunc", "time.Tick", "time.Until"}},
		{"rand v2 global", `package p; import "math/rand/v2"; func f() int { return rand.IntN(3) + rand.N(4) }`, []string{"math/rand/v2.IntN", "math/rand/v2.N"}},
		{"rand v1 global", `package p; import mr "math/rand"; func f() { mr.Seed(1); mr.Shuffle(2, nil) }`, []string{"math/rand.Seed", "math/rand.Shuffle"}},
		{"rand value", `package p; import "math/rand/v2"; var pick = rand.Float64`, []string{"math/rand/v2.Float64"}},
		{"go statement", `package p; func f() { go f() }`, []string{"starts a goroutine"}},
		{"go in closure", `package p; var f = func() { go func() {}() }`, []string{"starts a goroutine"}},
		{"dot import", `package p; import . "time"; var _ = Now`, []string{`dot-imports "time"`}},
		{"clean", `package p
import (
	"math/rand/v2"
	"net/netip"
	"net/url"
	"time"
)
func f(now time.Time, rng *rand.Rand) (time.Duration, int) {
	r := rand.New(rand.NewPCG(1, 2))
	_ = r.IntN(3)
	_, _ = url.Parse("http://x")
	_, _ = netip.ParseAddr("127.0.0.1")
	var t time.Timer
	_ = t
	return now.Sub(now.Add(-time.Second)), rng.IntN(2)
}`, nil},
		{"local shadows import", `package p
import "time"
type clock struct{}
func (clock) Now() int { return 0 }
func f(d time.Duration) int { time := clock{}; return time.Now() }`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, _, err := check(token.NewFileSet(), tc.name+".go", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vs {
				got = append(got, v.rule)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations %q, want %d like %q", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d = %q, want it to mention %q", i, got[i], w)
				}
			}
		})
	}
}

// TestKnownViolationsArePrecise: an accepted import used for one more
// name is reported.
func TestKnownViolationsArePrecise(t *testing.T) {
	src := `package region
import "net"
func a(s string) bool { return net.ParseIP(s) != nil }
func b(s string) { net.SplitHostPort(s) }
func c() { net.Dial("tcp", "x") }`
	vs, used, err := check(token.NewFileSet(), "region/validate.go", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("violations %v, want the net import", vs)
	}
	if _, ok := known("region/validate.go", vs[0], used); ok {
		t.Errorf("net.Dial in region/validate.go passed as a known violation (uses %v)", used["net"])
	}
}
