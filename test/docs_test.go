package test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDocsCoverMetrics: every metric family the daemon exports (but the
// Go runtime's and process collector's) is in docs/metrics.md.
func TestDocsCoverMetrics(t *testing.T) {
	docs := readDoc(t, "../docs/metrics.md")
	d := startDaemon(t, "--storage.path="+t.TempDir())
	body := d.waitFor(30*time.Second, `^probe_success\{probe="healthy"`, `^probe_phase_duration_seconds\{`)
	families := regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(body, -1)
	if len(families) < 20 {
		t.Fatalf("only %d metric families scraped", len(families))
	}
	for _, f := range families {
		name := f[1]
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.Contains(docs, "`"+name+"`") {
			t.Errorf("metric %s is not documented in docs/metrics.md", name)
		}
	}
}

// TestDocsCoverFlags: every flag of --help is in docs/flags.md.
func TestDocsCoverFlags(t *testing.T) {
	docs := readDoc(t, "../docs/flags.md")
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	flags := regexp.MustCompile(`--\[?(?:no-)?\]?([a-z][a-z0-9.-]+)`).FindAllStringSubmatch(string(out), -1)
	if len(flags) < 10 {
		t.Fatalf("only %d flags in --help:\n%s", len(flags), out)
	}
	for _, f := range flags {
		if !strings.Contains(docs, "`--"+f[1]+"`") {
			t.Errorf("flag --%s is not documented in docs/flags.md", f[1])
		}
	}
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
