package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/html"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
	"github.com/reliabilityd/reliabilityd/slo"
)

// reportConfig has a failing service (shop: an SLO missed, headroom below
// target, an open outage, failing probes), a healthy one (search) and one
// whose probe never ran (idle).
const reportConfig = `
services:
  - name: shop
    owner: payments
    priority: critical
    probes:
      - {name: home, http: {url: "http://127.0.0.1:9/"}}
      - {name: checkout, interval: 90s, http: {url: "http://127.0.0.1:9/checkout"}}
    slos:
      - {name: availability, objective: 99, window: 1d, sli: {probes: [home]}}
    capacity:
      - {name: disk, source: {filesystem: /}, headroom_target: 20%, forecast: {window: 1d, min_samples: 3}}
    recovery:
      rto: 1h
      rpo: 1h
      outage: {probes: [home], open_after: 2, close_after: 2}
      backups:
        - {name: db, file: {glob: "/nonexistent/*.dump"}}
  - name: search
    probes:
      - {name: api, tcp: {address: "127.0.0.1:9"}}
    slos:
      - {name: availability, objective: 90, window: 7d, sli: {probes: [api]}}
      - {name: sla, objective: 99.5, calendar: month, timezone: Europe/Berlin, sli: {probes: [api]}}
  - name: idle
    probes:
      - {name: ping, tcp: {address: "127.0.0.1:9"}}
`

