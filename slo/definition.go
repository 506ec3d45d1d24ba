package slo

import (
	"slices"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// Window indexes: the burn-rate windows of the SRE workbook, then the
// SLO's own (full) window. WindowNames holds their `window` label values.
const (
	Window5m = iota
	Window30m
	Window1h
	Window2h
	Window6h
	Window1d
	Window3d
	WindowFull
	numWindows
)

// WindowNames are the `window` label values, by window index.
var WindowNames = [numWindows]string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "full"}

// Rings: each burn-rate window is summed from the ring whose resolution is
// about a thirtieth of it or finer, so a window's span is off by at most
// that resolution (docs/slo.md). The hourly ring exists only for rolling
// windows longer than the 5-minute ring holds.
const (
	ring10s = iota
	ring1m
	ring5m
	ring1h
	numRings
)

var ringResolutions = [numRings]time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, time.Hour}

// burnWindows places each burn-rate window on a ring, with its length.
var burnWindows = [WindowFull]struct {
	ring   int
	length time.Duration
}{
	{ring10s, 5 * time.Minute}, {ring1m, 30 * time.Minute}, {ring1m, time.Hour}, {ring1m, 2 * time.Hour},
	{ring5m, 6 * time.Hour}, {ring5m, 24 * time.Hour}, {ring5m, 72 * time.Hour},
}

// longestBurnWindow is the span the 5-minute ring must hold.
const longestBurnWindow = 72 * time.Hour

// Definition is one SLO as the engine uses it, resolved from the
// configuration. It is read-only once built.
type Definition struct {
	Service, Name string
	// Objective is the target ratio of good events (0.999), and
	// ErrorBudget the ratio allowed to be bad (0.001). Both are the floats
	// nearest the decimals the configuration holds.
	Objective, ErrorBudget float64
	// Window is the rolling window; zero for a calendar window.
	Window time.Duration
	// Calendar is week, month or quarter for calendar-aligned windows, in
	// Location.
	Calendar string
	Location *time.Location
	// LatencyBelow makes a latency SLI: good runs succeeded faster than it.
	LatencyBelow time.Duration
	Probes       []string
	// QuerySource names the Prometheus source of a queried SLI, whose one
	// probe is collector.SLIQueryProbe(Name): its results carry Events
	// (QueriedWindows false) or Windows (window mode: the source counts
	// each window whole, the engine keeps only the latest figures), and a
	// result without them (a failed query) records nothing. Empty for
	// probe SLIs.
	QuerySource    string
	QueriedWindows bool
	// RenamedFrom is the SLO's former name, whose events it takes over.
	RenamedFrom string
	Schedule    *Schedule
}

// Key identifies the SLO across reloads and restarts.
func (d *Definition) Key() string { return stateKey(d.Service, d.Name) }

func stateKey(service, name string) string { return service + "/" + name }

// Period is the window as written: "30d", or the calendar period.
func (d *Definition) Period() string {
	if d.Calendar != "" {
		return d.Calendar
	}
	return config.Duration(d.Window).String()
}

// SLIKind is "availability" or "latency".
func (d *Definition) SLIKind() string {
	if d.LatencyBelow > 0 {
		return "latency"
	}
	return "availability"
}

// good tells whether a probe run is a good event of this SLO.
func (d *Definition) good(r *collector.Result) bool {
	return r.Success && (d.LatencyBelow <= 0 || r.Duration < d.LatencyBelow)
}

// layout is the shape of an SLO's rings: their lengths (0: no ring) and
// where each window is summed from.
type layout struct {
	lengths [numRings]int
	// spans lists, per ring, how many slots before the current one each
	// window summed from it reaches back, ascending.
	spans [numRings][]int
	// windowAt tells, per window, the ring and the index in spans[ring];
	// ring -1 for a calendar window, which has its own counts.
	windowAt [numWindows]struct{ ring, span int }
}

