package test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
	"github.com/reliabilityd/reliabilityd/slo"
)

const (
	dashboardsDir  = "../dashboards"
	exampleConfig  = "../examples/reliability.yml"
	promDatasource = "${datasource}"
)

// wantDashboards returns the dashboards' uids, sorted: links, bookmarks
// and the provisioning refer to them, so they must not change. Each is in
// dashboards/<uid>.json.
func wantDashboards() []string {
	return []string{
		"reliabilityd-capacity",
		"reliabilityd-daemon",
		"reliabilityd-recovery",
		"reliabilityd-report",
		"reliabilityd-service",
	}
}

// noDataAllowed returns the panels whose queries may return nothing in
// TestDashboardQueries, by dashboard uid and panel title, with the reason:
// the ICMP panels where this process may open no ICMP socket (the fixture
// service then has no icmp probe). Their queries must still parse. Every
// entry must name an existing panel.
func noDataAllowed() map[string]string {
	allowed := map[string]string{}
	if ok, why := icmpAllowed(); !ok {
		allowed["reliabilityd-service/ICMP packet loss"] = "no icmp probe: " + why
		allowed["reliabilityd-service/ICMP round-trip time"] = "no icmp probe: " + why
	}
	return allowed
}

// builtinVariables returns the variables Grafana defines itself that the
// dashboards may use, with what TestDashboardQueries puts in their place.
// $__interval is a graph's step, which the per-interval bars rely on: 5s
// gives them data seconds after the first scrapes (every second).
func builtinVariables() map[string]string {
	return map[string]string{
		"__rate_interval":  "1m",
		"__interval":       "5s",
		"__range":          "1h",
		"__data":           "", // data links: ${__data.fields.<label>}
		"__url_time_range": "",
	}
}

// loadedDashboard is one dashboard file, decoded without the generator's
// types, so the checks see what Grafana sees.
type loadedDashboard struct {
	file string
	uid  string
	json map[string]any
}

func loadDashboards(t *testing.T) []loadedDashboard {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []loadedDashboard
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: not valid JSON: %v", p, err)
		}
		uid, _ := d["uid"].(string)
		out = append(out, loadedDashboard{file: filepath.Base(p), uid: uid, json: d})
	}
	return out
}

// panelsOf returns a dashboard's panels, those of collapsed rows included,
// grouped as Grafana lays them out: the top level, then each collapsed
// row's own panels.
func panelsOf(d map[string]any) (all []map[string]any, layouts [][]map[string]any) {
	top := jsonObjects(d["panels"])
	layouts = append(layouts, top)
	for _, p := range top {
		all = append(all, p)
		if inner := jsonObjects(p["panels"]); len(inner) > 0 {
			all = append(all, inner...)
			layouts = append(layouts, inner)
		}
	}
	return all, layouts
}

