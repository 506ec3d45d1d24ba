package slo

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

func applyYAML(t *testing.T, e *Engine, yaml string) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e.Apply(NewPlan(cfg), time.Second)
}

func sloYAML(slos string) string {
	return `
services:
  - name: shop
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
      - {name: api, http: {url: "http://127.0.0.1:1/api"}}
    slos:
` + slos
}

func findSLO(snap *Snapshot, name string) *SLOStatus {
	for i := range snap.SLOs {
		if snap.SLOs[i].Name == name {
			return &snap.SLOs[i]
		}
	}
	return nil
}

// TestEngineReload covers what a reload does to recorded events: a
// changed objective or window keeps them, a rename with renamed_from
// carries them over, a removal keeps them as an orphan until they have
// left the window, and re-adding restores them.
func TestEngineReload(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := newTestEngine(t, sloYAML(`
      - {name: a, objective: 99, window: 7d, sli: {probes: [home]}}
      - {name: b, objective: 99, window: 1d, sli: {probes: [home]}}
`), &now)
	var events []event
	for i := range 48 {
		events = append(events, event{at: now.Add(-time.Duration(i) * time.Hour), probe: "home", success: i%4 != 0})
	}
	record(e, "shop", events)
	// 48 hourly runs, one in four failing: 36 good, 12 bad. The last day
	// (24h back plus the current 5-minute slot) holds runs 0..24.
	want7d := Counts{Good: 36, Bad: 12}
	want1d := Counts{Good: 18, Bad: 7}
	snap := e.Evaluate(now)
	if got := findSLO(snap, "a").Windows[WindowFull]; got != eventsOf(want7d) {
		t.Fatalf("a = %+v, want %+v", got, want7d)
	}
	if got := findSLO(snap, "b").Windows[WindowFull]; got != eventsOf(want1d) {
		t.Fatalf("b = %+v, want %+v", got, want1d)
	}

	t.Run("objective and window change keep events", func(t *testing.T) {
		// a shrinks from 7d to 1d, b grows from 1d (5-minute slots) to 3d
		// and then to 5d (hourly slots, rebuilt from the 5-minute ring).
		applyYAML(t, e, sloYAML(`
      - {name: a, objective: 95, window: 1d, sli: {probes: [home]}}
      - {name: b, objective: 99, window: 5d, sli: {probes: [home]}}
`))
		snap := e.Evaluate(now)
		if got := findSLO(snap, "a").Windows[WindowFull]; got != eventsOf(want1d) {
			t.Errorf("a after shrinking to 1d = %+v, want %+v", got, want1d)
		}
		if got := findSLO(snap, "b").Windows[WindowFull]; got != eventsOf(want7d) {
			t.Errorf("b after growing to 5d = %+v, want %+v (the 3 days its rings held)", got, want7d)
		}
		if findSLO(snap, "a").Objective != 0.95 {
			t.Errorf("objective %v, want 0.95", findSLO(snap, "a").Objective)
		}
	})
	t.Run("rename carries events", func(t *testing.T) {
		applyYAML(t, e, sloYAML(`
      - {name: a2, renamed_from: a, objective: 95, window: 1d, sli: {probes: [home]}}
      - {name: b, objective: 99, window: 5d, sli: {probes: [home]}}
`))
		snap := e.Evaluate(now)
		if s := findSLO(snap, "a2"); s == nil || s.Windows[WindowFull] != eventsOf(want1d) || s.Good != 36 || s.Bad != 12 {
			t.Errorf("renamed SLO = %+v, want the events of a", s)
		}
		if findSLO(snap, "a") != nil {
			t.Error("the old name is still exported")
		}
	})
	t.Run("removal keeps an orphan, re-adding restores it", func(t *testing.T) {
		applyYAML(t, e, sloYAML(`
      - {name: a2, objective: 95, window: 1d, sli: {probes: [home]}}
`))
		snap := e.Evaluate(now)
		if findSLO(snap, "b") != nil || len(snap.SLOs) != 1 {
			t.Fatalf("b still exported after removal: %d SLOs", len(snap.SLOs))
		}
		state, err := e.MarshalState()
		if err != nil || !strings.Contains(string(state), "shop/b") {
			t.Fatalf("the orphan is not in the saved state (err %v)", err)
		}
		applyYAML(t, e, sloYAML(`
      - {name: a2, objective: 95, window: 1d, sli: {probes: [home]}}
      - {name: b, objective: 99, window: 5d, sli: {probes: [home]}}
`))
		if got := findSLO(e.Evaluate(now), "b"); got == nil || got.Windows[WindowFull] != eventsOf(want7d) {
			t.Errorf("re-added b = %+v, want its events back", got)
		}
	})
	t.Run("orphans expire after their window", func(t *testing.T) {
		applyYAML(t, e, sloYAML(`
      - {name: a2, objective: 95, window: 1d, sli: {probes: [home]}}
`))
		// b's newest event is at now; its window is 5d, plus the 3d rings
		// and an hour of slack: still kept at +5d, gone at +5d2h.
		e.Evaluate(now.Add(5 * 24 * time.Hour))
		if state, _ := e.MarshalState(); !strings.Contains(string(state), "shop/b") {
			t.Fatal("orphan dropped before its window passed")
		}
		e.Evaluate(now.Add(5*24*time.Hour + 2*time.Hour))
		if state, _ := e.MarshalState(); strings.Contains(string(state), "shop/b") {
			t.Error("orphan kept after its window passed")
		}
	})
}

