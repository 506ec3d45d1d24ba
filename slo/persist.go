package slo

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// SLOStateSection names the engine's section in the state file.
const SLOStateSection = "slos"

// sloStateVersion is the version of the section's layout (docs/state.md).
// A reader reads the versions up to it and rejects later ones. Version 2
// added each SLO's queried-from time.
const sloStateVersion = 2

// maxRingLengths bound the rings read from the state file, by ring: the
// burn-rate rings' fixed lengths, and the hourly ring of the longest
// window (366 days) plus its partial slot.
var maxRingLengths = [numRings]int{31, 121, 865, 366*24 + 1}

// MarshalState implements Snapshotter: every SLO's events, active and
// orphaned, sorted by key. Layout, all integers varints:
//
//	version byte, count
//	per SLO: key, window ns, calendar, time zone, last event (Unix ns),
//	  queried from (Unix ns, 0 for none; version 2), good, bad, excluded by reason (2), calendar flag byte
//	  [current start, end, good, bad, excluded; previous likewise]
//	  ring count, per ring: resolution ns, head slot, length,
//	    runs of equal buckets (run length, good, bad, excluded) covering
//	    the ring from its oldest slot to head
//
// Runs keep the section small: steady probing fills buckets with equal
// counts.
func (e *Engine) MarshalState() ([]byte, error) {
	e.mu.Lock()
	all := make(map[string]*objective, len(e.active)+len(e.orphans))
	maps.Copy(all, e.orphans)
	maps.Copy(all, e.active)
	e.mu.Unlock()

	// Sized from the last section, so a large state is not regrown by
	// doubling (which would briefly hold twice its size).
	last := e.lastStateSize.Load()
	buf := make([]byte, 0, last+last/8+16)
	buf = append(buf, sloStateVersion)
	buf = binary.AppendUvarint(buf, uint64(len(all)))
	for _, key := range slices.Sorted(maps.Keys(all)) {
		buf = all[key].appendState(buf, key)
	}
	e.lastStateSize.Store(int64(len(buf)))
	return buf, nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// unixNanoOrZero writes the zero time as 0 (its UnixNano overflows).
func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func appendCounts(buf []byte, c Counts) []byte {
	buf = binary.AppendUvarint(buf, c.Good)
	buf = binary.AppendUvarint(buf, c.Bad)
	return binary.AppendUvarint(buf, c.Excluded)
}

func appendPeriod(buf []byte, p period) []byte {
	buf = binary.AppendVarint(buf, p.start.UnixNano())
	buf = binary.AppendVarint(buf, p.end.UnixNano())
	return appendCounts(buf, p.counts)
}

func (o *objective) appendState(buf []byte, key string) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	buf = appendString(buf, key)
	buf = binary.AppendVarint(buf, int64(o.def.Window))
	buf = appendString(buf, o.def.Calendar)
	buf = appendString(buf, o.def.Location.String())
	buf = binary.AppendVarint(buf, unixNanoOrZero(o.lastEvent))
	buf = binary.AppendVarint(buf, unixNanoOrZero(o.queriedFrom))
	buf = binary.AppendUvarint(buf, o.good)
	buf = binary.AppendUvarint(buf, o.bad)
	for _, n := range o.excluded[1:] {
		buf = binary.AppendUvarint(buf, n)
	}
	if o.calendar == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = appendPeriod(buf, o.calendar.current)
		buf = appendPeriod(buf, o.calendar.previous)
	}
	var rings []*ring
	for i := range o.rings {
		if len(o.rings[i].buckets) > 0 && o.rings[i].head != minSlot {
			rings = append(rings, &o.rings[i])
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(rings)))
	for _, r := range rings {
		buf = r.appendState(buf)
	}
	return buf
}

func (r *ring) appendState(buf []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(r.resolution))
	buf = binary.AppendVarint(buf, r.head)
	buf = binary.AppendUvarint(buf, uint64(len(r.buckets)))
	first := r.head - int64(len(r.buckets)) + 1
	for slot := first; slot <= r.head; {
		b := r.buckets[r.position(slot)]
		run := int64(1)
		for slot+run <= r.head && r.buckets[r.position(slot+run)] == b {
			run++
		}
		buf = binary.AppendUvarint(buf, uint64(run))
		buf = appendCounts(buf, b.counts())
		slot += run
	}
	return buf
}

