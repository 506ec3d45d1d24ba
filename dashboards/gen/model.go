package main

import (
	"fmt"
	"strings"
)

// The JSON model of a Grafana dashboard, as much of it as these dashboards
// use (schema version 39, Grafana 10.3 and later). Fields that Grafana fills
// with defaults are left out; free-form panel options are maps.

// schemaVersion is the dashboard schema the JSON follows.
const schemaVersion = 39

// gridWidth is the width of Grafana's grid: a panel's x+w never exceeds it.
const gridWidth = 24

// tag marks every dashboard of the set; the links between them and a folder
// search both rely on it.
const tag = "reliabilityd"

// datasourceRef points a panel, a target, a variable or an annotation at a
// data source: always the dashboard's datasource variable.
type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// prometheus returns the reference to the datasource variable.
func prometheus() *datasourceRef {
	return &datasourceRef{Type: "prometheus", UID: "${datasource}"}
}

type dashboard struct {
	Inputs               []input        `json:"__inputs"`
	Requires             []requirement  `json:"__requires"`
	Annotations          annotationList `json:"annotations"`
	Description          string         `json:"description"`
	Editable             bool           `json:"editable"`
	FiscalYearStartMonth int            `json:"fiscalYearStartMonth"`
	GraphTooltip         int            `json:"graphTooltip"`
	ID                   *int           `json:"id"` // null: Grafana assigns it
	Links                []link         `json:"links"`
	Panels               []*panel       `json:"panels"`
	Refresh              string         `json:"refresh"`
	SchemaVersion        int            `json:"schemaVersion"`
	Tags                 []string       `json:"tags"`
	Templating           templating     `json:"templating"`
	Time                 timeRange      `json:"time"`
	Timepicker           struct{}       `json:"timepicker"`
	Timezone             string         `json:"timezone"`
	Title                string         `json:"title"`
	UID                  string         `json:"uid"`
	Version              int            `json:"version"`
}

// input is an entry of __inputs: what Grafana's import asks for.
type input struct {
	Name        string `json:"name"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Type        string `json:"type"`
	PluginID    string `json:"pluginId"`
	PluginName  string `json:"pluginName"`
}

// requirement is an entry of __requires: what the dashboard needs installed.
type requirement struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

type annotationList struct {
	List []annotation `json:"list"`
}

// annotation is a Prometheus annotation query. Grafana marks the time where
// a series of the result is above 0 and merges adjacent points into a
// region, so a 0/1 gauge (maintenance, outage) needs no comparison: its
// zeros are ignored.
type annotation struct {
	Datasource  *datasourceRef `json:"datasource"`
	Enable      bool           `json:"enable"`
	Expr        string         `json:"expr"`
	IconColor   string         `json:"iconColor"`
	Name        string         `json:"name"`
	Step        string         `json:"step"`
	TagKeys     string         `json:"tagKeys"`
	TitleFormat string         `json:"titleFormat"`
}

// link is a dashboard link. The set links each dashboard to the others by
// uid; keepTime and includeVars carry the time range and the variables.
type link struct {
	AsDropdown  bool     `json:"asDropdown"`
	Icon        string   `json:"icon"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Title       string   `json:"title"`
	Tooltip     string   `json:"tooltip"`
	Type        string   `json:"type"`
	URL         string   `json:"url"`
}

type templating struct {
	List []*variable `json:"list"`
}

