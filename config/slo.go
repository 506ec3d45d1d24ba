package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultSLOWindow is the rolling window of an SLO that sets neither
// window nor calendar.
const DefaultSLOWindow = Duration(30 * 24 * time.Hour)

// SLOConfig is one service-level objective of a service.
type SLOConfig struct {
	Name string `yaml:"name"`
	// Objective is the target share of good events, in percent (99.9).
	Objective float64 `yaml:"objective"`
	// Window is the length of a rolling window. Exactly one of Window and
	// Calendar is set once defaults are resolved.
	Window Duration `yaml:"window,omitempty"`
	// Calendar aligns the window to calendar periods: week (from Monday
	// 00:00), month or quarter, in TimeZone.
	Calendar string `yaml:"calendar,omitempty"`
	// TimeZone places calendar periods; UTC when unset.
	TimeZone Location  `yaml:"timezone,omitempty"`
	SLI      SLIConfig `yaml:"sli"`
	// RenamedFrom names the SLO this one was called before, so that its
	// recorded events carry over to the new name.
	RenamedFrom string `yaml:"renamed_from,omitempty"`
}

// ObjectiveRatio returns the objective as a ratio (99.9 gives 0.999).
func (s *SLOConfig) ObjectiveRatio() float64 { return decimalRatio(s.Objective) }

// ErrorBudgetRatio returns the share of events allowed to be bad (99.9
// gives 0.001).
func (s *SLOConfig) ErrorBudgetRatio() float64 { return decimalRatio(100 - s.Objective) }

// decimalRatio divides a percentage by 100 and rounds the result to 12
// significant digits: the percentage was written in decimal, and the
// rounding gives the float nearest to that decimal ratio (0.999, not
// 0.9990000000000001, and 0.001 for 100 - 99.9, not 0.0009999999999998899).
func decimalRatio(percent float64) float64 {
	rounded, err := strconv.ParseFloat(strconv.FormatFloat(percent/100, 'g', 12, 64), 64)
	if err != nil {
		return percent / 100
	}
	return rounded
}

// SLIConfig says which events an SLO counts and which of them are good.
type SLIConfig struct {
	// Probes are names of probes of the same service; every run of each is
	// one event.
	Probes []string `yaml:"probes"`
	// LatencyBelow, when set, makes this a latency SLI: a run is good when
	// it succeeded in less than LatencyBelow. Otherwise a run is good when
	// it succeeded (availability).
	LatencyBelow Duration `yaml:"latency_below,omitempty"`
	// Prometheus counts events from counters in a Prometheus source
	// instead of probe runs; Probes is then empty.
	Prometheus *SLIPrometheus `yaml:"prometheus,omitempty"`
}

// SLIPrometheus counts an SLO's events with PromQL: Total and one of Good
// and Bad, each with a $window (or {{.window}}) placeholder for the range
// the events are counted over, e.g.
// sum(increase(http_requests_total{code!~"5.."}[$window])).
type SLIPrometheus struct {
	Source string `yaml:"source"`
	Good   string `yaml:"good,omitempty"`
	Bad    string `yaml:"bad,omitempty"`
	Total  string `yaml:"total"`
	// Mode is how the queries count: SLIModeEvents (the default) counts
	// the events of every evaluation interval into the SLO's durable
	// buckets; SLIModeWindow queries each window whole at every
	// evaluation and keeps nothing.
	Mode string `yaml:"mode,omitempty"`
}

// Modes of an SLI counted from a Prometheus source.
const (
	SLIModeEvents = "events"
	SLIModeWindow = "window"
)

// DefaultSLIPrometheus holds the defaults of sli.prometheus.
var DefaultSLIPrometheus = SLIPrometheus{Mode: SLIModeEvents}

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *SLIPrometheus) UnmarshalYAML(unmarshal func(any) error) error {
	*p = DefaultSLIPrometheus
	type plain SLIPrometheus
	return unmarshal((*plain)(p))
}

// Kind returns "latency" or "availability".
func (s *SLIConfig) Kind() string {
	if s.LatencyBelow > 0 {
		return "latency"
	}
	return "availability"
}

// MaintenanceWindow is a planned period in which a service's events are
// excluded from its SLOs. Exactly one of Weekly and Once is set.
type MaintenanceWindow struct {
	Weekly *WeeklyWindow `yaml:"weekly,omitempty"`
	Once   *OnceWindow   `yaml:"once,omitempty"`
}

// WeeklyWindow recurs every week on Days, from Start (wall-clock time in
// TimeZone) for Duration of elapsed time; it may run past midnight.
type WeeklyWindow struct {
	Days     []Weekday `yaml:"days"`
	Start    TimeOfDay `yaml:"start"`
	Duration Duration  `yaml:"duration"`
	TimeZone Location  `yaml:"timezone,omitempty"`
}

// OnceWindow happens once, from Start for Duration.
type OnceWindow struct {
	// Start is RFC 3339 with an offset, or a local date and time
	// ("2026-12-01T22:00") read in TimeZone.
	Start    DateTime `yaml:"start"`
	Duration Duration `yaml:"duration"`
	TimeZone Location `yaml:"timezone,omitempty"`
}

// StartTime returns the start of the window as an instant.
func (w *OnceWindow) StartTime() time.Time { return w.Start.In(w.TimeZone.Get()) }

