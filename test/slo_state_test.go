package test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/slo"
)

// metricValue returns the value of the first series of /metrics whose
// line starts with prefix, or -1.
func metricValue(body, prefix string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func stateTestConfig(targetURL string) string {
	return fmt.Sprintf(`global: {evaluation_interval: 1s}
services:
  - name: shop
    probes:
      - {name: home, interval: 100ms, timeout: 90ms, http: {url: "%s/"}}
    slos:
      - {name: availability, objective: 99, window: 1d, sli: {probes: [home]}}
`, targetURL)
}

const goodEvents = `slo_events_total{result="good",service="shop",slo="availability"}`

// TestSLOStateSurvivesKill9: after kill -9, the restarted daemon has every
// event recorded before the last flush: a crash loses at most one flush
// interval.
func TestSLOStateSurvivesKill9(t *testing.T) {
	var served atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
	}))
	defer target.Close()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, stateTestConfig(target.URL))
	storage := filepath.Join(dir, "data")

	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage, "--storage.flush-interval=1s")
	body := d.waitFor(20*time.Second, regexp.QuoteMeta(goodEvents)+` [1-9]\d`)
	seen := metricValue(body, goodEvents)
	flushes := metricValue(body, "reliabilityd_state_flushes_total")
	// Two more flushes: the second started after `seen` was scraped.
	d.waitFor(20*time.Second, `^reliabilityd_state_flushes_total `+strconv.Itoa(int(flushes)+2))
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited

	target.Close() // the restarted daemon's probes fail: only the restored events are good
	d2 := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage)
	body = d2.waitFor(20*time.Second, `^slo_window_events\{service="shop",slo="availability",window="full"\} [1-9]`)
	restored := metricValue(body, goodEvents)
	if restored < seen {
		t.Errorf("after kill -9 the daemon restored %v good events, want at least the %v seen before the last flush", restored, seen)
	}
	if restored > float64(served.Load()) {
		t.Errorf("restored %v good events but the target served only %d requests", restored, served.Load())
	}
	if full := metricValue(body, `slo_window_events{service="shop",slo="availability",window="full"}`); full < restored {
		t.Errorf("the 1d window holds %v events after the restart, want at least the %v restored good ones", full, restored)
	}
	// The landing page shows the SLO with its figures: attained below
	// 100 % (the restarted daemon's runs fail) and the budget overspent.
	_, page := d2.get("/")
	row := regexp.MustCompile(`data-slo="availability">availability: <span class="(ok|fail)">(\d+\.\d{3}) %</span> <span class="muted">/ 99 % · 1d · \d+ events</span>`)
	if m := row.FindStringSubmatch(page); m == nil {
		t.Errorf("landing page lacks the SLO row with an attained figure:\n%s", page)
	}
}

// TestSLOUnreadableSectionKept: a state file whose SLO section this build
// cannot read (as after a downgrade) is copied aside, said in the log and
// counted; the daemon runs with empty SLOs.
func TestSLOUnreadableSectionKept(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "data")
	store, err := slo.OpenStore(storage, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	future := []byte{99, 0} // SLO section version 99
	if err := store.Save(map[string][]byte{slo.SLOStateSection: future}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, stateTestConfig(target.URL))
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage)
	d.waitFor(20*time.Second, `^reliabilityd_state_corrupt_files_total 1$`, regexp.QuoteMeta(goodEvents)+` [1-9]`)
	if !strings.Contains(d.log(), "A state section is unreadable") || !strings.Contains(d.log(), "unknown version 99") {
		t.Errorf("the log does not explain the unreadable section:\n%s", d.log())
	}
	copies, _ := filepath.Glob(filepath.Join(storage, "state.bin.corrupt-*"))
	if len(copies) != 1 {
		t.Fatalf("copies aside: %v, want one", copies)
	}
	data, err := os.ReadFile(copies[0])
	if err != nil {
		t.Fatal(err)
	}
	// The copy holds the section as it was.
	if !strings.Contains(string(data), slo.SLOStateSection) || !strings.Contains(string(data), string(future)) {
		t.Errorf("the copy aside does not hold the unreadable section")
	}
}