// variable is a template variable: the datasource, or a query variable
// filled by label_values(selector, label).
type variable struct {
	AllValue   string         `json:"allValue,omitempty"`
	Current    map[string]any `json:"current"`
	Datasource *datasourceRef `json:"datasource,omitempty"`
	Definition string         `json:"definition,omitempty"`
	Hide       int            `json:"hide"`
	IncludeAll bool           `json:"includeAll"`
	Label      string         `json:"label"`
	Multi      bool           `json:"multi"`
	Name       string         `json:"name"`
	Options    []any          `json:"options"`
	Query      string         `json:"query"`
	Refresh    int            `json:"refresh"`
	Regex      string         `json:"regex"`
	Sort       int            `json:"sort,omitempty"`
	Type       string         `json:"type"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// panel is a panel or a row. Rows have no datasource, targets or field
// configuration; a collapsed row holds its panels in Panels.
type panel struct {
	Collapsed       *bool            `json:"collapsed,omitempty"`
	Datasource      *datasourceRef   `json:"datasource,omitempty"`
	Description     string           `json:"description,omitempty"`
	FieldConfig     *fieldConfig     `json:"fieldConfig,omitempty"`
	GridPos         gridPos          `json:"gridPos"`
	ID              int              `json:"id"`
	Options         map[string]any   `json:"options,omitempty"`
	Panels          *[]*panel        `json:"panels,omitempty"`
	Targets         []*target        `json:"targets,omitempty"`
	Title           string           `json:"title"`
	Transformations []map[string]any `json:"transformations,omitempty"`
	Type            string           `json:"type"`
}

type fieldConfig struct {
	Defaults  map[string]any   `json:"defaults"`
	Overrides []map[string]any `json:"overrides"`
}

// target is one PromQL query of a panel.
type target struct {
	Datasource   *datasourceRef `json:"datasource"`
	EditorMode   string         `json:"editorMode"`
	Expr         string         `json:"expr"`
	Format       string         `json:"format,omitempty"`
	Instant      bool           `json:"instant"`
	LegendFormat string         `json:"legendFormat,omitempty"`
	Range        bool           `json:"range"`
	RefID        string         `json:"refId"`
}

// query is what a panel builder is given: an expression and how to label
// its series.
type query struct {
	expr, legend string
}

func q(expr, legend string) query { return query{expr: expr, legend: legend} }

// sel writes a selector: the metric with the matchers given, in order.
func sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(matchers, ",") + "}"
}

// refID names the i-th target of a panel: A, B, ... Z, then AA, AB...
func refID(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return refID(i/26-1) + refID(i%26)
}

// rangeTargets makes time-series targets (range queries).
func rangeTargets(queries []query) []*target {
	targets := make([]*target, len(queries))
	for i, qu := range queries {
		targets[i] = &target{Datasource: prometheus(), EditorMode: "code", Expr: qu.expr,
			LegendFormat: qu.legend, Range: true, RefID: refID(i)}
	}
	return targets
}

// instantTargets makes targets evaluated once, at the end of the range.
func instantTargets(queries []query, format string) []*target {
	targets := make([]*target, len(queries))
	for i, qu := range queries {
		targets[i] = &target{Datasource: prometheus(), EditorMode: "code", Expr: qu.expr, Format: format,
			Instant: true, LegendFormat: qu.legend, RefID: refID(i)}
	}
	return targets
}

// thresholds builds absolute threshold steps: a base colour, then
// value/colour pairs in increasing order.
func thresholds(base string, steps ...any) map[string]any {
	list := []any{map[string]any{"color": base, "value": nil}}
	for i := 0; i+1 < len(steps); i += 2 {
		list = append(list, map[string]any{"value": steps[i], "color": steps[i+1]})
	}
	return map[string]any{"mode": "absolute", "steps": list}
}

// valueText maps exact values to a text and colour, e.g. 1 to "yes"/green.
type valueText struct {
	value       string
	text, color string
}

func mappings(values ...valueText) []any {
	options := map[string]any{}
	for i, v := range values {
		options[v.value] = map[string]any{"text": v.text, "color": v.color, "index": i}
	}
	return []any{map[string]any{"type": "value", "options": options}}
}

// Frequently used mappings of 0/1 gauges.
func yesNo() []any {
	return mappings(valueText{"0", "no", "red"}, valueText{"1", "yes", "green"})
}

func upDown() []any {
	return mappings(valueText{"0", "DOWN", "red"}, valueText{"1", "UP", "green"})
}

// overdue maps 1 to a red "overdue": the gauge is good at 0.
func overdue() []any {
	return mappings(valueText{"0", "no", "green"}, valueText{"1", "overdue", "red"})
}

func outageMap() []any {
	return mappings(valueText{"0", "no outage", "green"}, valueText{"1", "OUTAGE", "red"})
}

// byName matches a field by name in an override.
func byName(name string, properties ...map[string]any) map[string]any {
	return map[string]any{"matcher": map[string]any{"id": "byName", "options": name}, "properties": properties}
}

// byRefID matches the fields of one query in an override.
func byRefID(ref string, properties ...map[string]any) map[string]any {
	return map[string]any{"matcher": map[string]any{"id": "byFrameRefID", "options": ref}, "properties": properties}
}

func property(id string, value any) map[string]any {
	return map[string]any{"id": id, "value": value}
}

// dashed draws a query's series as a dashed line: objectives, limits and
// targets drawn against the measured series.
func dashed(ref string) map[string]any {
	return byRefID(ref,
		property("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}}),
		property("custom.fillOpacity", 0))
}

// column describes one value column of a table built from instant queries:
// its header, unit and how it is shown.
type column struct {
	query
	header     string
	unit       string
	decimals   *int
	mappings   []any
	thresholds map[string]any
	// cell is the cell type: "" (text), "color-text", "color-background"
	// or "gauge".
	cell string
	// hidden hides the value: the query only contributes label columns.
	hidden bool
}

func intp(i int) *int { return &i }

// mustf panics unless ok: the generator made a dashboard it must never
// make, which is a programming error in this package.
func mustf(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Sprintf(format, args...))
	}
}