// newReportDaemon returns a daemon with the engines of the configuration
// yml applied and nothing scheduled: the test records the results.
func newReportDaemon(t testing.TB, yml string, now time.Time) *daemon {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	d := &daemon{flags: &flagConfig{configFile: "report.yml"}, logger: logger, registry: prometheus.NewRegistry(),
		probeMetrics: collector.NewProbeMetrics(), capacity: slo.NewCapacity(logger, prometheus.NewRegistry()),
		recovery: slo.NewRecovery(logger), history: collector.NewHistory(50, 100),
		promSources: collector.NewPrometheusSourceMetrics(prometheus.NewRegistry())}
	d.engine = slo.NewEngine(slo.EngineOptions{Logger: logger, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	if yml == "" {
		return d // no configuration loaded yet
	}
	cfg, err := config.Parse([]byte(yml), "report.yml")
	if err != nil {
		t.Fatal(err)
	}
	var infos []collector.ProbeInfo
	for _, svc := range cfg.Services {
		for i := range svc.Probes {
			infos = append(infos, collector.ProbeInfoFromConfig(svc.Name, &svc.Probes[i]))
		}
	}
	d.probeMetrics.SetProbes(infos)
	d.engine.Apply(slo.NewPlan(cfg), time.Minute)
	d.capacity.Apply(slo.CapacityPlan(cfg), now)
	d.recovery.Apply(slo.RecoveryPlan(cfg), now)
	d.current.Store(cfg)
	return d
}

// record records a probe run as the scheduler would.
func (d *daemon) record(service, probe string, start time.Time, reason collector.Reason, steps ...collector.StepResult) {
	result := collector.Result{Start: start, Duration: 10 * time.Millisecond, Success: reason == "", Reason: reason, Steps: steps}
	if reason != "" {
		result.Err = &reportTestError{string(reason)}
		result.StatusCode = 503
	}
	collector.Recorders{d.probeMetrics, d.engine, d.recovery, d.history}.Record(collector.ProbeID{Service: service, Probe: probe}, result)
}

type reportTestError struct{ reason string }

func (e *reportTestError) Error() string { return "test failure: " + e.reason }

// evaluate publishes every engine's figures at now.
func (d *daemon) evaluate(now time.Time) {
	d.engine.Evaluate(now)
	d.capacity.Evaluate(now)
	d.recovery.Evaluate(now)
}

// reportNow is when reportDaemon's figures are evaluated and its pages
// rendered.
var reportNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// reportHandler serves the report pages of d as of reportNow.
func reportHandler(t *testing.T, d *daemon) http.Handler {
	t.Helper()
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.reportRoutes(mux, pages, func() time.Time { return reportNow })
	return mux
}

// reportDaemon is the daemon of reportConfig with known figures: shop's
// home ran 8 times a minute apart and failed runs 2, 3, 7 and 8 (an
// outage from run 2 to run 4, and one open since run 7, 2 minutes ago);
// checkout failed at its "pay" step; shop's disk is 85 % used and grows a
// percent every 5 minutes; its backup is 30 minutes old and a drill
// passed; search's api succeeded 10 times.
func reportDaemon(t *testing.T) *daemon {
	d := newReportDaemon(t, reportConfig, reportNow)
	for run := 1; run <= 8; run++ {
		var reason collector.Reason
		if run == 2 || run == 3 || run == 7 || run == 8 {
			reason = collector.ReasonStatus
		}
		d.record("shop", "home", reportNow.Add(-time.Duration(9-run)*time.Minute), reason)
	}
	d.record("shop", "checkout", reportNow.Add(-30*time.Second), collector.ReasonStatus,
		collector.StepResult{Name: "login", Ran: true, Success: true, Duration: 5 * time.Millisecond},
		collector.StepResult{Name: "pay", Ran: true, Reason: collector.ReasonStatus, StatusCode: 503},
		collector.StepResult{Name: "confirm"})
	for run := 1; run <= 10; run++ {
		d.record("search", "api", reportNow.Add(-time.Duration(run)*time.Minute), "")
	}
	for sample := 0; sample <= 10; sample++ {
		// One percent more every 5 minutes (the resolution of a 1d
		// forecast's history): 85 % now, full in 75 minutes at the trend.
		d.capacity.Record(collector.ProbeID{Service: "shop", Probe: "disk"}, collector.Result{Start: reportNow.Add(time.Duration(sample-10) * 5 * time.Minute),
			Success: true, Measurement: &collector.Measurement{Usage: float64(75 + sample), Limit: 100}})
	}
	d.recovery.RecordBackup(collector.ProbeID{Service: "shop", Probe: "db"},
		collector.Result{Start: reportNow, Success: true, RecoveryPoint: reportNow.Add(-30 * time.Minute)})
	if err := d.recovery.RecordDrill(slo.Drill{Service: "shop", Time: reportNow.Add(-48 * time.Hour), Passed: true, Duration: 20 * time.Minute, Note: "restore db"}); err != nil {
		t.Fatal(err)
	}
	d.evaluate(reportNow)
	return d
}

// get serves path from the daemon's handler.
func get(t *testing.T, h http.Handler, path string) (int, string, *html.Node) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return rec.Code, string(body), doc
}

// findAll returns the elements under n that match, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

// find returns the only element under n that matches; it fails the test
// when there is none or more.
func find(t *testing.T, n *html.Node, what string, match func(*html.Node) bool) *html.Node {
	t.Helper()
	found := findAll(n, match)
	if len(found) != 1 {
		t.Fatalf("%d elements are %s, want 1", len(found), what)
	}
	return found[0]
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(key, value string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, key) == value }
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

func and(matches ...func(*html.Node) bool) func(*html.Node) bool {
	return func(n *html.Node) bool {
		for _, m := range matches {
			if !m(n) {
				return false
			}
		}
		return true
	}
}

// text is n's text as a browser lays it out on one line: line breaks and
// block elements separate words, runs of white space are one space.
func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		switch {
		case c.Type == html.TextNode:
			b.WriteString(c.Data)
		case c.Type == html.ElementNode && slices.Contains([]string{"br", "div", "li", "td", "th", "tr", "p"}, c.Data):
			b.WriteString(" ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// cells returns the text of a row's cells by class.
func cells(row *html.Node) map[string]string {
	out := map[string]string{}
	for _, td := range findAll(row, tag("td")) {
		if class := attr(td, "class"); class != "" {
			out[class] = text(td)
		}
	}
	return out
}

func texts(nodes []*html.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = text(n)
	}
	return out
}

// diskExhaustion is how the pages should show when shop's disk runs out:
// the capacity engine's forecast (about 75 minutes: the trend is fitted to
// the history's slots, not to the samples' times).
func diskExhaustion(t *testing.T, d *daemon) string {
	t.Helper()
	r := d.capacity.Snapshot().Resources[0]
	seconds, ok := r.ExhaustionSeconds()
	if r.Name != "disk" || !ok || seconds < 70*60 || seconds > 80*60 {
		t.Fatalf("the engine forecasts %s running out in %vs (%v), want about 75 minutes", r.Name, seconds, ok)
	}
	return humanSeconds(seconds)
}

func TestReportPage(t *testing.T) {
	d := reportDaemon(t)
	exhaustion := diskExhaustion(t, d)
	code, body, doc := get(t, reportHandler(t, d), "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", code, body)
	}
	table := find(t, doc, "the services table", and(tag("table"), hasAttr("id", "services")))
	rows := findAll(table, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-service") != "" })
	var order []string
	for _, r := range rows {
		order = append(order, attr(r, "data-service"))
	}
	if want := []string{"shop", "search", "idle"}; !slices.Equal(order, want) {
		t.Fatalf("services table rows %q, want %q (configuration order)", order, want)
	}

	tests := []struct {
		service string
		status  string
		cells   map[string]string
		// findings are prefixes of the status cell's findings, in order.
		findings []string
	}{
		{
			service: "shop", status: "fail",
			cells: map[string]string{
				"service":    "shop payments · critical",
				"slos":       "availability: 50.000 % / 99 % · 1d · 8 events",
				"budget":     "availability: -4900.000 %", // 4 bad of 8 against a budget of 0.08
				"headroom":   "disk: 15.000 % target 20 %",
				"exhaustion": "disk: " + exhaustion,
				"probes":     "2 of 2 failing: checkout, home",
			},
			findings: []string{
				"SLO availability: 50.000 % attained over 1d, below the 99 % objective",
				"SLO availability: burning the error budget 50.0x as fast as allowed over 1h",
				"disk: 15.000 % headroom, below the 20 % target",
				"disk: runs out in " + exhaustion + " at the measured trend",
				"down for 2m of the 1h RTO",
				"probe checkout failing: status",
				"probe home failing: status",
			},
		},
		{
			service: "search", status: "ok",
			cells: map[string]string{
				"service": "search", "slos": "availability: 100.000 % / 90 % · 1w · 10 events sla: 100.000 % / 99.5 % · month · 10 events",
				"budget":   "availability: 100.000 % sla: 100.000 %",
				"headroom": "none", "exhaustion": "–", "recovery": "none", "probes": "1 of 1 up",
			},
		},
		{
			service: "idle", status: "nodata",
			cells: map[string]string{"headroom": "none", "exhaustion": "–", "slos": "none", "budget": "–", "recovery": "none", "probes": "1 not run yet"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			row := rows[i]
			got := cells(row)
			for class, want := range tt.cells {
				if got[class] != want {
					t.Errorf("cell %s = %q, want %q", class, got[class], want)
				}
			}
			status := find(t, row, "the status cell", and(tag("td"), hasAttr("class", "status")))
			if attr(status, "data-status") != tt.status {
				t.Errorf("status %q, want %q", attr(status, "data-status"), tt.status)
			}
			findings := texts(findAll(status, tag("li")))
			if len(findings) != len(tt.findings) {
				t.Fatalf("findings %q, want %d", findings, len(tt.findings))
			}
			for j, want := range tt.findings {
				if !strings.HasPrefix(findings[j], want) {
					t.Errorf("finding %d = %q, want it to start with %q", j, findings[j], want)
				}
			}
			link := find(t, row, "the service link", tag("a"))
			if href := attr(link, "href"); href != "service/"+tt.service {
				t.Errorf("service link %q", href)
			}
		})
	}
	recovery := cells(rows[0])["recovery"]
	for _, want := range []string{"down 2m RTO 1h", "backup db: 30m old RPO 1h", "MTTR 2m · MTBF 29d 23h"} {
		if !strings.Contains(recovery, want) {
			t.Errorf("shop's recovery cell %q lacks %q", recovery, want)
		}
	}

	summary := text(find(t, doc, "the summary", and(tag("p"), hasAttr("class", "summary"))))
	if summary != "failing 1 ok 1 no data 1" {
		t.Errorf("summary %q", summary)
	}
	outages := texts(findAll(find(t, doc, "the outages table", and(tag("table"), hasAttr("class", "outages"))), tag("tr")))
	if want := []string{
		"Service Started Ended Duration RTO Probes down (last reason)",
		// Open and within the RTO: not met yet, and 58m left to meet it.
		"shop 2026-11-23 11:58:00Z ongoing 2m pending (58m left of 1h) home (status)",
		"shop 2026-11-23 11:53:00Z 2026-11-23 11:55:00Z 2m met (1h) home (status)",
	}; !slices.Equal(outages, want) {
		t.Errorf("outages table\n%q\nwant shop's open and last outage\n%q", outages, want)
	}
	failures := findAll(find(t, doc, "the failures table", and(tag("table"), hasAttr("class", "failures"))), tag("tr"))
	if got, want := texts(failures), []string{
		"Started Service Probe Reason Error Duration",
		"2026-11-23 11:59:30Z shop checkout status test failure: status 10ms",
		"2026-11-23 11:59:00Z shop home status test failure: status 10ms",
		"2026-11-23 11:58:00Z shop home status test failure: status 10ms",
		"2026-11-23 11:54:00Z shop home status test failure: status 10ms",
		"2026-11-23 11:53:00Z shop home status test failure: status 10ms",
	}; !slices.Equal(got, want) {
		t.Errorf("failures table\n%q\nwant every failed run, newest first\n%q", got, want)
	}
	if n := len(findAll(doc, hasAttr("id", "failures-shown"))); n != 0 {
		t.Errorf("%d notes of failures left out, want none: every failure is shown", n)
	}
	// Each probe's detail is on its service's page only.
	if probes := findAll(doc, func(n *html.Node) bool { return attr(n, "data-probe") != "" }); len(probes) != 0 {
		t.Errorf("/ lists %d probes in detail, want none", len(probes))
	}
}

func TestServicePage(t *testing.T) {
	d := reportDaemon(t)
	h := reportHandler(t, d)
	code, body, doc := get(t, h, "/service/shop")
	if code != http.StatusOK {
		t.Fatalf("GET /service/shop = %d:\n%s", code, body)
	}
	if h1 := find(t, doc, "the heading", tag("h1")); attr(h1, "data-service") != "shop" || text(h1) != "shop failing" {
		t.Errorf("heading %q (data-service %q)", text(h1), attr(h1, "data-service"))
	}
	back := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == "../" })
	if len(back) == 0 {
		t.Error("no link back to the report")
	}
	findings := texts(findAll(find(t, doc, "the findings", hasAttr("id", "findings")), tag("li")))
	if len(findings) != 7 || findings[0] != "SLO availability: 50.000 % attained over 1d, below the 99 % objective" {
		t.Errorf("findings %q", findings)
	}

	windows := find(t, doc, "the windows of availability", and(tag("table"), hasAttr("class", "windows")))
	full := find(t, windows, "the full window", hasAttr("data-window", "full"))
	if got := texts(findAll(full, tag("td"))); !slices.Equal(got, []string{"full", "4", "4", "0", "50.000 %", "50.00"}) {
		t.Errorf("full window %q", got)
	}
	if n := len(findAll(windows, func(n *html.Node) bool { return attr(n, "data-window") != "" })); n != len(slo.WindowNames) {
		t.Errorf("%d windows, want %d", n, len(slo.WindowNames))
	}
	budget := find(t, doc, "the budget of availability", and(tag("table"), hasAttr("class", "budget")))
	if got := texts(findAll(budget, tag("td"))); !slices.Equal(got, []string{"50.000 %", "0.080", "4", "-3.920", "-4900.000 %", "already spent"}) {
		t.Errorf("budget %q", got)
	}

	disk := find(t, doc, "the disk row", and(tag("tr"), hasAttr("data-resource", "disk")))
	if got := text(disk); !strings.HasPrefix(got, "disk filesystem 85 100 85.000 % 15.000 % target 20 % "+diskExhaustion(t, d)+" – / ") {
		t.Errorf("disk row %q", got)
	}
	db := find(t, doc, "the backup row", and(tag("tr"), hasAttr("data-backup", "db")))
	if got := text(db); !strings.Contains(got, "30m RPO 1h ok") {
		t.Errorf("backup row %q", got)
	}
	outages := findAll(find(t, doc, "the outages", and(tag("table"), hasAttr("class", "outages"))), tag("tr"))
	if len(outages) != 3 || !strings.Contains(text(outages[1]), "ongoing") || !strings.Contains(text(outages[2]), "11:55:00Z 2m") {
		t.Errorf("outages %q, want the open one, then the closed one", texts(outages))
	}
	figures := text(find(t, doc, "the recovery figures", hasAttr("id", "recovery-figures")))
	if want := "1h 1h since 2026-11-23 11:58:00Z, 2m 2m 0 2m 29d 23h 4m in 30d no schedule"; !strings.HasSuffix(figures, want) {
		t.Errorf("recovery figures %q, want them to end with %q", figures, want)
	}
	if !strings.Contains(body, "restore db") || !strings.Contains(body, "20m") {
		t.Error("the drill (20m, restore db) is missing")
	}

	probes := texts(findAll(find(t, doc, "the probes table", hasAttr("id", "probe-status")), tag("tr")))
	if want := []string{
		"Probe Type Target Interval Last result Last run Duration Runs Failures",
		"checkout http http://127.0.0.1:9/checkout 1m 30s failure: status at step pay test failure: status login 5ms → pay: status → confirm 30s ago 10ms 1 status: 1",
		"home http http://127.0.0.1:9/ 30s failure: status test failure: status 1m ago 10ms 8 status: 4",
	}; !slices.Equal(probes, want) {
		t.Errorf("probes table\n%q\nwant\n%q", probes, want)
	}
	failures := findAll(find(t, doc, "the failures table", and(tag("table"), hasAttr("class", "failures"))), tag("tr"))
	if len(failures) != 1+5 {
		t.Errorf("failures %q, want shop's 5", texts(failures))
	}
	runs := texts(findAll(find(t, doc, "the runs table", and(tag("table"), hasAttr("class", "runs"))), tag("tr")))
	if want := []string{
		"Started Probe Result Duration",
		"2026-11-23 11:59:30Z checkout status 10ms",
		"2026-11-23 11:59:00Z home status 10ms",
		"2026-11-23 11:58:00Z home status 10ms",
		"2026-11-23 11:57:00Z home success 10ms",
		"2026-11-23 11:56:00Z home success 10ms",
		"2026-11-23 11:55:00Z home success 10ms",
		"2026-11-23 11:54:00Z home status 10ms",
		"2026-11-23 11:53:00Z home status 10ms",
		"2026-11-23 11:52:00Z home success 10ms",
	}; !slices.Equal(runs, want) {
		t.Errorf("runs table\n%q\nwant shop's 9 runs, newest first\n%q", runs, want)
	}

	// search: only its own figures.
	_, body, doc = get(t, h, "/service/search")
	if n := len(findAll(doc, hasAttr("class", "failures"))); n != 0 || !strings.Contains(body, "No failures recorded.") {
		t.Errorf("search's page lists %d failure tables, want none", n)
	}
	if got := attr(find(t, doc, "the findings", hasAttr("id", "findings")), "data-status"); got != "ok" {
		t.Errorf("search's status %q, want ok", got)
	}
	// A calendar period runs from midnight to midnight in its time zone.
	if want := "Availability: runs that succeed, of probes api. Objective 99.5 % over the calendar month (Europe/Berlin), " +
		"this period 2026-11-01 00:00 CET to 2026-12-01 00:00 CET."; !slices.Contains(texts(findAll(doc, tag("p"))), want) {
		t.Errorf("search's page lacks %q", want)
	}
}

