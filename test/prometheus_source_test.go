package test

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestPrometheusSLI: an SLO counts its events from counters a real
// Prometheus scrapes off an exporter written here, which adds 10 requests,
// 9 of them good, at every scrape. The queries take exact differences of
// the counters (value now minus value $window ago), so the events recorded
// telescope to whole scrapes: the SLI is exactly 9/10 and the events a
// multiple of 10. An SLO whose source is down records nothing.
func TestPrometheusSLI(t *testing.T) {
	promPath := lookPrometheus(t)
	var scrapes atomic.Int64
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE shop_requests_total counter\nshop_requests_total{code=\"200\"} %d\nshop_requests_total{code=\"500\"} %d\n", 9*n, n)
	}))
	defer exporter.Close()
	prom := startPrometheus(t, promPath, strings.TrimPrefix(exporter.URL, "http://"))
	client, err := api.NewClient(api.Config{Address: prom.url})
	if err != nil {
		t.Fatal(err)
	}
	querier := &promQuerier{client: client}
	deadline := time.Now().Add(30 * time.Second)
	for !querier.has(t, `shop_requests_total offset 3s`, time.Now()) {
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
	const total = `sum(shop_requests_total) - sum(shop_requests_total offset $window)`
	writeFile(t, configFile, fmt.Sprintf(`global: {evaluation_interval: 2s}
prometheus_sources:
  - {name: prom, url: %q, timeout: 5s}
  - {name: down, url: %q, timeout: 5s}
services:
  - name: shop
    slos:
      - name: requests
        objective: 99
        window: 1h
        sli:
          prometheus:
            source: prom
            good: 'sum(shop_requests_total{code="200"}) - sum(shop_requests_total{code="200"} offset {{.window}})'
            total: %q
      - name: errors
        objective: 99
        window: 1h
        sli:
          prometheus:
            source: prom
            bad: 'sum(shop_requests_total{code="500"}) - sum(shop_requests_total{code="500"} offset $window)'
            total: %q
      - name: unreachable
        objective: 99
        window: 1h
        sli: {prometheus: {source: down, good: 'sum(x[$window])', total: 'sum(y[$window])'}}
`, prom.url, downURL, total, total))
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	body := d.waitFor(40*time.Second,
		`^slo_events_total\{result="good",service="shop",slo="requests"\} [1-9]\d{2,}`,
		`^slo_events_total\{result="bad",service="shop",slo="errors"\} [1-9]\d+`,
		`^prometheus_source_query_failures_total\{reason="connect",source="down"\} [1-9]`)

	for _, name := range []string{"requests", "errors"} {
		good := metricValue(body, fmt.Sprintf(`slo_events_total{result="good",service="shop",slo=%q} `, name))
		bad := metricValue(body, fmt.Sprintf(`slo_events_total{result="bad",service="shop",slo=%q} `, name))
		if bad*9 != good || math.Mod(good+bad, 10) != 0 {
			t.Errorf("%s: %v good and %v bad events, want 9 good per bad, whole scrapes of 10", name, good, bad)
		}
		if sli := metricValue(body, fmt.Sprintf(`slo_sli_ratio{service="shop",slo=%q,window="1h"} `, name)); sli != 0.9 {
			t.Errorf("%s: SLI %v, want 0.9", name, sli)
		}
	}
	for _, result := range []string{"good", "bad"} {
		if n := metricValue(body, `slo_events_total{result="`+result+`",service="shop",slo="unreachable"} `); n > 0 {
			t.Errorf("unreachable: %v %s events recorded from failed queries, want none", n, result)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepPrefixes(body, "slo_events_total", "slo_sli_ratio", "prometheus_source_"))
	}
}