func jsonObjects(v any) []map[string]any {
	list, _ := v.([]any)
	var out []map[string]any
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func jsonString(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func jsonInt(m map[string]any, key string) int {
	f, _ := m[key].(float64)
	return int(f)
}

// isPrometheusVariable tells whether a datasource reference is the
// dashboard's datasource variable.
func isPrometheusVariable(v any) bool {
	ref, ok := v.(map[string]any)
	return ok && jsonString(ref, "type") == "prometheus" && jsonString(ref, "uid") == promDatasource
}

// TestDashboardsStructure checks every dashboard as Grafana would load it:
// stable uids and tags, the import input and the variables, panel ids and
// positions, a datasource on every panel and query, variables defined
// before use, links to existing dashboards, and metric names the daemon
// (or Prometheus, for up, ALERTS and scrape_*) really produces.
func TestDashboardsStructure(t *testing.T) {
	dashboards := loadDashboards(t)
	var uids []string
	for _, d := range dashboards {
		uids = append(uids, d.uid)
	}
	sort.Strings(uids)
	if !slices.Equal(uids, wantDashboards()) {
		t.Fatalf("dashboard uids %q, want %q", uids, wantDashboards())
	}
	known := daemonMetricNames(t)
	for _, d := range dashboards {
		t.Run(d.uid, func(t *testing.T) {
			if d.file != d.uid+".json" {
				t.Errorf("file %s holds uid %s: name it %s.json", d.file, d.uid, d.uid)
			}
			checkDashboardMeta(t, d.json)
			variables := checkDashboardVariables(t, d.json)
			checkDashboardPanels(t, d.json)
			checkDashboardVariableUse(t, d.json, variables)
			checkDashboardLinks(t, d.uid, d.json)
			for _, e := range dashboardExprs(d) {
				for _, name := range exprMetricNames(e.expr) {
					if !known(name) {
						t.Errorf("%s: metric %s is neither exported by the daemon nor made by Prometheus: %s", e.where, name, e.expr)
					}
				}
			}
		})
	}
}

func checkDashboardMeta(t *testing.T, d map[string]any) {
	t.Helper()
	if tags, _ := d["tags"].([]any); !slices.Contains(tags, any("reliabilityd")) {
		t.Errorf("tags %v lack reliabilityd", d["tags"])
	}
	if v := jsonInt(d, "schemaVersion"); v < 36 || v > 41 {
		t.Errorf("schemaVersion %d, want Grafana 10's (about 39)", v)
	}
	if jsonString(d, "title") == "" || jsonString(d, "description") == "" {
		t.Error("no title or description")
	}
	inputs := jsonObjects(d["__inputs"])
	if len(inputs) != 1 || jsonString(inputs[0], "name") != "DS_PROMETHEUS" || jsonString(inputs[0], "type") != "datasource" || jsonString(inputs[0], "pluginId") != "prometheus" {
		t.Errorf("__inputs = %v, want one DS_PROMETHEUS datasource input of plugin prometheus", d["__inputs"])
	}
	timeRange, _ := d["time"].(map[string]any)
	if jsonString(timeRange, "from") == "" || jsonString(timeRange, "to") != "now" {
		t.Errorf("time = %v, want a range up to now", d["time"])
	}
}

// checkDashboardVariables checks the datasource and service variables and
// returns every variable's name, in order.
func checkDashboardVariables(t *testing.T, d map[string]any) []string {
	t.Helper()
	templating, _ := d["templating"].(map[string]any)
	list := jsonObjects(templating["list"])
	var names []string
	byName := map[string]map[string]any{}
	for _, v := range list {
		name := jsonString(v, "name")
		if byName[name] != nil {
			t.Errorf("variable %s defined twice", name)
		}
		byName[name] = v
		names = append(names, name)
		switch jsonString(v, "type") {
		case "datasource":
		case "query":
			if !isPrometheusVariable(v["datasource"]) {
				t.Errorf("variable %s: datasource %v, want the datasource variable", name, v["datasource"])
			}
			if _, _, err := parseLabelValues(jsonString(v, "query")); err != nil {
				t.Errorf("variable %s: %v", name, err)
			}
			if v["multi"] == true && jsonString(v, "allValue") != ".+" {
				t.Errorf("variable %s: a multi-value variable's All should be .+ (not the list of every value), got %q", name, v["allValue"])
			}
		default:
			t.Errorf("variable %s: type %s; TestDashboardQueries knows how to substitute datasource and query variables only", name, jsonString(v, "type"))
		}
	}
	if len(list) == 0 || jsonString(list[0], "name") != "datasource" || jsonString(list[0], "type") != "datasource" || jsonString(list[0], "query") != "prometheus" {
		t.Errorf("the first variable must be datasource, of type datasource for prometheus; got %v", names)
	}
	service := byName["service"]
	if service == nil {
		t.Fatalf("no service variable (variables: %v)", names)
	}
	if _, selector, _ := parseLabelValues(jsonString(service, "query")); !strings.HasPrefix(selector, "reliabilityd_service_info") {
		t.Errorf("service variable query %q: want the values of reliabilityd_service_info, which every service has", jsonString(service, "query"))
	}
	if service["multi"] != true || service["includeAll"] != true {
		t.Errorf("service variable: want multi-value with All")
	}
	return names
}

// byClauseRe finds the first "by (...)" of an expression: the dashboards
// aggregate outermost first, so it names the labels the series keep.
var byClauseRe = regexp.MustCompile(`\bby \(([^)]*)\)`)

// checkLegend checks that a target's legend names every label its series
// keep (but le, which histogram_quantile removes): where a variable is
// multi-valued, two services' or two instances' series would otherwise
// share a legend.
func checkLegend(t *testing.T, title string, tg map[string]any) {
	t.Helper()
	m := byClauseRe.FindStringSubmatch(jsonString(tg, "expr"))
	if m == nil {
		return
	}
	legend := jsonString(tg, "legendFormat")
	for _, label := range strings.Split(m[1], ",") {
		label = strings.TrimSpace(label)
		if label != "le" && !strings.Contains(legend, "{{"+label+"}}") {
			t.Errorf("panel %q target %s: legend %q lacks {{%s}}, which its series keep: two of them would share a legend", title, jsonString(tg, "refId"), legend, label)
		}
	}
}

var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// parseLabelValues splits label_values(selector, label).
func parseLabelValues(query string) (label, selector string, err error) {
	m := labelValuesRe.FindStringSubmatch(query)
	if m == nil {
		return "", "", fmt.Errorf("query %q is not label_values(selector, label)", query)
	}
	return m[2], strings.TrimSpace(m[1]), nil
}

type gridRect struct{ x, y, w, h int }

func (a gridRect) overlaps(b gridRect) bool {
	return a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h
}

// checkDashboardPanels checks ids, titles, datasources and queries of every
// panel, and the layout: on the grid, without overlaps, a collapsed row's
// panels below it.
func checkDashboardPanels(t *testing.T, d map[string]any) {
	t.Helper()
	all, layouts := panelsOf(d)
	ids := map[int]string{}
	titles := map[string]bool{}
	for _, p := range all {
		id, title := jsonInt(p, "id"), jsonString(p, "title")
		// Titles name panels in noDataAllowed and in the test's reports.
		if jsonString(p, "type") != "row" {
			if titles[title] {
				t.Errorf("two panels titled %q", title)
			}
			titles[title] = true
		}
		if id <= 0 {
			t.Errorf("panel %q: id %v", title, p["id"])
		}
		if other, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %d", other, title, id)
		}
		ids[id] = title
		if title == "" {
			t.Errorf("panel %d has no title", id)
		}
		if jsonString(p, "type") == "row" {
			// A row only groups panels: it has no query of its own.
			if p["targets"] != nil {
				t.Errorf("row %q has targets", title)
			}
			continue
		}
		if jsonString(p, "description") == "" {
			t.Errorf("panel %q has no description", title)
		}
		if !isPrometheusVariable(p["datasource"]) {
			t.Errorf("panel %q: datasource %v, want {prometheus, %s}", title, p["datasource"], promDatasource)
		}
		targets := jsonObjects(p["targets"])
		if len(targets) == 0 {
			t.Errorf("panel %q has no targets", title)
		}
		graph := jsonString(p, "type") == "timeseries" || jsonString(p, "type") == "state-timeline"
		refs := map[string]bool{}
		for _, tg := range targets {
			if jsonString(p, "type") != "table" {
				checkLegend(t, title, tg)
			}
			if (graph && tg["range"] != true) || (!graph && tg["instant"] != true) {
				t.Errorf("panel %q target %s: a graph needs a range query, other panels an instant one", title, jsonString(tg, "refId"))
			}
			if !isPrometheusVariable(tg["datasource"]) {
				t.Errorf("panel %q target %s: datasource %v, want {prometheus, %s}", title, jsonString(tg, "refId"), tg["datasource"], promDatasource)
			}
			if jsonString(tg, "expr") == "" || jsonString(tg, "refId") == "" || refs[jsonString(tg, "refId")] {
				t.Errorf("panel %q: target without an expression or with a missing or repeated refId: %v", title, tg)
			}
			refs[jsonString(tg, "refId")] = true
		}
	}
	afterCollapsed := ""
	for _, row := range jsonObjects(d["panels"]) {
		// Grafana would show a panel that follows a collapsed row in the
		// row's section, though the row does not hold it.
		if afterCollapsed != "" && jsonString(row, "type") != "row" {
			t.Errorf("panel %q follows the collapsed row %q", jsonString(row, "title"), afterCollapsed)
		}
		if jsonString(row, "type") == "row" {
			afterCollapsed = ""
			if row["collapsed"] == true {
				afterCollapsed = jsonString(row, "title")
			}
		}
		inner := jsonObjects(row["panels"])
		if len(inner) > 0 && row["collapsed"] != true {
			t.Errorf("row %q holds panels but is not collapsed: an expanded row's panels follow it", jsonString(row, "title"))
		}
		rowPos, _ := row["gridPos"].(map[string]any)
		for _, p := range inner {
			if g, _ := p["gridPos"].(map[string]any); jsonInt(g, "y") <= jsonInt(rowPos, "y") {
				t.Errorf("panel %q of row %q is not below it", jsonString(p, "title"), jsonString(row, "title"))
			}
		}
	}
	for _, layout := range layouts {
		var placed []gridRect
		var titles []string
		for _, p := range layout {
			g, _ := p["gridPos"].(map[string]any)
			r := gridRect{jsonInt(g, "x"), jsonInt(g, "y"), jsonInt(g, "w"), jsonInt(g, "h")}
			if r.x < 0 || r.y < 0 || r.w <= 0 || r.h <= 0 || r.x+r.w > 24 {
				t.Errorf("panel %q: gridPos %v is off the 24-column grid", jsonString(p, "title"), g)
			}
			for i, other := range placed {
				if r.overlaps(other) {
					t.Errorf("panels %q %v and %q %v overlap", titles[i], other, jsonString(p, "title"), r)
				}
			}
			placed = append(placed, r)
			titles = append(titles, jsonString(p, "title"))
		}
	}
}

// grafanaVarRe finds Grafana variable references: $name, ${name} and
// ${name:format} or ${name.field}.
var grafanaVarRe = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))`)

// checkDashboardVariableUse checks that every variable referenced anywhere
// in the dashboard (queries, titles, links, the import input in the
// datasource variable) is defined, and that a variable's query only uses
// variables defined before it, which Grafana resolves first.
func checkDashboardVariableUse(t *testing.T, d map[string]any, variables []string) {
	t.Helper()
	defined := map[string]bool{}
	for _, in := range jsonObjects(d["__inputs"]) {
		defined[jsonString(in, "name")] = true
	}
	for name := range builtinVariables() {
		defined[name] = true
	}
	for _, v := range variables {
		defined[v] = true
	}
	walkJSONStrings(d, "", func(path, s string) {
		for _, m := range grafanaVarRe.FindAllStringSubmatch(s, -1) {
			if name := m[1] + m[2]; !defined[name] {
				t.Errorf("%s: $%s is not a variable of the dashboard (%v) nor a Grafana built-in: %q", path, name, variables, s)
			}
		}
	})
	templating, _ := d["templating"].(map[string]any)
	before := map[string]bool{}
	for _, v := range jsonObjects(templating["list"]) {
		for _, m := range grafanaVarRe.FindAllStringSubmatch(jsonString(v, "query"), -1) {
			if name := m[1] + m[2]; !before[name] {
				t.Errorf("variable %s uses $%s, which is not defined before it", jsonString(v, "name"), name)
			}
		}
		before[jsonString(v, "name")] = true
	}
}

// walkJSONStrings calls fn on every string in v with its JSON path.
func walkJSONStrings(v any, path string, fn func(path, s string)) {
	switch v := v.(type) {
	case string:
		fn(path, v)
	case map[string]any:
		for k, item := range v {
			walkJSONStrings(item, path+"."+k, fn)
		}
	case []any:
		for i, item := range v {
			walkJSONStrings(item, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

var dashboardURLRe = regexp.MustCompile(`^/d/([a-z0-9-]+)(?:\?|$)`)

// checkDashboardLinks checks that the dashboard links to every other
// dashboard of the set by uid, keeping the time range and variables, and
// that data links point at existing dashboards.
func checkDashboardLinks(t *testing.T, uid string, d map[string]any) {
	t.Helper()
	var linked []string
	for _, l := range jsonObjects(d["links"]) {
		m := dashboardURLRe.FindStringSubmatch(jsonString(l, "url"))
		if jsonString(l, "type") != "link" || m == nil {
			t.Errorf("link %v: want a link of type link to /d/<uid>", l)
			continue
		}
		if l["keepTime"] != true || l["includeVars"] != true {
			t.Errorf("link to %s does not keep the time range and the variables", m[1])
		}
		linked = append(linked, m[1])
	}
	var others []string
	for _, w := range wantDashboards() {
		if w != uid {
			others = append(others, w)
		}
	}
	sort.Strings(linked)
	if !slices.Equal(linked, others) {
		t.Errorf("links to %v, want one to each other dashboard %v", linked, others)
	}
	walkJSONStrings(d["panels"], "panels", func(path, s string) {
		if !strings.HasSuffix(path, ".url") {
			return
		}
		m := dashboardURLRe.FindStringSubmatch(s)
		if m == nil || !slices.Contains(wantDashboards(), m[1]) {
			t.Errorf("%s: data link %q does not point at a dashboard of the set", path, s)
		}
	})
}

// dashboardExpr is one PromQL expression of a dashboard and where it is.
type dashboardExpr struct {
	where string // uid/panel title/refId, or uid/variable name, or uid/annotation name
	expr  string
	// rangeQuery: the panel draws it over time, so it runs as a range
	// query as well.
	rangeQuery bool
	// label is the label a variable's label_values reads; empty otherwise.
	label string
	// mayBeEmpty: the panel is in noDataAllowed.
	mayBeEmpty bool
}

// dashboardExprs returns every PromQL expression of a dashboard: the
// targets, the selectors of the query variables, the annotation queries.
func dashboardExprs(d loadedDashboard) []dashboardExpr {
	var out []dashboardExpr
	all, _ := panelsOf(d.json)
	for _, p := range all {
		key := d.uid + "/" + jsonString(p, "title")
		_, allowed := noDataAllowed()[key]
		for _, tg := range jsonObjects(p["targets"]) {
			out = append(out, dashboardExpr{
				where: key + "/" + jsonString(tg, "refId"), expr: jsonString(tg, "expr"),
				rangeQuery: tg["range"] == true, mayBeEmpty: allowed,
			})
		}
	}
	templating, _ := d.json["templating"].(map[string]any)
	for _, v := range jsonObjects(templating["list"]) {
		if jsonString(v, "type") != "query" {
			continue
		}
		label, selector, err := parseLabelValues(jsonString(v, "query"))
		if err == nil {
			out = append(out, dashboardExpr{where: d.uid + "/$" + jsonString(v, "name"), expr: selector, label: label})
		}
	}
	annotations, _ := d.json["annotations"].(map[string]any)
	for _, a := range jsonObjects(annotations["list"]) {
		out = append(out, dashboardExpr{where: d.uid + "/annotation " + jsonString(a, "name"), expr: jsonString(a, "expr"), rangeQuery: true})
	}
	return out
}

var (
	exprMetricNameRe = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	metricNameRe     = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
)

// exprMetricNames returns the metric names of an expression's selectors,
// which the dashboards always write with braces (or alone, for a
// variable's selector).
func exprMetricNames(expr string) []string {
	var names []string
	for _, m := range exprMetricNameRe.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1])
	}
	if metricNameRe.MatchString(expr) {
		names = append(names, expr)
	}
	return names
}

// daemonMetricNames returns a test of whether a metric name is produced:
// declared as a family by the daemon's code (every family name is a string
// literal there, whether or not the test's configuration makes it export a
// series), a histogram's series of one, client_golang's build, runtime,
// process and handler families, or a series Prometheus makes itself.
func daemonMetricNames(t *testing.T) func(string) bool {
	t.Helper()
	var source strings.Builder
	for _, dir := range []string{"../collector", "../slo", "../cmd/reliabilityd"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			source.Write(data)
		}
	}
	code := source.String()
	// Made by Prometheus, or by client_golang's version collector
	// (versioncollector.NewCollector("reliabilityd")).
	madeElsewhere := []string{"up", "ALERTS", "scrape_duration_seconds", "scrape_samples_scraped", "reliabilityd_build_info"}
	return func(name string) bool {
		switch {
		case slices.Contains(madeElsewhere, name),
			strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "promhttp_"):
			return true
		case strings.Contains(code, `"`+name+`"`):
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && strings.Contains(code, `"`+base+`"`) {
				return true
			}
		}
		return false
	}
}

// TestDashboardQueries runs every PromQL expression of the dashboards
// against a real Prometheus scraping a real reliabilityd that runs the
// example configuration: each must parse and return data (the panels of
// noDataAllowed excepted), as an instant query and, for the panels that
// draw over time, as a range query. Variables become what "All" gives
// (.+), $__rate_interval 1m, $__interval 5s and $__range 1h. Once all
// have data, checkDashboardValues checks key figures for their value.
//
// The example's targets are on .example names and fail: failures are data.
// What the test adds, so that every figure has data within a minute:
//   - every interval and timeout 1s (capacity resources and backups
//     included), and evaluation every second;
//   - the example's absolute paths moved into a temporary directory, which
//     holds the filesystems and the backup they name but not the pid files
//     (those capacity samples fail), and its relative ones (secrets/,
//     tls/) linked to examples/;
//   - a service "fixture" probing a loopback HTTPS server that fails its
//     first requests, then answers: TLS certificates, latency
//     observations, an outage that opens and closes (MTTR, MTBF), and an
//     SLO with data whatever the time of the week; and probes of the types
//     with families of their own against loopback peers (transactions,
//     one failing at a step, DNS, gRPC health, ICMP where permitted);
//   - a day of capacity history in the state file, written by the
//     daemon's own state code, so that trends and forecasts exist (they
//     need forecast.min_samples slots of history);
//   - a drill recorded with `reliabilityd drill record`;
//   - the shipped rules with their `for` removed, so their alerts fire at
//     once and the firing-alert panels have something to show.
func TestDashboardQueries(t *testing.T) {
	promPath := lookPrometheus(t)
	dashboards := loadDashboards(t)
	var expressions []dashboardExpr
	panels := map[string]bool{}
	for _, d := range dashboards {
		expressions = append(expressions, dashboardExprs(d)...)
		all, _ := panelsOf(d.json)
		for _, p := range all {
			panels[d.uid+"/"+jsonString(p, "title")] = true
		}
	}
	for key := range noDataAllowed() {
		if !panels[key] {
			t.Errorf("noDataAllowed lists %s, which is no panel: remove it", key)
		}
	}
	substitute := dashboardSubstitution(dashboards, builtinVariables())

	dir := t.TempDir()
	configFile := writeExampleFixture(t, dir)
	storage := filepath.Join(dir, "data")
	seedCapacityHistory(t, configFile, storage)
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage)
	out, err := exec.Command(binary, "drill", "record", "--url="+d.url, "--service=checkout", "--result=pass", "--duration=20m").CombinedOutput()
	if err != nil {
		t.Fatalf("drill record: %v\n%s", err, out)
	}
	promStart := time.Now()
	prom := startPrometheusWithRules(t, promPath, strings.TrimPrefix(d.url, "http://"), rulesWithoutFor(t, dir))
	client, err := api.NewClient(api.Config{Address: prom.url})
	if err != nil {
		t.Fatal(err)
	}
	q := &promQuerier{client: client}

	// Poll until every expression has data: the first scrapes, rule
	// evaluations and the fixture's outage take a few seconds.
	// An error (a parse error, a bad matching) does not go away by waiting.
	var failures, allowedEmpty []string
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 1; ; attempt++ {
		failures, allowedEmpty = failures[:0], allowedEmpty[:0]
		now := time.Now()
		queryErrors := false
		for _, e := range expressions {
			r := checkDashboardExpr(q, e, substitute(e.expr), now)
			failures = append(failures, r.problems...)
			queryErrors = queryErrors || r.queryError
			if r.empty && e.mayBeEmpty {
				allowedEmpty = append(allowedEmpty, e.where)
			}
		}
		if len(failures) == 0 || queryErrors || time.Now().After(deadline) {
			t.Logf("%d expressions checked in %d rounds; without data, as noDataAllowed permits: %q", len(expressions), attempt, allowedEmpty)
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if len(failures) == 0 {
		checkDashboardValues(t, q, dashboards, substitute, promStart)
	}
}

// exprCheck is what checkDashboardExpr found.
type exprCheck struct {
	problems []string
	// queryError: Prometheus refused a query.
	queryError bool
	// empty: the instant query returned nothing.
	empty bool
}

// checkDashboardExpr runs one expression, at now and, for a panel that
// draws over time, over the five minutes before.
func checkDashboardExpr(q *promQuerier, e dashboardExpr, expr string, now time.Time) exprCheck {
	var r exprCheck
	vector, err := q.query(expr, now)
	if err != nil {
		return exprCheck{problems: []string{fmt.Sprintf("%s: %v", e.where, err)}, queryError: true}
	}
	r.empty = len(vector) == 0
	if r.empty && !e.mayBeEmpty {
		r.problems = append(r.problems, fmt.Sprintf("%s: no data for %s", e.where, expr))
	}
	if e.label != "" {
		for _, s := range vector {
			if s.Metric[model.LabelName(e.label)] == "" {
				r.problems = append(r.problems, fmt.Sprintf("%s: series %v of %s lack label %s", e.where, s.Metric, expr, e.label))
				break
			}
		}
	}
	if e.rangeQuery {
		matrix, err := promQueryRange(q.client, expr, now.Add(-5*time.Minute), now, 5*time.Second)
		switch {
		case err != nil:
			r.problems = append(r.problems, fmt.Sprintf("%s (range): %s: %v", e.where, expr, err))
			r.queryError = true
		case len(matrix) == 0 && !e.mayBeEmpty:
			r.problems = append(r.problems, fmt.Sprintf("%s (range): no data for %s", e.where, expr))
		}
	}
	return r
}

// dashboardSubstitution returns what replaces the variables of the
// dashboards' expressions: the built-ins' stand-ins, and .+ (what "All"
// gives) for every query variable.
func dashboardSubstitution(dashboards []loadedDashboard, builtins map[string]string) func(string) string {
	values := map[string]string{}
	for name, v := range builtins {
		values[name] = v
	}
	for _, d := range dashboards {
		templating, _ := d.json["templating"].(map[string]any)
		for _, v := range jsonObjects(templating["list"]) {
			if jsonString(v, "type") == "query" {
				values[jsonString(v, "name")] = ".+"
			}
		}
	}
	return func(expr string) string {
		return grafanaVarRe.ReplaceAllStringFunc(expr, func(ref string) string {
			m := grafanaVarRe.FindStringSubmatch(ref)
			if v, ok := values[m[1]+m[2]]; ok && v != "" {
				return v
			}
			// Left as is: Prometheus rejects it and the test says where.
			return ref
		})
	}
}

// promRangeResponse is the body of /api/v1/query_range.
type promRangeResponse struct {
	Status   string   `json:"status"`
	Error    string   `json:"error"`
	Warnings []string `json:"warnings"`
	Data     struct {
		ResultType string       `json:"resultType"`
		Result     model.Matrix `json:"result"`
	} `json:"data"`
}

// promQueryRange runs a range query, decoding the answer as promQuerier does.
func promQueryRange(client api.Client, expr string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := client.URL("/api/v1/query_range", nil)
	seconds := func(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }
	u.RawQuery = url.Values{"query": {expr}, "start": {seconds(start)}, "end": {seconds(end)}, "step": {step.String()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	var r promRangeResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("status %d, decoding %q: %w", resp.StatusCode, body, err)
	}
	switch {
	case r.Status != "success":
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, r.Error)
	case len(r.Warnings) > 0:
		return nil, fmt.Errorf("warnings %q", r.Warnings)
	case r.Data.ResultType != model.ValMatrix.String():
		return nil, fmt.Errorf("got a %s, want a matrix", r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// writeExampleFixture writes examples/reliability.yml into dir as
// TestDashboardQueries describes, and returns its path.
func writeExampleFixture(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	rewriteExample(t, &doc, "", filepath.Join(dir, "root"))

	// Relative paths resolve against the configuration's directory.
	entries, err := os.ReadDir(filepath.Dir(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			target, err := filepath.Abs(filepath.Join(filepath.Dir(exampleConfig), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}

	services := yamlMappingValue(doc.Content[0], "services")
	if services == nil || services.Kind != yaml.SequenceNode {
		t.Fatalf("%s has no services list", exampleConfig)
	}
	var fixture yaml.Node
	if err := yaml.Unmarshal([]byte(fixtureServiceYAML(t, dir)), &fixture); err != nil {
		t.Fatal(err)
	}
	services.Content = append(services.Content, fixture.Content[0])

	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "reliability.yml")
	writeFile(t, path, string(out))
	return path
}

func yamlMappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// rewriteExample shortens every interval and timeout to 1s (adding the
// interval where capacity resources and backups take their default) and
// moves every absolute path under root, creating what it names there.
func rewriteExample(t *testing.T, n *yaml.Node, key, root string) {
	t.Helper()
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			// A list's items are known by the list's key.
			rewriteExample(t, c, key, root)
		}
	case yaml.MappingNode:
		if (key == "capacity" || key == "backups") && yamlMappingValue(n, "interval") == nil {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "interval"}, &yaml.Node{Kind: yaml.ScalarNode, Value: "1s"})
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			rewriteExample(t, n.Content[i+1], n.Content[i].Value, root)
		}
	case yaml.ScalarNode:
		switch {
		case slices.Contains([]string{"interval", "timeout", "probe_interval", "probe_timeout", "evaluation_interval"}, key):
			n.Value = "1s"
		case strings.HasPrefix(n.Value, "/"):
			n.Value = createExamplePath(t, key, filepath.Join(root, n.Value))
		}
	}
}

// createExamplePath creates what the example's absolute path names, by the
// key it is the value of.
func createExamplePath(t *testing.T, key, path string) string {
	t.Helper()
	mkdir := func(dir string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	switch key {
	case "filesystem":
		mkdir(path)
	case "pid_file":
		// Left missing, as on a machine without the example's processes:
		// those samples fail, which the sample-failure panels show.
	case "glob":
		// A backup of 2 MiB (above the example's min_size), 10 minutes old.
		mkdir(filepath.Dir(path))
		file := filepath.Join(filepath.Dir(path), strings.ReplaceAll(filepath.Base(path), "*", "1"))
		writeFile(t, file, strings.Repeat("x", 2<<20))
		taken := time.Now().Add(-10 * time.Minute)
		if err := os.Chtimes(file, taken, taken); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("%s has an absolute path under %q: teach writeExampleFixture what to create for it", exampleConfig, key)
	}
	return path
}

// fixtureServiceYAML is a service probing a loopback HTTPS server that fails
// its first requests and then answers, with an outage rule and an SLO. The
// SLO has data at any hour: the example's SLOs have none while checkout is
// in its weekly maintenance and mail outside its hours of operation, which
// happen together on Sunday nights. It also has a probe of every type with
// families of its own (docs/metrics.md, "Per probe type"), against peers on
// loopback: two transactions (one failing at its login step), a DNS
// server, a gRPC health server and, where permitted, ICMP to 127.0.0.1.
func fixtureServiceYAML(t *testing.T, dir string) string {
	t.Helper()
	var requests atomic.Int64
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 4 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	server.StartTLS()
	t.Cleanup(server.Close)
	ca := filepath.Join(dir, "fixture-ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})))
	return fmt.Sprintf(`name: fixture
