package main

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The dashboards' uids: stable, since links, bookmarks and provisioning
// refer to them. The generated files are named after them.
const (
	uidReport   = "reliabilityd-report"
	uidService  = "reliabilityd-service"
	uidCapacity = "reliabilityd-capacity"
	uidRecovery = "reliabilityd-recovery"
	uidDaemon   = "reliabilityd-daemon"
)

// allRegex is the value of a variable's "All": any value, without listing
// every one in the query.
const allRegex = ".+"

// Matchers of the service and probe variables.
const (
	byService = `service=~"$service"`
	byProbe   = `probe=~"$probe"`
)

// set is what the dashboards share: what they take from the shipped rules.
type set struct {
	// alertNames are the alerts of deploy/prometheus/*.rules.yml, sorted.
	alertNames []string
	// burn are the burn-rate alerts' long windows and thresholds, shortest
	// window first.
	burn []burnThreshold
}

// burnFor returns the burn-rate alert threshold of window.
func (s *set) burnFor(window string) burnThreshold {
	for _, b := range s.burn {
		if b.window == window {
			return b
		}
	}
	panic(fmt.Sprintf("no burn-rate alert on window %s in the rule files", window))
}

// burnColors colours a burn rate over one window: green below the
// threshold of the alert on that window, the alert's severity colour at or
// above it.
func (s *set) burnColors(window string) map[string]any {
	b := s.burnFor(window)
	return thresholds("green", b.rate, b.color())
}

// burnLines draws every burn-rate alert's threshold, in its severity's
// colour, on a graph of the burn rates over all the windows.
func (s *set) burnLines() map[string]any {
	byRate := slices.Clone(s.burn)
	sort.SliceStable(byRate, func(i, j int) bool { return byRate[i].rate < byRate[j].rate })
	var steps []any
	for _, b := range byRate {
		steps = append(steps, b.rate, b.color())
	}
	return thresholds("green", steps...)
}

// burnWindows returns the alerts' long windows as a regular expression.
func (s *set) burnWindows() string {
	var windows []string
	for _, b := range s.burn {
		windows = append(windows, b.window)
	}
	return strings.Join(windows, "|")
}

// burnSummary says when the shipped burn-rate alerts fire, for panel
// descriptions: "page alerts (red) above 14.4 (1h) and 6 (6h); ticket
// alerts (orange) above 3 (1d) and 1 (3d)".
func (s *set) burnSummary() string {
	bySeverity := map[string][]string{}
	for _, b := range s.burn {
		bySeverity[b.severity] = append(bySeverity[b.severity],
			strconv.FormatFloat(b.rate, 'f', -1, 64)+" ("+b.window+")")
	}
	var parts []string
	for _, severity := range sortedKeys(bySeverity) {
		parts = append(parts, severity+" alerts ("+severityColors()[severity]+") above "+strings.Join(bySeverity[severity], " and "))
	}
	return strings.Join(parts, "; ")
}

// firingAlerts selects the firing alerts of the shipped rules, in the
// selected services; alerts without a service label (the daemon's own) are
// kept: they concern every service.
func (s *set) firingAlerts() string {
	return sel("ALERTS", `alertstate="firing"`, `alertname=~"`+strings.Join(s.alertNames, "|")+`"`, `service=~"${service}|"`)
}

// dashboardInfo is a dashboard's uid, title, and the tooltip of the links
// to it.
type dashboardInfo struct{ uid, title, tooltip string }

// dashboardsInOrder returns the dashboards of the set, in link order.
func dashboardsInOrder() []dashboardInfo {
	return []dashboardInfo{
		{uidReport, "Reliability report", "Every service: SLOs, capacity, recovery, alerts"},
		{uidService, "Service detail", "SLIs, error budget, probes and outages of the selected services"},
		{uidCapacity, "Capacity planning", "Usage, headroom, trend, forecast and growth plan"},
		{uidRecovery, "Recovery and continuity", "Outages vs RTO, backups vs RPO, MTTR/MTBF, drills"},
		{uidDaemon, "reliabilityd", "The daemon itself: scheduler, reloads, state, Prometheus sources, scrape cost"},
	}
}

// links links a dashboard to every other of the set, keeping the time range
// and the variables (service, datasource) that they share.
func links(self string) []link {
	var out []link
	for _, d := range dashboardsInOrder() {
		if d.uid == self {
			continue
		}
		out = append(out, link{
			Icon: "dashboard", IncludeVars: true, KeepTime: true, Tags: []string{}, Title: d.title,
			Tooltip: d.tooltip, Type: "link", URL: "/d/" + d.uid,
		})
	}
	return out
}

// serviceLink is a data link from a table's service column to the service
// detail dashboard, for that service, keeping the time range and the
// datasource.
func serviceLink() []map[string]any {
	return []map[string]any{{
		"title": "Service detail: ${__data.fields.service}",
		"url":   "/d/" + uidService + "?${__url_time_range}&${datasource:queryparam}&var-service=${__data.fields.service}",
	}}
}