func TestServicePageUnknown(t *testing.T) {
	for _, tt := range []struct {
		name, yml, path string
	}{
		{"unknown service", reportConfig, "/service/nope"},
		{"no configuration yet", "", "/service/shop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newReportDaemon(t, tt.yml, time.Now())
			code, body, doc := get(t, d.handler(), tt.path)
			if code != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", tt.path, code)
			}
			name := strings.TrimPrefix(tt.path, "/service/")
			if got := text(find(t, doc, "the message", hasAttr("id", "not-found"))); got != "The configuration in force has no service named "+name+"." {
				t.Errorf("message %q\n%s", got, body)
			}
		})
	}
}

func TestReportPageNoConfiguration(t *testing.T) {
	d := newReportDaemon(t, "", time.Now())
	code, body, _ := get(t, d.handler(), "/")
	if code != http.StatusOK || !strings.Contains(body, "No services are configured.") {
		t.Errorf("GET / = %d:\n%s", code, body)
	}
}

// TestReportEscapes: names and errors reach the page escaped.
func TestReportEscapes(t *testing.T) {
	now := time.Now()
	d := newReportDaemon(t, "services:\n  - name: a\n    owner: \"<b>x</b>\"\n    probes:\n      - {name: p, tcp: {address: '127.0.0.1:9'}}\n", now)
	d.probeMetrics.Record(collector.ProbeID{Service: "a", Probe: "p"},
		collector.Result{Start: now, Reason: collector.ReasonConnect, Err: &reportTestError{"<script>alert(1)</script>"}})
	d.history.Record(collector.ProbeID{Service: "a", Probe: "p"},
		collector.Result{Start: now, Reason: collector.ReasonConnect, Err: &reportTestError{"<script>alert(1)</script>"}})
	d.evaluate(now)
	for _, path := range []string{"/", "/service/a"} {
		_, body, doc := get(t, d.handler(), path)
		if strings.Contains(body, "<script>") || strings.Contains(body, "<b>x</b>") {
			t.Errorf("%s holds unescaped markup", path)
		}
		// Escaped, not dropped: the reader sees the text as it was.
		for _, escaped := range []string{"test failure: &lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;x&lt;/b&gt;"} {
			if !strings.Contains(body, escaped) {
				t.Errorf("%s lacks the escaped text %q", path, escaped)
			}
		}
		failure := text(findAll(find(t, doc, "the failures table", and(tag("table"), hasAttr("class", "failures"))), tag("tr"))[1])
		if !strings.Contains(failure, "test failure: <script>alert(1)</script>") {
			t.Errorf("%s shows the failure as %q, want the error's text as it was", path, failure)
		}
		if len(findAll(doc, tag("script"))) != 0 || len(findAll(doc, tag("b"))) != 0 {
			t.Errorf("%s has a script or b element", path)
		}
	}
}

