package main

// builder lays out a dashboard's panels on Grafana's 24-column grid, left
// to right and top to bottom, and numbers them. Panels of one line share
// its top; a panel that does not fit starts the next line below the
// tallest panel of the current one, so no two panels ever overlap.
type builder struct {
	nextID *int // shared with the builders of collapsed rows: ids are unique per dashboard
	panels *[]*panel
	x, y   int
	lineH  int // height of the tallest panel on the current line
	// collapsed: the last row added is collapsed, and only a row may follow
	// it, since Grafana would show a panel that follows in its section.
	collapsed bool
}

func newBuilder() *builder {
	id := 1
	return &builder{nextID: &id, panels: &[]*panel{}}
}

func (b *builder) id() int {
	id := *b.nextID
	*b.nextID++
	return id
}

// newLine moves below the current line.
func (b *builder) newLine() {
	b.y += b.lineH
	b.x, b.lineH = 0, 0
}

// add places p with width w and height h.
func (b *builder) add(w, h int, p *panel) {
	mustf(w > 0 && w <= gridWidth && h > 0, "panel %q: bad size %dx%d", p.Title, w, h)
	mustf(!b.collapsed || p.Type == "row", "panel %q follows a collapsed row", p.Title)
	if b.x+w > gridWidth {
		b.newLine()
	}
	p.GridPos = gridPos{H: h, W: w, X: b.x, Y: b.y}
	p.ID = b.id()
	b.x += w
	b.lineH = max(b.lineH, h)
	*b.panels = append(*b.panels, p)
}

// row starts an expanded row: the panels added after it, up to the next
// row, belong to it.
func (b *builder) row(title string) {
	b.newLine()
	collapsed := false
	b.add(gridWidth, 1, &panel{Type: "row", Title: title, Collapsed: &collapsed, Panels: &[]*panel{}})
	b.newLine()
	b.collapsed = false
}

// collapsedRow adds a collapsed row holding the panels fill adds. Grafana
// keeps a collapsed row's panels inside it, laid out as they appear once
// it is expanded: from the line below the row. Only rows may follow it.
func (b *builder) collapsedRow(title string, fill func(*builder)) {
	b.newLine()
	collapsed := true
	children := &[]*panel{}
	b.add(gridWidth, 1, &panel{Type: "row", Title: title, Collapsed: &collapsed, Panels: children})
	b.newLine()
	inner := &builder{nextID: b.nextID, panels: children, y: b.y}
	fill(inner)
	b.collapsed = true
}

// Panel constructors. Every one takes the title, a description (Grafana
// shows it as the panel's tooltip: say what the figure is and where it
// comes from), and the queries.

// timeseries draws range queries as lines.
func timeseries(title, description, unit string, queries ...query) *panel {
	return &panel{
		Type: "timeseries", Title: title, Description: description, Datasource: prometheus(),
		Targets: rangeTargets(queries),
		FieldConfig: &fieldConfig{
			Defaults: map[string]any{
				"unit":   unit,
				"custom": map[string]any{"fillOpacity": 10, "lineWidth": 1, "showPoints": "never", "spanNulls": false},
			},
			Overrides: []map[string]any{},
		},
		Options: map[string]any{
			"legend":  map[string]any{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []string{"lastNotNull", "max"}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		},
	}
}

// bars draws range queries as stacked bars: counts per interval, from
// risePerInterval.
func bars(title, description, unit string, queries ...query) *panel {
	p := timeseries(title, description, unit, queries...)
	p.FieldConfig.Defaults["custom"] = map[string]any{
		"drawStyle": "bars", "fillOpacity": 80, "lineWidth": 1, "showPoints": "never",
		"stacking": map[string]any{"group": "A", "mode": "normal"},
	}
	return p
}

// stateTimeline shows 0/1 gauges over time as coloured bands.
func stateTimeline(title, description string, valueMappings []any, queries ...query) *panel {
	return &panel{
		Type: "state-timeline", Title: title, Description: description, Datasource: prometheus(),
		Targets: rangeTargets(queries),
		FieldConfig: &fieldConfig{
			Defaults:  map[string]any{"mappings": valueMappings, "color": map[string]any{"mode": "thresholds"}, "custom": map[string]any{"fillOpacity": 80, "lineWidth": 0}},
			Overrides: []map[string]any{},
		},
		Options: map[string]any{
			"mergeValues": true, "showValue": "never", "rowHeight": 0.9, "alignValue": "left",
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "single", "sort": "none"},
		},
	}
}

// stat shows the latest value of each series of instant queries.
func stat(title, description, unit string, queries ...query) *panel {
	return &panel{
		Type: "stat", Title: title, Description: description, Datasource: prometheus(),
		Targets: instantTargets(queries, "time_series"),
		FieldConfig: &fieldConfig{
			Defaults:  map[string]any{"unit": unit, "color": map[string]any{"mode": "thresholds"}, "thresholds": thresholds("green")},
			Overrides: []map[string]any{},
		},
		Options: map[string]any{
			"colorMode": "value", "graphMode": "none", "justifyMode": "auto", "orientation": "auto", "textMode": "auto",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		},
	}
}

