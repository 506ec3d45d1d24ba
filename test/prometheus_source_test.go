package test

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
)

// TestPrometheusSources: a real Prometheus scrapes an exporter written
// here with known gauges; the daemon reads a resource's usage and limit
// and a backup's recovery point from it, and the faults (Prometheus down,
// a bad query, NaN, several series, no series) fail with their reason,
// never as usage or a fresh backup.
func TestPrometheusSources(t *testing.T) {
	promPath := lookPrometheus(t)
	point := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, `# TYPE shop_disk_used_bytes gauge
shop_disk_used_bytes 3.25e+09
# TYPE shop_disk_size_bytes gauge
shop_disk_size_bytes 1e+10
# TYPE shop_broken_gauge gauge
shop_broken_gauge NaN
# TYPE velero_backup_last_successful_timestamp gauge
velero_backup_last_successful_timestamp{schedule="daily"} %d
velero_backup_last_successful_timestamp{schedule="hourly"} %d
`, point.Unix(), point.Add(time.Hour).Unix())
	}))
	defer exporter.Close()
	prom := startPrometheus(t, promPath, strings.TrimPrefix(exporter.URL, "http://"))

	// Start the daemon once Prometheus holds the gauges, so the healthy
	// queries never fail on a Prometheus that has not scraped yet.
	client, err := api.NewClient(api.Config{Address: prom.url})
	if err != nil {
		t.Fatal(err)
	}
	querier := &promQuerier{client: client}
	deadline := time.Now().Add(30 * time.Second)
	for !querier.has(t, `velero_backup_last_successful_timestamp{schedule="hourly"}`, time.Now()) {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape the exporter within 30s:\n%s", prom.log())
		}
		time.Sleep(200 * time.Millisecond)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + closed.Addr().String()
	closed.Close()

	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf(`global: {evaluation_interval: 1s}
prometheus_sources:
  - {name: prom, url: %q, timeout: 5s, headers: {X-Scope-OrgID: shop}}
  - {name: down, url: %q, timeout: 5s}
services:
  - name: shop
    capacity:
      - {name: disk, interval: 2s, timeout: 2s, source: {prometheus: {source: prom, usage: shop_disk_used_bytes, limit: shop_disk_size_bytes}}}
      - {name: down, interval: 2s, timeout: 2s, limit: 10, source: {prometheus: {source: down, usage: shop_disk_used_bytes}}}
      - {name: empty, interval: 2s, timeout: 2s, limit: 10, source: {prometheus: {source: prom, usage: shop_missing}}}
      - {name: multiple, interval: 2s, timeout: 2s, limit: 10, source: {prometheus: {source: prom, usage: velero_backup_last_successful_timestamp}}}
      - {name: nan, interval: 2s, timeout: 2s, limit: 10, source: {prometheus: {source: prom, usage: shop_broken_gauge}}}
      - {name: bad-query, interval: 2s, timeout: 2s, limit: 10, source: {prometheus: {source: prom, usage: "sum(("}}}
    recovery:
      rpo: 1h
      backups:
        - {name: velero, interval: 2s, timeout: 2s, prometheus: {source: prom, query: 'velero_backup_last_successful_timestamp{schedule="daily"}'}}
        - {name: down, interval: 2s, timeout: 2s, prometheus: {source: down, query: velero_backup_last_successful_timestamp}}
        - {name: multiple, interval: 2s, timeout: 2s, prometheus: {source: prom, query: velero_backup_last_successful_timestamp}}
`, prom.url, downURL))
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))

	// Labels are exposed sorted by name: backup < reason < resource.
	failure := func(metric, label, name, reason string) string {
		if label == "resource" {
			return fmt.Sprintf(`^%s\{reason="%s",resource="%s",service="shop"\} [1-9]`, metric, reason, name)
		}
		return fmt.Sprintf(`^%s\{%s="%s",reason="%s",service="shop"\} [1-9]`, metric, label, name, reason)
	}
	body := d.waitFor(30*time.Second,
		`^capacity_usage\{resource="disk",service="shop"\} `,
		`^recovery_point_timestamp_seconds\{backup="velero",service="shop"\} `,
		`^recovery_point_age_seconds\{backup="velero",service="shop"\} `,
		failure("capacity_sample_failures_total", "resource", "down", "connect"),
		failure("capacity_sample_failures_total", "resource", "empty", "empty"),
		failure("capacity_sample_failures_total", "resource", "multiple", "multiple"),
		failure("capacity_sample_failures_total", "resource", "nan", "nan"),
		failure("capacity_sample_failures_total", "resource", "bad-query", "status"),
		failure("recovery_backup_check_failures_total", "backup", "down", "connect"),
		failure("recovery_backup_check_failures_total", "backup", "multiple", "multiple"),
		`^prometheus_source_query_failures_total\{reason="connect",source="down"\} [1-9]`,
		`^prometheus_source_query_failures_total\{reason="empty",source="prom"\} [1-9]`,
		`^prometheus_source_query_failures_total\{reason="multiple",source="prom"\} [1-9]`,
		`^prometheus_source_query_failures_total\{reason="nan",source="prom"\} [1-9]`,
		`^prometheus_source_query_failures_total\{reason="status",source="prom"\} [1-9]`,
	)

	for _, check := range []struct {
		series string
		want   float64
	}{
		{`capacity_usage{resource="disk",service="shop"}`, 3.25e9},
		{`capacity_limit{resource="disk",service="shop"}`, 1e10},
		{`capacity_utilization_ratio{resource="disk",service="shop"}`, 0.325},
		{`recovery_point_timestamp_seconds{backup="velero",service="shop"}`, float64(point.Unix())},
		{`recovery_rpo_met{backup="velero",service="shop"}`, 0}, // 2h old against 1h
		{`recovery_backup_last_check_success{backup="down",service="shop"}`, 0},
		{`recovery_backup_last_check_success{backup="multiple",service="shop"}`, 0},
		{`prometheus_source_info{source="prom",url="` + prom.url + `"}`, 1},
		{`prometheus_source_query_failures_total{reason="connect",source="prom"}`, 0},
		{`prometheus_source_query_failures_total{reason="timeout",source="prom"}`, 0},
	} {
		if got := metricValue(body, check.series+" "); got != check.want {
			t.Errorf("%s = %v, want %v", check.series, got, check.want)
		}
	}
	// The age is taken at the last evaluation, at most a few seconds ago.
	age := metricValue(body, `recovery_point_age_seconds{backup="velero",service="shop"} `)
	if wantAge := time.Since(point).Seconds(); age > wantAge || age < wantAge-10 || math.IsNaN(age) {
		t.Errorf("recovery point age %v, want about %v", age, wantAge)
	}
	// Failed checks never report a recovery point or usage.
	for _, series := range []string{`recovery_point_timestamp_seconds{backup="down"`, `recovery_point_timestamp_seconds{backup="multiple"`,
		`capacity_usage{resource="down"`, `capacity_usage{resource="nan"`, `capacity_usage{resource="multiple"`} {
		if v := metricValue(body, series); v != -1 {
			t.Errorf("%s...} = %v after failed queries only, want no series", series, v)
		}
	}

	_, page := d.get("/")
	for _, want := range []string{`<h2 id="prometheus-sources">Prometheus sources</h2>`, `<td>down</td><td>` + downURL + `</td>`,
		`failed: connect`, `<td>prom</td><td>` + prom.url + `</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepPrefixes(body, "capacity_", "recovery_", "prometheus_source_"))
	}
}

func grepPrefixes(body string, prefixes ...string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