// largeReportDaemon is a daemon of services services with probes probes
// each, every probe run once (one in ten failing) and the history full of
// failures: the size the review measured the page at.
func largeReportDaemon(tb testing.TB, services, probes, failures int) *daemon {
	tb.Helper()
	var yml strings.Builder
	yml.WriteString("services:\n")
	for s := range services {
		fmt.Fprintf(&yml, "  - name: svc-%d\n    probes:\n", s)
		for p := range probes {
			fmt.Fprintf(&yml, "      - {name: probe-%d, tcp: {address: '127.0.0.1:9'}}\n", p)
		}
		fmt.Fprintf(&yml, "    slos:\n      - {name: availability, objective: 99.9, window: 1d, sli: {probes: [probe-0]}}\n")
	}
	d := newReportDaemon(tb, yml.String(), reportNow)
	d.history.Resize(failures, failures)
	for s := range services {
		for p := range probes {
			var reason collector.Reason
			if p == 0 {
				reason = collector.ReasonConnect
			}
			d.record(fmt.Sprintf("svc-%d", s), fmt.Sprintf("probe-%d", p), reportNow.Add(-time.Minute), reason)
		}
	}
	for i := range failures {
		d.history.Record(collector.ProbeID{Service: fmt.Sprintf("svc-%d", i%services), Probe: "probe-0"},
			collector.Result{Start: reportNow.Add(-time.Duration(failures-i) * time.Second), Duration: 2 * time.Millisecond, Reason: collector.ReasonConnect,
				Err: &reportTestError{"connection refused"}})
	}
	d.evaluate(reportNow)
	return d
}

