package slo

import "time"

// periodStart returns the start of the calendar period ("week", "month"
// or "quarter") holding t, in loc: Monday 00:00 for weeks (ISO 8601), the
// 1st at 00:00 for months, and January, April, July or October 1st for
// quarters. Midnight that a DST change skips is normalised by time.Date.
func periodStart(t time.Time, calendar string, loc *time.Location) time.Time {
	local := t.In(loc)
	year, month, day := local.Date()
	switch calendar {
	case "week":
		sinceMonday := (int(local.Weekday()) + 6) % 7
		return midnight(year, month, day-sinceMonday, loc)
	case "quarter":
		first := month - (month-1)%3
		return midnight(year, first, 1, loc)
	default: // month
		return midnight(year, month, 1, loc)
	}
}

// midnight returns the first instant of a day in loc. Where a DST change
// skips midnight itself (America/Asuncion, America/Havana), time.Date
// places 00:00 on the previous day; the day then starts at the change.
func midnight(year int, month time.Month, day int, loc *time.Location) time.Time {
	t := time.Date(year, month, day, 0, 0, 0, 0, loc)
	if _, _, d := t.Date(); d != time.Date(year, month, day, 12, 0, 0, 0, loc).Day() {
		_, end := t.ZoneBounds()
		return end
	}
	return t
}

// nextPeriodStart returns the start of the period after the one starting
// at start.
func nextPeriodStart(start time.Time, calendar string, loc *time.Location) time.Time {
	local := start.In(loc)
	year, month, day := local.Date()
	switch calendar {
	case "week":
		return midnight(year, month, day+7, loc)
	case "quarter":
		return midnight(year, month+3, 1, loc)
	default:
		return midnight(year, month+1, 1, loc)
	}
}

// period is the events of one calendar period [start, end).
type period struct {
	start, end time.Time
	counts     Counts
}

// calendarCounts keeps the events of the current calendar period and of
// the one before it (so a run that started just before the turn of the
// period and is recorded after it still lands in its own period).
type calendarCounts struct {
	calendar          string
	loc               *time.Location
	current, previous period
}

func newCalendarCounts(calendar string, loc *time.Location) *calendarCounts {
	return &calendarCounts{calendar: calendar, loc: loc}
}

// roll makes the period holding t current, if it is newer than the
// current one.
func (c *calendarCounts) roll(t time.Time) {
	if !c.current.start.IsZero() && t.Before(c.current.end) {
		return
	}
	start := periodStart(t, c.calendar, c.loc)
	end := nextPeriodStart(start, c.calendar, c.loc)
	if !c.current.start.IsZero() && c.current.end.Equal(start) {
		c.previous = c.current
	} else {
		previousStart := periodStart(start.Add(-time.Nanosecond), c.calendar, c.loc)
		c.previous = period{start: previousStart, end: start}
	}
	c.current = period{start: start, end: end}
}

// add records events at time t. It reports false when t is older than the
// previous period.
func (c *calendarCounts) add(t time.Time, counts Counts) bool {
	c.roll(t)
	switch {
	case !t.Before(c.current.start):
		c.current.counts.add(counts)
	case !t.Before(c.previous.start):
		c.previous.counts.add(counts)
	default:
		return false
	}
	return true
}
