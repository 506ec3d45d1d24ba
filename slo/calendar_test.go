package slo

import (
	"math/big"
	"testing"
	"time"
)

// Period bounds are worked out by hand: Europe/Berlin is UTC+1 (CET) in
// winter and UTC+2 (CEST) in summer; summer time 2026 runs from March 29
// 01:00Z to October 25 01:00Z. America/St_Johns is UTC-3:30 in winter.
func TestPeriodBounds(t *testing.T) {
	tests := []struct {
		calendar, zone, at string
		start, end         string
	}{
		{"month", "UTC", "2026-11-23T12:00:00Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"month", "UTC", "2026-11-30T23:59:59Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"month", "UTC", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		// Berlin: November starts at 23:00Z on October 31.
		{"month", "Europe/Berlin", "2026-10-31T22:59:59Z", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z"},
		{"month", "Europe/Berlin", "2026-10-31T23:00:00Z", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z"},
		// October in Berlin spans the end of summer time: 31 days + 1 hour.
		{"month", "Europe/Berlin", "2026-10-15T00:00:00Z", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z"},
		// February of a non-leap year.
		{"month", "UTC", "2027-02-14T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"},
		// The week of the start of summer time: Monday March 23 00:00 CET
		// to Monday March 30 00:00 CEST, 167 hours.
		{"week", "Europe/Berlin", "2026-03-29T12:00:00Z", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z"},
		// Sunday 23:30Z in Berlin is already Monday.
		{"week", "Europe/Berlin", "2026-11-22T23:30:00Z", "2026-11-22T23:00:00Z", "2026-11-29T23:00:00Z"},
		{"week", "UTC", "2026-11-22T23:30:00Z", "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"},
		{"quarter", "UTC", "2026-11-23T12:00:00Z", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"quarter", "UTC", "2026-03-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"quarter", "Europe/Berlin", "2026-06-30T22:00:00Z", "2026-06-30T22:00:00Z", "2026-09-30T22:00:00Z"},
		// Asuncion's summer time started at midnight on 2023-10-01: clocks
		// went from 00:00 -04 to 01:00 -03, so October starts at 04:00Z
		// (and September ends there), not at 03:00Z where time.Date puts
		// the skipped midnight.
		{"month", "America/Asuncion", "2023-10-01T03:30:00Z", "2023-09-01T04:00:00Z", "2023-10-01T04:00:00Z"},
		{"month", "America/Asuncion", "2023-10-01T04:00:00Z", "2023-10-01T04:00:00Z", "2023-11-01T03:00:00Z"},
		// A half-hour offset: Newfoundland's December starts at 03:30Z.
		{"month", "America/St_Johns", "2026-12-01T03:29:59Z", "2026-11-01T02:30:00Z", "2026-12-01T03:30:00Z"},
	}
	for _, tt := range tests {
		loc, err := time.LoadLocation(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		c := newCalendarCounts(tt.calendar, loc)
		c.roll(utc(tt.at))
		if !c.current.start.Equal(utc(tt.start)) || !c.current.end.Equal(utc(tt.end)) {
			t.Errorf("%s in %s at %s: period [%s, %s), want [%s, %s)", tt.calendar, tt.zone, tt.at,
				c.current.start.UTC().Format(time.RFC3339), c.current.end.UTC().Format(time.RFC3339), tt.start, tt.end)
		}
	}
}

// TestCalendarCounts: events land in their own period, a late event of
// the previous period still counts there, older ones are refused, and a
// period without events reads as no data.
func TestCalendarCounts(t *testing.T) {
	c := newCalendarCounts("month", time.UTC)
	steps := []struct {
		at      string
		counts  Counts
		landed  bool
		current Counts
	}{
		{"2026-10-31T23:59:59Z", Counts{Good: 5}, true, Counts{Good: 5}},
		{"2026-11-01T00:00:00Z", Counts{Bad: 1}, true, Counts{Bad: 1}},
		{"2026-10-31T23:59:59.5Z", Counts{Good: 2}, true, Counts{Bad: 1}}, // late, previous period
		{"2026-09-30T23:59:59Z", Counts{Good: 1}, false, Counts{Bad: 1}},  // two periods back
		{"2026-11-15T00:00:00Z", Counts{Excluded: 3}, true, Counts{Bad: 1, Excluded: 3}},
	}
	for _, s := range steps {
		if landed := c.add(utc(s.at), s.counts); landed != s.landed {
			t.Errorf("add at %s landed = %v, want %v", s.at, landed, s.landed)
		}
		if c.current.counts != s.current {
			t.Errorf("after %s: current %+v, want %+v", s.at, c.current.counts, s.current)
		}
	}
	if c.previous.counts != (Counts{Good: 7}) {
		t.Errorf("previous period %+v, want {Good:7}", c.previous.counts)
	}
	// January: December saw nothing, so the previous period is empty.
	c.roll(utc("2027-01-02T00:00:00Z"))
	if c.current.counts != (Counts{}) || c.previous.counts != (Counts{}) || !c.previous.start.Equal(utc("2026-12-01T00:00:00Z")) {
		t.Errorf("after a gap: current %+v, previous %+v from %s", c.current.counts, c.previous.counts, c.previous.start)
	}
}

// TestEngineCalendarWindow runs a calendar-month SLO across the turn of
// the month in Berlin and checks the full window, its bounds and the
// budget against counts worked out by hand.
func TestEngineCalendarWindow(t *testing.T) {
	now := utc("2026-11-30T22:00:00Z")
	e := newTestEngine(t, `
services:
  - name: shop
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
    slos:
      - name: monthly
        objective: 99
        calendar: month
        timezone: Europe/Berlin
        sli: {probes: [home]}
`, &now)
	record(e, "shop", []event{
		{at: utc("2026-10-31T22:59:59Z"), probe: "home", success: false}, // October in Berlin
		{at: utc("2026-10-31T23:00:00Z"), probe: "home", success: true},  // November 1st 00:00 Berlin
		{at: utc("2026-11-15T00:00:00Z"), probe: "home", success: true},
		{at: utc("2026-11-30T21:00:00Z"), probe: "home", success: false},
	})
	s := e.Evaluate(now).SLOs[0]
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{Good: 2, Bad: 1}) {
		t.Errorf("November = %+v, want {Good:2 Bad:1}", got)
	}
	if !s.WindowStart.Equal(utc("2026-10-31T23:00:00Z")) || s.WindowLength != 30*24*time.Hour {
		t.Errorf("window [%s, +%s), want November in Berlin (30 days from 2026-10-31T23:00Z)", s.WindowStart.UTC(), s.WindowLength)
	}
	// Budget: 1% of 3 events is 0.03 events; 1 spent.
	b := s.Budget()
	if !closeTo(b.Events, big.NewRat(3, 100)) || !closeTo(b.RemainingRatio, big.NewRat(3-100, 3)) {
		t.Errorf("budget %v events, %v left; want 0.03 events and 1 - 1/0.03 = -97/3", b.Events, b.RemainingRatio)
	}
	// December 1st 00:00 Berlin: a new period with no data.
	s = e.Evaluate(utc("2026-11-30T23:00:00Z")).SLOs[0]
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{}) {
		t.Errorf("December = %+v, want no events", got)
	}
	if _, ok := s.SLI(WindowFull); ok {
		t.Error("an empty period has an SLI; no data must not read as 100%")
	}
	if s.WindowLength != 31*24*time.Hour {
		t.Errorf("December length %s, want 744h", s.WindowLength)
	}
	// The burn-rate windows still see the last hours of November.
	if got := s.Windows[Window3d]; got != eventsOf(Counts{Bad: 1}) {
		t.Errorf("3d window across the turn of the month = %+v, want {Bad:1}", got)
	}
}

// TestEngineCalendarWeekAcrossDST: a weekly SLO in Berlin over the week
// summer time starts (Monday 2026-03-23 00:00 CET = 03-22T23:00Z to
// Monday 2026-03-30 00:00 CEST = 03-29T22:00Z, 167 hours).
func TestEngineCalendarWeekAcrossDST(t *testing.T) {
	now := utc("2026-03-29T21:59:59Z") // Sunday 23:59:59 CEST
	e := newTestEngine(t, `
services:
  - name: shop
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
    slos:
      - {name: weekly, objective: 99, calendar: week, timezone: Europe/Berlin, sli: {probes: [home]}}
`, &now)
	record(e, "shop", []event{
		{at: utc("2026-03-22T22:59:59Z"), probe: "home", success: false}, // Sunday 23:59:59 CET: the week before
		{at: utc("2026-03-22T23:00:00Z"), probe: "home", success: true},  // Monday 00:00 CET
		{at: utc("2026-03-29T01:30:00Z"), probe: "home", success: false}, // 03:30 CEST, just after the change
		{at: utc("2026-03-29T21:59:59Z"), probe: "home", success: true},  // the week's last second
	})
	s := e.Evaluate(now).SLOs[0]
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{Good: 2, Bad: 1}) {
		t.Errorf("the DST week = %+v, want {Good:2 Bad:1}", got)
	}
	if !s.WindowStart.Equal(utc("2026-03-22T23:00:00Z")) || s.WindowLength != 167*time.Hour {
		t.Errorf("week [%s, +%s), want [2026-03-22T23:00Z, +167h)", s.WindowStart.UTC(), s.WindowLength)
	}
	s = e.Evaluate(utc("2026-03-29T22:00:00Z")).SLOs[0]
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{}) || s.WindowLength != 168*time.Hour {
		t.Errorf("the next week = %+v over %s, want no events over 168h", got, s.WindowLength)
	}
}
