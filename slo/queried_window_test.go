package slo

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

func queriedYAML(slos string) string {
	return `
prometheus_sources: [{name: p, url: "http://127.0.0.1:9090"}]
services:
  - name: shop
    slos:
` + slos
}

const windowModeSLOs = `
      - name: api
        objective: 99.9
        window: 30d
        sli: {prometheus: {source: p, mode: window, bad: "sum(increase(e[$window]))", total: "sum(increase(r[$window]))"}}
      - name: monthly
        objective: 99
        calendar: month
        timezone: Europe/Berlin
        sli: {prometheus: {source: p, mode: window, good: "sum(increase(g[$window]))", total: "sum(increase(r[$window]))"}}
`

// windowResult is a window-mode run at at: for every window of s, total
// is a request per second of the window and bad a share badRatio of it.
func windowResult(t *testing.T, s *config.SLOConfig, at time.Time, badRatio float64) collector.Result {
	t.Helper()
	result := collector.Result{Start: at, Success: true}
	for _, length := range QueryWindows(s)(at) {
		total := length.Seconds()
		result.Windows = append(result.Windows, collector.WindowCounts{Length: length, Good: total - total*badRatio, Total: total})
	}
	return result
}

// TestWindowModeFigures: a window-mode SLI's figures are the source's,
// window by window, with the budget math on them; they stay for 5
// minutes after a failed query, and a reload keeps them unless a window
// changed.
func TestWindowModeFigures(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := newTestEngine(t, queriedYAML(windowModeSLOs), &now)
	cfg, err := config.Parse([]byte(queriedYAML(windowModeSLOs)), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	api, monthly := &cfg.Services[0].SLOs[0], &cfg.Services[0].SLOs[1]
	if lengths := QueryWindows(api)(now); len(lengths) != numWindows {
		t.Fatalf("%d windows to query for a 30d SLO, want %d", len(lengths), numWindows)
	}
	apiID := collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("api")}
	monthlyID := collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("monthly")}
	e.Record(apiID, windowResult(t, api, now, 0.0005))
	e.Record(monthlyID, windowResult(t, monthly, now, 0.02))

	s := findSLO(e.Evaluate(now), "api")
	// Independently: 30 days at a request per second, 0.05 % bad.
	total30d := 30 * 86400.0
	bad30d := total30d * 0.0005
	if got := s.Windows[WindowFull]; got.Total() != total30d || got.Bad != bad30d {
		t.Errorf("full window %+v, want %v events, %v bad", got, total30d, bad30d)
	}
	if sli, ok := s.SLI(Window5m); !ok || sli != (300-300*0.0005)/300 {
		t.Errorf("5m SLI %v (%v), want %v", sli, ok, (300-300*0.0005)/300)
	}
	budget := s.Budget()
	allowed := 0.001 * total30d
	remaining := 1 - bad30d/allowed
	burn1h := ((3600 * 0.0005) / 3600) / 0.001
	if budget.Events != allowed || budget.ConsumedEvents != bad30d || budget.RemainingRatio != remaining {
		t.Errorf("budget %+v, want %v allowed, %v spent, %v left", budget, allowed, bad30d, remaining)
	}
	if want := remaining * (30 * 86400) / burn1h; math.Abs(budget.ExhaustionSeconds-want) > 1e-6 {
		t.Errorf("exhaustion in %v s, want %v", budget.ExhaustionSeconds, want)
	}
	if !s.FiguresAt.Equal(now) || !s.WindowStart.Equal(now.Add(-30*24*time.Hour)) || s.WindowLength != 30*24*time.Hour {
		t.Errorf("figures at %v, window %v + %v", s.FiguresAt, s.WindowStart, s.WindowLength)
	}

	// The calendar month in Berlin: since November 1st 00:00 CET.
	m := findSLO(e.Evaluate(now), "monthly")
	periodStart := time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	elapsed := now.Sub(periodStart).Seconds()
	if got := m.Windows[WindowFull]; got.Total() != elapsed || math.Abs(got.Bad-elapsed*0.02) > 1e-6 {
		t.Errorf("calendar window %+v, want %v events, 2 %% bad", got, elapsed)
	}
	if !m.WindowStart.Equal(periodStart) || m.WindowLength != 30*24*time.Hour {
		t.Errorf("calendar window from %v for %v, want November in Berlin", m.WindowStart, m.WindowLength)
	}

	// A failed run records nothing; the figures stay for 5 minutes.
	e.Record(apiID, collector.Result{Start: now.Add(time.Minute), Reason: collector.ReasonTimeout})
	if s := findSLO(e.Evaluate(now.Add(5*time.Minute)), "api"); s.Windows[WindowFull].Total() != total30d {
		t.Errorf("figures gone 5 minutes after they were queried: %+v", s.Windows[WindowFull])
	}
	if s := findSLO(e.Evaluate(now.Add(5*time.Minute+time.Millisecond)), "api"); s.Windows != ([numWindows]WindowEvents{}) {
		t.Errorf("figures older than 5 minutes still shown: %+v", s.Windows)
	}

	// A reload that keeps the windows keeps the figures; a new window
	// drops them (they were counted over the old one).
	applyYAML(t, e, queriedYAML(strings.Replace(windowModeSLOs, "objective: 99.9", "objective: 99.5", 1)))
	if s := findSLO(e.Evaluate(now), "api"); s.Windows[WindowFull].Total() != total30d || s.ErrorBudget != 0.005 {
		t.Errorf("after a new objective: full window %+v, budget ratio %v", s.Windows[WindowFull], s.ErrorBudget)
	}
	applyYAML(t, e, queriedYAML(strings.Replace(windowModeSLOs, "window: 30d", "window: 7d", 1)))
	if s := findSLO(e.Evaluate(now), "api"); s.Windows[WindowFull].Total() != 0 {
		t.Errorf("after a new window: full window still %+v", s.Windows[WindowFull])
	}
}