// BenchmarkReportPage renders `/` and a service page of 1,000 services of
// 10 probes each with 10,000 failures kept, and reports the pages' sizes.
func BenchmarkReportPage(b *testing.B) {
	d := largeReportDaemon(b, 1000, 10, 10000)
	pages, err := parsePages()
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	d.reportRoutes(mux, pages, func() time.Time { return reportNow })
	for _, path := range []string{"/", "/service/svc-7"} {
		b.Run(path, func(b *testing.B) {
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d", path, rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "page-bytes")
		})
	}
}

// TestReportPageBounded: `/` has a row per service and bounded lists,
// whatever the number of probes and of failures kept; a service page
// bounds its failures too, and says how many it left out.
func TestReportPageBounded(t *testing.T) {
	for _, tt := range []struct {
		name                       string
		services, probes, failures int
		// landingRows are the rows of every table of `/`; serviceFailures
		// and serviceRuns the failed and all runs svc-0's page shows.
		landingRows, serviceFailures, serviceRuns int
		landingNote, serviceNote, runsNote        string
	}{
		{name: "few failures", services: 2, probes: 1, failures: 10, landingRows: 1 + 2 + 1 + 10, serviceFailures: 5, serviceRuns: 5},
		{
			name: "more failures than shown", services: 2, probes: 10, failures: 300,
			landingRows: 1 + 2 + 1 + maxRecentFailures, serviceFailures: maxServiceFailures, serviceRuns: maxServiceRuns,
			landingNote: "Showing the newest 20 of the 300 kept; each service's page lists its own.",
			serviceNote: "Showing the newest 100 of the 150 kept.",
			// 150 failures and the 9 successes of probe-1 to probe-9.
			runsNote: "Showing the newest 50 of the 159 kept.",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := largeReportDaemon(t, tt.services, tt.probes, tt.failures)
			h := reportHandler(t, d)
			_, _, doc := get(t, h, "/")
			if rows := findAll(doc, tag("tr")); len(rows) != tt.landingRows {
				t.Errorf("/ has %d table rows, want %d: %q", len(rows), tt.landingRows, texts(rows))
			}
			if note := texts(findAll(doc, hasAttr("id", "failures-shown"))); !slices.Equal(note, nonEmpty(tt.landingNote)) {
				t.Errorf("/ notes %q, want %q", note, tt.landingNote)
			}

			_, _, doc = get(t, h, "/service/svc-0")
			failures := findAll(find(t, doc, "the failures table", and(tag("table"), hasAttr("class", "failures"))), tag("tr"))[1:]
			if len(failures) != tt.serviceFailures {
				t.Fatalf("svc-0's page shows %d failures, want %d", len(failures), tt.serviceFailures)
			}
			// svc-0's are every other failure recorded, a second apart,
			// the newest 2 seconds before the page.
			for i, row := range failures {
				want := fmt.Sprintf("%s svc-0 probe-0 connect test failure: connection refused 2ms",
					reportNow.Add(-time.Duration(2+2*i)*time.Second).Format("2006-01-02 15:04:05Z"))
				if got := text(row); got != want {
					t.Fatalf("failure %d = %q, want %q", i, got, want)
				}
			}
			if note := texts(findAll(doc, hasAttr("id", "failures-shown"))); !slices.Equal(note, nonEmpty(tt.serviceNote)) {
				t.Errorf("svc-0's notes %q, want %q", note, tt.serviceNote)
			}
			runs := findAll(find(t, doc, "the runs table", and(tag("table"), hasAttr("class", "runs"))), tag("tr"))[1:]
			if len(runs) != tt.serviceRuns || text(runs[0]) != "2026-11-23 11:59:58Z probe-0 connect 2ms" {
				t.Errorf("svc-0's page shows %d runs, the first %q, want %d, the newest failure first", len(runs), text(runs[0]), tt.serviceRuns)
			}
			if note := texts(findAll(doc, hasAttr("id", "runs-shown"))); !slices.Equal(note, nonEmpty(tt.runsNote)) {
				t.Errorf("svc-0's notes %q, want %q", note, tt.runsNote)
			}
			if probes := findAll(doc, func(n *html.Node) bool { return attr(n, "data-probe") != "" }); len(probes) != tt.probes {
				t.Errorf("svc-0's page lists %d probes, want %d", len(probes), tt.probes)
			}
		})
	}
}

