package slo

import (
	"sync"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
)

// objective holds the recorded events of one SLO: rings of buckets for its
// windows, the calendar periods' counts for a calendar window, and the
// running totals behind the exported counters. Its mutex guards all of it,
// def included: probe workers record into it while the evaluator and the
// state flusher read it.
type objective struct {
	mu       sync.Mutex
	def      *Definition
	layout   layout
	rings    [numRings]ring
	calendar *calendarCounts
	// good and bad count the events since the SLO's state began (they
	// survive restarts); excluded counts by Exclusion, Included unused.
	good, bad uint64
	excluded  [numExclusions]uint64
	// lastEvent is the time of the newest event; it bounds how long a
	// removed SLO's events are kept.
	lastEvent time.Time
	// queriedFrom is the start of the oldest range of events counted by
	// queries that the rings (or calendar) still hold; zero when none.
	queriedFrom time.Time
	// figures are a window-mode SLI's latest figures, by window; nil for
	// other SLOs.
	figures *[numWindows]queriedFigures
}

// queriedFigures are one window's events as a source counted them at at.
type queriedFigures struct {
	good, total float64
	at          time.Time
}

// newObjective returns an empty objective shaped for def.
func newObjective(def *Definition) *objective {
	o := &objective{}
	o.reshape(def)
	return o
}

// reshape adopts def, keeping every recorded event the new shape can hold:
// rings of the same resolution carry over slot by slot; a longer or
// shorter full window is rebuilt from the finest ring that covers it; a
// calendar window keeps its counts when its calendar and time zone are
// unchanged, and is otherwise rebuilt from the rings. The caller holds mu
// or owns o alone.
func (o *objective) reshape(def *Definition) {
	old := o.rings
	oldCalendar := o.calendar
	oldDef := o.def
	o.def = def
	o.layout = def.layout()
	for i, length := range o.layout.lengths {
		switch {
		case length == 0:
			o.rings[i] = ring{}
		case len(old[i].buckets) == length:
			// unchanged: keep as is
		default:
			o.rings[i] = newRing(ringResolutions[i], length)
			copyRing(&o.rings[i], &old[i])
			if i == ring1h && len(old[i].buckets) > 0 {
				o.limitCoverage(&old[i], &o.rings[i])
			}
		}
	}
	// A full window longer than before needs the hourly ring fed from the
	// 5-minute ring when it did not exist.
	if o.layout.lengths[ring1h] > 0 && len(old[ring1h].buckets) == 0 {
		copyRing(&o.rings[ring1h], &old[ring5m])
		o.limitCoverage(&old[ring5m])
	}
	o.calendar = nil
	if def.Calendar != "" {
		if oldCalendar != nil && oldCalendar.calendar == def.Calendar && oldCalendar.loc.String() == def.Location.String() {
			o.calendar = oldCalendar
		} else {
			o.calendar = newCalendarCounts(def.Calendar, def.Location)
			o.limitCoverage(o.seedCalendar(&old))
		}
	}
	o.reshapeFigures(oldDef)
}

// reshapeFigures keeps a window-mode SLI's figures while its windows are
// unchanged: a reload must not blank them until the next query.
func (o *objective) reshapeFigures(oldDef *Definition) {
	switch {
	case !o.def.QueriedWindows:
		o.figures = nil
	case o.figures == nil || oldDef == nil || !oldDef.QueriedWindows || oldDef.Window != o.def.Window ||
		oldDef.Calendar != o.def.Calendar || oldDef.Location.String() != o.def.Location.String():
		o.figures = &[numWindows]queriedFigures{}
	}
}

// limitCoverage moves queriedFrom past what a reshape dropped: the full
// window was rebuilt from rings that hold nothing before their oldest
// slot. A queried SLI then backfills the part of its window before
// queriedFrom again.
func (o *objective) limitCoverage(rings ...*ring) {
	if o.queriedFrom.IsZero() {
		return
	}
	for _, r := range rings {
		if held := o.ringStart(r); held.After(o.queriedFrom) {
			o.queriedFrom = held
		}
	}
}

