package slo

import (
	"math"
	"time"
)

// Snapshot is the outcome of one evaluation: every SLO's figures and every
// service's schedule state at Time. It is immutable once published, so
// /metrics and the landing page read it without locks.
type Snapshot struct {
	Time time.Time
	// SLOs are sorted by service, then name.
	SLOs []SLOStatus
	// Services are sorted by name.
	Services []ServiceStatus
}

// ServiceStatus tells whether a service's events count at the snapshot's
// time.
type ServiceStatus struct {
	Service           string
	MaintenanceActive bool
	InHours           bool
}

// SLOStatus is one SLO's figures at a snapshot's time.
type SLOStatus struct {
	*Definition
	// Good and Bad count every event since the SLO's state began;
	// Excluded counts the excluded ones by reason (exclusionReasons).
	Good, Bad uint64
	Excluded  [numExclusions - 1]uint64
	// Windows holds the events of each window, by window index: whole
	// numbers counted by the engine, or (a window-mode SLI) the figures a
	// Prometheus source counted, fractional and zero when not (yet, or no
	// longer) known.
	Windows [numWindows]WindowEvents
	// FiguresAt is when a window-mode SLI's figures were queried (the
	// oldest window's figures); zero for other SLOs.
	FiguresAt time.Time
	// WindowStart and WindowLength place the full window: for a rolling
	// window, the start of its oldest slot and the configured length; for
	// a calendar window, the current period.
	WindowStart  time.Time
	WindowLength time.Duration
}

// WindowEvents are the events of one window: good and bad ones count
// towards the SLO, excluded ones are planned downtime.
type WindowEvents struct {
	Good, Bad, Excluded float64
}

// Total is the number of events that count towards the SLO.
func (w WindowEvents) Total() float64 { return w.Good + w.Bad }

// eventsOf converts counted events.
func eventsOf(c Counts) WindowEvents {
	return WindowEvents{Good: float64(c.Good), Bad: float64(c.Bad), Excluded: float64(c.Excluded)}
}

// SLI returns the ratio of good events in window w; false when the window
// holds no events (no data is not good).
func (s *SLOStatus) SLI(w int) (float64, bool) {
	c := s.Windows[w]
	if c.Total() == 0 {
		return 0, false
	}
	return c.Good / c.Total(), true
}

// BurnRate returns how fast window w spends the error budget: the ratio of
// bad events over the ratio the objective allows. 1 spends exactly the
// budget over the SLO's window. False when the window holds no events.
func (s *SLOStatus) BurnRate(w int) (float64, bool) {
	c := s.Windows[w]
	if c.Total() == 0 {
		return 0, false
	}
	return (c.Bad / c.Total()) / s.ErrorBudget, true
}

// Budget is the error budget of the full window.
type Budget struct {
	// Ratio is the share of events allowed to be bad: 1 - objective.
	Ratio float64
	// Events is the number of bad events the window's events allow,
	// ConsumedEvents the bad events so far, RemainingEvents the difference
	// (negative once overspent).
	Events, ConsumedEvents, RemainingEvents float64
	// ConsumedRatio and RemainingRatio are shares of Events; valid only
	// when HasData (the window holds events).
	ConsumedRatio, RemainingRatio float64
	HasData                       bool
	// ExhaustionSeconds is the time left until the budget is spent if the
	// 1-hour burn rate goes on: 0 when already spent, +Inf at a zero burn
	// rate. Valid only when HasExhaustion (the full window and the last
	// hour hold events).
	ExhaustionSeconds float64
	HasExhaustion     bool
}

// Budget computes the error budget of the full window.
func (s *SLOStatus) Budget() Budget {
	full := s.Windows[WindowFull]
	b := Budget{Ratio: s.ErrorBudget}
	b.Events = b.Ratio * full.Total()
	b.ConsumedEvents = full.Bad
	b.RemainingEvents = b.Events - b.ConsumedEvents
	if full.Total() == 0 {
		return b
	}
	b.HasData = true
	b.ConsumedRatio = b.ConsumedEvents / b.Events
	b.RemainingRatio = 1 - b.ConsumedRatio
	burn, ok := s.BurnRate(Window1h)
	if !ok {
		return b
	}
	b.HasExhaustion = true
	switch {
	case b.RemainingRatio <= 0:
		b.ExhaustionSeconds = 0
	case burn == 0:
		b.ExhaustionSeconds = math.Inf(1)
	default:
		// Burn rate 1 spends the whole budget in one window length.
		b.ExhaustionSeconds = b.RemainingRatio * s.WindowLength.Seconds() / burn
	}
	return b
}
