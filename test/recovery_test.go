package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRecoveryOutageBackupsDrills: the daemon probes a target the test
// breaks; the outage opens, survives a kill -9 with its start kept, and
// closes when the target is repaired. A backup file's age is checked
// against the RPO, and a drill recorded with `reliabilityd drill record`
// shows in /metrics and /api/v1/drills.
func TestRecoveryOutageBackupsDrills(t *testing.T) {
	var broken atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer target.Close()
	dir := t.TempDir()
	backups := filepath.Join(dir, "backups")
	if err := os.Mkdir(backups, 0o755); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(backups, "db-1.dump")
	writeFile(t, dump, strings.Repeat("x", 2048))
	pointTime := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(dump, pointTime, pointTime); err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf(`global: {evaluation_interval: 1s}
services:
  - name: shop
    probes:
      - {name: home, interval: 200ms, timeout: 150ms, http: {url: "%s/", valid_status_codes: [200]}}
    recovery:
      rto: 1h
      rpo: 1h
      outage: {open_after: 3, close_after: 2}
      backups:
        - {name: db, file: {glob: "backups/db-*.dump", min_size: 1KiB}, interval: 1s, timeout: 1s}
      drills: {every: 90d}
`, target.URL))
	storage := filepath.Join(dir, "data")
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage, "--storage.flush-interval=200ms")

	// The backup is 2h old against a 1h RPO.
	body := d.waitFor(20*time.Second, `^recovery_point_timestamp_seconds\{backup="db",service="shop"\} `,
		`^recovery_rpo_met\{backup="db",service="shop"\} 0$`, `^recovery_drill_overdue\{service="shop"\} 1$`)
	if got := metricValue(body, `recovery_point_timestamp_seconds{backup="db",service="shop"}`); got != float64(pointTime.Unix()) {
		t.Errorf("recovery point %v, want the dump's mtime %d", got, pointTime.Unix())
	}

	broken.Store(true)
	body = d.waitFor(20*time.Second, `^recovery_outage_active\{service="shop"\} 1$`)
	start := metricValue(body, `recovery_outage_start_timestamp_seconds{service="shop"}`)
	// Let a flush record the open outage, then kill -9.
	flushes := metricValue(body, "reliabilityd_state_flushes_total")
	d.waitFor(20*time.Second, fmt.Sprintf(`^reliabilityd_state_flushes_total %d$`, int(flushes)+2))
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited

	d2 := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage, "--storage.flush-interval=200ms")
	body = d2.waitFor(20*time.Second, `^recovery_outage_active\{service="shop"\} 1$`)
	if got := metricValue(body, `recovery_outage_start_timestamp_seconds{service="shop"}`); got != start {
		t.Errorf("after kill -9 the outage starts at %v, want the original %v", got, start)
	}
	broken.Store(false)
	body = d2.waitFor(20*time.Second, `^recovery_outage_active\{service="shop"\} 0$`, `^recovery_last_outage_rto_met\{service="shop"\} 1$`)
	if n := metricValue(body, `recovery_outages_total{planned="false",service="shop"}`); n != 1 {
		t.Errorf("%v unplanned outages, want 1 (the one that spanned the restart)", n)
	}

	// The report's recovery cell: no open outage, the last one within the
	// RTO, and the backup.
	_, page := d2.get("/")
	if !strings.Contains(page, `<div class="item" data-recovery="rto">last outage <span class="ok">`) || !strings.Contains(page, "backup db:") {
		t.Errorf("landing page lacks the recovery cell:\n%s", page)
	}
	// A fresh backup: compliant again.
	fresh := filepath.Join(backups, "db-2.dump")
	writeFile(t, fresh, strings.Repeat("y", 4096))
	d2.waitFor(20*time.Second, `^recovery_rpo_met\{backup="db",service="shop"\} 1$`)

	// A drill through the CLI.
	out, err := exec.Command(binary, "drill", "record", "--url="+d2.url, "--service=shop", "--result=pass", "--duration=25m").CombinedOutput()
	if err != nil {
		t.Fatalf("drill record: %v\n%s", err, out)
	}
	d2.waitFor(20*time.Second, `^recovery_drill_overdue\{service="shop"\} 0$`, `^recovery_drill_last_duration_seconds\{service="shop"\} 1500$`,
		`^recovery_drill_rto_met\{service="shop"\} 1$`)
	out, err = exec.Command(binary, "drill", "record", "--url="+d2.url, "--service=nope", "--result=pass", "--duration=1m").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nope") {
		t.Errorf("a drill of an unknown service: %v\n%s", err, out)
	}

	var drills struct {
		Status string `json:"status"`
		Data   []struct {
			Service         string  `json:"service"`
			Result          string  `json:"result"`
			DurationSeconds float64 `json:"duration_seconds"`
		} `json:"data"`
	}
	_, page = d2.get("/api/v1/drills?service=shop")
	if err := json.Unmarshal([]byte(page), &drills); err != nil || drills.Status != "success" || len(drills.Data) != 1 ||
		drills.Data[0].Result != "pass" || drills.Data[0].DurationSeconds != 1500 {
		t.Errorf("/api/v1/drills = %s (%v)", page, err)
	}
	var outages struct {
		Data []struct {
			Start   time.Time `json:"start"`
			End     time.Time `json:"end"`
			Planned bool      `json:"planned"`
			Open    bool      `json:"open"`
			Probes  []struct {
				Probe, Reason string
			} `json:"probes"`
		} `json:"data"`
	}
	_, page = d2.get("/api/v1/outages")
	if err := json.Unmarshal([]byte(page), &outages); err != nil || len(outages.Data) != 1 || outages.Data[0].Open ||
		float64(outages.Data[0].Start.UnixNano())/1e9 != start || len(outages.Data[0].Probes) != 1 || outages.Data[0].Probes[0].Reason != "status" {
		t.Errorf("/api/v1/outages = %s (%v)", page, err)
	}
	req, _ := http.NewRequest(http.MethodPost, d2.url+"/api/v1/drills", bytes.NewReader([]byte(`{"service":"shop","result":"maybe"}`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST of an invalid drill = %d, want 400", resp.StatusCode)
	}
}