owner: test
priority: low
probes:
  - name: tls
    interval: 500ms
    timeout: 450ms
    http: {url: %q, tls_config: {ca_file: %q}}
%sslos:
  - {name: availability, objective: 99, window: 1h, sli: {probes: [tls]}}
recovery:
  rto: 1m
  outage: {probes: [tls], open_after: 2, close_after: 2}
`, server.URL+"/", ca, fixtureTypeProbesYAML(t, dir))
}

// fixtureTypeProbesYAML returns the fixture service's probes of the types
// with families of their own, as further items of its probes list.
func fixtureTypeProbesYAML(t *testing.T, dir string) string {
	t.Helper()
	password, wrong := filepath.Join(dir, "fixture-password"), filepath.Join(dir, "fixture-wrong-password")
	writeFile(t, password, "s3cret\n")
	writeFile(t, wrong, "guess\n")
	shop := loginServer(t, "s3cret")
	transaction := func(name, secret string) string {
		return fmt.Sprintf(`  - name: %s
    interval: 500ms
    timeout: 450ms
    transaction:
      secrets: {password: %q}
      variables: {user: probe@example.com}
      steps:
        - {name: login-page, url: %q, captures: [{name: csrf, regexp: 'name="csrf" value="([^"]+)"'}]}
        - name: login
          method: POST
          url: %q
          headers: {Content-Type: application/x-www-form-urlencoded}
          body: 'user={{ var "user" | urlquery }}&password={{ secret "password" | urlquery }}&csrf={{ var "csrf" | urlquery }}'