// TestEngineReloadToCalendar switches a rolling SLO to a calendar month:
// the month is seeded from the hourly ring, and switching back keeps the
// burn-rate rings.
func TestEngineReloadToCalendar(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := newTestEngine(t, sloYAML(`
      - {name: a, objective: 99, window: 30d, sli: {probes: [home]}}
`), &now)
	record(e, "shop", []event{
		{at: utc("2026-10-31T23:30:00Z"), probe: "home", success: false}, // October
		{at: utc("2026-11-01T00:00:00Z"), probe: "home", success: true},
		{at: utc("2026-11-20T10:00:00Z"), probe: "home", success: false},
		{at: utc("2026-11-23T11:00:00Z"), probe: "home", success: true},
	})
	applyYAML(t, e, sloYAML(`
      - {name: a, objective: 99, calendar: month, sli: {probes: [home]}}
`))
	s := e.Evaluate(now).SLOs[0]
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{Good: 2, Bad: 1}) {
		t.Errorf("November after switching to a calendar month = %+v, want {Good:2 Bad:1}", got)
	}
	applyYAML(t, e, sloYAML(`
      - {name: a, objective: 99, window: 2d, sli: {probes: [home]}}
`))
	if got := e.Evaluate(now).SLOs[0].Windows[WindowFull]; got != eventsOf(Counts{Good: 1}) {
		t.Errorf("2d window after switching back = %+v, want {Good:1}", got)
	}
}

// TestEngineMaintenanceExclusion: runs inside a weekly window that crosses
// midnight, and outside hours of operation, are excluded and counted
// apart; the rest count.
func TestEngineMaintenanceExclusion(t *testing.T) {
	now := utc("2026-11-24T12:00:00Z")
	e := newTestEngine(t, `
services:
  - name: shop
    maintenance:
      - weekly: {days: [sun], start: "23:00", duration: 3h, timezone: Europe/Berlin}
    hours_of_operation: {days: [mon,tue,wed,thu,fri,sat,sun], start: "06:00", end: "23:30", timezone: UTC}
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
    slos:
      - {name: a, objective: 99, window: 7d, sli: {probes: [home]}}
`, &now)
	// Sunday 2026-11-22 23:00 CET = 22:00Z until Monday 01:00Z; hours
	// 06:00-23:30 UTC.
	record(e, "shop", []event{
		{at: utc("2026-11-22T21:59:59Z"), probe: "home", success: false}, // counts: bad
		{at: utc("2026-11-22T22:00:00Z"), probe: "home", success: false}, // maintenance
		{at: utc("2026-11-22T23:45:00Z"), probe: "home", success: false}, // maintenance (and outside hours)
		{at: utc("2026-11-23T00:59:59Z"), probe: "home", success: true},  // maintenance
		{at: utc("2026-11-23T01:00:00Z"), probe: "home", success: false}, // outside hours
		{at: utc("2026-11-23T06:00:00Z"), probe: "home", success: true},  // counts: good
	})
	snap := e.Evaluate(now)
	s := snap.SLOs[0]
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{Good: 1, Bad: 1, Excluded: 4}) {
		t.Errorf("full window = %+v, want {Good:1 Bad:1 Excluded:4}", got)
	}
	if s.Excluded != [2]uint64{3, 1} {
		t.Errorf("excluded by reason = %v, want [maintenance 3, outside_hours 1]", s.Excluded)
	}
	if s.Good != 1 || s.Bad != 1 {
		t.Errorf("counters good %d bad %d, want 1 and 1", s.Good, s.Bad)
	}
	if len(snap.Services) != 1 || snap.Services[0].MaintenanceActive || !snap.Services[0].InHours {
		t.Errorf("services at %s = %+v, want no maintenance, in hours", now, snap.Services)
	}
	snap = e.Evaluate(utc("2026-11-29T23:45:00Z"))
	if !snap.Services[0].MaintenanceActive || snap.Services[0].InHours {
		t.Errorf("services on Monday 00:45 Berlin = %+v, want maintenance, outside hours", snap.Services)
	}
}

// TestEngineRun: the evaluator actor publishes snapshots on its own, picks
// up a new interval from Apply at once, and returns when its context ends.
func TestEngineRun(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := NewEngine(EngineOptions{Now: func() time.Time { return now }, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	first := e.Snapshot()
	// An hour-long interval would never fire in this test: the new 1ms one
	// must take effect without waiting for it.
	cfg, err := config.Parse([]byte(sloYAML(`      - {name: a, objective: 99, sli: {probes: [home]}}
`)), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	e.Apply(NewPlan(cfg), time.Millisecond)
	applied := e.Snapshot()
	deadline := time.Now().Add(10 * time.Second)
	for e.Snapshot() == applied && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if e.Snapshot() == applied || e.Snapshot() == first || len(e.Snapshot().SLOs) != 1 {
		t.Fatal("the evaluator did not publish a snapshot after the interval changed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
}