// withThresholds sets a panel's thresholds (stat and time series).
func withThresholds(p *panel, t map[string]any) *panel {
	p.FieldConfig.Defaults["thresholds"] = t
	if p.Type == "timeseries" {
		custom := p.FieldConfig.Defaults["custom"].(map[string]any)
		custom["thresholdsStyle"] = map[string]any{"mode": "line"}
	}
	return p
}

// withMappings sets a stat's value mappings.
func withMappings(p *panel, m []any) *panel {
	p.FieldConfig.Defaults["mappings"] = m
	return p
}

// withDecimals fixes the decimals a stat or graph shows: an objective of
// 99.999 % must not round to 100 %.
func withDecimals(p *panel, decimals int) *panel {
	p.FieldConfig.Defaults["decimals"] = decimals
	return p
}

// withNoValue sets what a panel shows when its queries return nothing: the
// gauges it reads exist only while there is something to report.
func withNoValue(p *panel, text string) *panel {
	p.FieldConfig.Defaults["noValue"] = text
	return p
}

// withOverrides appends field overrides.
func withOverrides(p *panel, overrides ...map[string]any) *panel {
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, overrides...)
	return p
}

// withMinMax fixes a panel's axis (or gauge) bounds.
func withMinMax(p *panel, lo, hi any) *panel {
	if lo != nil {
		p.FieldConfig.Defaults["min"] = lo
	}
	if hi != nil {
		p.FieldConfig.Defaults["max"] = hi
	}
	return p
}

// table merges instant queries that share their label columns (each
// query aggregates to the same labels, e.g. by (service, slo)) into one row
// per label set, a column per query. labels are the label columns, in
// order; labelLinks gives label columns data links (a service's name to its
// service detail).
func table(title, description string, labels []string, columns []column, labelLinks map[string][]map[string]any) *panel {
	queries := make([]query, len(columns))
	for i, c := range columns {
		queries[i] = c.query
	}
	excluded := map[string]any{"Time": true}
	index := map[string]any{}
	for i, l := range labels {
		index[l] = i
	}
	var overrides []map[string]any
	for i, c := range columns {
		name := "Value #" + refID(i)
		if len(columns) == 1 {
			name = "Value"
		}
		if c.hidden {
			excluded[name] = true
			continue
		}
		index[name] = len(labels) + i
		props := []map[string]any{property("displayName", c.header)}
		if c.unit != "" {
			props = append(props, property("unit", c.unit))
		}
		if c.decimals != nil {
			props = append(props, property("decimals", *c.decimals))
		}
		if c.mappings != nil {
			props = append(props, property("mappings", c.mappings))
		}
		if c.thresholds != nil {
			props = append(props, property("thresholds", c.thresholds))
		}
		switch c.cell {
		case "":
		case "gauge":
			props = append(props, property("custom.cellOptions", map[string]any{"type": "gauge", "mode": "basic"}),
				property("min", 0), property("max", 1))
		default:
			props = append(props, property("custom.cellOptions", map[string]any{"type": c.cell}))
		}
		overrides = append(overrides, byName(name, props...))
	}
	for _, l := range labels {
		if links, ok := labelLinks[l]; ok {
			overrides = append(overrides, byName(l, property("links", links)))
		}
	}
	transformations := []map[string]any{
		{"id": "merge", "options": map[string]any{}},
		{"id": "organize", "options": map[string]any{"excludeByName": excluded, "indexByName": index, "renameByName": map[string]any{}}},
	}
	return &panel{
		Type: "table", Title: title, Description: description, Datasource: prometheus(),
		Targets:         instantTargets(queries, "table"),
		Transformations: transformations,
		FieldConfig: &fieldConfig{
			Defaults:  map[string]any{"custom": map[string]any{"align": "auto", "filterable": true}, "color": map[string]any{"mode": "thresholds"}, "thresholds": thresholds("green")},
			Overrides: overrides,
		},
		Options: map[string]any{"showHeader": true, "cellHeight": "sm", "footer": map[string]any{"show": false, "reducer": []string{"sum"}, "fields": ""}},
	}
}

// labelTable shows the labels of an instant query's series, one row each,
// and hides the value: for _info metrics and active alerts.
func labelTable(title, description string, expr string, hide ...string) *panel {
	excluded := map[string]any{"Time": true, "Value": true, "__name__": true}
	for _, h := range hide {
		excluded[h] = true
	}
	return &panel{
		Type: "table", Title: title, Description: description, Datasource: prometheus(),
		Targets:         instantTargets([]query{q(expr, "")}, "table"),
		Transformations: []map[string]any{{"id": "organize", "options": map[string]any{"excludeByName": excluded, "indexByName": map[string]any{}, "renameByName": map[string]any{}}}},
		FieldConfig: &fieldConfig{
			Defaults:  map[string]any{"custom": map[string]any{"align": "auto", "filterable": true}},
			Overrides: []map[string]any{},
		},
		Options: map[string]any{"showHeader": true, "cellHeight": "sm", "footer": map[string]any{"show": false, "reducer": []string{"sum"}, "fields": ""}},
	}
}
