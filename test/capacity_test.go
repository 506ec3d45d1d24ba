package test

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestCapacityFilesystemAndRestart: the daemon samples a real filesystem
// path and its own file descriptors; the figures match statfs(2) read by
// the test, and the samples survive a restart.
func TestCapacityFilesystemAndRestart(t *testing.T) {
	dir := t.TempDir()
	watched := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf(`global: {evaluation_interval: 1s}
services:
  - name: shop
    capacity:
      - name: disk
        source: {filesystem: %q}
        interval: 1s
        timeout: 1s
        headroom_target: 10%%
        growth: {6mo: 50%%}
      - name: fds
        source: {process: {self: true, resource: open_fds}}
        interval: 1s
        timeout: 1s
`, watched))
	storage := filepath.Join(dir, "data")
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage)
	body := d.waitFor(20*time.Second, `^capacity_samples_total\{resource="disk",service="shop"\} [3-9]`,
		`^capacity_usage\{resource="fds",service="shop"\} [1-9]`)

	var st syscall.Statfs_t
	if err := syscall.Statfs(watched, &st); err != nil {
		t.Fatal(err)
	}
	// As df: used = (blocks - free) × size, limit = used + available.
	used := float64(st.Blocks-st.Bfree) * float64(st.Bsize)
	limit := float64(st.Blocks-st.Bfree+st.Bavail) * float64(st.Bsize)
	gotUsage := metricValue(body, `capacity_usage{resource="disk",service="shop"}`)
	gotLimit := metricValue(body, `capacity_limit{resource="disk",service="shop"}`)
	// Other processes write to the same filesystem: allow 1% of it.
	if math.Abs(gotUsage-used) > 0.01*limit || math.Abs(gotLimit-limit) > 0.01*limit {
		t.Errorf("disk usage %v of %v, statfs says %v of %v", gotUsage, gotLimit, used, limit)
	}
	util := metricValue(body, `capacity_utilization_ratio{resource="disk",service="shop"}`)
	if math.Abs(util-gotUsage/gotLimit) > 1e-12 {
		t.Errorf("utilization %v, want usage/limit %v", util, gotUsage/gotLimit)
	}
	plan := metricValue(body, `capacity_projected_utilization_ratio{basis="plan",horizon="6mo",resource="disk",service="shop"}`)
	if math.Abs(plan-1.5*gotUsage/gotLimit) > 1e-12 {
		t.Errorf("6mo plan projection %v, want 1.5 × utilization", plan)
	}
	if fdLimit := metricValue(body, `capacity_limit{resource="fds",service="shop"}`); fdLimit < 64 {
		t.Errorf("open-fd limit %v, want the process' soft RLIMIT_NOFILE", fdLimit)
	}
	_, page := d.get("/service/shop")
	if !regexp.MustCompile(`<td>disk</td><td>filesystem</td><td class="num">[0-9.]+</td><td class="num">[0-9.]+</td>\s*<td class="num">\d+\.\d{3} %</td>`).MatchString(page) {
		t.Errorf("shop's page lacks the disk's figures:\n%s", page)
	}
	d.stop()
	samples := metricValue(body, `capacity_samples_total{resource="disk",service="shop"}`)

	d2 := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage)
	body = d2.waitFor(20*time.Second, `^capacity_usage\{resource="disk",service="shop"\} `)
	if restored := metricValue(body, `capacity_samples_total{resource="disk",service="shop"}`); restored < samples {
		t.Errorf("after a restart %v disk samples, want at least the %v counted before", restored, samples)
	}
	if regexp.MustCompile(`(?m)^capacity_sample_failures_total`).MatchString(body) {
		t.Errorf("sample failures on a healthy path:\n%s", body)
	}
}
