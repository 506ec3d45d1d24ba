package slo

import (
	"compress/gzip"
	"fmt"
	"math"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
)

// The benchmarks below measure the floors of issue 5 at their scale:
// 10,000 capacity resources with 30 days of history each
// (docs/benchmarks.md, "Capacity engine"). They report figures and check
// that the engine fitted what the filled history holds; they assert no
// timings.
const (
	capBenchServices    = 1000
	capBenchPerService  = 10
	capBenchResources   = capBenchServices * capBenchPerService
	capBenchSampleEvery = time.Minute // the default capacity interval
	// capBenchLimit is every resource's configured limit, in inner units
	// (see capBenchResource): above any usage the fill writes.
	capBenchLimit = 8_000_000
)

// capBenchNow is the evaluation time: 12:01 on a Tuesday. The newest slot
// of each ring (12:00) holds the samples of 12:00 and 12:01; its centre
// lies after now, so every window ends at the slot before it.
func capBenchNow() time.Time { return time.Date(2026, time.November, 24, 12, 1, 0, 0, time.UTC) }

// capBenchResetAt is when the reset fill's cleanup happens: 18 hours
// before the hour of now, inside every forecast window.
func capBenchResetAt() int64 { return capBenchNow().Truncate(time.Hour).Add(-18 * time.Hour).Unix() }

// capBenchOrigin is the start of the coarse ring's oldest slot, where the
// filled usage line starts.
func capBenchOrigin() int64 {
	return capBenchNow().Truncate(time.Hour).Add(-time.Duration(coarseHistory.length-1) * time.Hour).Unix()
}

// capBenchKind is one kind of resource of the plan. slots and
// afterReset are worked out by hand from capBenchNow: the window's slots
// whose centre lies in [now-window, now], all of them filled, and those
// after the reset fill's cleanup.
type capBenchKind struct {
	name, source, method string
	window               time.Duration
	// scale turns inner units into the source's unit; a power of two, so
	// that every filled value is exact in float32.
	scale float64
	// 7d hourly: slots 12:00 seven days ago .. 11:00 today, 168; the
	// cleanup at 18:00 yesterday leaves 18:00 .. 11:00, 18. 1d of 5
	// minutes: 12:00 yesterday .. 11:55, 288; after 18:00, 216. 14d
	// hourly: 336; after the cleanup 18.
	slots, afterReset int
}

// capBenchKinds returns the plan's kinds, fresh for each plan (no
// package-level state).
func capBenchKinds() []capBenchKind {
	return []capBenchKind{
		{"disk", "filesystem", "linear", 7 * 24 * time.Hour, 4096, 168, 18},
		{"memory", "memory", "linear", 7 * 24 * time.Hour, 4096, 168, 18},
		{"fds", "process", "linear", 24 * time.Hour, 1, 288, 216},
		{"cpu", "cpu", "holt", 14 * 24 * time.Hour, 1.0 / (1 << 20), 336, 18},
	}
}

// capBenchResource is one resource of the plan and the usage line its
// history is filled with: base + rate per hour since capBenchOrigin, in
// inner units (integers below 2^24, times the kind's scale), so that the
// value at every slot centre is an integer and exact in float32.
type capBenchResource struct {
	def     *ResourceDefinition
	kind    *capBenchKind
	seed    uint64
	base    int64 // a multiple of 4: the reset fill drops to base/4
	rate    int64 // a multiple of 24: a whole number per 5-minute slot centre
	failing bool  // has failed samples: the failures family has series
}

// capBenchFill selects the history capBenchFillHistory writes.
type capBenchFill int

const (
	// capBenchExact: the usage line alone; every trend is known exactly.
	capBenchExact capBenchFill = iota
	// capBenchNoisy: the line plus up to half an hour's growth of noise
	// in every slot: no two neighbouring slots share their low bits, the
	// worst case for the state's XOR encoding.
	capBenchNoisy
	// capBenchReset: noisy, and a cleanup to a quarter of base 18 hours
	// ago (a reset of the trend), after which the line grows again.
	capBenchReset
)

