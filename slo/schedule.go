package slo

import (
	"slices"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// Exclusion says whether an event counts towards a service's SLOs, and if
// not, why.
type Exclusion uint8

// The exclusions, exported as the reason label of
// slo_excluded_events_total. Maintenance wins over hours of operation.
const (
	Included Exclusion = iota
	ExcludedMaintenance
	ExcludedOutsideHours
	numExclusions
)

// exclusionReasons are the label values of the exclusions after Included.
var exclusionReasons = [numExclusions - 1]string{"maintenance", "outside_hours"}

// Schedule holds a service's maintenance windows and hours of operation,
// resolved from its configuration. It is read-only and safe for concurrent
// use.
type Schedule struct {
	weekly []weeklyWindow
	once   []onceWindow
	hours  *hoursOfOperation
}

type weeklyWindow struct {
	days     [7]bool
	start    config.TimeOfDay
	duration time.Duration
	loc      *time.Location
}

type onceWindow struct {
	start, end time.Time
}

type hoursOfOperation struct {
	days       [7]bool
	start, end config.TimeOfDay
	loc        *time.Location
}

// NewSchedule resolves the maintenance windows and hours of operation of a
// validated service configuration.
func NewSchedule(service *config.ServiceConfig) *Schedule {
	s := &Schedule{}
	for _, m := range service.Maintenance {
		switch {
		case m.Weekly != nil:
			s.weekly = append(s.weekly, weeklyWindow{days: daySet(m.Weekly.Days), start: m.Weekly.Start,
				duration: m.Weekly.Duration.Duration(), loc: m.Weekly.TimeZone.Get()})
		case m.Once != nil:
			start := m.Once.StartTime()
			s.once = append(s.once, onceWindow{start: start, end: start.Add(m.Once.Duration.Duration())})
		}
	}
	if h := service.HoursOfOperation; h != nil {
		days := daySet(h.Days)
		if len(h.Days) == 0 {
			days = [7]bool{true, true, true, true, true, true, true}
		}
		s.hours = &hoursOfOperation{days: days, start: h.Start, end: h.End, loc: h.TimeZone.Get()}
	}
	return s
}

func daySet(days []config.Weekday) [7]bool {
	var set [7]bool
	for _, d := range days {
		set[d] = true
	}
	return set
}

// Exclusion tells whether an event at t counts towards the SLOs.
func (s *Schedule) Exclusion(t time.Time) Exclusion {
	switch {
	case s.InMaintenance(t):
		return ExcludedMaintenance
	case !s.InHours(t):
		return ExcludedOutsideHours
	}
	return Included
}

// InMaintenance tells whether a maintenance window is in force at t:
// windows include their start and exclude their end.
func (s *Schedule) InMaintenance(t time.Time) bool {
	for _, o := range s.once {
		if !t.Before(o.start) && t.Before(o.end) {
			return true
		}
	}
	return slices.ContainsFunc(s.weekly, func(w weeklyWindow) bool { return w.activeAt(t) })
}

// activeAt looks back over the days a window in force at t may have
// started on: today and, since a window lasts at most a week, the seven
// days before.
func (w *weeklyWindow) activeAt(t time.Time) bool {
	year, month, day := t.In(w.loc).Date()
	for back := 0; back <= 7; back++ {
		start := time.Date(year, month, day-back, w.start.Hour(), w.start.Minute(), 0, 0, w.loc)
		if !w.days[start.Weekday()] || t.Before(start) {
			continue
		}
		if t.Before(start.Add(w.duration)) {
			return true
		}
	}
	return false
}

// InHours tells whether t is within the hours of operation; always true
// when none are configured.
func (s *Schedule) InHours(t time.Time) bool {
	h := s.hours
	if h == nil {
		return true
	}
	year, month, day := t.In(h.loc).Date()
	crossesMidnight := h.end.Hour()*60+h.end.Minute() <= h.start.Hour()*60+h.start.Minute()
	for back := 0; back <= 1; back++ {
		start := time.Date(year, month, day-back, h.start.Hour(), h.start.Minute(), 0, 0, h.loc)
		endDay := day - back
		if crossesMidnight {
			endDay++
		}
		end := time.Date(year, month, endDay, h.end.Hour(), h.end.Minute(), 0, 0, h.loc)
		if h.days[time.Date(year, month, day-back, 12, 0, 0, 0, h.loc).Weekday()] && !t.Before(start) && t.Before(end) {
			return true
		}
	}
	return false
}
