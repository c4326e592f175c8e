package main

import (
	"bytes"
	"testing"
)

func TestSafeWriterEscapesControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web-1\t10.0.0.5:80\n", "web-1\t10.0.0.5:80\n"},
		{"tag \x1b[31mred\x1b[0m", `tag \x1b[31mred\x1b[0m`},
		{"a\rb\x00c\x7f", `a\x0db\x00c\x7f`},
		{"ok\u202etxt.exe", `ok\u202etxt.exe`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"zone é ✓", "zone é ✓"},
	} {
		var b bytes.Buffer
		n, err := safeWriter{&b}.Write([]byte(tc.in))
		if err != nil || n != len(tc.in) || b.String() != tc.want {
			t.Errorf("Write(%q): got %q (n=%d, %v), want %q", tc.in, b.String(), n, err, tc.want)
		}
	}
}