// TestWindowModeFamilies: a window-mode SLI exports its window figures,
// fractions included, but no event counters: no event passes through
// the daemon.
func TestWindowModeFamilies(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := newTestEngine(t, queriedYAML(windowModeSLOs), &now)
	e.Record(collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("api")}, collector.Result{Start: now, Success: true,
		Windows: []collector.WindowCounts{{Length: 5 * time.Minute, Good: 299.25, Total: 300.5}}})
	e.Evaluate(now)
	found := map[string]string{}
	err := e.EachFamily(func(mf *dto.MetricFamily) error {
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["slo"] == "api" && (labels["window"] == "" || labels["window"] == "5m") {
				found[mf.GetName()] = "x"
				if mf.GetName() == "slo_window_events" {
					found[mf.GetName()] = strings.TrimSpace(m.GetGauge().String())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found["slo_window_events"] != "value:300.5" {
		t.Errorf("slo_window_events{window=5m} = %q, want 300.5", found["slo_window_events"])
	}
	for _, absent := range []string{"slo_events_total", "slo_excluded_events_total", "slo_window_excluded_events"} {
		if _, ok := found[absent]; ok {
			t.Errorf("%s exported for a window-mode SLI", absent)
		}
	}
	if _, ok := found["slo_burn_rate"]; !ok {
		t.Errorf("no slo_burn_rate for the 5m window")
	}
}

// TestQueriedCoverage: the coverage of an events-mode SLI's recorded
// events starts at the oldest range counted, survives a restart, and
// moves forward when a shorter window (or a new calendar period) drops
// events, so that a longer window later backfills them again.
func TestQueriedCoverage(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	slos := `
      - name: api
        objective: 99
        window: 30d
        sli: {prometheus: {source: p, bad: "sum(increase(e[$window]))", total: "sum(increase(r[$window]))"}}
`
	e := newTestEngine(t, queriedYAML(slos), &now)
	id := collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("api")}
	from := now.Add(-30 * 24 * time.Hour)
	e.Record(id, collector.Result{Start: now, Success: true, Events: []collector.EventCounts{
		{From: from.Add(time.Hour), At: now.Add(-time.Millisecond), Good: 10},
		{From: from, At: from.Add(time.Hour - time.Millisecond), Good: 5}}})
	if got := e.Coverage("shop", "api"); !got.From.Equal(from) || !got.To.Equal(now.Add(-time.Millisecond)) {
		t.Errorf("coverage %v to %v, want %v to %v", got.From, got.To, from, now.Add(-time.Millisecond))
	}

	// Across a restart.
	state, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewEngine(EngineOptions{Now: func() time.Time { return now }})
	if err := restored.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, restored, queriedYAML(slos))
	if got := restored.Coverage("shop", "api"); !got.From.Equal(from) {
		t.Errorf("coverage after a restart from %v, want %v", got.From, from)
	}

	// A 10d window keeps 240 hourly slots before the current one.
	applyYAML(t, restored, queriedYAML(strings.Replace(slos, "window: 30d", "window: 10d", 1)))
	want := now.Add(-time.Millisecond).Truncate(time.Hour).Add(-240 * time.Hour)
	if got := restored.Coverage("shop", "api"); !got.From.Equal(want) {
		t.Errorf("coverage after the window shrank from %v, want %v", got.From, want)
	}
	// A 2d window needs no hourly ring; a calendar quarter after it is
	// seeded from the 5-minute ring (3 days).
	applyYAML(t, restored, queriedYAML(strings.Replace(slos, "window: 30d", "window: 2d", 1)))
	applyYAML(t, restored, queriedYAML(strings.Replace(slos, "window: 30d", "calendar: quarter", 1)))
	want = now.Add(-time.Millisecond).Truncate(5 * time.Minute).Add(-864 * 5 * time.Minute)
	if got := restored.Coverage("shop", "api"); !got.From.Equal(want) {
		t.Errorf("coverage after the calendar was rebuilt from %v, want %v", got.From, want)
	}
	// An unknown SLO covers nothing.
	if got := e.Coverage("shop", "nonexistent"); !got.From.IsZero() || !got.To.IsZero() {
		t.Errorf("coverage of an unknown SLO %v", got)
	}
}

// TestStateVersion1: a section written before the queried-from time was
// added still loads, with no coverage start.
func TestStateVersion1(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	slos := `
      - name: api
        objective: 99
        window: 1d
        sli: {prometheus: {source: p, bad: "sum(increase(e[$window]))", total: "sum(increase(r[$window]))"}}
`
	e := newTestEngine(t, queriedYAML(slos), &now)
	e.Record(collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("api")}, collector.Result{Start: now, Success: true,
		Events: []collector.EventCounts{{At: now.Add(-time.Second), Good: 7, Bad: 1}}})
	v2, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	// Version 1 lacks the queried-from varint (0 here) after the last event.
	prefix := append([]byte{2}, binary.AppendUvarint(nil, 1)...)
	prefix = appendString(prefix, "shop/api")
	prefix = binary.AppendVarint(prefix, int64(24*time.Hour))
	prefix = appendString(prefix, "")
	prefix = appendString(prefix, "UTC")
	prefix = binary.AppendVarint(prefix, now.Add(-time.Second).UnixNano())
	if !bytes.HasPrefix(v2, append(prefix, 0)) {
		t.Fatalf("version 2 section does not start as expected")
	}
	v1 := append(append([]byte{1}, prefix[1:]...), v2[len(prefix)+1:]...)
	restored := NewEngine(EngineOptions{Now: func() time.Time { return now }})
	if err := restored.UnmarshalState(v1); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, restored, queriedYAML(slos))
	s := findSLO(restored.Evaluate(now), "api")
	if s.Good != 7 || s.Bad != 1 || !restored.Coverage("shop", "api").From.IsZero() {
		t.Errorf("version 1: %d good, %d bad, coverage %v", s.Good, s.Bad, restored.Coverage("shop", "api"))
	}
	if err := restored.UnmarshalState(append([]byte{3}, v2[1:]...)); err == nil || !strings.Contains(err.Error(), "unknown version 3") {
		t.Errorf("version 3 read: %v", err)
	}
}

