package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that a failure is always Errors
// with at least one entry, and that a success re-validates: its String()
// parses again to the same configuration.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("services:\n  - &s {name: x, probes: [{name: p, tcp: {address: \"h:1\"}}]}\n  - *s\n"))
	f.Add([]byte("services: [{name: x, probes: [{name: p, http: {url: \"http://h\", headers: {A: b}}}]}]"))

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yml")
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		out := cfg.String()
		again, err := Parse([]byte(out), "fuzz.yml")
		if err != nil {
			t.Fatalf("String() output does not parse: %v\ninput:\n%q\noutput:\n%s", err, data, out)
		}
		if again.String() != out {
			t.Fatalf("round trip changed the config:\n%s\nwant:\n%s", again, out)
		}
	})
}