func (f capBenchFill) String() string { return [...]string{"exact", "noisy", "reset"}[f] }

// capBenchPlan returns 10,000 resources on 1,000 services in the order a
// snapshot lists them (service, then name): a quarter of each kind, so
// half linear over 7 days, a quarter linear over a day, a quarter holt
// over 14 days; all with limits, headroom targets and growth plans.
func capBenchPlan() []capBenchResource {
	plan := make([]capBenchResource, 0, capBenchResources)
	kinds := capBenchKinds()
	for s := range capBenchServices {
		service := make([]capBenchResource, 0, capBenchPerService)
		for j := range capBenchPerService {
			kind := &kinds[(s*capBenchPerService+j)%len(kinds)]
			service = append(service, capBenchResource{kind: kind, def: &ResourceDefinition{
				Service: fmt.Sprintf("svc-%04d", s), Name: fmt.Sprintf("%s-%02d", kind.name, j), Source: kind.source,
				Limit: capBenchLimit * kind.scale, HeadroomTarget: 0.2,
				Growth: [numHorizons]float64{0.1, 0.25, 0.6}, Planned: [numHorizons]bool{true, true, true},
				Method: kind.method, Window: kind.window, MinSamples: 12, Alpha: 0.5, Beta: 0.1, ResetDrop: 0.5,
			}})
		}
		slices.SortFunc(service, func(a, b capBenchResource) int { return strings.Compare(a.def.Name, b.def.Name) })
		plan = append(plan, service...)
	}
	for i := range plan {
		r := &plan[i]
		r.seed = uint64(i)
		r.base = 1_000_000 + int64(i%97)*10_000
		r.rate = 24 * int64(1+i%50)
		r.failing = i%10 == 0
	}
	return plan
}

func capBenchDefs(plan []capBenchResource) []*ResourceDefinition {
	defs := make([]*ResourceDefinition, len(plan))
	for i := range plan {
		defs[i] = plan[i].def
	}
	return defs
}

// line returns the noise-free usage at t (Unix seconds), in the source's
// unit.
func (r *capBenchResource) line(t int64, fill capBenchFill) float64 {
	if fill == capBenchReset && t >= capBenchResetAt() {
		return (float64(r.base/4) + float64(r.rate)*float64(t-capBenchResetAt())/3600) * r.kind.scale
	}
	return (float64(r.base) + float64(r.rate)*float64(t-capBenchOrigin())/3600) * r.kind.scale
}

// value returns what the fill writes into slot (of resolution res
// seconds) for a mean taken at t: the line plus, unless exact, a noise of
// up to ±rate/2 inner units drawn from a hash of resource, ring and slot.
func (r *capBenchResource) value(t, slot, res int64, fill capBenchFill) float32 {
	v := r.line(t, fill)
	if fill != capBenchExact {
		amplitude := r.rate / 2
		h := splitmix64(r.seed*0x9E3779B97F4A7C15 ^ uint64(slot)*0xBF58476D1CE4E5B9 ^ uint64(res))
		v += float64(int64(h%uint64(2*amplitude+1))-amplitude) * r.kind.scale
	}
	return float32(v)
}

// splitmix64 is SplitMix64's finaliser: a stateless hash, so that the
// checks can redraw any slot's noise.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// ringSeconds is the resolution, in seconds, of the ring that serves the
// resource's forecast window.
func (r *capBenchResource) ringSeconds() int64 {
	if r.kind.window <= fineHistorySpan {
		return int64(fineHistory.resolution / time.Second)
	}
	return int64(coarseHistory.resolution / time.Second)
}