// copyRing adds the slots of from into to. Both resolutions divide each
// other's multiples: from's resolution is a divisor of to's or equal.
func copyRing(to, from *ring) {
	if len(from.buckets) == 0 {
		return
	}
	from.each(func(start time.Time, c Counts) { to.add(start, c) })
}

// seedCalendar fills new calendar counts from the longest ring there was.
// Slots are placed by their start, so a period boundary that is not on a
// slot boundary (a time zone with a half-hour offset) is approximated.
// It returns the ring it seeded from.
func (o *objective) seedCalendar(old *[numRings]ring) *ring {
	source := &old[ring1h]
	if len(source.buckets) == 0 {
		source = &old[ring5m]
	}
	if len(source.buckets) == 0 || source.head == minSlot {
		return source
	}
	o.calendar.roll(time.Unix(0, (source.head+1)*source.resolution-1))
	source.each(func(start time.Time, c Counts) { o.calendar.add(start, c) })
	return source
}

// record adds one probe run.
func (o *objective) record(result *collector.Result, exclusion Exclusion, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// A wall clock stepped back leaves the rings' heads in the future:
	// rewind them to now, or every new event would be too old for them
	// until the clock caught up.
	for i := range o.rings {
		if r := &o.rings[i]; len(r.buckets) > 0 {
			r.rewind(r.slot(now))
		}
	}
	var c Counts
	switch {
	case o.def.QuerySource != "":
		return // queried events come through recordEvents or recordWindows; a result without them records nothing
	case exclusion != Included:
		c.Excluded = 1
		o.excluded[exclusion]++
	case o.def.good(result):
		c.Good = 1
		o.good++
	default:
		c.Bad = 1
		o.bad++
	}
	o.addCounts(result.Start, c)
}

// recordEvents records events counted by an SLI query, excluded as a
// whole when the range ended in maintenance or outside the hours of
// operation.
func (o *objective) recordEvents(events *collector.EventCounts, exclusion Exclusion, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.rings {
		if r := &o.rings[i]; len(r.buckets) > 0 {
			r.rewind(r.slot(now))
		}
	}
	var c Counts
	if exclusion != Included {
		c.Excluded = events.Good + events.Bad
		o.excluded[exclusion] += c.Excluded
	} else {
		c.Good, c.Bad = events.Good, events.Bad
		o.good += c.Good
		o.bad += c.Bad
	}
	o.extendCoverage(events)
	o.addCounts(events.At, c)
}

// extendCoverage moves queriedFrom back to the start of a range that
// adjoins the covered span (a backfill, newest first) or starts it (the
// SLO's first queried events). Events held from before coverage was
// tracked (a version 1 state, a probe SLI turned into a queried one) are
// taken as covered from the oldest slot held, so they are never counted
// again. The caller holds mu.
func (o *objective) extendCoverage(events *collector.EventCounts) {
	switch {
	case events.From.IsZero():
	case o.queriedFrom.IsZero() && o.lastEvent.IsZero():
		o.queriedFrom = events.From
	case o.queriedFrom.IsZero():
		o.queriedFrom = o.oldestHeld()
	case events.From.Before(o.queriedFrom) && !events.At.Add(time.Millisecond).Before(o.queriedFrom):
		o.queriedFrom = events.From
	}
}

// oldestHeld is the start of the oldest events the objective holds for
// its full window: the previous calendar period, or the oldest slot of
// the longest ring. The caller holds mu.
func (o *objective) oldestHeld() time.Time {
	if o.calendar != nil && !o.calendar.previous.start.IsZero() {
		return o.calendar.previous.start
	}
	r := &o.rings[ring1h]
	if len(r.buckets) == 0 {
		r = &o.rings[ring5m]
	}
	return o.ringStart(r)
}

