package config

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse measures a reload-sized file: 100 services of 100 probes.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("services:\n")
	for s := range 100 {
		fmt.Fprintf(&sb, "  - name: svc%d\n    probes:\n", s)
		for p := range 100 {
			fmt.Fprintf(&sb, "      - name: p%d\n        http:\n          url: https://svc%d.example/%d\n          valid_status_codes: [200]\n          fail_if_body_not_matches_regexp: [\"ok\"]\n", p, s, p)
		}
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "bench.yml"); err != nil {
			b.Fatal(err)
		}
	}
}
