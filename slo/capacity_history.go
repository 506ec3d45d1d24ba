package slo

import (
	"encoding/binary"
	"math"
	"time"
)

// Usage history of a capacity resource is kept as slot means in two rings:
// 5-minute slots over the last 48 hours (forecast windows up to 48h) and
// hourly slots over the last 35 days (longer windows). Values are float32:
// 4 bytes a slot, a relative precision of 6e-8, far finer than any
// capacity forecast needs. 577 + 841 slots are 5.7 KB a resource.
var (
	fineHistory   = historySpec{resolution: 5 * time.Minute, length: 48*12 + 1}
	coarseHistory = historySpec{resolution: time.Hour, length: 35*24 + 1}
)

// fineHistorySpan is the longest forecast window the fine ring serves.
const fineHistorySpan = 48 * time.Hour

type historySpec struct {
	resolution time.Duration
	length     int
}

// valueRing holds the mean of the samples of each slot; NaN marks a slot
// without samples. Slot i covers [i*resolution, (i+1)*resolution) in Unix
// nanoseconds; head is the newest slot, whose mean is still being built
// from headCount samples. Not safe for concurrent use: the resource's
// mutex guards it.
type valueRing struct {
	resolution int64
	head       int64
	headCount  uint32
	values     []float32
}

func newValueRing(spec historySpec) valueRing {
	r := valueRing{resolution: int64(spec.resolution), head: minSlot, values: make([]float32, spec.length)}
	r.clear()
	return r
}

func (r *valueRing) clear() {
	nan := float32(math.NaN())
	for i := range r.values {
		r.values[i] = nan
	}
}

func (r *valueRing) position(slot int64) int {
	n := int64(len(r.values))
	return int(((slot % n) + n) % n)
}

// add folds a sample taken at t into its slot's mean. A source's samples
// arrive in order (the scheduler never overlaps a source with itself), so
// a sample older than the newest slot means the wall clock was stepped
// back: the slots after it, recorded under the wrong clock, are dropped
// and the history goes on from the sample's slot.
func (r *valueRing) add(t time.Time, v float64) {
	slot := floorDiv(t.UnixNano(), r.resolution)
	switch {
	case r.head != minSlot && slot < r.head:
		nan := float32(math.NaN())
		for s := max(slot, r.head-int64(len(r.values))+1); s <= r.head; s++ {
			r.values[r.position(s)] = nan
		}
		r.head, r.headCount = slot, 1
		r.values[r.position(slot)] = float32(v)
		return
	case slot == r.head:
		r.headCount++
		mean := float64(r.values[r.position(slot)])
		r.values[r.position(slot)] = float32(mean + (v-mean)/float64(r.headCount))
		return
	}
	n := int64(len(r.values))
	if gap := slot - r.head; r.head == minSlot || gap >= n || gap < 0 { // gap < 0: overflow
		r.clear()
	} else {
		nan := float32(math.NaN())
		for s := r.head + 1; s < slot; s++ {
			r.values[r.position(s)] = nan
		}
	}
	r.head = slot
	r.headCount = 1
	r.values[r.position(slot)] = float32(v)
}

// points returns the slots whose centre lies within window before now, as
// Points with T relative to now in seconds, oldest first; empty slots are
// left out. It walks only the slots of the window, with a wrapping index.
func (r *valueRing) points(now time.Time, window time.Duration, out []Point) []Point {
	out = out[:0]
	if r.head == minSlot {
		return out
	}
	nowNanos := now.UnixNano()
	half := r.resolution / 2
	// Slots whose centre is in [now-window, now], within the ring.
	first := max(ceilDiv(nowNanos-int64(window)-half, r.resolution), r.head-int64(len(r.values))+1)
	last := min(floorDiv(nowNanos-half, r.resolution), r.head)
	if first > last {
		return out
	}
	pos := r.position(first)
	for slot := first; slot <= last; slot++ {
		if v := r.values[pos]; v == v { // not NaN
			out = append(out, Point{T: float64(slot*r.resolution+half-nowNanos) / 1e9, V: float64(v)})
		}
		if pos++; pos == len(r.values) {
			pos = 0
		}
	}
	return out
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// appendState writes the ring: resolution, head, head count, length, then
// every slot from the oldest as the uvarint of its float32 bits XORed with
// the previous slot's: a steady value costs one byte a slot.
func (r *valueRing) appendState(buf []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(r.resolution))
	buf = binary.AppendVarint(buf, r.head)
	buf = binary.AppendUvarint(buf, uint64(r.headCount))
	buf = binary.AppendUvarint(buf, uint64(len(r.values)))
	var previous uint32
	for slot := r.head - int64(len(r.values)) + 1; slot <= r.head; slot++ {
		bits := math.Float32bits(r.values[r.position(slot)])
		buf = binary.AppendUvarint(buf, uint64(bits^previous))
		previous = bits
	}
	return buf
}

// readValueRing reads what appendState wrote.
func (d *decoder) valueRing() valueRing {
	r := valueRing{resolution: int64(d.uvarint()), head: d.varint(), headCount: uint32(d.uvarint())}
	length := d.uvarint()
	if d.err == nil && (r.resolution <= 0 || length == 0 || length > uint64(coarseHistory.length) || !validSlot(r.head, r.resolution)) {
		d.fail("value ring of %d slots at resolution %d, head %d, out of range", length, r.resolution, r.head)
	}
	if d.err != nil {
		return valueRing{}
	}
	r.values = make([]float32, length)
	var previous uint32
	for slot := r.head - int64(length) + 1; slot <= r.head && d.err == nil; slot++ {
		x := d.uvarint()
		if x > math.MaxUint32 {
			d.fail("slot value out of range")
		}
		bits := uint32(x) ^ previous
		r.values[r.position(slot)] = math.Float32frombits(bits)
		previous = bits
	}
	return r
}
