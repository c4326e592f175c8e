package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// files holds the built-in scenarios, one per *.yaml file of this directory.
//
//go:embed *.yaml
var files embed.FS

// Info names and describes a built-in scenario.
type Info struct {
	Name        string
	Description string
}

// Names returns the built-in scenario names, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil { // cannot happen with an embed.FS root
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Builtin returns the built-in scenario called name, parsed, defaulted and
// validated. Its File is "scenarios/<name>.yaml".
func Builtin(name string) (*Scenario, error) {
	data, err := files.ReadFile(name + ".yaml")
	if err != nil || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("unknown built-in scenario %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return Parse("scenarios/"+name+".yaml", data)
}

// IsBuiltin reports whether name is a built-in scenario.
func IsBuiltin(name string) bool {
	for _, n := range Names() {
		if n == name {
			return true
		}
	}
	return false
}

// List returns every built-in scenario with its description, sorted by name.
// A built-in that does not parse (a bug caught by the package's tests) is
// listed with the error as its description.
func List() []Info {
	names := Names()
	infos := make([]Info, 0, len(names))
	for _, n := range names {
		sc, err := Builtin(n)
		if err != nil {
			infos = append(infos, Info{Name: n, Description: "INVALID: " + err.Error()})
			continue
		}
		infos = append(infos, Info{Name: n, Description: sc.Description})
	}
	return infos
}
