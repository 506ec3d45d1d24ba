package slo

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
)

// CapacityStateSection names the capacity engine's section in the state
// file.
const CapacityStateSection = "capacity"

// capacityStateVersion is the version of the section's layout
// (docs/state.md).
const capacityStateVersion = 1

// MarshalState implements Snapshotter: every resource, active and
// orphaned, sorted by key. Layout, integers as varints:
//
//	version byte, count
//	per resource: key, last sample time (Unix ns), usage and limit
//	  (float64 bits), samples, failure count and (reason, count) pairs,
//	  then for the fine and the coarse ring a flag byte and the ring
func (c *Capacity) MarshalState() ([]byte, error) {
	c.mu.Lock()
	all := make(map[string]*resource, len(c.active)+len(c.orphans))
	maps.Copy(all, c.orphans)
	maps.Copy(all, c.active)
	c.mu.Unlock()

	last := c.lastStateSize.Load()
	buf := make([]byte, 0, last+last/8+16)
	buf = append(buf, capacityStateVersion)
	buf = binary.AppendUvarint(buf, uint64(len(all)))
	for _, key := range slices.Sorted(maps.Keys(all)) {
		buf = all[key].appendState(buf, key)
	}
	c.lastStateSize.Store(int64(len(buf)))
	return buf, nil
}

func (r *resource) appendState(buf []byte, key string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	buf = appendString(buf, key)
	buf = binary.AppendVarint(buf, timeNanos(r.lastTime))
	buf = binary.AppendUvarint(buf, math.Float64bits(r.last.Usage))
	buf = binary.AppendUvarint(buf, math.Float64bits(r.last.Limit))
	buf = binary.AppendUvarint(buf, r.samples)
	buf = binary.AppendUvarint(buf, uint64(len(r.failures)))
	for _, reason := range slices.Sorted(maps.Keys(r.failures)) {
		buf = appendString(buf, string(reason))
		buf = binary.AppendUvarint(buf, r.failures[reason])
	}
	for _, ring := range []*valueRing{&r.fine, &r.coarse} {
		if ring.head == minSlot {
			buf = append(buf, 0)
			continue
		}
		buf = append(buf, 1)
		buf = ring.appendState(buf)
	}
	return buf
}

// timeNanos is t in Unix nanoseconds, 0 for the zero time.
func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeFromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// UnmarshalState restores what MarshalState saved. Call it before the
// first Apply: restored resources wait as orphans until Apply claims them
// by key. On error nothing is restored.
func (c *Capacity) UnmarshalState(data []byte) error {
	d := decoder{data: data}
	if version := d.byte(); d.err == nil && version != capacityStateVersion {
		return fmt.Errorf("capacity state: unknown version %d (this build reads version %d)", version, capacityStateVersion)
	}
	count := d.uvarint()
	if d.err == nil && count > uint64(len(data)) {
		d.fail("resource count %d exceeds the section's size", count)
	}
	restored := map[string]*resource{}
	for i := uint64(0); i < count && d.err == nil; i++ {
		key, r := d.resource()
		if d.err == nil {
			restored[key] = r
		}
	}
	if d.err == nil && d.off != len(data) {
		d.fail("%d bytes of trailing data", len(data)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("capacity state: %w", d.err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, r := range restored {
		if _, running := c.active[key]; !running {
			c.orphans[key] = r
		}
	}
	return nil
}

func (d *decoder) resource() (string, *resource) {
	key := d.string()
	service, name, ok := strings.Cut(key, "/")
	if d.err == nil && (!ok || service == "" || name == "") {
		d.fail("invalid resource key %q", key)
	}
	r := newResource(&ResourceDefinition{Service: service, Name: name})
	r.lastTime = timeFromNanos(d.varint())
	r.last.Usage = math.Float64frombits(d.uvarint())
	r.last.Limit = math.Float64frombits(d.uvarint())
	r.samples = d.uvarint()
	failures := d.uvarint()
	if d.err == nil && failures > uint64(len(collector.Reasons())) {
		d.fail("%d failure reasons, at most %d", failures, len(collector.Reasons()))
	}
	for i := uint64(0); i < failures && d.err == nil; i++ {
		reason := collector.Reason(d.string())
		if d.err == nil && !slices.Contains(collector.Reasons(), reason) {
			d.fail("unknown failure reason %q", reason)
		}
		r.failures[reason] = d.uvarint()
	}
	for _, ring := range []*valueRing{&r.fine, &r.coarse} {
		switch flag := d.byte(); {
		case d.err != nil:
		case flag == 1:
			spec := fineHistory
			if ring == &r.coarse {
				spec = coarseHistory
			}
			restored := d.valueRing()
			if d.err == nil && (restored.resolution != int64(spec.resolution) || len(restored.values) != spec.length) {
				d.fail("ring of %d slots at %s, want %d at %s", len(restored.values), time.Duration(restored.resolution),
					spec.length, spec.resolution)
			}
			*ring = restored
		case flag != 0:
			d.fail("invalid ring flag %d", flag)
		}
	}
	return key, r
}