// HoursOfOperation are the hours in which a service is expected to serve:
// on Days, from Start to End (wall-clock, in TimeZone). An End at or
// before Start runs past midnight into the next day. Events outside are
// excluded from the service's SLOs.
type HoursOfOperation struct {
	// Days are the days on which the hours start; every day when empty.
	Days     []Weekday `yaml:"days,omitempty"`
	Start    TimeOfDay `yaml:"start"`
	End      TimeOfDay `yaml:"end"`
	TimeZone Location  `yaml:"timezone,omitempty"`
}

// Location is an IANA time zone ("Europe/Berlin", "UTC").
type Location struct {
	*time.Location
}

// Get returns the location, UTC when unset.
func (l Location) Get() *time.Location {
	if l.Location == nil {
		return time.UTC
	}
	return l.Location
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *Location) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		return scalarError(n, "a time zone must be an IANA name such as Europe/Berlin or UTC")
	}
	if n.Value == "Local" {
		// The machine's zone would make the same file mean different
		// periods on different hosts.
		return scalarError(n, "time zone Local depends on the machine; name the zone (e.g. Europe/Berlin or UTC)")
	}
	loc, err := time.LoadLocation(n.Value)
	if err != nil {
		return scalarError(n, "unknown time zone %q (use an IANA name such as Europe/Berlin, or UTC)", n.Value)
	}
	l.Location = loc
	return nil
}

// MarshalText implements encoding.TextMarshaler (for JSON and YAML).
func (l Location) MarshalText() ([]byte, error) {
	if l.Location == nil {
		return nil, nil
	}
	return []byte(l.String()), nil
}

// IsZero tells YAML's omitempty that the location is unset.
func (l Location) IsZero() bool { return l.Location == nil }

// Weekday is a day of the week, written mon ... sun (or in full).
type Weekday time.Weekday

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Weekday) UnmarshalYAML(n *yaml.Node) error {
	name := strings.ToLower(n.Value)
	for day := time.Sunday; day <= time.Saturday && n.Kind == yaml.ScalarNode; day++ {
		full := strings.ToLower(day.String())
		if name == full || name == full[:3] {
			*d = Weekday(day)
			return nil
		}
	}
	return scalarError(n, "not a day of the week %q (use mon, tue, wed, thu, fri, sat or sun)", n.Value)
}

// MarshalText implements encoding.TextMarshaler.
func (d Weekday) MarshalText() ([]byte, error) {
	return []byte(strings.ToLower(time.Weekday(d).String()[:3])), nil
}

// TimeOfDay is a wall-clock time "HH:MM", from 00:00 to 24:00.
type TimeOfDay struct {
	minutes int
	set     bool
}

// NewTimeOfDay returns the time of day hour:minute.
func NewTimeOfDay(hour, minute int) TimeOfDay { return TimeOfDay{minutes: hour*60 + minute, set: true} }

// Hour and Minute of the time; 24:00 is hour 24.
func (t TimeOfDay) Hour() int   { return t.minutes / 60 }
func (t TimeOfDay) Minute() int { return t.minutes % 60 }

// IsSet tells whether the time was written in the configuration.
func (t TimeOfDay) IsSet() bool { return t.set }

// IsZero tells YAML's omitempty that the time is unset.
func (t TimeOfDay) IsZero() bool { return !t.set }

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *TimeOfDay) UnmarshalYAML(n *yaml.Node) error {
	hours, minutes, ok := strings.Cut(n.Value, ":")
	h, errH := strconv.Atoi(hours)
	m, errM := strconv.Atoi(minutes)
	digits := strings.Trim(hours+minutes, "0123456789") == ""
	if n.Kind != yaml.ScalarNode || !ok || !digits || errH != nil || errM != nil || len(minutes) != 2 ||
		h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return scalarError(n, "not a time of day %q (use HH:MM, from 00:00 to 24:00)", n.Value)
	}
	*t = NewTimeOfDay(h, m)
	return nil
}

// String returns HH:MM.
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute()) }

// MarshalText implements encoding.TextMarshaler.
func (t TimeOfDay) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// DateTime is a date and time, either absolute (RFC 3339 with an offset)
// or local (no offset), placed in a time zone by In.
type DateTime struct {
	// wall holds the time; read in UTC when local.
	wall  time.Time
	local bool
}

// dateTimeLayouts are the accepted local (offset-free) layouts.
var dateTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *DateTime) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if t, err := time.Parse(time.RFC3339, n.Value); err == nil {
			*d = DateTime{wall: t}
			return nil
		}
		for _, layout := range dateTimeLayouts {
			if t, err := time.Parse(layout, n.Value); err == nil {
				*d = DateTime{wall: t, local: true}
				return nil
			}
		}
	}
	return scalarError(n, "not a date and time %q (use 2026-12-01T22:00:00Z, or 2026-12-01T22:00 with timezone)", n.Value)
}

// IsZero tells YAML's omitempty and validation that the time is unset.
func (d DateTime) IsZero() bool { return d.wall.IsZero() }

// IsLocal tells whether the time was written without an offset.
func (d DateTime) IsLocal() bool { return d.local }

// In returns the instant: an absolute time as is, a local time read in loc.
func (d DateTime) In(loc *time.Location) time.Time {
	if !d.local {
		return d.wall
	}
	w := d.wall
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
}

// MarshalText implements encoding.TextMarshaler.
func (d DateTime) MarshalText() ([]byte, error) {
	if d.local {
		return []byte(d.wall.Format(dateTimeLayouts[0])), nil
	}
	return []byte(d.wall.Format(time.RFC3339)), nil
}
