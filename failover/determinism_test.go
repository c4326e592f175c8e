package failover

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDeterminism keeps the package's code pure: no clock, no sleeping, no
// global randomness, no network, no goroutines. Time and randomness come in
// as arguments (observation times, a seeded *rand.Rand).
func TestDeterminism(t *testing.T) {
	forbiddenImports := map[string]string{
		"math/rand": "use math/rand/v2 with a *rand.Rand passed in",
		"net":       "routing does no I/O",
		"os":        "routing does no I/O",
	}
	forbiddenCalls := map[string]map[string]bool{
		"time": {"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
			"Tick": true, "NewTimer": true, "NewTicker": true},
	}
	// math/rand/v2: only constructors and types; the package-level
	// functions use the global source.
	randAllowed := map[string]bool{"New": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true,
		"Rand": true, "Source": true, "PCG": true, "ChaCha8": true, "Zipf": true}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		local := map[string]string{} // import name -> path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if why, bad := forbiddenImports[path]; bad {
				t.Errorf("%s imports %s: %s", fset.Position(imp.Pos()), path, why)
			}
			n := path[strings.LastIndex(path, "/")+1:]
			if path == "math/rand/v2" {
				n = "rand"
			}
			if imp.Name != nil {
				n = imp.Name.Name
			}
			local[n] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement in a pure package", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				id, ok := n.X.(*ast.Ident)
				if !ok {
					break
				}
				switch path := local[id.Name]; {
				case forbiddenCalls[path][n.Sel.Name]:
					t.Errorf("%s: %s.%s reads or waits on the clock", fset.Position(n.Pos()), path, n.Sel.Name)
				case path == "math/rand/v2" && !randAllowed[n.Sel.Name]:
					t.Errorf("%s: rand.%s uses the global source", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
}
