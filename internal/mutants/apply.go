package mutants

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrNotApplicable marks a mutant whose snippet is not found exactly once.
var ErrNotApplicable = errors.New("does not apply")

// Mutate returns src with m applied, or an error wrapping ErrNotApplicable
// that says why (not found, or found more than once).
func (m Mutant) Mutate(src string) (string, error) {
	switch n := strings.Count(src, m.Find); {
	case m.Find == "":
		return "", fmt.Errorf("%w: mutant %s has an empty snippet", ErrNotApplicable, m.Name)
	case n == 0:
		return "", fmt.Errorf("%w: snippet not found in %s", ErrNotApplicable, m.File)
	case n > 1:
		return "", fmt.Errorf("%w: snippet occurs %d times in %s (must be once)", ErrNotApplicable, n, m.File)
	}
	return strings.Replace(src, m.Find, m.Replace, 1), nil
}

// Apply mutates m.File under root in place and returns a function that
// puts the original back.
func (m Mutant) Apply(root string) (restore func() error, err error) {
	p := filepath.Join(root, filepath.FromSlash(m.File))
	orig, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotApplicable, m.File)
		}
		return nil, err
	}
	out, err := m.Mutate(string(orig))
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, []byte(out), st.Mode().Perm()); err != nil {
		return nil, err
	}
	return func() error { return os.WriteFile(p, orig, st.Mode().Perm()) }, nil
}

// Validate checks the set itself: unique names, every field given, a
// replacement that changes something.
func Validate(ms []Mutant) error {
	seen := map[string]bool{}
	var errs []error
	for i, m := range ms {
		switch {
		case m.Name == "":
			errs = append(errs, fmt.Errorf("mutant #%d: no name", i+1))
		case seen[m.Name]:
			errs = append(errs, fmt.Errorf("mutant %s: duplicate name", m.Name))
		case m.File == "" || m.Find == "" || m.Desc == "" || m.Area == "":
			errs = append(errs, fmt.Errorf("mutant %s: file, find, desc and area are required", m.Name))
		case m.Find == m.Replace:
			errs = append(errs, fmt.Errorf("mutant %s: the replacement equals the snippet", m.Name))
		case strings.Contains(m.File, "\\") || path.IsAbs(m.File) || strings.HasPrefix(path.Clean(m.File), ".."):
			errs = append(errs, fmt.Errorf("mutant %s: file %q must be a slash path inside the module", m.Name, m.File))
		}
		seen[m.Name] = true
	}
	return errors.Join(errs...)
}

// Select returns the mutants whose name matches one of the comma- or
// space-separated patterns (path.Match globs, e.g. "core-*"); all of them
// when filter is empty. Unknown patterns are an error.
func Select(ms []Mutant, filter string) ([]Mutant, error) {
	pats := strings.FieldsFunc(filter, func(r rune) bool { return r == ',' || r == ' ' })
	if len(pats) == 0 {
		return ms, nil
	}
	var out []Mutant
	used := make([]bool, len(pats))
	for _, m := range ms {
		for i, p := range pats {
			ok, err := path.Match(p, m.Name)
			if err != nil {
				return nil, fmt.Errorf("MUTANTS pattern %q: %w", p, err)
			}
			if ok {
				used[i] = true
				out = append(out, m)
				break
			}
		}
	}
	for i, p := range pats {
		if !used[i] {
			return nil, fmt.Errorf("MUTANTS pattern %q matches no mutant (see -list)", p)
		}
	}
	return out, nil
}
