package slo

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestFamiliesGolden renders the SLO families of a small engine in the
// text format and compares them with testdata/slo_metrics.golden: a
// latency SLO with data, a calendar SLO without any (its SLI, burn rates
// and budget ratios are absent, its event counts 0), and a service in
// maintenance.
func TestFamiliesGolden(t *testing.T) {
	now := utc("2026-11-29T23:30:00Z")
	e := newTestEngine(t, `
services:
  - name: shop
    maintenance:
      - weekly: {days: [sun], start: "23:00", duration: 3h}
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
    slos:
      - {name: latency, objective: 95, window: 7d, sli: {probes: [home], latency_below: 250ms}}
  - name: billing
    hours_of_operation: {start: "08:00", end: "18:00"}
    probes:
      - {name: api, http: {url: "http://127.0.0.1:1/"}}
    slos:
      - {name: monthly, objective: 99.9, calendar: month, sli: {probes: [api]}}
`, &now)
	record(e, "shop", []event{
		{at: now.Add(-2 * time.Minute), probe: "home", success: true, duration: 100 * time.Millisecond},
		{at: now.Add(-2 * time.Minute), probe: "home", success: true, duration: 300 * time.Millisecond},
		{at: now.Add(-50 * time.Minute), probe: "home", success: false},
		{at: now.Add(-3 * time.Hour), probe: "home", success: true, duration: 10 * time.Millisecond},
		{at: now.Add(-20 * time.Minute), probe: "home", success: true, duration: 10 * time.Millisecond}, // in maintenance
	})
	e.Evaluate(now)
	var out bytes.Buffer
	encoder := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	if err := e.EachFamily(func(mf *dto.MetricFamily) error { return encoder.Encode(mf) }); err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "slo_metrics.golden", out.String())
}

// compareGolden compares got with testdata/name, or rewrites it with
// -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("metrics differ from %s (run with -update to accept):\n%s", golden, got)
	}
}

// TestEachFamilyStopsOnError: a scraper that went away stops the stream.
func TestEachFamilyStopsOnError(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := newTestEngine(t, engineTestConfig, &now)
	gone := errors.New("gone")
	calls := 0
	err := e.EachFamily(func(*dto.MetricFamily) error { calls++; return gone })
	if !errors.Is(err, gone) || calls != 1 {
		t.Errorf("EachFamily returned %v after %d calls, want the emit error after 1", err, calls)
	}
	var names []string
	_ = e.EachFamily(func(mf *dto.MetricFamily) error { names = append(names, mf.GetName()); return nil })
	if joined := strings.Join(names, " "); !strings.Contains(joined, "slo_events_total") || strings.Contains(joined, "slo_sli_ratio") {
		t.Errorf("families of SLOs without data: %s; want counters but no SLI", joined)
	}
}