// capBenchFillHistory writes the history of every resource of plan into
// c's rings directly, as if sampled once a minute until capBenchNow:
// recording half a billion samples one by one would take far too long. Every
// slot of both rings holds a value (the coarse ring's 35 days, more than
// the 30 of the floor: the worst case for the state's size); the newest
// slot is the mean of 12:00 and 12:01, so its value is the one at 12:00:30.
// The latest reading is the line at now; the failing resources have timed
// out three times.
func capBenchFillHistory(c *Capacity, plan []capBenchResource, fill capBenchFill) {
	now := capBenchNow()
	routes := c.routes.Load()
	for i := range plan {
		p := &plan[i]
		r := routes.byID[p.def.ID()]
		r.mu.Lock()
		for _, ring := range []*valueRing{&r.fine, &r.coarse} {
			res := ring.resolution / int64(time.Second)
			ring.head = floorDiv(now.Unix(), res)
			ring.headCount = 2
			for slot := ring.head - int64(len(ring.values)) + 1; slot < ring.head; slot++ {
				ring.values[ring.position(slot)] = p.value(slot*res+res/2, slot, res, fill)
			}
			ring.values[ring.position(ring.head)] = p.value(ring.head*res+30, ring.head, res, fill)
		}
		r.last = collector.Measurement{Usage: p.line(now.Unix(), fill), Limit: p.def.Limit}
		r.lastTime = now
		r.samples = uint64(coarseHistory.length-1)*60 + 2 // a minute's sample for every filled hour, and the newest two
		clear(r.failures)
		if p.failing {
			r.failures[collector.ReasonTimeout] = 3
		}
		r.mu.Unlock()
	}
}

// capBenchCapacity returns a capacity engine of plan's resources with
// their history filled, evaluated once and checked.
func capBenchCapacity(b *testing.B, plan []capBenchResource, fill capBenchFill) *Capacity {
	b.Helper()
	c := NewCapacity(nil, nil)
	c.Apply(capBenchDefs(plan), capBenchNow())
	capBenchFillHistory(c, plan, fill)
	capBenchCheck(b, c.Evaluate(capBenchNow()), plan, fill)
	return c
}

// capBenchCheckEvery selects the resources whose noisy trend capBenchCheck
// recomputes in exact arithmetic: 25, every kind among them (401 is 1
// modulo 4, and the kinds cycle through the plan).
const capBenchCheckEvery = 401

// capBenchCheck fails b unless snap holds, for every resource of plan, the
// latest reading and a trend over the window's slots (after the cleanup,
// with the reset fill). The exact fill's trends are known in closed form:
// slope rate/3600 per second, level the line at now (Holt on a straight
// line follows it exactly). Noisy trends are recomputed, for every 401st
// resource, in exact arithmetic from the values the fill wrote.
func capBenchCheck(b *testing.B, snap *CapacitySnapshot, plan []capBenchResource, fill capBenchFill) {
	b.Helper()
	if len(snap.Resources) != len(plan) {
		b.Fatalf("snapshot has %d resources, want %d", len(snap.Resources), len(plan))
	}
	now := capBenchNow()
	for i := range plan {
		s, p := &snap.Resources[i], &plan[i]
		if s.ResourceDefinition != p.def {
			b.Fatalf("resource %d is %s, want %s", i, s.Key(), p.def.Key())
		}
		if !s.HasUsage || s.Usage != p.line(now.Unix(), fill) || s.Limit != p.def.Limit || len(s.Failures) != len(p.failingReasons()) {
			b.Fatalf("resource %s: usage %v, limit %v, failures %v, want %v, %v, %v", s.Key(), s.Usage, s.Limit, s.Failures,
				p.line(now.Unix(), fill), p.def.Limit, p.failingReasons())
		}
		n := p.kind.slots
		if fill == capBenchReset {
			n = p.kind.afterReset
		}
		if !s.HasTrend || s.Trend.Samples != n {
			b.Fatalf("resource %s (%s): trend of %d slots (ok %v), want %d", s.Key(), fill, s.Trend.Samples, s.HasTrend, n)
		}
		var want Trend
		switch {
		case fill == capBenchExact:
			want = Trend{Level: p.line(now.Unix(), fill), Slope: float64(p.rate) * p.kind.scale / 3600}
		case i%capBenchCheckEvery == 0:
			want = p.exactTrend(n, fill)
		default:
			continue
		}
		// The engine sums in float64 (compensated for linear), so it is
		// off by rounding only: at most 2e-16 of the level and 4e-13 of
		// the slope (Holt's recursion) were seen; the bounds leave a
		// hundredfold margin, while a noisy window shifted by one slot
		// moves the slope by about 1 %.
		if math.Abs(s.Trend.Level-want.Level) > 1e-14*math.Abs(want.Level) ||
			math.Abs(s.Trend.Slope-want.Slope) > 1e-10*math.Abs(want.Slope) {
			b.Fatalf("resource %s (%s, %s): trend level %v slope %v, want %v and %v", s.Key(), p.def.Method, fill,
				s.Trend.Level, s.Trend.Slope, want.Level, want.Slope)
		}
	}
}