`, name, secret, shop.URL+"/login", shop.URL+"/login")
	}
	probes := transaction("checkout-flow", password) + transaction("checkout-flow-wrong-password", wrong) + fmt.Sprintf(`  - name: resolver
    interval: 500ms
    timeout: 450ms
    dns: {server: %q, query_name: shop.test}
  - name: api-health
    interval: 500ms
    timeout: 450ms
    grpc: {address: %q}
`, dnsServer(t), grpcHealthServer(t))
	if ok, _ := icmpAllowed(); ok {
		probes += `  - name: ping
    interval: 500ms
    timeout: 450ms
    icmp: {host: 127.0.0.1, packets: 2, packet_interval: 10ms}
`
	}
	return probes
}

// seedCapacityHistory writes a day of five-minute capacity samples of
// every resource of the configuration into the state in storage, through
// the daemon's own state code. The usage rises from 0 to a thousandth, so
// the history alone gives a rising trend and a finite forecast, whatever
// the time: a trend over hourly slots leaves out the current hour's slot
// until its centre has passed, and with it the live samples, which only
// raise the usage further (a real resource uses more than a thousandth).
func seedCapacityHistory(t *testing.T, configFile, storage string) {
	t.Helper()
	cfg, err := config.Load(configFile)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	capacity := slo.NewCapacity(logger, prometheus.NewRegistry())
	defs := slo.CapacityPlan(cfg)
	if len(defs) == 0 {
		t.Fatalf("%s has no capacity resources", exampleConfig)
	}
	// A day covers forecast.min_samples (12) slots of both rings: the
	// 5-minute slots of windows up to 48h, the hourly ones beyond.
	const slots = 24 * 12
	start := time.Now().Add(-slots * 5 * time.Minute)
	capacity.Apply(defs, start)
	for _, def := range defs {
		for i := range slots {
			capacity.Record(def.ID(), collector.Result{Start: start.Add(time.Duration(i) * 5 * time.Minute), Success: true,
				Measurement: &collector.Measurement{Usage: float64(i) / slots / 1000}})
		}
	}
	state, err := capacity.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	store, err := slo.OpenStore(storage, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Save(map[string][]byte{slo.CapacityStateSection: state}); err != nil {
		t.Fatal(err)
	}
}

// rulesWithoutFor writes the shipped rule files into dir with every `for`
// removed, and returns their paths.
func rulesWithoutFor(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in %s (%v)", rulesGlob, err)
	}
	var paths []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		removeYAMLKey(&doc, "for")
		out, err := yaml.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(f))
		writeFile(t, path, string(out))
		paths = append(paths, path)
	}
	return paths
}

func removeYAMLKey(n *yaml.Node, key string) {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value != key {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		removeYAMLKey(c, key)
	}
}

// startPrometheusWithRules runs Prometheus on loopback, scraping target as
// job reliabilityd every second and evaluating rules every second.
func startPrometheusWithRules(t *testing.T, path, target string, rules []string) *prometheusServer {
	t.Helper()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	ruleFiles, err := json.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, configFile, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: %s
scrape_configs:
  - job_name: reliabilityd
    static_configs:
      - targets: [%q]
`, ruleFiles, target))
	return withFreePort(t, func(attempt int) (*prometheusServer, error) {
		return runPrometheus(t, path, configFile, filepath.Join(dir, fmt.Sprintf("data-%d", attempt)))
	})
}