// UnmarshalState restores the events MarshalState saved. Call it before
// the first Apply: the restored SLOs wait as orphans until Apply claims
// them by key (or renamed_from). It replaces nothing that is active. On
// error nothing is restored.
func (e *Engine) UnmarshalState(data []byte) error {
	d := decoder{data: data}
	if d.version = d.byte(); d.err == nil && (d.version == 0 || d.version > sloStateVersion) {
		return fmt.Errorf("SLO state: unknown version %d (this build reads versions 1 to %d)", d.version, sloStateVersion)
	}
	count := d.uvarint()
	if d.err == nil && count > uint64(len(data)) {
		d.fail("SLO count %d exceeds the section's size", count)
	}
	restored := map[string]*objective{}
	for i := uint64(0); i < count && d.err == nil; i++ {
		key, o := d.objective()
		if d.err == nil {
			restored[key] = o
		}
	}
	if d.err == nil && d.off != len(data) {
		d.fail("%d bytes of trailing data", len(data)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("SLO state: %w", d.err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, o := range restored {
		if _, running := e.active[key]; !running {
			e.orphans[key] = o
		}
	}
	return nil
}

// decoder reads the section; the first error sticks and later reads
// return zeros.
type decoder struct {
	data    []byte
	off     int
	err     error
	version byte
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %s", d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.data) {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.data[d.off-1]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data[d.off:])
	if n <= 0 {
		d.fail("truncated or invalid number")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data[d.off:])
	if n <= 0 {
		d.fail("truncated or invalid number")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.data)-d.off) {
		d.fail("string of %d bytes past the end", n)
	}
	if d.err != nil {
		return ""
	}
	s := string(d.data[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) counts() Counts {
	return Counts{Good: d.uvarint(), Bad: d.uvarint(), Excluded: d.uvarint()}
}

func (d *decoder) period() period {
	return period{start: time.Unix(0, d.varint()), end: time.Unix(0, d.varint()), counts: d.counts()}
}

func (d *decoder) objective() (string, *objective) {
	key := d.string()
	service, name, ok := strings.Cut(key, "/")
	if d.err == nil && (!ok || service == "" || name == "") {
		d.fail("invalid SLO key %q", key)
	}
	def := &Definition{Service: service, Name: name, Window: time.Duration(d.varint()), Calendar: d.string()}
	tz := d.string()
	def.Location = loadLocation(tz)
	o := &objective{def: def}
	// Version 1 wrote the zero time's UnixNano, which is negative: no
	// event predates 1970.
	if last := d.varint(); last > 0 {
		o.lastEvent = time.Unix(0, last)
	}
	if d.version >= 2 {
		if from := d.varint(); from > 0 {
			o.queriedFrom = time.Unix(0, from)
		}
	}
	o.good, o.bad = d.uvarint(), d.uvarint()
	for i := 1; i < len(o.excluded); i++ {
		o.excluded[i] = d.uvarint()
	}
	switch d.byte() {
	case 0:
	case 1:
		o.calendar = &calendarCounts{calendar: def.Calendar, loc: def.Location, current: d.period(), previous: d.period()}
	default:
		d.fail("invalid calendar flag")
	}
	rings := d.uvarint()
	if d.err == nil && rings > numRings {
		d.fail("%d rings, at most %d", rings, numRings)
	}
	for i := uint64(0); i < rings && d.err == nil; i++ {
		d.ring(o)
	}
	return key, o
}

// loadLocation returns the named zone, or UTC when this system lacks it:
// a calendar in another zone is then rebuilt from the rings by reshape.
func loadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

func (d *decoder) ring(o *objective) {
	resolution := time.Duration(d.uvarint())
	index := slices.Index(ringResolutions[:], resolution)
	head := d.varint()
	length := d.uvarint()
	switch {
	case d.err != nil:
		return
	case index < 0:
		d.fail("unknown ring resolution %s", resolution)
		return
	case length == 0 || length > uint64(maxRingLengths[index]):
		// Bounded per resolution: a small section cannot make a large
		// allocation.
		d.fail("ring of %s with %d slots, at most %d", resolution, length, maxRingLengths[index])
		return
	case !validSlot(head, int64(resolution)):
		d.fail("ring head %d out of range", head)
		return
	case len(o.rings[index].buckets) > 0:
		d.fail("two rings of resolution %s", resolution)
		return
	}
	r := newRing(resolution, int(length))
	r.head = head
	first := head - int64(length) + 1
	for slot := first; slot <= head && d.err == nil; {
		run := d.uvarint()
		c := d.counts()
		if d.err == nil && (run == 0 || run > uint64(head-slot+1)) {
			d.fail("bucket run of %d overflows the ring", run)
		}
		if d.err == nil && (c.Good > 1<<32-1 || c.Bad > 1<<32-1 || c.Excluded > 1<<32-1) {
			d.fail("bucket count out of range")
		}
		for end := slot + int64(run); slot < end && d.err == nil; slot++ {
			r.buckets[r.position(slot)] = bucket{good: uint32(c.Good), bad: uint32(c.Bad), excluded: uint32(c.Excluded)}
		}
	}
	o.rings[index] = r
}