// newDashboard returns the dashboard uid of the set, with the panels b laid
// out, the set's inputs, tags, links and datasource variable, the other
// variables in the order given, and the time range from "from" to now.
func newDashboard(uid, description, from string, b *builder, variables ...*variable) *dashboard {
	var title string
	for _, d := range dashboardsInOrder() {
		if d.uid == uid {
			title = d.title
		}
	}
	mustf(title != "", "dashboard %s is not in dashboardsInOrder", uid)
	var requires []requirement
	types := map[string]bool{}
	walkPanels(*b.panels, func(p *panel) {
		if p.Type != "row" {
			types[p.Type] = true
		}
	})
	for _, t := range sortedKeys(types) {
		requires = append(requires, requirement{Type: "panel", ID: t, Name: panelNames()[t], Version: ""})
	}
	requires = append([]requirement{
		{Type: "grafana", ID: "grafana", Name: "Grafana", Version: "10.3.0"},
		{Type: "datasource", ID: "prometheus", Name: "Prometheus", Version: "1.0.0"},
	}, requires...)
	return &dashboard{
		Inputs: []input{{
			Name: "DS_PROMETHEUS", Label: "Prometheus", Type: "datasource", PluginID: "prometheus", PluginName: "Prometheus",
			Description: "The Prometheus that scrapes reliabilityd (with the rules of deploy/prometheus loaded, for the alerts).",
		}},
		Requires:      requires,
		Annotations:   annotationList{List: []annotation{}},
		Description:   description + " Generated by dashboards/gen: edit the generator, not this file.",
		Editable:      true,
		GraphTooltip:  1, // shared crosshair
		Links:         links(uid),
		Panels:        *b.panels,
		Refresh:       "1m",
		SchemaVersion: schemaVersion,
		Tags:          []string{tag},
		Templating:    templating{List: append([]*variable{datasourceVariable()}, variables...)},
		Time:          timeRange{From: from, To: "now"},
		Title:         title,
		UID:           uid,
		Version:       1,
	}
}

// datasourceVariable lets the viewer pick the Prometheus. Imported, its
// default is the data source chosen for DS_PROMETHEUS; provisioned (no
// import step), that placeholder matches no data source and Grafana falls
// back to the default Prometheus.
func datasourceVariable() *variable {
	return &variable{
		Current: map[string]any{"selected": false, "text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"},
		Label:   "Data source", Name: "datasource", Options: []any{}, Query: "prometheus", Refresh: 1, Type: "datasource",
	}
}

// labelValues is a query variable, shown as display, filled with the
// values of label among the series of selector, refreshed when the time
// range changes. The variable is named after the label.
func labelValues(display, label, selector string, multi bool) *variable {
	query := "label_values(" + selector + ", " + label + ")"
	v := &variable{
		Current: map[string]any{}, Datasource: prometheus(), Definition: query, Label: display,
		Multi: multi, IncludeAll: multi, Name: label, Options: []any{}, Query: query, Refresh: 2, Sort: 1, Type: "query",
	}
	if multi {
		v.AllValue = allRegex
	}
	return v
}

// serviceVariable is every dashboard's service variable: the services of
// reliabilityd_service_info, which every configured service has, whatever
// it configures.
func serviceVariable(matchers ...string) *variable {
	selector := "reliabilityd_service_info"
	if len(matchers) > 0 {
		selector = sel(selector, matchers...)
	}
	return labelValues("Service", "service", selector, true)
}

// panelNames are the names Grafana gives the panel plugins the dashboards use.
func panelNames() map[string]string {
	return map[string]string{"stat": "Stat", "state-timeline": "State timeline", "table": "Table", "timeseries": "Time series"}
}

func walkPanels(panels []*panel, fn func(*panel)) {
	for _, p := range panels {
		fn(p)
		if p.Panels != nil {
			walkPanels(*p.Panels, fn)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Counting what a counter added over a time range or a graph's interval.
//
// increase() needs two samples in its window, so it cannot see a series
// step from nothing to its first value: a counter that appears at its first
// increment (probe_failures_total{reason}, "a reason appears once it has
// occurred") would lose that increment, and a reason that occurred once
// would count 0. And increase() over $__rate_interval, drawn at every
// $__interval, counts an increment in every bar whose window holds it.

// absentFor is how long a counter must have had no sample before a window
// for it to count from zero in the window. Range selectors skip the
// staleness markers of failed scrapes and restarts, and an hour rides out a
// restart of the daemon or of Prometheus, so a counter the daemon restores
// from its state file is not counted again from zero after one.
const absentFor = "1h"

// lookback is Prometheus's default lookback delta: how far back an instant
// query finds a series' value.
const lookback = "5m"

// appearedIncrease returns how much a counter that appears at its first
// increment rose over window: increase() where the series had a value in
// the absentFor before the window, and otherwise its last value in the
// window, every increment of which happened inside it.
func appearedIncrease(selector, window string) string {
	before := `last_over_time(` + selector + `[` + absentFor + `] offset ` + window + `)`
	return `(increase(` + selector + `[` + window + `]) and ` + before + `) or (last_over_time(` +
		selector + `[` + window + `]) unless ` + before + `)`
}

// risePerInterval returns how much a counter rose in each interval of a
// graph: its last value in the interval ($__interval, which is the graph's
// step) minus its last value before it. The intervals tile the graph, and
// the bars add up to exactly the counter's rise over the time range.
//
// fromZero is for counters that appear at their first increment or start
// again at zero when the daemon restarts: a series without a value in the
// absentFor before the interval counts from zero, and a drop (a restart)
// counts the value after it. The other counters exist from the start and
// are restored from the state file: without a value in the lookback before
// the interval (a new SLO), or after a drop (a lost state file), the
// interval is left out rather than counting their whole past again.
func risePerInterval(selector string, fromZero bool) string {
	last := `last_over_time(` + selector + `[$__interval])`
	if !fromZero {
		return `(` + last + ` - last_over_time(` + selector + `[` + lookback + `] offset $__interval) >= 0)`
	}
	return `(` + last + ` - last_over_time(` + selector + `[` + absentFor + `] offset $__interval) >= 0) or ` + last
}