// TestDashboardsProvisioning checks the example provisioning of
// deploy/grafana: a file provider loading the dashboards into the folder
// reliabilityd, and a Prometheus data source.
func TestDashboardsProvisioning(t *testing.T) {
	var providers struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name           string `yaml:"name"`
			Type           string `yaml:"type"`
			Folder         string `yaml:"folder"`
			AllowUIUpdates bool   `yaml:"allowUiUpdates"`
			Options        struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "../deploy/grafana/provisioning/dashboards/reliabilityd.yml", &providers)
	if providers.APIVersion != 1 || len(providers.Providers) != 1 {
		t.Fatalf("dashboard provisioning: want apiVersion 1 and one provider, got %+v", providers)
	}
	p := providers.Providers[0]
	if p.Type != "file" || p.Folder != "reliabilityd" || !filepath.IsAbs(p.Options.Path) || p.AllowUIUpdates {
		t.Errorf("provider %+v: want type file, folder reliabilityd, an absolute options.path, and no UI updates (the JSON is generated)", p)
	}
	var datasources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type     string `yaml:"type"`
			URL      string `yaml:"url"`
			JSONData struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	decodeYAML(t, "../deploy/grafana/provisioning/datasources/prometheus.yml", &datasources)
	if datasources.APIVersion != 1 || len(datasources.Datasources) != 1 {
		t.Fatalf("data source provisioning: want apiVersion 1 and one data source, got %+v", datasources)
	}
	ds := datasources.Datasources[0]
	if _, err := model.ParseDuration(ds.JSONData.TimeInterval); ds.Type != "prometheus" || ds.URL == "" || err != nil {
		t.Errorf("data source %+v: want a prometheus data source with a url and the scrape interval as timeInterval", ds)
	}
}

