package slo

import (
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// The benchmarks below measure the floors of issue 4 at their scale:
// 10,000 SLOs with a 30-day window (docs/benchmarks.md, "SLO engine").
// They report figures and check that the engine computed what the filled
// history holds; they assert no timings.
const (
	benchServices       = 1000
	benchSLOsPerService = 10
	benchSLOs           = benchServices * benchSLOsPerService
	// benchRunInterval is how often each probe runs: it sets how many runs
	// a bucket of each ring holds.
	benchRunInterval = 30 * time.Second
	benchWindow      = 30 * 24 * time.Hour
	benchObjective   = 0.999
)

// benchNow is the evaluation time: a Tuesday, so the 3-day burn-rate
// window holds Sunday's maintenance window; 5 s into a 10 s slot, so the
// current slots are partly elapsed as they are in the daemon.
func benchNow() time.Time { return time.Date(2026, time.November, 24, 12, 0, 5, 0, time.UTC) }

// benchPlan returns 10,000 SLOs of 30 days on 10,000 probes: 1,000
// services of 10 probes with one SLO each, every fifth a latency SLO and
// every tenth service under a weekly maintenance window (Sunday 02:00, 2h).
func benchPlan() *Plan {
	plan := &Plan{}
	for s := range benchServices {
		service := &config.ServiceConfig{Name: fmt.Sprintf("svc-%04d", s)}
		if s%10 == 0 {
			service.Maintenance = []config.MaintenanceWindow{{Weekly: &config.WeeklyWindow{
				Days:     []config.Weekday{config.Weekday(time.Sunday)},
				Start:    config.NewTimeOfDay(2, 0),
				Duration: config.Duration(2 * time.Hour),
			}}}
		}
		schedule := NewSchedule(service)
		plan.Schedules = append(plan.Schedules, ServiceSchedule{Service: service.Name, Schedule: schedule})
		for p := range benchSLOsPerService {
			def := &Definition{
				Service:   service.Name,
				Name:      fmt.Sprintf("availability-%02d", p),
				Objective: benchObjective,
				Window:    benchWindow,
				Location:  time.UTC,
				Probes:    []string{fmt.Sprintf("probe-%02d", p)},
				Schedule:  schedule,
			}
			if p%5 == 0 {
				def.Name = fmt.Sprintf("latency-%02d", p)
				def.LatencyBelow = 500 * time.Millisecond
			}
			plan.SLOs = append(plan.SLOs, def)
		}
	}
	return plan
}

// benchLatencySLOs counts benchPlan's latency SLOs: they export one series
// more (slo_latency_threshold_seconds).
func benchLatencySLOs(plan *Plan) int {
	n := 0
	for _, def := range plan.SLOs {
		if def.LatencyBelow > 0 {
			n++
		}
	}
	return n
}

// benchEngine returns an engine with plan applied on a clock stopped at
// benchNow.
func benchEngine(plan *Plan) *Engine {
	now := benchNow()
	e := NewEngine(EngineOptions{Now: func() time.Time { return now }, Interval: 15 * time.Second})
	e.Apply(plan, 15*time.Second)
	return e
}

// benchFill selects how benchFillHistory fills the rings.
type benchFill int

const (
	// benchSteady: every bucket holds the runs of its slot, a failure
	// every 97th slot: long runs of equal buckets, broken now and then.
	benchSteady benchFill = iota
	// benchNoisy: counts vary from bucket to bucket and no two neighbours
	// are equal, the worst case for the run-length encoding of the state.
	benchNoisy
)

func (f benchFill) String() string { return [...]string{"steady", "noisy"}[f] }

// benchWant is what the filled history must evaluate to for one SLO.
type benchWant struct {
	window5m, full Counts
}

// benchFillHistory writes 30 days of history into every active SLO's
// rings directly: recording 864 million runs one by one would take far
// too long. Every bucket of every ring is non-zero, the worst case for the
// state's size. A bucket holds resolution/30 s runs (one run per 30 s);
// the 10 s ring, whose slots are shorter than a run interval, holds one
// run in every slot, so that it is full too. Runs in a maintenance window
// are excluded. It returns, by the snapshot's order, the 5-minute and full
// windows' counts, summed here from the buckets written.
func benchFillHistory(e *Engine, now time.Time, fill benchFill) []benchWant {
	ordered := e.routes.Load().ordered
	want := make([]benchWant, len(ordered))
	// Exclusions per slot depend only on the schedule: compute them once
	// per schedule (Exclusion of a weekly window is costly).
	masks := map[*Schedule]*[numRings][]Exclusion{}
	for i, o := range ordered {
		o.mu.Lock()
		mask := masks[o.def.Schedule]
		if mask == nil {
			mask = benchExclusions(o, now)
			masks[o.def.Schedule] = mask
		}
		rng := rand.New(rand.NewPCG(uint64(i), uint64(fill)))
		var total Counts
		for k := range o.rings {
			r := &o.rings[k]
			if len(r.buckets) == 0 {
				continue
			}
			r.head = r.slot(now)
			runs := uint32(max(1, r.resolution/int64(benchRunInterval)))
			first := r.head - int64(len(r.buckets)) + 1
			var previous bucket
			var sum Counts
			for n, slot := 0, first; slot <= r.head; n, slot = n+1, slot+1 {
				b := benchBucket(slot, runs, mask[k][n], fill, rng)
				if fill == benchNoisy && b == previous {
					b.good++
				}
				previous = b
				r.buckets[r.position(slot)] = b
				sum.add(b.counts())
			}
			switch k {
			case ring10s:
				want[i].window5m = sum
			case ring1h:
				want[i].full = sum
				total = sum
			}
		}
		// The totals since the state began: as if it began 30 days ago.
		o.good, o.bad = total.Good, total.Bad
		o.excluded[ExcludedMaintenance] = total.Excluded
		o.lastEvent = now
		o.mu.Unlock()
	}
	return want
}

// benchExclusions returns the exclusion of every slot of o's rings, oldest
// first, for rings whose head is the slot of now.
func benchExclusions(o *objective, now time.Time) *[numRings][]Exclusion {
	var mask [numRings][]Exclusion
	for k := range o.rings {
		r := &o.rings[k]
		mask[k] = make([]Exclusion, len(r.buckets))
		first := r.slot(now) - int64(len(r.buckets)) + 1
		for n := range mask[k] {
			mask[k][n] = o.def.Schedule.Exclusion(time.Unix(0, (first+int64(n))*r.resolution))
		}
	}
	return &mask
}

func benchBucket(slot int64, runs uint32, exclusion Exclusion, fill benchFill, rng *rand.Rand) bucket {
	if exclusion != Included {
		return bucket{excluded: runs}
	}
	if fill == benchSteady {
		if slot%97 == 0 {
			return bucket{good: runs - 1, bad: 1}
		}
		return bucket{good: runs}
	}
	// Around the steady count, ±10%, with 0 to 2 failures.
	return bucket{good: runs - runs/10 + uint32(rng.IntN(int(runs/5)+2)), bad: uint32(rng.IntN(3))}
}

// benchCheckSnapshot fails b unless snap holds, for every SLO, the
// windows the history was filled with.
func benchCheckSnapshot(b *testing.B, snap *Snapshot, want []benchWant) {
	b.Helper()
	if len(snap.SLOs) != len(want) {
		b.Fatalf("snapshot has %d SLOs, want %d", len(snap.SLOs), len(want))
	}
	for i := range want {
		s := &snap.SLOs[i]
		if got := s.Windows[Window5m]; got != eventsOf(want[i].window5m) {
			b.Fatalf("SLO %s: 5m window %+v, want %+v", s.Key(), got, want[i].window5m)
		}
		if got := s.Windows[WindowFull]; got != eventsOf(want[i].full) {
			b.Fatalf("SLO %s: full window %+v, want %+v", s.Key(), got, want[i].full)
		}
		if s.Good != want[i].full.Good || s.Bad != want[i].full.Bad {
			b.Fatalf("SLO %s: totals good %d bad %d, want %d and %d", s.Key(), s.Good, s.Bad, want[i].full.Good, want[i].full.Bad)
		}
	}
}

// benchFilledEngine returns an engine of benchPlan's SLOs with 30 days of
// history, evaluated and checked at benchNow.
func benchFilledEngine(b *testing.B, fill benchFill) (*Engine, *Plan) {
	b.Helper()
	plan := benchPlan()
	e := benchEngine(plan)
	want := benchFillHistory(e, benchNow(), fill)
	benchCheckSnapshot(b, e.Evaluate(benchNow()), want)
	return e, plan
}

// BenchmarkEvaluate10k measures one evaluation tick of 10,000 SLOs with
// 30 days of history. The floor is for one core: run with -cpu 1.
func BenchmarkEvaluate10k(b *testing.B) {
	e, _ := benchFilledEngine(b, benchSteady)
	now := benchNow()
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(now)
	}
	b.ReportMetric(benchMillis(b), "ms/op")
}

