package main

import (
	"fmt"
	"io"
	"os"
	"unicode"
	"unicode/utf8"
)

// termOut is where client commands print text for people: standard output
// with every control or format character but newline and tab escaped, so
// a tag, meta value or check output holding ESC sequences, CR or bidi
// overrides cannot rewrite the terminal or disguise what it shows (the
// registry refuses them now, but an older record or a replica from an older
// gateway may still hold them). --json output goes out unchanged: JSON
// escapes control characters itself.
var termOut io.Writer = safeWriter{os.Stdout}

type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	if clean(p) {
		return s.w.Write(p)
	}
	if _, err := s.w.Write(escapeControls(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// clean reports whether p is valid UTF-8 of printable runes, newlines and
// tabs only.
func clean(p []byte) bool {
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
		i += n
	}
	return true
}

func escapeControls(p []byte) []byte {
	out := make([]byte, 0, len(p)+16)
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			out = fmt.Appendf(out, `\x%02x`, p[i])
		case r == '\n' || r == '\t' || (unicode.IsPrint(r) && r != 0x7f):
			out = append(out, p[i:i+n]...)
		case r < 0x80:
			out = fmt.Appendf(out, `\x%02x`, r)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	return out
}