// loadHistory writes the OpenMetrics text of shop_requests_total
// {code="200"|"500"} with one sample a minute for minutes 0..minutes,
// ending at end, whose values at minute k are counts(k) (total and bad),
// converts it into blocks with promtool and starts Prometheus on them,
// scraping nothing.
func loadHistory(t *testing.T, end time.Time, minutes int, counts func(k int) (total, bad int)) *prometheusServer {
	t.Helper()
	promPath := lookPrometheus(t)
	promtool := lookPromtool(t)
	dir := t.TempDir()
	var om strings.Builder
	om.WriteString("# TYPE shop_requests counter\n")
	for _, code := range []string{"200", "500"} {
		for k := 0; k <= minutes; k++ {
			total, bad := counts(k)
			value := total - bad
			if code == "500" {
				value = bad
			}
			fmt.Fprintf(&om, "shop_requests_total{code=%q} %d %d\n", code, value, end.Add(time.Duration(k-minutes)*time.Minute).Unix())
		}
	}
	om.WriteString("# EOF\n")
	omFile := filepath.Join(dir, "history.om")
	writeFile(t, omFile, om.String())
	dataDir := filepath.Join(dir, "tsdb")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", omFile, dataDir).CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	promConfig := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promConfig, "global: {scrape_interval: 1m}\n")
	prom, err := runPrometheus(t, promPath, promConfig, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return prom
}

// TestPrometheusSLIWindowMode: SLOs in window mode query each window whole
// from a Prometheus holding five hours of history (promtool blocks): 10
// requests a minute for the first 150 minutes, one of them bad from minute
// 60 to 120, then none. The windows up to 2h see no requests (no data);
// 6h, 1d, 3d and the SLO's 7d see all 1500, 60 bad. The same SLO in events
// mode, backfilled, agrees. A total that matches nothing fails with
// reason empty and records nothing.
func TestPrometheusSLIWindowMode(t *testing.T) {
	end := time.Now().Truncate(time.Minute).Add(-time.Minute)
	prom := loadHistory(t, end, 300, func(k int) (int, int) {
		k = min(k, 150)
		return 10 * k, min(max(k-60, 0), 60)
	})
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	const queries = `
            bad: 'sum(shop_requests_total{code="500"}) - (sum(shop_requests_total{code="500"} offset $window) or vector(0))'
            total: 'sum(shop_requests_total) - (sum(shop_requests_total offset $window) or vector(0))'`
	writeFile(t, configFile, fmt.Sprintf(`global: {evaluation_interval: 1s}
prometheus_sources:
  - {name: prom, url: %q, timeout: 10s}
services:
  - name: shop
    slos:
      - name: windows
        objective: 99
        window: 7d
        sli:
          prometheus:
            source: prom
            mode: window%s
      - name: events
        objective: 99
        window: 7d
        sli:
          prometheus:
            source: prom%s
      - name: typo
        objective: 99
        window: 7d
        sli:
          prometheus:
            source: prom
            mode: window
            bad: 'sum(shop_requests_totl{code="500"}) - sum(shop_requests_totl{code="500"} offset $window)'
            total: 'sum(shop_requests_totl) - sum(shop_requests_totl offset $window)'
`, prom.url, queries, queries))
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	body := d.waitFor(60*time.Second,
		`^slo_window_events\{service="shop",slo="windows",window="full"\} 1500$`,
		`^slo_events_total\{result="good",service="shop",slo="events"\} 1440$`,
		`^prometheus_source_query_failures_total\{reason="empty",source="prom"\} [1-9]`)

	// Independently: 60 bad of 1500, objective 99 %.
	const total, bad, budgetRatio = 1500.0, 60.0, 0.01
	for _, slo := range []string{"windows", "events"} {
		series := func(name, window string) string {
			if window == "" {
				return fmt.Sprintf(`%s{service="shop",slo=%q} `, name, slo)
			}
			return fmt.Sprintf(`%s{service="shop",slo=%q,window=%q} `, name, slo, window)
		}
		for _, w := range []string{"6h", "1d", "3d", "full"} {
			if got := metricValue(body, series("slo_window_events", w)); got != total {
				t.Errorf("%s: %v events in the %s window, want %v", slo, got, w, total)
			}
			if got := metricValue(body, series("slo_sli_ratio", w)); got != (total-bad)/total {
				t.Errorf("%s: SLI %v over %s, want %v", slo, got, w, (total-bad)/total)
			}
			if got := metricValue(body, series("slo_burn_rate", w)); got != (bad/total)/budgetRatio {
				t.Errorf("%s: burn rate %v over %s, want %v", slo, got, w, (bad/total)/budgetRatio)
			}
		}
		quiet := []string{"5m", "30m", "1h", "2h"}
		if slo == "events" {
			// A backfilled hour's events are recorded at its end: the
			// hour holding minute 150 may end within the last 2h.
			quiet = quiet[:3]
		}
		for _, w := range quiet {
			if got := metricValue(body, series("slo_window_events", w)); got != 0 {
				t.Errorf("%s: %v events in the %s window, want none", slo, got, w)
			}
			if got := metricValue(body, series("slo_sli_ratio", w)); got != -1 {
				t.Errorf("%s: SLI %v over %s without requests, want no series", slo, got, w)
			}
		}
		if got := metricValue(body, series("slo_error_budget_remaining_events", "")); got != budgetRatio*total-bad {
			t.Errorf("%s: %v budget events left, want %v", slo, got, budgetRatio*total-bad)
		}
		if got := metricValue(body, series("slo_error_budget_consumed_ratio", "")); got != bad/(budgetRatio*total) {
			t.Errorf("%s: budget consumed %v, want %v", slo, got, bad/(budgetRatio*total))
		}
	}
	// Window mode counts nothing itself, and a failed window shows no data.
	for _, series := range []string{`slo_events_total{result="good",service="shop",slo="windows"}`,
		`slo_sli_ratio{service="shop",slo="typo"`} {
		if v := metricValue(body, series); v != -1 {
			t.Errorf("%s = %v, want no series", series, v)
		}
	}
	if got := metricValue(body, `slo_window_events{service="shop",slo="typo",window="full"} `); got != 0 {
		t.Errorf("typo: %v events, want none", got)
	}
	_, page := d.get("/service/shop")
	if !strings.Contains(page, "every window queried whole") || !strings.Contains(page, "counted every evaluation interval") {
		t.Errorf("the service page does not say how the SLIs are counted:\n%s", page)
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepPrefixes(body, "slo_", "prometheus_source_"))
	}
}