// benchMillis is the mean time of an iteration in milliseconds.
func benchMillis(b *testing.B) float64 {
	return float64(b.Elapsed()) / float64(time.Millisecond) / float64(b.N)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// benchProbeMetrics returns the probe metrics of plan's 10,000 probes,
// one run of each recorded, as the daemon that runs those SLOs holds them.
func benchProbeMetrics(plan *Plan) *collector.ProbeMetrics {
	m := collector.NewProbeMetrics()
	ids := benchProbeIDs(plan)
	infos := make([]collector.ProbeInfo, len(ids))
	for i, id := range ids {
		infos[i] = collector.ProbeInfo{ID: id, Type: "http", Target: "http://127.0.0.1:8080/" + id.String(), Interval: benchRunInterval}
	}
	m.SetProbes(infos)
	var phases collector.Phases
	for _, p := range collector.AllPhases() {
		phases.Add(p, time.Millisecond)
	}
	for i, id := range ids {
		result := benchResult(i)
		result.StatusCode, result.Phases = 200, phases
		m.Record(id, result)
	}
	return m
}

// BenchmarkScrape10k measures a /metrics scrape with 10,000 SLOs, encoded
// as cmd/reliabilityd/metrics.go does: the SLO families alone ("slo"), and
// the probe families of their 10,000 probes followed by the SLO families
// ("probes+slo", the whole streamed part of the daemon's /metrics; the
// registry's few hundred series are left out), through collector's
// FamilyWriter as /metrics does. Plain text; gzip at gzip.BestSpeed, which
// is what the daemon serves to Prometheus (it asks for gzip), in the text
// format and in OpenMetrics (which Prometheus prefers); and gzip at the
// default level for comparison.
func BenchmarkScrape10k(b *testing.B) {
	e, plan := benchFilledEngine(b, benchSteady)
	probes := benchProbeMetrics(plan)
	// Every window of every SLO holds events, so each SLO has 40 series
	// (41 for latency SLOs) and each service 2.
	wantSLOSeries := 40*len(plan.SLOs) + benchLatencySLOs(plan) + 2*len(plan.Schedules)
	for _, withProbes := range []bool{false, true} {
		for _, v := range []struct {
			name        string
			level       int // 0: no compression
			openMetrics bool
		}{{"text", 0, false}, {"gzip", gzip.BestSpeed, false}, {"openmetrics-gzip", gzip.BestSpeed, true},
			{"gzip-default-level", gzip.DefaultCompression, false}} {
			name := "slo/" + v.name
			if withProbes {
				name = "probes+slo/" + v.name
			}
			b.Run(name, func(b *testing.B) {
				var series, sloSeries int
				var written int64
				b.ReportAllocs()
				for b.Loop() {
					// As /metrics: the probe families, then the SLO families.
					var sources []func(func(*dto.MetricFamily) error) error
					if withProbes {
						sources = append(sources, probes.EachFamily)
					}
					sources = append(sources, e.EachFamily)
					var counts []int
					counts, written = scrapeOnce(b, v.level, v.openMetrics, sources...)
					sloSeries, series = counts[len(counts)-1], 0
					for _, n := range counts {
						series += n
					}
				}
				if sloSeries != wantSLOSeries {
					b.Fatalf("scrape has %d SLO series, want %d", sloSeries, wantSLOSeries)
				}
				b.ReportMetric(benchMillis(b), "ms/op")
				b.ReportMetric(float64(series), "series")
				b.ReportMetric(float64(written), "bytes")
			})
		}
	}
}

// scrapeOnce writes the families of each source through a FamilyWriter,
// gzip-compressed at level unless it is 0, as /metrics does, and returns
// the series each source wrote and the bytes written.
func scrapeOnce(b *testing.B, level int, openMetrics bool, sources ...func(func(*dto.MetricFamily) error) error) ([]int, int64) {
	out := &countingWriter{w: io.Discard}
	var w io.Writer = out
	var gz *gzip.Writer
	if level != 0 {
		var err error
		if gz, err = gzip.NewWriterLevel(out, level); err != nil {
			b.Fatal(err)
		}
		w = gz
	}
	enc := collector.NewFamilyWriter(w, openMetrics)
	series := make([]int, len(sources))
	for i, source := range sources {
		err := source(func(mf *dto.MetricFamily) error {
			series[i] += len(mf.Metric)
			return enc.Encode(mf)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return series, out.n
}

// BenchmarkRestore10k measures a start's restore of 10,000 SLOs' state:
// UnmarshalState, then Apply, which claims every restored SLO and runs the
// first evaluation. The file variant also reads the state file through
// Store.Load (page cache warm), as the daemon does.
func BenchmarkRestore10k(b *testing.B) {
	for _, fill := range []benchFill{benchSteady, benchNoisy} {
		e, plan := benchFilledEngine(b, fill)
		data, err := e.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		want := e.Snapshot()
		restore := func(b *testing.B, data []byte) *Engine {
			restored := NewEngine(EngineOptions{Now: benchNow, Interval: 15 * time.Second})
			if err := restored.UnmarshalState(data); err != nil {
				b.Fatal(err)
			}
			restored.Apply(plan, 15*time.Second)
			return restored
		}
		check := func(b *testing.B, restored *Engine) {
			got := restored.Snapshot()
			if len(got.SLOs) != len(want.SLOs) {
				b.Fatalf("restored %d SLOs, want %d", len(got.SLOs), len(want.SLOs))
			}
			for i := range want.SLOs {
				g, w := &got.SLOs[i], &want.SLOs[i]
				if g.Key() != w.Key() || g.Windows != w.Windows || g.Good != w.Good || g.Bad != w.Bad || g.Excluded != w.Excluded {
					b.Fatalf("restored SLO %s differs from the saved one %s:\n%+v\nwant\n%+v", g.Key(), w.Key(), g.Windows, w.Windows)
				}
			}
		}
		b.Run(fill.String(), func(b *testing.B) {
			var restored *Engine
			b.ReportAllocs()
			for b.Loop() {
				restored = restore(b, data)
			}
			check(b, restored)
			b.ReportMetric(benchMillis(b), "ms/op")
			b.ReportMetric(float64(len(data)), "state-bytes")
		})
		b.Run(fill.String()+"/file", func(b *testing.B) {
			store, err := OpenStore(b.TempDir(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			if err := store.Save(map[string][]byte{SLOStateSection: data}); err != nil {
				b.Fatal(err)
			}
			var restored *Engine
			b.ReportAllocs()
			for b.Loop() {
				sections, err := store.Load()
				if err != nil {
					b.Fatal(err)
				}
				restored = restore(b, sections[SLOStateSection])
			}
			check(b, restored)
			b.ReportMetric(benchMillis(b), "ms/op")
		})
	}
}

// benchResult returns the i-th run of a probe: 100 ms, a failure in every
// thousand, one run per probe every 30 s across 10,000 probes.
func benchResult(i int) collector.Result {
	return collector.Result{
		Start:    benchNow().Add(time.Duration(i) * (benchRunInterval / benchSLOs)),
		Duration: 100 * time.Millisecond,
		Success:  i%1000 != 0,
	}
}

// benchProbeIDs returns the probes of plan, one per SLO, in plan order.
func benchProbeIDs(plan *Plan) []collector.ProbeID {
	ids := make([]collector.ProbeID, len(plan.SLOs))
	for i, def := range plan.SLOs {
		ids[i] = collector.ProbeID{Service: def.Service, Probe: def.Probes[0]}
	}
	return ids
}

// benchRecorded sums every SLO's events: each run recorded counts once.
func benchRecorded(e *Engine) uint64 {
	var n uint64
	for _, o := range e.routes.Load().ordered {
		o.mu.Lock()
		n += o.good + o.bad
		for _, x := range o.excluded {
			n += x
		}
		o.mu.Unlock()
	}
	return n
}

// BenchmarkRecord measures Engine.Record: one probe run routed to its SLO
// and added to its rings, runs in time order across 10,000 probes.
func BenchmarkRecord(b *testing.B) {
	plan := benchPlan()
	e := benchEngine(plan)
	ids := benchProbeIDs(plan)
	var i int
	b.ReportAllocs()
	for b.Loop() {
		e.Record(ids[i%len(ids)], benchResult(i))
		i++
	}
	if got := benchRecorded(e); got != uint64(i) {
		b.Fatalf("SLOs counted %d events, want %d", got, i)
	}
}

// BenchmarkRecordParallel measures Engine.Record from concurrent probe
// workers (-cpu sets how many), each on its own sequence of probes.
func BenchmarkRecordParallel(b *testing.B) {
	plan := benchPlan()
	e := benchEngine(plan)
	ids := benchProbeIDs(plan)
	var workers, total atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		offset := int(workers.Add(1)) * 7919 // spread workers over the probes
		i := 0
		for pb.Next() {
			e.Record(ids[(offset+i)%len(ids)], benchResult(i))
			i++
		}
		total.Add(int64(i))
	})
	if got := benchRecorded(e); got != uint64(total.Load()) {
		b.Fatalf("SLOs counted %d events, want %d", got, total.Load())
	}
}

// benchHeap returns the heap in use and the bytes of live objects after a
// full collection.
func benchHeap() (inUse, live uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.HeapAlloc
}

// BenchmarkMemory10k measures the heap 10,000 SLOs of 30 days take, per
// SLO: definitions and schedules, rings filled with the noisy history
// (ring memory does not depend on contents, the state's size does), one
// evaluated snapshot, and one marshalled state, as the flusher keeps the
// last good bytes of each section. bytes/slo is heap in use (spans,
// fragmentation included); live-bytes/slo counts allocated objects only.
// Each iteration builds everything anew; run with -benchtime 1x.
func BenchmarkMemory10k(b *testing.B) {
	var inUse, live, stateBytes float64
	for b.Loop() {
		inUse0, live0 := benchHeap()
		plan := benchPlan()
		e := benchEngine(plan)
		want := benchFillHistory(e, benchNow(), benchNoisy)
		benchCheckSnapshot(b, e.Evaluate(benchNow()), want)
		state, err := e.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		inUse1, live1 := benchHeap()
		runtime.KeepAlive(e)
		runtime.KeepAlive(plan)
		runtime.KeepAlive(state)
		inUse = (float64(inUse1) - float64(inUse0)) / benchSLOs
		live = (float64(live1) - float64(live0)) / benchSLOs
		stateBytes = float64(len(state)) / benchSLOs
	}
	b.ReportMetric(0, "ns/op") // the time of building is not a figure
	b.ReportMetric(inUse, "bytes/slo")
	b.ReportMetric(live, "live-bytes/slo")
	b.ReportMetric(stateBytes, "state-bytes/slo")
}
