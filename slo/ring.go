package slo

import (
	"math"
	"time"
)

// Counts are the events of a bucket or a window: good and bad ones count
// towards the SLO, excluded ones (maintenance, outside hours of operation)
// are kept apart as planned downtime.
type Counts struct {
	Good, Bad, Excluded uint64
}

// Total is the number of events that count towards the SLO.
func (c Counts) Total() uint64 { return c.Good + c.Bad }

func (c *Counts) add(o Counts) {
	c.Good += o.Good
	c.Bad += o.Bad
	c.Excluded += o.Excluded
}

// bucket is the events of one time slot. 32-bit counts keep the rings
// small (12 bytes a bucket); they saturate rather than wrap, which takes
// over four billion events in one slot.
type bucket struct {
	good, bad, excluded uint32
}

func saturatingAdd(a uint32, b uint64) uint32 {
	if sum := uint64(a) + b; sum < math.MaxUint32 {
		return uint32(sum)
	}
	return math.MaxUint32
}

func (b *bucket) add(c Counts) {
	b.good = saturatingAdd(b.good, c.Good)
	b.bad = saturatingAdd(b.bad, c.Bad)
	b.excluded = saturatingAdd(b.excluded, c.Excluded)
}

func (b bucket) counts() Counts {
	return Counts{Good: uint64(b.good), Bad: uint64(b.bad), Excluded: uint64(b.excluded)}
}

// ring holds the events of the most recent len(buckets) time slots of
// resolution each. Slot i covers [i*resolution, (i+1)*resolution) in Unix
// nanoseconds; head is the newest slot seen, and a slot is held only while
// it is within len(buckets) of head. A ring is not safe for concurrent
// use: its SLO's mutex guards it.
type ring struct {
	resolution int64 // nanoseconds
	head       int64
	buckets    []bucket
}

// minSlot is the head of a ring that has seen nothing.
const minSlot = math.MinInt64

func newRing(resolution time.Duration, length int) ring {
	return ring{resolution: int64(resolution), head: minSlot, buckets: make([]bucket, length)}
}

// slot returns the index of the slot holding t.
func (r *ring) slot(t time.Time) int64 {
	return floorDiv(t.UnixNano(), r.resolution)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (r *ring) position(slot int64) int {
	n := int64(len(r.buckets))
	return int(((slot % n) + n) % n)
}

// holds tells whether slot is still in the ring.
func (r *ring) holds(slot int64) bool {
	return r.head != minSlot && slot <= r.head && slot > r.head-int64(len(r.buckets))
}

// advance makes slot the newest one, clearing the slots it passes.
func (r *ring) advance(slot int64) {
	if r.head != minSlot && slot <= r.head {
		return
	}
	n := int64(len(r.buckets))
	// gap < 0 is an overflow (a head restored far in the past): clear, as
	// for any gap wider than the ring.
	if gap := slot - r.head; r.head == minSlot || gap >= n || gap < 0 {
		clear(r.buckets)
	} else {
		for s := r.head + 1; s <= slot; s++ {
			r.buckets[r.position(s)] = bucket{}
		}
	}
	r.head = slot
}

// add records c at time t. It reports false when t is too old for the
// ring: the slot has already been dropped.
func (r *ring) add(t time.Time, c Counts) bool {
	slot := r.slot(t)
	r.advance(slot)
	if !r.holds(slot) {
		return false
	}
	r.buckets[r.position(slot)].add(c)
	return true
}

// sums adds up, for each n in spans (ascending), the slots from the one
// holding now back n slots before it (n+1 slots, the current one partly
// elapsed), into out. One pass serves every window of the ring. Slots
// newer than now (events stamped ahead of the evaluation) are not counted.
// This is the evaluator's inner loop (17 million slots a tick at 10,000
// SLOs): it walks positions with a wrapping index and checks the held
// range once, instead of a modulo and a range check per slot.
func (r *ring) sums(now time.Time, spans []int, out []Counts) {
	current := r.slot(now)
	// Held slots are (head-len, head]; count those in [oldest, newest].
	newest := min(current, r.head)
	last := spans[len(spans)-1]
	var good, bad, excluded uint64
	next := 0
	if r.head != minSlot && newest > r.head-int64(len(r.buckets)) {
		pos := r.position(newest)
		for back := int(current - newest); back <= last; back++ {
			for next < len(spans) && spans[next] < back {
				out[next] = Counts{Good: good, Bad: bad, Excluded: excluded}
				next++
			}
			if current-int64(back) <= r.head-int64(len(r.buckets)) {
				break // older slots are no longer held
			}
			b := &r.buckets[pos]
			good += uint64(b.good)
			bad += uint64(b.bad)
			excluded += uint64(b.excluded)
			if pos--; pos < 0 {
				pos = len(r.buckets) - 1
			}
		}
	}
	for ; next < len(spans); next++ {
		out[next] = Counts{Good: good, Bad: bad, Excluded: excluded}
	}
}

// rewind makes slot the newest one when the head is ahead of it (the wall
// clock was stepped back): the slots after it, recorded under the wrong
// clock, are dropped, so that events at the new time land in the ring
// instead of being too old for it.
func (r *ring) rewind(slot int64) {
	if r.head == minSlot || slot >= r.head {
		return
	}
	if r.head-slot >= int64(len(r.buckets)) || r.head-slot < 0 {
		clear(r.buckets)
	} else {
		for s := slot + 1; s <= r.head; s++ {
			r.buckets[r.position(s)] = bucket{}
		}
	}
	r.head = slot
}

// validSlot tells whether slot * resolution stays far from overflowing:
// what a restored head must satisfy.
func validSlot(slot, resolution int64) bool {
	const limit = math.MaxInt64 / 4
	return resolution > 0 && slot > -limit/resolution && slot < limit/resolution
}

// each calls fn for every slot held, oldest first, with its start time.
func (r *ring) each(fn func(start time.Time, c Counts)) {
	if r.head == minSlot {
		return
	}
	for slot := r.head - int64(len(r.buckets)) + 1; slot <= r.head; slot++ {
		if b := r.buckets[r.position(slot)]; b != (bucket{}) {
			fn(time.Unix(0, slot*r.resolution), b.counts())
		}
	}
}