func (d *Definition) layout() layout {
	var l layout
	place := func(w, ring int, length time.Duration) {
		span := int(length / ringResolutions[ring])
		idx := len(l.spans[ring])
		for i, s := range l.spans[ring] {
			if s == span {
				idx = i
			}
		}
		if idx == len(l.spans[ring]) {
			l.spans[ring] = append(l.spans[ring], span)
		}
		l.windowAt[w] = struct{ ring, span int }{ring, span}
		if l.lengths[ring] < span+1 {
			l.lengths[ring] = span + 1
		}
	}
	for w, b := range burnWindows {
		place(w, b.ring, b.length)
	}
	switch {
	case d.Calendar != "":
		l.windowAt[WindowFull] = struct{ ring, span int }{-1, 0}
	case d.Window <= longestBurnWindow:
		place(WindowFull, ring5m, d.Window)
	default:
		place(WindowFull, ring1h, d.Window)
	}
	// windowAt held spans; turn them into indexes of the sorted spans.
	for ring := range l.spans {
		slices.Sort(l.spans[ring])
	}
	for w := range l.windowAt {
		at := &l.windowAt[w]
		if at.ring < 0 {
			continue
		}
		for i, s := range l.spans[at.ring] {
			if s == at.span {
				at.span = i
				break
			}
		}
	}
	return l
}

// Plan is what the engine needs of a configuration: the SLOs, in
// configuration order, and every service's schedule.
type Plan struct {
	SLOs      []*Definition
	Schedules []ServiceSchedule
}

// ServiceSchedule is the schedule of one service.
type ServiceSchedule struct {
	Service  string
	Schedule *Schedule
}

// NewPlan resolves the SLOs and schedules of a validated configuration.
func NewPlan(cfg *config.Config) *Plan {
	plan := &Plan{}
	for i := range cfg.Services {
		service := &cfg.Services[i]
		schedule := NewSchedule(service)
		plan.Schedules = append(plan.Schedules, ServiceSchedule{Service: service.Name, Schedule: schedule})
		for j := range service.SLOs {
			s := &service.SLOs[j]
			probes := s.SLI.Probes
			if s.SLI.Prometheus != nil {
				probes = []string{collector.SLIQueryProbe(s.Name)}
			}
			plan.SLOs = append(plan.SLOs, &Definition{
				Service:        service.Name,
				Name:           s.Name,
				Objective:      s.ObjectiveRatio(),
				ErrorBudget:    s.ErrorBudgetRatio(),
				Window:         s.Window.Duration(),
				Calendar:       s.Calendar,
				Location:       s.TimeZone.Get(),
				LatencyBelow:   s.SLI.LatencyBelow.Duration(),
				Probes:         probes,
				QueriedWindows: s.SLI.Prometheus != nil && s.SLI.Prometheus.Mode == config.SLIModeWindow,
				QuerySource:    querySource(s.SLI.Prometheus),
				RenamedFrom:    s.RenamedFrom,
				Schedule:       schedule,
			})
		}
	}
	return plan
}

func querySource(p *config.SLIPrometheus) string {
	if p == nil {
		return ""
	}
	return p.Source
}

// windowLengths returns the length of every window at t: the burn-rate
// windows and the full window; for a calendar window, the part of the
// current period up to t.
func (d *Definition) windowLengths(t time.Time) [numWindows]time.Duration {
	var lengths [numWindows]time.Duration
	for w, b := range burnWindows {
		lengths[w] = b.length
	}
	lengths[WindowFull] = d.Window
	if d.Calendar != "" {
		lengths[WindowFull] = t.Sub(periodStart(t, d.Calendar, d.Location))
	}
	return lengths
}

// fullWindowAt places the full window at t: its start and length (for a
// calendar window, the whole current period).
func (d *Definition) fullWindowAt(t time.Time) (time.Time, time.Duration) {
	if d.Calendar == "" {
		return t.Add(-d.Window), d.Window
	}
	start := periodStart(t, d.Calendar, d.Location)
	return start, nextPeriodStart(start, d.Calendar, d.Location).Sub(start)
}

// QueryWindows returns, for a window-mode SLI configured as s, the
// distinct lengths of the windows its queries count at a given time.
func QueryWindows(s *config.SLOConfig) func(t time.Time) []time.Duration {
	def := &Definition{Window: s.Window.Duration(), Calendar: s.Calendar, Location: s.TimeZone.Get()}
	return func(t time.Time) []time.Duration {
		all := def.windowLengths(t)
		lengths := make([]time.Duration, 0, numWindows)
		for _, length := range all {
			if length > 0 && !slices.Contains(lengths, length) {
				lengths = append(lengths, length)
			}
		}
		return lengths
	}
}