func (r *capBenchResource) failingReasons() []collector.Reason {
	if r.failing {
		return []collector.Reason{collector.ReasonTimeout}
	}
	return nil
}

// exactTrend recomputes the trend from the n slots before the newest of
// the forecast ring, redrawn as the fill wrote them: least squares in
// rational arithmetic (linear), or Holt's recursion in 512-bit floats
// (holt).
func (r *capBenchResource) exactTrend(n int, fill capBenchFill) Trend {
	nowS := capBenchNow().Unix()
	res := r.ringSeconds()
	head := floorDiv(nowS, res)
	ts := make([]int64, n)
	vs := make([]float64, n)
	for k := range n {
		slot := head - int64(n) + int64(k)
		centre := slot*res + res/2
		ts[k], vs[k] = centre-nowS, float64(r.value(centre, slot, res, fill))
	}
	if r.def.Method == "holt" {
		return holtExact(vs, ts[n-1], float64(res), r.def.Alpha, r.def.Beta)
	}
	return leastSquaresExact(ts, vs)
}

// leastSquaresExact fits v = level + slope*t exactly: slope =
// (n*Σtv - Σt*Σv) / (n*Σt² - (Σt)²), level = (Σv - slope*Σt) / n.
func leastSquaresExact(ts []int64, vs []float64) Trend {
	n := big.NewRat(int64(len(ts)), 1)
	st, sv, stt, stv := new(big.Rat), new(big.Rat), new(big.Rat), new(big.Rat)
	for k := range ts {
		t, v := new(big.Rat).SetInt64(ts[k]), new(big.Rat).SetFloat64(vs[k])
		st.Add(st, t)
		sv.Add(sv, v)
		stt.Add(stt, new(big.Rat).Mul(t, t))
		stv.Add(stv, new(big.Rat).Mul(t, v))
	}
	num := new(big.Rat).Sub(new(big.Rat).Mul(n, stv), new(big.Rat).Mul(st, sv))
	den := new(big.Rat).Sub(new(big.Rat).Mul(n, stt), new(big.Rat).Mul(st, st))
	slope := new(big.Rat).Quo(num, den)
	level := new(big.Rat).Quo(new(big.Rat).Sub(sv, new(big.Rat).Mul(slope, st)), n)
	l, _ := level.Float64()
	s, _ := slope.Float64()
	return Trend{Level: l, Slope: s, Samples: len(ts)}
}

