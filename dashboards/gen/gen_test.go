package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestCommittedDashboardsAreFresh fails when dashboards/*.json is not what
// the generator makes now: someone changed the generator or the alert rules
// without regenerating, or edited the JSON by hand.
func TestCommittedDashboardsAreFresh(t *testing.T) {
	files, err := generate(filepath.Join("..", "..", rulesDir))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Errorf("dashboards/%s: %v; generate it from the repository root with\n\tgo run ./dashboards/gen", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("dashboards/%s is stale (%s); regenerate it from the repository root with\n\tgo run ./dashboards/gen", name, firstDifference(got, want))
		}
	}
	committed, err := filepath.Glob(filepath.Join("..", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range committed {
		if _, ok := files[filepath.Base(path)]; !ok {
			t.Errorf("dashboards/%s is not generated: remove it, or generate it in dashboards/gen", filepath.Base(path))
		}
	}
}

// firstDifference says on which line two files first differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return "line " + strconv.Itoa(i+1) + ": committed " + strings.TrimSpace(g[i]) + ", generated " + strings.TrimSpace(w[i])
		}
	}
	return "committed " + strconv.Itoa(len(g)) + " lines, generated " + strconv.Itoa(len(w))
}

// TestEncodeIsStable: keys sorted at every level, two-space indent, no
// HTML escaping, numbers as written, a final newline.
func TestEncodeIsStable(t *testing.T) {
	d := &dashboard{UID: "u", Title: "a < b & c", Tags: []string{"t"}, Version: 1,
		Panels: []*panel{{ID: 1, Type: "stat", Title: "p", Options: map[string]any{"z": 1, "a": 0.999, "m": 86400}}}}
	got, err := encode(d)
	if err != nil {
		t.Fatal(err)
	}
	again, err := encode(d)
	if err != nil || !bytes.Equal(got, again) {
		t.Fatalf("two encodings differ (%v)", err)
	}
	text := string(got)
	for _, want := range []string{
		"{\n  \"__inputs\": null,\n  \"__requires\": null,\n  \"annotations\": {\n    \"list\": null\n  },\n",
		`"title": "a < b & c"`,
		"      \"options\": {\n        \"a\": 0.999,\n        \"m\": 86400,\n        \"z\": 1\n      },\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("encoding lacks %q:\n%s", want, text)
		}
	}
	if !strings.HasSuffix(text, "}\n") || strings.HasSuffix(text, "\n\n") {
		t.Errorf("encoding does not end with one newline: %q", text[len(text)-10:])
	}
}

// TestBuilderLayout: panels flow left to right, wrap below the tallest
// panel of the line, rows take a full line, a collapsed row's panels are
// laid out below it, inside it, and ids are unique across all of them.
func TestBuilderLayout(t *testing.T) {
	b := newBuilder()
	b.row("r1")
	b.add(12, 8, &panel{Title: "a"})
	b.add(8, 4, &panel{Title: "b"})
	b.add(8, 5, &panel{Title: "c"}) // does not fit next to b: next line, below a
	b.add(24, 3, &panel{Title: "d"})
	b.collapsedRow("r2", func(b *builder) {
		b.add(12, 7, &panel{Title: "e"})
		b.add(12, 7, &panel{Title: "f"})
	})
	type placed struct {
		title      string
		id         int
		x, y, w, h int
	}
	var got []placed
	walkPanels(*b.panels, func(p *panel) {
		got = append(got, placed{p.Title, p.ID, p.GridPos.X, p.GridPos.Y, p.GridPos.W, p.GridPos.H})
	})
	want := []placed{
		{"r1", 1, 0, 0, 24, 1},
		{"a", 2, 0, 1, 12, 8},
		{"b", 3, 12, 1, 8, 4},
		{"c", 4, 0, 9, 8, 5},
		{"d", 5, 0, 14, 24, 3},
		{"r2", 6, 0, 17, 24, 1},
		{"e", 7, 0, 18, 12, 7},
		{"f", 8, 12, 18, 12, 7},
	}
	if !slices.Equal(got, want) {
		t.Errorf("layout:\n got %v\nwant %v", got, want)
	}
	if top := *b.panels; len(top) != 6 || len(*top[5].Panels) != 2 {
		t.Errorf("want 6 top-level panels, the collapsed row holding 2; got %d", len(top))
	}
}

// TestBuilderRefusesPanelAfterCollapsedRow: Grafana would show such a
// panel inside the collapsed row's section, though the row does not hold it.
func TestBuilderRefusesPanelAfterCollapsedRow(t *testing.T) {
	b := newBuilder()
	b.collapsedRow("r", func(b *builder) { b.add(24, 4, &panel{Title: "inside"}) })
	b.row("next") // a row may follow
	b.collapsedRow("r2", func(*builder) {})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `"after" follows a collapsed row`) {
			t.Errorf("adding a panel after a collapsed row: recovered %v, want a panic naming it", r)
		}
	}()
	b.add(24, 4, &panel{Title: "after"})
}

func TestRefID(t *testing.T) {
	for i, want := range map[int]string{0: "A", 1: "B", 25: "Z", 26: "AA", 27: "AB", 51: "AZ", 52: "BA"} {
		if got := refID(i); got != want {
			t.Errorf("refID(%d) = %s, want %s", i, got, want)
		}
	}
}

// TestAlertNames reads the alert names of rule files and refuses a name
// that could not go into a regular expression as it is.
func TestAlertNames(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := func() ([]string, error) {
		rules, err := readRules(dir)
		if err != nil {
			return nil, err
		}
		return alertNames(rules)
	}
	write("b.rules.yml", "groups:\n  - name: g\n    rules:\n      - {alert: Zeta, expr: up == 0}\n      - {record: r:up, expr: up}\n")
	write("a.rules.yml", "groups:\n  - name: h\n    rules:\n      - {alert: Alpha, expr: up == 0}\n      - {alert: Zeta, expr: up == 1}\n")
	write("notes.yml", "groups:\n  - name: i\n    rules:\n      - {alert: Ignored, expr: up}\n")
	if got, err := names(); err != nil || !slices.Equal(got, []string{"Alpha", "Zeta"}) {
		t.Errorf("alertNames = %q, %v; want [Alpha Zeta]", got, err)
	}
	write("c.rules.yml", "groups:\n  - name: j\n    rules:\n      - {alert: \"Bad|Name\", expr: up}\n")
	if _, err := names(); err == nil || !strings.Contains(err.Error(), `"Bad|Name"`) {
		t.Errorf("alertNames with a name that is no identifier: %v", err)
	}
	if _, err := readRules(t.TempDir()); err == nil {
		t.Error("readRules of a directory without rule files: no error")
	}
}

// TestBurnThresholds reads the long window, threshold and severity of each
// multiwindow burn-rate condition, whatever the layout of the expression,
// and refuses what it could not colour.
func TestBurnThresholds(t *testing.T) {
	pair := func(long, short, rate string) string {
		return `slo_burn_rate{window="` + long + `"} > ` + rate + "\n  and ignoring (window)\n  slo_burn_rate{window=\"" + short + `"} > ` + rate
	}
	tests := []struct {
		name    string
		rules   []fileRule
		want    []burnThreshold
		wantErr string
	}{
		{
			name: "page and ticket, sorted by window",
			rules: []fileRule{
				{rule: rule{Alert: "Ticket", Expr: "(" + pair("3d", "6h", "1") + ") or (" + pair("1d", "2h", "3") + ")", Labels: map[string]string{"severity": "ticket"}}},
				{rule: rule{Alert: "Page", Expr: pair("1h", "5m", "14.4") + " or " + pair("6h", "30m", "6"), Labels: map[string]string{"severity": "page"}}},
				{rule: rule{Alert: "Other", Expr: `slo_burn_rate{window="1h"} > 2`, Labels: map[string]string{"severity": "page"}}},
			},
			want: []burnThreshold{
				{window: "1h", length: model.Duration(time.Hour), rate: 14.4, severity: "page"},
				{window: "6h", length: model.Duration(6 * time.Hour), rate: 6, severity: "page"},
				{window: "1d", length: model.Duration(24 * time.Hour), rate: 3, severity: "ticket"},
				{window: "3d", length: model.Duration(72 * time.Hour), rate: 1, severity: "ticket"},
			},
		},
		{
			name:    "unknown severity",
			rules:   []fileRule{{rule: rule{Alert: "Page", Expr: pair("1h", "5m", "14.4"), Labels: map[string]string{"severity": "critical"}}, file: "f.yml"}},
			wantErr: `f.yml: alert Page: severity "critical", want one of ["page" "ticket"]`,
		},
		{
			name: "a window twice",
			rules: []fileRule{
				{rule: rule{Alert: "A", Expr: pair("1h", "5m", "14.4"), Labels: map[string]string{"severity": "page"}}},
				{rule: rule{Alert: "B", Expr: pair("1h", "5m", "10"), Labels: map[string]string{"severity": "page"}}, file: "f.yml"},
			},
			wantErr: "f.yml: alert B: a second burn-rate threshold on window 1h",
		},
		{
			name:    "none",
			rules:   []fileRule{{rule: rule{Alert: "Down", Expr: "up == 0"}}},
			wantErr: "no burn-rate alert in the rule files",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := burnThresholds(tc.rules)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case !slices.Equal(got, tc.want):
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestBurnColorsFollowRules: the report's burn columns and graphs colour at
// the thresholds of the shipped rules, each window at its own alert's.
func TestBurnColorsFollowRules(t *testing.T) {
	s, err := loadSet(filepath.Join("..", "..", rulesDir))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1h": "14.4 red", "6h": "6 red", "1d": "3 orange", "3d": "1 orange"}
	got := map[string]string{}
	for _, b := range s.burn {
		steps := s.burnColors(b.window)["steps"].([]any)
		last := steps[len(steps)-1].(map[string]any)
		got[b.window] = fmt.Sprint(last["value"], " ", last["color"])
	}
	if !maps.Equal(got, want) {
		t.Errorf("burn colours %v, want %v (deploy/prometheus/slo.rules.yml)", got, want)
	}
}

// TestAlertPanelsListShippedAlerts: the alert panels select exactly the
// alerts of deploy/prometheus.
func TestAlertPanelsListShippedAlerts(t *testing.T) {
	s, err := loadSet(filepath.Join("..", "..", rulesDir))
	if err != nil {
		t.Fatal(err)
	}
	names := s.alertNames
	if len(names) < 10 || !slices.Contains(names, "SLOErrorBudgetBurnPage") || !slices.Contains(names, "ReliabilitydDown") {
		t.Fatalf("alert names of the shipped rules: %q", names)
	}
	want := `alertname=~"` + strings.Join(names, "|") + `"`
	found := 0
	walkPanels(s.report().Panels, func(p *panel) {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "ALERTS{") {
				found++
				if !strings.Contains(tg.Expr, want) || !strings.Contains(tg.Expr, `alertstate="firing"`) {
					t.Errorf("panel %q: %s does not select the firing alerts %s", p.Title, tg.Expr, want)
				}
			}
		}
	})
	if found != 2 {
		t.Errorf("%d ALERTS queries in the report, want 2 (the count and the table)", found)
	}
}