// nonEmpty returns s as a list of one, none when it is "".
func nonEmpty(s string) []string {
	if s == "" {
		return []string{}
	}
	return []string{s}
}

func TestOutageRTOVerdict(t *testing.T) {
	now := reportNow
	for _, tt := range []struct {
		name    string
		outage  slo.Outage
		rto     time.Duration
		want    string // the RTO cell: "" without one
		class   string
		verdict rtoVerdict
	}{
		{"closed within", slo.Outage{Start: now.Add(-time.Hour), End: now.Add(-30 * time.Minute)}, 30 * time.Minute, "met (30m)", "ok", rtoMet},
		{"closed over", slo.Outage{Start: now.Add(-time.Hour), End: now.Add(-29 * time.Minute)}, 30 * time.Minute, "breached (30m)", "fail", rtoBreached},
		{"open within", slo.Outage{Start: now.Add(-10 * time.Minute)}, 30 * time.Minute, "pending (20m left of 30m)", "risk", rtoPending},
		{"open at the RTO", slo.Outage{Start: now.Add(-30 * time.Minute)}, 30 * time.Minute, "pending (0ms left of 30m)", "risk", rtoPending},
		{"open over", slo.Outage{Start: now.Add(-31 * time.Minute)}, 30 * time.Minute, "breached (30m)", "fail", rtoBreached},
		{"planned", slo.Outage{Start: now.Add(-time.Hour), Planned: true}, 30 * time.Minute, "", "", rtoMet},
		{"no RTO", slo.Outage{Start: now.Add(-time.Hour)}, 0, "", "", rtoMet},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newOutageView(&tt.outage, tt.rto, now)
			if v.RTO != "" && v.RTOVerdict != tt.verdict {
				t.Errorf("verdict %v, want %v", v.RTOVerdict, tt.verdict)
			}
			pages, err := parsePages()
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := pages.ExecuteTemplate(&b, "outages", []outageView{v}); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(strings.NewReader("<table>" + b.String() + "</table>"))
			if err != nil {
				t.Fatal(err)
			}
			cell := find(t, doc, "the RTO cell", and(tag("td"), hasAttr("class", "rto")))
			want, class := tt.want, tt.class
			if want == "" {
				want, class = "–", "muted"
			}
			if got := text(cell); got != want {
				t.Errorf("RTO cell %q, want %q", got, want)
			}
			if got := attr(cell.FirstChild, "class"); got != class {
				t.Errorf("RTO cell class %q, want %q", got, class)
			}
		})
	}
}