// holtExact runs Holt's smoothing over vs (no empty slots), step seconds
// apart, the last at lastT seconds from now: level_0 = v_0, trend_0 = v_1 -
// v_0, then level = α v + (1-α)(level + trend), trend = β (level -
// previous level) + (1-β) trend; slope = trend/step, level moved to now.
func holtExact(vs []float64, lastT int64, step, alpha, beta float64) Trend {
	const prec = 512
	f := func(x float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(x) }
	a, b := f(alpha), f(beta)
	oneMinusA, oneMinusB := new(big.Float).Sub(f(1), a), new(big.Float).Sub(f(1), b)
	level := f(vs[0])
	trend := new(big.Float).Sub(f(vs[1]), level)
	for _, raw := range vs[1:] {
		previous := level
		level = new(big.Float).Add(new(big.Float).Mul(a, f(raw)), new(big.Float).Mul(oneMinusA, new(big.Float).Add(previous, trend)))
		trend = new(big.Float).Add(new(big.Float).Mul(b, new(big.Float).Sub(level, previous)), new(big.Float).Mul(oneMinusB, trend))
	}
	slope := new(big.Float).Quo(trend, f(step))
	level.Sub(level, new(big.Float).Mul(slope, f(float64(lastT))))
	l, _ := level.Float64()
	s, _ := slope.Float64()
	return Trend{Level: l, Slope: s, Samples: len(vs)}
}

// BenchmarkCapacityEvaluate10k measures one evaluation tick of 10,000
// resources with 30 days of history: every window's points, the reset
// scan and the fit. The floor is for one core: run with -cpu 1.
func BenchmarkCapacityEvaluate10k(b *testing.B) {
	plan := capBenchPlan()
	for _, fill := range []capBenchFill{capBenchExact, capBenchNoisy, capBenchReset} {
		b.Run(fill.String(), func(b *testing.B) {
			c := capBenchCapacity(b, plan, fill)
			now := capBenchNow()
			var snap *CapacitySnapshot
			b.ReportAllocs()
			for b.Loop() {
				snap = c.Evaluate(now)
			}
			capBenchCheck(b, snap, plan, fill)
			b.ReportMetric(benchMillis(b), "ms/op")
		})
	}
}

// capBenchSeriesPerResource is how many series a resource with usage,
// a limit, a trend and a full growth plan exports: 12 families of one
// series (info, usage, limit, utilization, headroom, headroom target and
// met, exhaustion, slope, trend samples, samples, last sample) and 6
// projections (plan and trend at 3 horizons); one more per failure reason.
const capBenchSeriesPerResource = 12 + 2*numHorizons

// BenchmarkCapacityScrape10k measures the capacity part of a /metrics
// scrape with 10,000 resources: Capacity.EachFamily through collector's
// FamilyWriter to io.Discard, as /metrics streams it: plain text, and
// gzip at gzip.BestSpeed, which the daemon serves to Prometheus.
func BenchmarkCapacityScrape10k(b *testing.B) {
	plan := capBenchPlan()
	c := capBenchCapacity(b, plan, capBenchNoisy)
	wantSeries := capBenchSeriesPerResource * len(plan)
	for i := range plan {
		wantSeries += len(plan[i].failingReasons())
	}
	for _, v := range []struct {
		name  string
		level int // 0: no compression
	}{{"text", 0}, {"gzip", gzip.BestSpeed}} {
		b.Run(v.name, func(b *testing.B) {
			var series int
			var written int64
			b.ReportAllocs()
			for b.Loop() {
				var counts []int
				counts, written = scrapeOnce(b, v.level, false, c.EachFamily)
				series = counts[0]
			}
			if series != wantSeries {
				b.Fatalf("scrape has %d capacity series, want %d", series, wantSeries)
			}
			b.ReportMetric(benchMillis(b), "ms/op")
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(written), "bytes")
		})
	}
}