// ringStart is the start of r's oldest slot; the last event for an empty
// ring, which holds nothing before it.
func (o *objective) ringStart(r *ring) time.Time {
	if len(r.buckets) == 0 || r.head == minSlot {
		return o.lastEvent
	}
	return time.Unix(0, (r.head-int64(len(r.buckets))+1)*r.resolution)
}

// recordWindows keeps the figures a window-mode SLI's queries read at at:
// each goes to every window of its length.
func (o *objective) recordWindows(counts []collector.WindowCounts, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.figures == nil {
		return
	}
	lengths := o.def.windowLengths(at)
	for _, c := range counts {
		for w, length := range lengths {
			// A late result never replaces newer figures.
			if length == c.Length && !at.Before(o.figures[w].at) {
				o.figures[w] = queriedFigures{good: c.Good, total: c.Total, at: at}
			}
		}
	}
}

// addCounts adds c at t to every ring and the calendar. The caller holds mu.
func (o *objective) addCounts(t time.Time, c Counts) {
	for i := range o.rings {
		if len(o.rings[i].buckets) > 0 {
			o.rings[i].add(t, c)
		}
	}
	if o.calendar != nil {
		o.calendar.add(t, c)
	}
	if t.After(o.lastEvent) {
		o.lastEvent = t
	}
}

// status computes the SLO's figures at now; a window-mode SLI's figures
// older than stale are no longer shown.
func (o *objective) status(now time.Time, stale time.Duration) SLOStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	def := o.def
	if o.figures != nil {
		return o.queriedStatus(now, stale)
	}
	s := SLOStatus{Definition: def, Good: o.good, Bad: o.bad}
	copy(s.Excluded[:], o.excluded[1:])
	var sums [numRings][]Counts
	var buf [8]Counts
	used := 0
	for i := range o.rings {
		spans := o.layout.spans[i]
		if len(spans) == 0 {
			continue
		}
		sums[i] = buf[used : used+len(spans)]
		used += len(spans)
		o.rings[i].sums(now, spans, sums[i])
	}
	for w, at := range o.layout.windowAt {
		if at.ring >= 0 {
			s.Windows[w] = eventsOf(sums[at.ring][at.span])
		}
	}
	if o.calendar != nil {
		o.calendar.roll(now)
		s.Windows[WindowFull] = eventsOf(o.calendar.current.counts)
		s.WindowStart = o.calendar.current.start
		s.WindowLength = o.calendar.current.end.Sub(o.calendar.current.start)
	} else {
		at := o.layout.windowAt[WindowFull]
		r := &o.rings[at.ring]
		span := o.layout.spans[at.ring][at.span]
		s.WindowStart = time.Unix(0, (r.slot(now)-int64(span))*r.resolution)
		s.WindowLength = def.Window
	}
	return s
}

// queriedStatus is a window-mode SLI's status: the latest figures its
// queries read, each while fresher than stale. The caller holds mu.
func (o *objective) queriedStatus(now time.Time, stale time.Duration) SLOStatus {
	s := SLOStatus{Definition: o.def}
	s.WindowStart, s.WindowLength = o.def.fullWindowAt(now)
	for w, f := range o.figures {
		if f.at.IsZero() || now.Sub(f.at) > stale {
			continue
		}
		if w == WindowFull && f.at.Before(s.WindowStart) {
			continue // counted over the previous calendar period
		}
		s.Windows[w] = WindowEvents{Good: f.good, Bad: f.total - f.good}
		if s.FiguresAt.IsZero() || f.at.Before(s.FiguresAt) {
			s.FiguresAt = f.at
		}
	}
	return s
}

// retainUntil is when a removed SLO's events are all out of its windows.
func (o *objective) retainUntil() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	keep := max(o.def.Window, longestBurnWindow)
	if o.calendar != nil {
		keep = max(o.calendar.current.end.Sub(o.calendar.previous.start), longestBurnWindow)
	}
	return o.lastEvent.Add(keep + time.Hour)
}
