package scenarios

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, and every error it returns is located.
func FuzzParse(f *testing.F) {
	for _, n := range Names() {
		data, err := files.ReadFile(n + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte("duration: [\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("f.yaml", data)
		if err != nil {
			var fe *FieldError
			var es Errors
			if !errors.As(err, &fe) && !errors.As(err, &es) {
				t.Fatalf("error %T not located: %v", err, err)
			}
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("Parse accepted a scenario Validate rejects: %v", err)
		}
		if _, err := Marshal(sc); err != nil {
			t.Fatalf("Marshal: %v", err)
		}
	})
}
