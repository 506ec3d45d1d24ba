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
		}
	}
	// A full window longer than before needs the hourly ring fed from the
	// 5-minute ring when it did not exist.
	if o.layout.lengths[ring1h] > 0 && len(old[ring1h].buckets) == 0 {
		copyRing(&o.rings[ring1h], &old[ring5m])
	}
	o.calendar = nil
	if def.Calendar != "" {
		if oldCalendar != nil && oldCalendar.calendar == def.Calendar && oldCalendar.loc.String() == def.Location.String() {
			o.calendar = oldCalendar
		} else {
			o.calendar = newCalendarCounts(def.Calendar, def.Location)
			o.seedCalendar(&old)
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
func (o *objective) seedCalendar(old *[numRings]ring) {
	source := &old[ring1h]
	if len(source.buckets) == 0 {
		source = &old[ring5m]
	}
	if len(source.buckets) == 0 || source.head == minSlot {
		return
	}
	o.calendar.roll(time.Unix(0, (source.head+1)*source.resolution-1))
	source.each(func(start time.Time, c Counts) { o.calendar.add(start, c) })
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
	case o.def.Queried:
		return // queried events come through recordEvents; a result without them records nothing
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
	o.addCounts(events.At, c)
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

// status computes the SLO's figures at now.
func (o *objective) status(now time.Time) SLOStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	def := o.def
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
			s.Windows[w] = sums[at.ring][at.span]
		}
	}
	if o.calendar != nil {
		o.calendar.roll(now)
		s.Windows[WindowFull] = o.calendar.current.counts
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
