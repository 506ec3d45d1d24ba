package slo

import (
	"bytes"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

func capacityDefs(t *testing.T, yaml string) []*ResourceDefinition {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return CapacityPlan(cfg)
}

func sample(c *Capacity, resource string, at time.Time, usage, limit float64) {
	c.Record(collector.ProbeID{Service: "shop", Probe: resource},
		collector.Result{Start: at, Success: true, Measurement: &collector.Measurement{Usage: usage, Limit: limit}})
}

const capacityYAML = `
services:
  - name: shop
    capacity:
      - name: disk
        source: {filesystem: /var/lib/shop}
        limit: 1000
        headroom_target: 25%
        growth: {6mo: 20%, 24mo: 100%}
        forecast: {window: 1d}
      - name: fds
        source: {process: {self: true, resource: open_fds}}
        forecast: {method: holt, window: 10d, alpha: 0.5, beta: 0.5, min_samples: 4}
`

// TestCapacityFigures: a disk growing by exactly 2 units per 5-minute
// slot for a day. Every figure is worked out by hand in the comments.
func TestCapacityFigures(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	// One sample at the start of each 5-minute slot of the last day: slot
	// k (k = 0 .. 287, the newest at 11:55) holds 200 + 2k. The slot
	// centres are at 11:57:30 - 5min*(287-k), so relative to now the
	// value grows by 2 per 300 s with the last centre at -150 s.
	for k := range 288 {
		at := now.Add(-24*time.Hour + time.Duration(k)*5*time.Minute)
		sample(c, "disk", at, float64(200+2*k), 5000) // the source's limit 5000 is overridden by limit: 1000
	}
	s := c.Evaluate(now).Resources[0]
	if s.Name != "disk" || !s.HasUsage || s.Usage != 774 || s.Limit != 1000 {
		t.Fatalf("disk: usage %v limit %v, want the last sample 774 and the configured limit 1000", s.Usage, s.Limit)
	}
	if u, _ := s.Utilization(); u != 0.774 {
		t.Errorf("utilization %v, want 0.774", u)
	}
	if h, _ := s.Headroom(); math.Abs(h-0.226) > 1e-15 {
		t.Errorf("headroom %v, want 0.226", h)
	}
	// The fitted line: slope 2/300 per second; at now (150 s after the last
	// centre, which holds 774) it is 774 + 1 = 775. The 1d window holds
	// centres within 24h of now: all 288 slots.
	wantSlope := 2.0 / 300
	if !s.HasTrend || math.Abs(s.Trend.Slope-wantSlope) > 1e-12 || math.Abs(s.Trend.Level-775) > 1e-9 || s.Trend.Samples != 288 {
		t.Fatalf("trend %+v (ok %v), want level 775, slope %v, 288 samples", s.Trend, s.HasTrend, wantSlope)
	}
	// Exhaustion: (1000 - 775) / (2/300) = 33750 s.
	if e, ok := s.ExhaustionSeconds(); !ok || math.Abs(e-33750) > 1e-6 {
		t.Errorf("exhaustion %v s, want 33750", e)
	}
	// Plan: 774 × 1.2 / 1000 at 6 months; 774 × 2 / 1000 at 24 months; no
	// 12-month plan.
	if p, ok := s.ProjectedPlan(0); !ok || math.Abs(p-0.9288) > 1e-12 {
		t.Errorf("plan 6mo %v, want 0.9288", p)
	}
	if _, ok := s.ProjectedPlan(1); ok {
		t.Error("a 12-month plan projection without a 12-month plan")
	}
	// Trend at 6 months (15,768,000 s): 775 + 15768000 × 2/300 = 105895.
	if p, ok := s.ProjectedTrend(0); !ok || math.Abs(p-105.895) > 1e-9 {
		t.Errorf("trend 6mo %v, want 105.895", p)
	}
}

// TestCapacityResetAndTooFewSamples: a cleanup halves usage; the trend
// then rests on the slots after it only, and with fewer than min_samples
// of them there is none.
func TestCapacityResetAndTooFewSamples(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	// 100 slots growing 800..899, then a cleanup to 300 and 5 slots of 300..304.
	start := now.Add(-105 * 5 * time.Minute)
	for k := range 100 {
		sample(c, "disk", start.Add(time.Duration(k)*5*time.Minute), float64(800+k), 0)
	}
	for k := range 5 {
		sample(c, "disk", start.Add(time.Duration(100+k)*5*time.Minute), float64(300+k), 0)
	}
	s := c.Evaluate(now).Resources[0]
	if s.HasTrend {
		t.Errorf("a trend from %d slots after a reset, want none below min_samples (12)", s.Trend.Samples)
	}
	if _, ok := s.ExhaustionSeconds(); ok {
		t.Error("an exhaustion forecast without a trend")
	}
	// Seven more slots after the cleanup: 12, the trend is back, from them
	// only: slope 1 per 300 s.
	for k := 5; k < 12; k++ {
		sample(c, "disk", start.Add(time.Duration(100+k)*5*time.Minute), float64(300+k), 0)
	}
	s = c.Evaluate(now.Add(7 * 5 * time.Minute)).Resources[0]
	if !s.HasTrend || s.Trend.Samples != 12 || math.Abs(s.Trend.Slope-1.0/300) > 1e-12 {
		t.Errorf("trend after the reset %+v (ok %v), want 12 samples, slope 1/300", s.Trend, s.HasTrend)
	}
}

// TestCapacityFlatAndShrinking: a flat trend never exhausts (+Inf), a
// shrinking one neither, and usage over the limit is exhausted now (0).
func TestCapacityFlatAndShrinking(t *testing.T) {
	tests := []struct {
		name  string
		value func(k int) float64
		want  float64
	}{
		{"flat", func(int) float64 { return 500 }, math.Inf(1)},
		{"shrinking", func(k int) float64 { return 900 - float64(k) }, math.Inf(1)},
		{"over the limit", func(k int) float64 { return 1100 + float64(k) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := utc("2026-11-23T12:00:00Z")
			c := NewCapacity(nil, nil)
			c.Apply(capacityDefs(t, capacityYAML), now)
			for k := range 50 {
				sample(c, "disk", now.Add(-time.Duration(50-k)*5*time.Minute), tt.value(k), 0)
			}
			s := c.Evaluate(now).Resources[0]
			if e, ok := s.ExhaustionSeconds(); !ok || e != tt.want {
				t.Errorf("exhaustion %v (ok %v), want %v", e, ok, tt.want)
			}
		})
	}
}

// TestCapacityHoltOverSlots: Holt over hourly slots with a gap; the gap
// carries the previous value, and the level moves from the last slot's
// centre to now. Figures by hand in the comments.
func TestCapacityHoltOverSlots(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	// Hourly slots (the 10d window uses the hourly ring), newest 11:00.
	// Values 10, 12, (empty), 16, 18 in slots 07:00 .. 11:00.
	for i, v := range []float64{10, 12, math.NaN(), 16, 18} {
		if !math.IsNaN(v) {
			sample(c, "fds", utc("2026-11-23T07:00:00Z").Add(time.Duration(i)*time.Hour), v, 100)
		}
	}
	s := c.Evaluate(now).Resources[1]
	// alpha = beta = 0.5; level0 = 10, trend0 = 12 - 10 = 2;
	// v1 = 12: level = .5*12 + .5*(10+2) = 12,  trend = .5*(12-10) + .5*2 = 2
	// v2 = 12 (carried): level = .5*12 + .5*14 = 13, trend = .5*1 + .5*2 = 1.5
	// v3 = 16: level = .5*16 + .5*14.5 = 15.25, trend = .5*2.25 + .5*1.5 = 1.875
	// v4 = 18: level = .5*18 + .5*17.125 = 17.5625, trend = .5*2.3125 + .5*1.875 = 2.09375
	// per second: 2.09375/3600; the last centre is 11:30, now 12:00: +1800 s.
	wantSlope := 2.09375 / 3600
	wantLevel := 17.5625 + wantSlope*1800
	if !s.HasTrend || math.Abs(s.Trend.Slope-wantSlope) > 1e-15 || math.Abs(s.Trend.Level-wantLevel) > 1e-12 {
		t.Errorf("holt trend %+v (ok %v), want level %v slope %v", s.Trend, s.HasTrend, wantLevel, wantSlope)
	}
}

// TestCapacityFailures: failed samples count by reason and never become
// readings; the CPU source's priming sample is neither.
func TestCapacityFailures(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	id := collector.ProbeID{Service: "shop", Probe: "disk"}
	sample(c, "disk", now.Add(-time.Minute), 400, 0)
	c.Record(id, collector.Result{Start: now, Reason: collector.ReasonNotFound})
	c.Record(id, collector.Result{Start: now, Reason: collector.ReasonTimeout})
	c.Record(id, collector.Result{Start: now, Reason: collector.ReasonTimeout})
	c.Record(id, collector.Result{Start: now, Err: collector.ErrNoSample})
	s := c.Evaluate(now).Resources[0]
	if s.Usage != 400 || s.Samples != 1 || !s.LastSample.Equal(now.Add(-time.Minute)) {
		t.Errorf("usage %v from %d samples at %s, want the one good reading 400", s.Usage, s.Samples, s.LastSample)
	}
	if s.Failures[collector.ReasonNotFound] != 1 || s.Failures[collector.ReasonTimeout] != 2 || len(s.Failures) != 2 {
		t.Errorf("failures %v, want not_found 1, timeout 2", s.Failures)
	}
}

// TestCapacityStateAndReload: history and counters survive a restart; a
// removed resource is kept as an orphan and comes back when re-added.
func TestCapacityStateAndReload(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	for k := range 288 {
		sample(c, "disk", now.Add(-24*time.Hour+time.Duration(k)*5*time.Minute), float64(200+2*k), 0)
	}
	c.Record(collector.ProbeID{Service: "shop", Probe: "disk"}, collector.Result{Start: now, Reason: collector.ReasonTimeout})
	want := c.Evaluate(now).Resources[0]
	state, err := c.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	// Steady growth by 2 per slot: XOR-delta encoding keeps it small.
	if len(state) > 6000 {
		t.Errorf("state of 2 resources is %d bytes", len(state))
	}

	restored := NewCapacity(nil, nil)
	if err := restored.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	if again, _ := restored.MarshalState(); !bytes.Equal(again, state) {
		t.Error("the state changed across a round trip")
	}
	restored.Apply(capacityDefs(t, capacityYAML), now)
	got := restored.Evaluate(now).Resources[0]
	if got.Trend != want.Trend || got.Usage != want.Usage || got.Samples != want.Samples || got.Failures[collector.ReasonTimeout] != 1 {
		t.Errorf("restored %+v, want %+v", got, want)
	}

	// Remove disk: kept as an orphan, re-added with its history.
	restored.Apply(capacityDefs(t, strings.Replace(capacityYAML, "name: disk", "name: other", 1)), now)
	if state, _ := restored.MarshalState(); !strings.Contains(string(state), "shop/disk") {
		t.Error("a removed resource's history is not kept")
	}
	restored.Apply(capacityDefs(t, capacityYAML), now)
	if got := restored.Evaluate(now).Resources[0]; got.Trend != want.Trend {
		t.Error("a re-added resource lost its history")
	}

	for cut := range len(state) {
		if err := NewCapacity(nil, nil).UnmarshalState(state[:cut]); err == nil {
			t.Fatalf("a state cut at %d of %d bytes was accepted", cut, len(state))
		}
	}
}

// TestCapacityPointsWindow: the window selects slots by centre, and the
// fine ring serves windows up to 48h, the coarse one longer windows.
func TestCapacityPointsWindow(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	r := newValueRing(fineHistory)
	for k := range 10 {
		r.add(now.Add(-time.Duration(10-k)*5*time.Minute), float64(k))
	}
	// Slots 11:10 .. 11:55 hold 0..9; centres 11:12:30 .. 11:57:30. A 30m
	// window keeps centres at or after 11:30: 11:32:30 .. 11:57:30, six
	// slots holding 4..9.
	points := r.points(now, 30*time.Minute, nil)
	if len(points) != 6 || points[0].V != 4 || points[5].V != 9 || points[5].T != -150 {
		t.Errorf("points %+v, want 6 slots holding 4..9, the last centred 150 s before now", points)
	}
	// Means within a slot.
	r.add(now.Add(-5*time.Minute+time.Second), 19) // same slot as 9: mean 14
	if p := r.points(now, 5*time.Minute, nil); len(p) != 1 || p[0].V != 14 {
		t.Errorf("slot mean %+v, want 14", p)
	}
	// An exact rational check of the mean of many samples in one slot.
	want := new(big.Rat)
	r2 := newValueRing(coarseHistory)
	for i := range 7 {
		v := 1.0 / float64(i+3)
		r2.add(now.Add(-30*time.Minute+time.Duration(i)*time.Second), v)
		want.Add(want, new(big.Rat).SetFloat64(v))
	}
	want.Quo(want, big.NewRat(7, 1))
	wantF, _ := want.Float64()
	if p := r2.points(now, time.Hour, nil); len(p) != 1 || math.Abs(p[0].V-wantF) > 1e-7 {
		t.Errorf("mean of 7 samples %+v, want %v (float32 precision)", p, wantF)
	}
}

// TestCapacityFamiliesGolden renders the capacity families of the figures
// test (a disk with a trend and a plan) and a resource that has not been
// sampled yet, compared with testdata/capacity_metrics.golden.
func TestCapacityFamiliesGolden(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	for k := range 288 {
		sample(c, "disk", now.Add(-24*time.Hour+time.Duration(k)*5*time.Minute), float64(200+2*k), 0)
	}
	c.Record(collector.ProbeID{Service: "shop", Probe: "fds"}, collector.Result{Start: now, Reason: collector.ReasonNotFound})
	c.Evaluate(now)
	var out bytes.Buffer
	writer := collector.NewFamilyWriter(&out, false)
	if err := c.EachFamily(writer.Encode); err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "capacity_metrics.golden", out.String())
}

// TestCapacityClockStepBack: after the wall clock is stepped back a day,
// the latest sample is still the reading, and the history goes on from
// the new time.
func TestCapacityClockStepBack(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	c := NewCapacity(nil, nil)
	c.Apply(capacityDefs(t, capacityYAML), now)
	sample(c, "disk", now.Add(24*time.Hour), 100, 0) // under a clock a day fast
	for k := range 12 {
		sample(c, "disk", now.Add(time.Duration(k)*5*time.Minute), float64(900+k), 0)
	}
	s := c.Evaluate(now.Add(time.Hour)).Resources[0]
	if s.Usage != 911 {
		t.Errorf("usage %v after a step back, want the latest sample 911", s.Usage)
	}
	if !s.HasTrend || s.Trend.Samples != 12 || math.Abs(s.Trend.Slope-1.0/300) > 1e-12 {
		t.Errorf("trend %+v (ok %v), want 12 slots with slope 1/300", s.Trend, s.HasTrend)
	}
}
