package observability

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Fatalf("json warn logger wrote %q", got)
	}
	for _, tc := range []struct{ level, format, want string }{
		{"loud", "text", "log-level"},
		{"info", "xml", "log-format"},
	} {
		if _, err := NewLogger(&buf, tc.level, tc.format); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLogger(%q, %q): got %v, want an error naming %s", tc.level, tc.format, err, tc.want)
		}
	}
}