// TestWindowModeEdges: a calendar SLI's full-window figures from the
// previous period are not shown as the new period's; a late result does
// not replace newer figures; an SLO without events restores without a
// last event.
func TestWindowModeEdges(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	beforeMidnight := time.Date(2026, 11, 30, 23, 59, 50, 0, berlin)
	now := beforeMidnight
	e := newTestEngine(t, queriedYAML(windowModeSLOs), &now)
	cfg, err := config.Parse([]byte(queriedYAML(windowModeSLOs)), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	monthlyID := collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("monthly")}
	e.Record(monthlyID, windowResult(t, &cfg.Services[0].SLOs[1], beforeMidnight, 0.5))
	if s := findSLO(e.Evaluate(now), "monthly"); s.Windows[WindowFull].Total() == 0 {
		t.Fatalf("no November figures before midnight")
	}
	now = time.Date(2026, 12, 1, 0, 0, 30, 0, berlin)
	s := findSLO(e.Evaluate(now), "monthly")
	if s.Windows[WindowFull].Total() != 0 || s.Windows[Window5m].Total() != 300 {
		t.Errorf("after midnight: full window %+v (want none: November's), 5m %+v (want 300)", s.Windows[WindowFull], s.Windows[Window5m])
	}

	apiID := collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("api")}
	api := &cfg.Services[0].SLOs[0]
	e.Record(apiID, windowResult(t, api, now, 0.5))
	e.Record(apiID, windowResult(t, api, now.Add(-time.Second), 0)) // late
	if s := findSLO(e.Evaluate(now), "api"); s.Windows[Window5m].Bad != 150 {
		t.Errorf("5m window %+v after a late result, want the newer figures (150 bad)", s.Windows[Window5m])
	}

	state, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewEngine(EngineOptions{Now: func() time.Time { return now }})
	if err := restored.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, restored, queriedYAML(windowModeSLOs))
	if got := restored.Coverage("shop", "api"); !got.To.IsZero() || !got.From.IsZero() {
		t.Errorf("restored coverage of an SLO without events %+v, want zero times", got)
	}
}