// TestPrometheusSLIBackfill: Prometheus starts on a TSDB holding five
// hours of request counters, loaded with promtool tsdb
// create-blocks-from openmetrics; nothing is scraped live. A fresh daemon
// backfills its 6h SLO window from them: 10 requests a minute, one of them
// bad during one hour, make 3000 events of which 60 bad, an SLI of 0.98;
// a restart resumes where the recorded events end.
func TestPrometheusSLIBackfill(t *testing.T) {
	// The history ends a minute or two ago: within Prometheus' lookback
	// of 5 minutes, so its last sample is what the counters read now.
	end := time.Now().Truncate(time.Minute).Add(-time.Minute)
	prom := loadHistory(t, end, 300, func(k int) (int, int) {
		return 10 * k, min(max(k-120, 0), 60) // one bad request a minute from minute 120 to 180
	})
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	// Exact differences, as in TestPrometheusSLI; "or vector(0)": the
	// counters start at 0, so before the first sample is 0 requests.
	writeFile(t, configFile, fmt.Sprintf(`global: {evaluation_interval: 1s}
prometheus_sources:
  - {name: prom, url: %q, timeout: 10s}
services:
  - name: shop
    slos:
      - name: requests
        objective: 99
        window: 6h
        sli:
          prometheus:
            source: prom
            bad: 'sum(shop_requests_total{code="500"}) - (sum(shop_requests_total{code="500"} offset $window) or vector(0))'
            total: 'sum(shop_requests_total) - (sum(shop_requests_total offset $window) or vector(0))'
`, prom.url))
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	body := d.waitFor(40*time.Second, `^slo_events_total\{result="good",service="shop",slo="requests"\} 2940$`,
		`^slo_events_total\{result="bad",service="shop",slo="requests"\} 60$`)
	if sli := metricValue(body, `slo_sli_ratio{service="shop",slo="requests",window="6h"} `); sli != 0.98 {
		t.Errorf("SLI over the window %v, want 0.98 (2940 of 3000)", sli)
	}
	// Budget: 1% of 3000 events is 30; 60 bad spent it twice.
	if consumed := metricValue(body, `slo_error_budget_consumed_ratio{service="shop",slo="requests"} `); consumed != 60/(0.01*3000) {
		t.Errorf("error budget consumed %v, want %v", consumed, 60/(0.01*3000))
	}

	// A restart resumes after the last recorded event: nothing is counted
	// twice.
	d.stop()
	d = startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	body = d.waitFor(40*time.Second, `^prometheus_source_queries_total\{source="prom"\} ([4-9]|\d{2,})$`)
	for result, want := range map[string]float64{"good": 2940, "bad": 60} {
		if got := metricValue(body, `slo_events_total{result="`+result+`",service="shop",slo="requests"} `); got != want {
			t.Errorf("after a restart, %v %s events, want %v", got, result, want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepPrefixes(body, "slo_", "prometheus_source_"))
	}
}