// dashboardPanel returns the panel titled title of the dashboard uid.
func dashboardPanel(t *testing.T, dashboards []loadedDashboard, uid, title string) map[string]any {
	t.Helper()
	for _, d := range dashboards {
		if d.uid != uid {
			continue
		}
		all, _ := panelsOf(d.json)
		for _, p := range all {
			if jsonString(p, "title") == title {
				return p
			}
		}
	}
	t.Fatalf("dashboard %s has no panel %q", uid, title)
	return nil
}

// panelExpr returns the expression of a panel's target refID.
func panelExpr(t *testing.T, p map[string]any, refID string) string {
	t.Helper()
	for _, tg := range jsonObjects(p["targets"]) {
		if jsonString(tg, "refId") == refID {
			return jsonString(tg, "expr")
		}
	}
	t.Fatalf("panel %q has no target %s", jsonString(p, "title"), refID)
	return ""
}

// columnOverride returns the field override of a table's column header:
// it matches the column's field, "Value #<refId>", by name.
func columnOverride(t *testing.T, p map[string]any, header string) (refID string, properties map[string]any) {
	t.Helper()
	fieldConfig, _ := p["fieldConfig"].(map[string]any)
	for _, o := range jsonObjects(fieldConfig["overrides"]) {
		properties := map[string]any{}
		for _, prop := range jsonObjects(o["properties"]) {
			properties[jsonString(prop, "id")] = prop["value"]
		}
		if properties["displayName"] != header {
			continue
		}
		matcher, _ := o["matcher"].(map[string]any)
		field := jsonString(matcher, "options")
		if field == "Value" {
			return "A", properties
		}
		if ref, ok := strings.CutPrefix(field, "Value #"); ok {
			return ref, properties
		}
	}
	t.Fatalf("table %q has no column %q", jsonString(p, "title"), header)
	return "", nil
}

// lastThreshold returns the value and colour of the highest threshold step
// of a threshold configuration.
func lastThreshold(t *testing.T, where string, thresholds any) (float64, string) {
	t.Helper()
	config, _ := thresholds.(map[string]any)
	steps := jsonObjects(config["steps"])
	if len(steps) < 2 {
		t.Fatalf("%s: thresholds %v: want a base colour and at least one step", where, thresholds)
	}
	last := steps[len(steps)-1]
	value, ok := last["value"].(float64)
	if !ok {
		t.Fatalf("%s: threshold step %v has no value", where, last)
	}
	return value, jsonString(last, "color")
}

// burnPairRe finds the long window of a multiwindow burn-rate condition
// and its threshold: the pair is matched by "and ignoring (window)".
var burnPairRe = regexp.MustCompile(`slo_burn_rate\{window="(\w+)"\}\s*>\s*([0-9.]+)\s+and\s+ignoring\s*\(window\)`)

