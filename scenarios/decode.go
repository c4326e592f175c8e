package scenarios

import (
	"encoding"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Bounds on what a scenario file may contain, so that a hostile or mistaken
// file cannot make the parser or the simulator run away.
const (
	MaxFileSize     = 1 << 20 // bytes
	maxSeqLen       = 10000   // items in one YAML sequence
	maxDepth        = 16      // nesting of mappings and sequences
	maxErrorsReturn = 20      // field errors reported at once
)

// FieldError is one problem found in a scenario, located by file, line and
// field path ("timeline[2].region").
type FieldError struct {
	File string
	Line int    // 0 when unknown (scenarios built in code)
	Path string // field path; "" for the whole file
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a scenario, sorted by line. Its Error
// is one problem per line.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, 0, len(es))
	for _, e := range es {
		lines = append(lines, e.Error())
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes, defaults and validates the scenario file at path.
// Errors name the file and line.
func Load(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading scenario: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loading scenario: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("loading scenario: %s is a directory", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("loading scenario: %s is %d bytes, more than the %d allowed", path, st.Size(), MaxFileSize)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("loading scenario %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes a scenario from YAML, applies the defaults and validates it.
// file names the source in error messages ("scenarios/x.yaml:23: ...") and,
// without its directory and .yaml extension, is the default scenario name.
// Unknown keys, values of the wrong type, YAML anchors and aliases are
// errors. Every error is a *FieldError or an Errors.
func Parse(file string, data []byte) (*Scenario, error) {
	if len(data) > MaxFileSize {
		return nil, &FieldError{File: file, Msg: fmt.Sprintf("file is %d bytes, more than the %d allowed", len(data), MaxFileSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlSyntaxError(file, err)
	}
	d := &decoder{file: file, lines: map[string]int{}}
	sc := &Scenario{}
	switch {
	case root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0):
		return nil, &FieldError{File: file, Line: 1, Msg: "empty scenario (want a mapping with at least duration, topology and services)"}
	case root.Kind == yaml.DocumentNode:
		d.decode(root.Content[0], reflect.ValueOf(sc).Elem(), "", 0)
	default:
		d.decode(&root, reflect.ValueOf(sc).Elem(), "", 0)
	}
	if len(d.errs) > 0 {
		return nil, finish(d.errs)
	}
	sc.File = file
	sc.Lines = d.lines
	for i := range sc.Timeline {
		sc.Timeline[i].Line = d.lines[fmt.Sprintf("timeline[%d]", i)]
	}
	for i := range sc.Expect {
		sc.Expect[i].Line = d.lines[fmt.Sprintf("expect[%d]", i)]
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".yaml"), ".yml")
	}
	pre := &validator{sc: sc}
	pre.explicitZeros()
	sc.ApplyDefaults()
	v := &validator{sc: sc, errs: pre.errs}
	v.scenario()
	if len(v.errs) > 0 {
		return nil, finish(v.errs)
	}
	return sc, nil
}

// yamlSyntaxError turns yaml.v3's "yaml: line 3: ..." into "file:3: ...".
func yamlSyntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &FieldError{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

func finish(errs []*FieldError) error {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	if len(errs) > maxErrorsReturn {
		extra := len(errs) - maxErrorsReturn
		errs = append(errs[:maxErrorsReturn:maxErrorsReturn], &FieldError{File: errs[0].File, Msg: fmt.Sprintf("... and %d more problems", extra)})
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return Errors(errs)
}

// decoder fills a value from a yaml.Node strictly, recording the line of
// every field it sees.
type decoder struct {
	file  string
	lines map[string]int
	errs  []*FieldError
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	timeType            = reflect.TypeOf(time.Time{})
	durationType        = reflect.TypeOf(time.Duration(0))
	scenarioDurType     = reflect.TypeOf(Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if depth > maxDepth {
		d.fail(n, path, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.fail(n, path, "YAML anchors and aliases are not supported in scenarios")
		return
	}
	t := v.Type()
	switch {
	case t == timeType:
		d.decodeTime(n, v, path)
		return
	case t == scenarioDurType || t == durationType:
		d.decodeDuration(n, v, path)
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		d.decodeScalar(n, v, path, "a text value")
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path, depth+1)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Slice:
		d.decodeSlice(n, v, path, depth)
	case reflect.String:
		d.decodeScalar(n, v, path, "a string")
	case reflect.Int, reflect.Int64, reflect.Int32:
		d.decodeScalar(n, v, path, "an integer")
	case reflect.Float64:
		d.decodeScalar(n, v, path, "a number")
	case reflect.Bool:
		d.decodeScalar(n, v, path, "true or false")
	default:
		d.fail(n, path, "cannot decode into %s", t)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path, want string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want %s, got %s", want, kindName(n))
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		d.fail(n, path, "want %s, got %s", want, kindName(n))
		return
	}
	v.Set(p.Elem())
}

func (d *decoder) decodeTime(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want an RFC 3339 time, got %s", kindName(n))
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	tm, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		d.fail(n, path, "want an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", n.Value)
		return
	}
	v.Set(reflect.ValueOf(tm.UTC()))
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a duration such as 250ms or 5m, got %s", kindName(n))
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "want a duration such as 250ms or 5m, got %q", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// yamlFields maps the YAML keys of a struct type to field indexes.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		idx[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	return idx, names
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	idx, names := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		fp := joinPath(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.fail(k, fp, "duplicate key (first at line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := idx[k.Value]
		if !ok {
			d.fail(k, fp, "unknown field %q (known: %s)", k.Value, strings.Join(names, ", "))
			continue
		}
		d.lines[fp] = k.Line
		d.decode(val, v.Field(fi), fp, depth+1)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, depth int) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, got %s", kindName(n))
		return
	}
	if len(n.Content) > maxSeqLen {
		d.fail(n, path, "%d items, more than the %d allowed", len(n.Content), maxSeqLen)
		return
	}
	if len(n.Content) == 0 {
		v.SetZero()
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		d.lines[ip] = item.Line
		d.decode(item, s.Index(i), ip, depth+1)
	}
	v.Set(s)
}
