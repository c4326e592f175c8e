package purity

import (
	"os/exec"
	"strings"
	"testing"
)

// decidingPackages are the packages that decide (DESIGN.md, "a core
// without I/O"): none may depend, directly or through anything it
// imports, on a package that does I/O. The I/O adapters live in their own
// packages (region/redisstore, region/probe, federation/serfmember,
// federation/httpsync, federation/redisreplica, gateway, cmd).
var decidingPackages = []string{
	"acl",
	"egress",
	"failover",
	"federation",
	"region",
	"rt",
	"scenarios",
	"sim",
	"sim/gossip",
	"sim/report",
}

// forbiddenDep reports why a package may not be a dependency of a deciding
// package ("" if it may).
func forbiddenDep(path string) string {
	switch {
	case path == "github.com/alicebob/miniredis" || strings.HasPrefix(path, "github.com/alicebob/miniredis/"):
		return "embedded Redis server"
	case path == "github.com/hashicorp/memberlist" || strings.HasPrefix(path, "github.com/hashicorp/memberlist/"):
		return "gossip I/O"
	case strings.HasPrefix(path, "github.com/hashicorp/serf/"):
		return "gossip I/O"
	case strings.HasPrefix(path, "github.com/redis/"):
		return "Redis I/O"
	}
	return forbiddenImport(path)
}

// TestDecidingPackagesImportNoIO runs go list -deps on every deciding
// package and fails on any I/O package among its dependencies, with the
// chain that brings it in.
func TestDecidingPackagesImportNoIO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	root := moduleRoot(t)
	const mod = "github.com/meridian-sd/meridian/"
	for _, p := range decidingPackages {
		cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./"+p)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", p, err)
		}
		imports := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			imports[f[0]] = f[1:]
		}
		for dep := range imports {
			if why := forbiddenDep(dep); why != "" {
				t.Errorf("%s depends on %s (%s): %s", p, dep, why, strings.Join(chain(imports, mod+p, dep), " -> "))
			}
		}
	}
}

// chain returns an import path from 'from' to 'to' (breadth first).
func chain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			var path []string
			for ; n != ""; n = prev[n] {
				path = append([]string{n}, path...)
			}
			return path
		}
		for _, m := range imports[n] {
			if _, seen := prev[m]; !seen {
				prev[m] = n
				queue = append(queue, m)
			}
		}
	}
	return []string{from, "...", to}
}

// TestForbiddenDep: the dependency check can fail.
func TestForbiddenDep(t *testing.T) {
	for path, bad := range map[string]bool{
		"net": true, "net/http": true, "net/http/httptrace": true, "os/exec": true,
		"github.com/redis/go-redis/v9": true, "github.com/hashicorp/serf/serf": true,
		"github.com/hashicorp/memberlist": true, "github.com/alicebob/miniredis/v2": true,
		"net/netip": false, "net/url": false, "context": false, "github.com/meridian-sd/meridian/region": false,
	} {
		if got := forbiddenDep(path) != ""; got != bad {
			t.Errorf("forbiddenDep(%q) = %v, want %v", path, got, bad)
		}
	}
}