// TestDashboardBurnRateThresholds checks that the burn-rate colours are the
// shipped alerts' thresholds: each burn column of the report's SLO table
// turns to the alert's severity colour at the threshold of the alert on its
// window, the report's 1h graph draws the 1h threshold, and the service
// detail's burn-rate graph draws a line at every threshold.
func TestDashboardBurnRateThresholds(t *testing.T) {
	severityColor := map[string]string{"page": "red", "ticket": "orange"}
	type threshold struct {
		rate  float64
		color string
	}
	want := map[string]threshold{}
	_, alerts, _ := loadRules(t)
	for _, a := range alerts {
		for _, m := range burnPairRe.FindAllStringSubmatch(a.expr, -1) {
			rate, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s: alert %s: %v", a.file, a.name, err)
			}
			want[m[1]] = threshold{rate, severityColor[a.labels["severity"]]}
		}
	}
	if len(want) != 4 {
		t.Fatalf("burn-rate thresholds of the rules: %v, want the long windows 1h, 6h, 1d and 3d", want)
	}
	dashboards := loadDashboards(t)
	slos := dashboardPanel(t, dashboards, "reliabilityd-report", "SLOs")
	for window, w := range want {
		_, properties := columnOverride(t, slos, "Burn "+window)
		rate, color := lastThreshold(t, "report SLOs column Burn "+window, properties["thresholds"])
		if rate != w.rate || color != w.color {
			t.Errorf("report SLOs column Burn %s turns %s at %v; the alert on %s fires above %v: want %s", window, color, rate, window, w.rate, w.color)
		}
	}
	hour := dashboardPanel(t, dashboards, "reliabilityd-report", "Burn rate over the last hour")
	defaults, _ := hour["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
	if rate, color := lastThreshold(t, "report 1h burn graph", defaults["thresholds"]); rate != want["1h"].rate || color != want["1h"].color {
		t.Errorf("report's 1h burn graph: threshold %v %s, want %v %s as the SLOs table", rate, color, want["1h"].rate, want["1h"].color)
	}
	burn := dashboardPanel(t, dashboards, "reliabilityd-service", "Burn rate")
	defaults, _ = burn["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
	lines := map[threshold]bool{}
	thresholds, _ := defaults["thresholds"].(map[string]any)
	for _, step := range jsonObjects(thresholds["steps"]) {
		if v, ok := step["value"].(float64); ok {
			lines[threshold{v, jsonString(step, "color")}] = true
		}
	}
	for window, w := range want {
		if !lines[w] {
			t.Errorf("service Burn rate graph: no %s line at %v, the threshold of the alert on %s (lines %v)", w.color, w.rate, window, lines)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("service Burn rate graph: lines %v, want one per alert threshold %v", lines, want)
	}
}

// TestDashboardsObjectiveDecimals: an objective of 99.999 % must not show
// as 100.00 %.
func TestDashboardsObjectiveDecimals(t *testing.T) {
	dashboards := loadDashboards(t)
	for _, c := range []struct{ uid, title, header string }{
		{"reliabilityd-report", "SLOs", "Objective"},
		{"reliabilityd-report", "SLOs", "SLI (SLO window)"},
		{"reliabilityd-service", "SLOs", "Objective"},
		{"reliabilityd-service", "SLOs", "SLI"},
	} {
		_, properties := columnOverride(t, dashboardPanel(t, dashboards, c.uid, c.title), c.header)
		if decimals, _ := properties["decimals"].(float64); decimals < 3 {
			t.Errorf("%s %s column %s: %v decimals, want 3 or more", c.uid, c.title, c.header, properties["decimals"])
		}
	}
	margin := dashboardPanel(t, dashboards, "reliabilityd-service", "SLI minus objective")
	defaults, _ := margin["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
	if decimals, _ := defaults["decimals"].(float64); decimals < 3 {
		t.Errorf("service SLI minus objective: %v decimals, want 3 or more", defaults["decimals"])
	}
	steps := jsonObjects(defaults["thresholds"].(map[string]any)["steps"])
	if len(steps) != 2 || jsonString(steps[0], "color") != "red" || steps[1]["value"] != 0.0 || jsonString(steps[1], "color") != "green" {
		t.Errorf("service SLI minus objective: thresholds %v, want red below 0 and green from 0", steps)
	}
}

// The promtool unit tests of TestDashboardCountersPromtool.
type (
	promtoolFile struct {
		RuleFiles          []string       `yaml:"rule_files"`
		EvaluationInterval string         `yaml:"evaluation_interval"`
		Tests              []promtoolTest `yaml:"tests"`
	}
	promtoolTest struct {
		Interval       string             `yaml:"interval"`
		InputSeries    []promtoolSeries   `yaml:"input_series"`
		PromQLExprTest []promtoolExprTest `yaml:"promql_expr_test"`
	}
	promtoolSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	promtoolExprTest struct {
		Expr       string           `yaml:"expr"`
		EvalTime   string           `yaml:"eval_time"`
		ExpSamples []promtoolSample `yaml:"exp_samples"`
	}
	promtoolSample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
)

// TestDashboardCountersPromtool runs the dashboards' counting expressions,
// as Grafana sends them with $__interval 1m and $__range 1h, through
// promtool's unit tests, on counters that appear at their first failure,
// miss a scrape, restart from zero or are restored after a restart:
//   - the per-interval bars of failure counters count a reason's first
//     failure, never count an increment twice, skip nothing after a failed
//     scrape and count a restarted counter's value after the restart;
//   - the per-interval bars of the SLO events, restored from the state
//     file, count nothing twice after a restart and skip the interval after
//     a long gap instead of counting the whole past;
//   - the failures over the time range count a reason that appeared in the
//     range at 1 as 1;
//   - the open outage against the RTO leaves a planned outage out.
func TestDashboardCountersPromtool(t *testing.T) {
	promtool := lookPromtool(t)
	dashboards := loadDashboards(t)
	substitute := dashboardSubstitution(dashboards, map[string]string{"__interval": "1m", "__range": "1h", "__rate_interval": "4m"})
	expr := func(uid, title, refID string) string {
		return substitute(panelExpr(t, dashboardPanel(t, dashboards, uid, title), refID))
	}
	sample := func(labels string, value float64) []promtoolSample {
		return []promtoolSample{{Labels: labels, Value: value}}
	}
	// Every label a bar panel's selectors and aggregations name, so one
	// series of each metric matches every panel.
	const barLabels = `job="reliabilityd",instance="rd:10089",service="s",probe="p",step="login",resource="r",backup="b",source="src",reason="timeout",result="success"`

	var bars promtoolTest
	bars.Interval = "1m"
	fromZero := []struct {
		uid, title string
		// dropsZero: the panel leaves out bars of 0 (a Prometheus
		// source's failure series exist at 0 for every reason).
		dropsZero bool
	}{
		{"reliabilityd-service", "Failures by reason", false},
		{"reliabilityd-service", "Transaction step failures", false},
		{"reliabilityd-capacity", "Sample failures by reason", false},
		{"reliabilityd-recovery", "Backup check failures by reason", false},
		{"reliabilityd-daemon", "Configuration reloads", false},
		{"reliabilityd-daemon", "Source query failures by reason", true},
	}
	for _, panel := range fromZero {
		e := expr(panel.uid, panel.title, "A")
		metrics := exprMetricNames(e)
		if len(metrics) == 0 {
			t.Fatalf("%s/%s: no metric in %s", panel.uid, panel.title, e)
		}
		// Appears at 10m; 2 more at 12m; a failed scrape at 13m; 1 more at
		// 15m; the daemon restarts at 16m and the reason occurs again at 20m.
		bars.InputSeries = append(bars.InputSeries, promtoolSeries{metrics[0] + "{" + barLabels + "}", "_x10 1 1 3 stale 3 4 stale _x3 1 1"})
		for _, c := range []struct {
			at   string
			want []promtoolSample
		}{
			{"9m", nil}, {"10m", sample("{}", 1)}, {"11m", sample("{}", 0)}, {"12m", sample("{}", 2)}, {"13m", sample("{}", 0)},
			{"14m", sample("{}", 0)}, {"15m", sample("{}", 1)}, {"17m", nil}, {"20m", sample("{}", 1)}, {"21m", sample("{}", 0)},
		} {
			if panel.dropsZero && len(c.want) == 1 && c.want[0].Value == 0 {
				c.want = nil
			}
			bars.PromQLExprTest = append(bars.PromQLExprTest, promtoolExprTest{Expr: "sum(" + e + ")", EvalTime: c.at, ExpSamples: c.want})
		}
	}
	for _, ref := range []string{"A", "B"} {
		e := expr("reliabilityd-service", "Events", ref)
		// Restored from the state file: 100 events, 1 more at 1m, a restart
		// at 2m back at 4m, 2 more at 5m, down from 6m to 13m, 1 more at 14m.
		bars.InputSeries = append(bars.InputSeries, promtoolSeries{exprMetricNames(e)[0] + "{" + barLabels + `,slo="availability"}`, "100 101 stale _ 101 103 stale _x6 103 104"})
		for _, c := range []struct {
			at   string
			want []promtoolSample
		}{
			{"0m", nil}, {"1m", sample("{}", 1)}, {"4m", sample("{}", 0)}, {"5m", sample("{}", 2)}, {"13m", nil}, {"14m", sample("{}", 1)},
		} {
			bars.PromQLExprTest = append(bars.PromQLExprTest, promtoolExprTest{Expr: "sum(" + e + ")", EvalTime: c.at, ExpSamples: c.want})
		}
	}

	// Failures over the hour before 70m.
	failures := promtoolTest{Interval: "1m"}
	series := func(probe, reason, values string) promtoolSeries {
		return promtoolSeries{`probe_failures_total{job="reliabilityd",instance="rd:10089",service="s",probe="` + probe + `",reason="` + reason + `"}`, values}
	}
	failures.InputSeries = []promtoolSeries{
		series("appears", "timeout", "_x30 1x40"),                  // first fails at 30m
		series("steady", "timeout", "0+1x70"),                      // fails every minute
		series("restart", "timeout", "5x20 stale _x4 1x45"),        // restarts at 21m, fails again at 26m
		series("two-reasons", "connect", "_x40 1x10 2x20"),         // appears at 40m, fails again at 51m
		series("two-reasons", "dns", "3x70"),                       // no failure in the range
		series("missed-scrape", "timeout", "2x30 stale 2x18 3x20"), // a failed scrape at 31m, fails at 50m
		series("before-the-range", "timeout", "1x5 stale"),         // fails before the range only
	}
	probes := map[string]float64{"appears": 1, "steady": 60, "restart": 1, "two-reasons": 2, "missed-scrape": 1}
	var want []promtoolSample
	for _, probe := range slices.Sorted(maps.Keys(probes)) {
		want = append(want, promtoolSample{Labels: `{service="s",probe="` + probe + `"}`, Value: probes[probe]})
	}
	targets := dashboardPanel(t, dashboards, "reliabilityd-service", "Probe targets")
	ref, _ := columnOverride(t, targets, "Failures")
	failures.PromQLExprTest = []promtoolExprTest{{Expr: substitute(panelExpr(t, targets, ref)), EvalTime: "70m", ExpSamples: want}}

	outages := promtoolTest{Interval: "1m"}
	outage := func(service, elapsed, planned string) {
		labels := `{job="reliabilityd",instance="rd:10089",service="` + service + `"}`
		outages.InputSeries = append(outages.InputSeries, promtoolSeries{"recovery_outage_elapsed_seconds" + labels, elapsed},
			promtoolSeries{"recovery_rto_seconds" + labels, "300"})
		if planned != "" {
			outages.InputSeries = append(outages.InputSeries, promtoolSeries{"recovery_outage_planned" + labels, planned})
		}
	}
	outage("unplanned", "60", "0")
	outage("planned", "120", "1")
	outage("none", "0", "")
	wantOutages := []promtoolSample{{Labels: `{service="none"}`, Value: 0}, {Labels: `{service="unplanned"}`, Value: 60}}
	services := dashboardPanel(t, dashboards, "reliabilityd-recovery", "Services")
	ref, _ = columnOverride(t, services, "Open unplanned outage")
	outages.PromQLExprTest = []promtoolExprTest{
		{Expr: expr("reliabilityd-recovery", "Open outage vs RTO", "A"), EvalTime: "0m", ExpSamples: wantOutages},
		{Expr: substitute(panelExpr(t, services, ref)), EvalTime: "0m", ExpSamples: wantOutages},
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "none.rules.yml"), "groups: []\n")
	out, err := yaml.Marshal(promtoolFile{RuleFiles: []string{"none.rules.yml"}, EvaluationInterval: "1m", Tests: []promtoolTest{bars, failures, outages}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboards.test.yml")
	writeFile(t, path, string(out))
	if out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// checkDashboardValues checks figures of key panels against what the test
// knows them to be, at one instant, with the data TestDashboardQueries
// made:
//   - the service detail's failures over the time range are the daemon's
//     probe_failures_total: every failure happened since Prometheus
//     started (promStart), the first of each reason included;
//   - the bars of failures by reason add up to the same, at the graph's
//     step: no failure is lost between two bars or counted in two; and so
//     do the daemon's bars of failed queries of Prometheus sources, which
//     fail from before Prometheus's first scrape;
//   - the report's SLI column is slo_sli_ratio, and its Met column whether
//     that is at least slo_objective_ratio;
//   - the service detail's SLI minus objective is exactly that.
func checkDashboardValues(t *testing.T, q *promQuerier, dashboards []loadedDashboard, substitute func(string) string, promStart time.Time) {
	t.Helper()
	// A scrape's samples carry its start time and become visible when it
	// ends: at an instant a few scrapes back, every query sees the same.
	now := time.Now().Add(-3 * time.Second)
	query := func(expr string) map[string]float64 {
		t.Helper()
		vector, err := q.query(expr, now)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, s := range vector {
			out[s.Metric.String()] = float64(s.Value)
		}
		return out
	}
	compare := func(what string, got, want map[string]float64) {
		t.Helper()
		if len(want) == 0 {
			t.Errorf("%s: nothing to compare with", what)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", what, got, want)
		}
	}

	failures := query(`sum by (service, probe) (probe_failures_total)`)
	if f := failures[`{probe="tls", service="fixture"}`]; f < 4 {
		t.Errorf("probe_failures_total of the fixture's tls probe is %v: its server fails the first 4 requests", f)
	}
	targets := dashboardPanel(t, dashboards, "reliabilityd-service", "Probe targets")
	ref, _ := columnOverride(t, targets, "Failures")
	compare("service Probe targets, Failures column vs probe_failures_total", query(substitute(panelExpr(t, targets, ref))), failures)

	step, err := model.ParseDuration(builtinVariables()["__interval"])
	if err != nil {
		t.Fatal(err)
	}
	steps := int(now.Sub(promStart)/time.Duration(step)) + 2 // the first bar's interval ends before the first scrape
	bars := substitute(panelExpr(t, dashboardPanel(t, dashboards, "reliabilityd-service", "Failures by reason"), "A"))
	matrix, err := promQueryRange(q.client, bars, now.Add(-time.Duration(steps)*time.Duration(step)), now, time.Duration(step))
	if err != nil {
		t.Fatal(err)
	}
	added := map[string]float64{}
	for _, s := range matrix {
		for _, p := range s.Values {
			added[s.Metric.String()] += float64(p.Value)
		}
	}
	compare("service Failures by reason, bars added up vs probe_failures_total", added, query(`sum by (service, probe, reason) (probe_failures_total)`))

	// The example's source "local" fails every query (nothing listens on
	// localhost:9090), from before the first scrape.
	sourceBars := substitute(panelExpr(t, dashboardPanel(t, dashboards, "reliabilityd-daemon", "Source query failures by reason"), "A"))
	matrix, err = promQueryRange(q.client, sourceBars, now.Add(-time.Duration(steps)*time.Duration(step)), now, time.Duration(step))
	if err != nil {
		t.Fatal(err)
	}
	added = map[string]float64{}
	for _, s := range matrix {
		for _, p := range s.Values {
			added[s.Metric.String()] += float64(p.Value)
		}
	}
	compare("daemon Source query failures by reason, bars added up vs prometheus_source_query_failures_total", added,
		query(`sum by (instance, source, reason) (prometheus_source_query_failures_total) > 0`))

	sli := query(`max by (service, slo) (slo_sli_ratio{window="full"})`)
	objective := query(`max by (service, slo) (slo_objective_ratio)`)
	met, margin := map[string]float64{}, map[string]float64{}
	for k, v := range sli {
		met[k] = 0
		if v >= objective[k] {
			met[k] = 1
		}
		margin[k] = v - objective[k]
	}
	slos := dashboardPanel(t, dashboards, "reliabilityd-report", "SLOs")
	ref, _ = columnOverride(t, slos, "SLI (SLO window)")
	compare("report SLOs, SLI (SLO window) column vs slo_sli_ratio", query(substitute(panelExpr(t, slos, ref))), sli)
	ref, _ = columnOverride(t, slos, "Met")
	compare("report SLOs, Met column vs slo_sli_ratio >= slo_objective_ratio", query(substitute(panelExpr(t, slos, ref))), met)
	compare("service SLI minus objective", query(substitute(panelExpr(t, dashboardPanel(t, dashboards, "reliabilityd-service", "SLI minus objective"), "A"))), margin)
}