// BenchmarkCapacityRestore10k measures a start's restore of 10,000
// resources' state: UnmarshalState, then Apply, which claims every
// restored resource and runs the first evaluation.
func BenchmarkCapacityRestore10k(b *testing.B) {
	plan := capBenchPlan()
	defs := capBenchDefs(plan)
	for _, fill := range []capBenchFill{capBenchExact, capBenchNoisy} {
		b.Run(fill.String(), func(b *testing.B) {
			c := capBenchCapacity(b, plan, fill)
			data, err := c.MarshalState()
			if err != nil {
				b.Fatal(err)
			}
			var restored *Capacity
			b.ReportAllocs()
			for b.Loop() {
				restored = NewCapacity(nil, nil)
				if err := restored.UnmarshalState(data); err != nil {
					b.Fatal(err)
				}
				restored.Apply(defs, capBenchNow())
			}
			// The restored history must fit the same trends, the counters
			// come back, and nothing is left over as an orphan.
			capBenchCheck(b, restored.Snapshot(), plan, fill)
			want := c.Snapshot()
			for i, got := range restored.Snapshot().Resources {
				w := &want.Resources[i]
				if got.Trend != w.Trend || got.Samples != w.Samples || !got.LastSample.Equal(w.LastSample) ||
					got.Failures[collector.ReasonTimeout] != w.Failures[collector.ReasonTimeout] {
					b.Fatalf("restored %s differs: %+v, want %+v", got.Key(), got, *w)
				}
			}
			if len(restored.orphans) != 0 {
				b.Fatalf("%d restored resources left as orphans", len(restored.orphans))
			}
			b.ReportMetric(benchMillis(b), "ms/op")
			b.ReportMetric(float64(len(data)), "state-bytes")
		})
	}
}

// BenchmarkCapacityRecord measures Capacity.Record of one successful
// sample, routed to its resource and folded into both rings, samples in
// time order across the 10,000 filled resources (each sampled once a
// minute, so a sample every 6 ms).
func BenchmarkCapacityRecord(b *testing.B) {
	plan := capBenchPlan()
	c := capBenchCapacity(b, plan, capBenchExact)
	ids := make([]collector.ProbeID, len(plan))
	readings := make([]collector.Measurement, len(plan))
	for i := range plan {
		ids[i] = plan[i].def.ID()
		readings[i] = collector.Measurement{Limit: plan[i].def.Limit}
	}
	samples := func() uint64 {
		var n uint64
		for _, r := range c.routes.Load().ordered {
			r.mu.Lock()
			n += r.samples
			r.mu.Unlock()
		}
		return n
	}
	before := samples()
	start := capBenchNow().Add(time.Second)
	every := capBenchSampleEvery / capBenchResources
	var i int
	b.ReportAllocs()
	for b.Loop() {
		k := i % len(plan)
		at := start.Add(time.Duration(i) * every)
		readings[k].Usage = plan[k].line(at.Unix(), capBenchExact)
		c.Record(ids[k], collector.Result{Start: at, Success: true, Measurement: &readings[k]})
		i++
	}
	if got := samples() - before; got != uint64(i) {
		b.Fatalf("resources counted %d samples, want %d", got, i)
	}
}

// BenchmarkCapacityMemory10k measures the heap 10,000 resources with 30
// days of history take, per resource: definitions, rings filled with the
// noisy history (ring memory does not depend on contents, the state's
// size does), one evaluated snapshot, and one marshalled state, as the
// flusher keeps the last good bytes of each section. bytes/resource is
// heap in use (spans, fragmentation included); live-bytes/resource counts
// allocated objects only. Each iteration builds everything anew; run with
// -benchtime 1x.
func BenchmarkCapacityMemory10k(b *testing.B) {
	var inUse, live, stateBytes float64
	for b.Loop() {
		inUse0, live0 := benchHeap()
		plan := capBenchPlan()
		c := capBenchCapacity(b, plan, capBenchNoisy)
		state, err := c.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		inUse1, live1 := benchHeap()
		runtime.KeepAlive(c)
		runtime.KeepAlive(plan)
		runtime.KeepAlive(state)
		inUse = (float64(inUse1) - float64(inUse0)) / capBenchResources
		live = (float64(live1) - float64(live0)) / capBenchResources
		stateBytes = float64(len(state)) / capBenchResources
	}
	b.ReportMetric(0, "ns/op") // the time of building is not a figure
	b.ReportMetric(inUse, "bytes/resource")
	b.ReportMetric(live, "live-bytes/resource")
	b.ReportMetric(stateBytes, "state-bytes/resource")
}
