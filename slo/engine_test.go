package slo

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
)

// event is one probe run as the reference model sees it.
type event struct {
	at       time.Time
	probe    string
	success  bool
	duration time.Duration
}

// reference recomputes an SLO's figures from the list of every event, by
// the definitions in docs/slo.md, without rings: a window of length W and
// resolution r at time now holds the events from the start of the slot
// W before the current slot's start up to the end of the current slot.
// Slot boundaries are multiples of r since the Unix epoch, which
// time.Truncate gives too (the zero time is a whole number of hours
// before the epoch).
type reference struct {
	events       []event
	objective    *big.Rat // ratio
	latencyBelow time.Duration
	probes       map[string]bool
	excluded     func(time.Time) bool
}

// windowSpec is where a window starts for the reference model.
func windowBounds(now time.Time, length, resolution time.Duration) (from, to time.Time) {
	current := now.Truncate(resolution)
	return current.Add(-length), current.Add(resolution)
}

var referenceResolutions = [WindowFull]time.Duration{10 * time.Second, time.Minute, time.Minute, time.Minute, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}

func (r *reference) counts(from, to, now time.Time) Counts {
	var c Counts
	for _, e := range r.events {
		if !r.probes[e.probe] || e.at.Before(from) || !e.at.Before(to) || e.at.After(now) {
			continue
		}
		switch {
		case r.excluded != nil && r.excluded(e.at):
			c.Excluded++
		case e.success && (r.latencyBelow == 0 || e.duration < r.latencyBelow):
			c.Good++
		default:
			c.Bad++
		}
	}
	return c
}

func (r *reference) window(w int, now time.Time, full time.Duration) Counts {
	if w == WindowFull {
		resolution := time.Hour
		if full <= 72*time.Hour {
			resolution = 5 * time.Minute
		}
		from, to := windowBounds(now, full, resolution)
		return r.counts(from, to, now)
	}
	from, to := windowBounds(now, burnWindows[w].length, referenceResolutions[w])
	return r.counts(from, to, now)
}

// ratio returns a/b as a big.Rat.
func ratio(a, b uint64) *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
}

// closeTo compares a float computed by the engine with an exact value.
func closeTo(got float64, want *big.Rat) bool {
	w, _ := want.Float64()
	if w == 0 {
		return math.Abs(got) < 1e-12
	}
	return math.Abs(got-w) <= 1e-12*math.Abs(w)
}

// checkStatus compares every window and budget figure of s with the
// reference.
func checkStatus(t *testing.T, s *SLOStatus, ref *reference, now time.Time, full time.Duration) {
	t.Helper()
	one := big.NewRat(1, 1)
	allowed := new(big.Rat).Sub(one, ref.objective)
	for w := range numWindows {
		want := ref.window(w, now, full)
		if s.Windows[w] != eventsOf(want) {
			t.Errorf("%s at %s: window %s = %+v, want %+v", s.Name, now.Format(time.RFC3339), WindowNames[w], s.Windows[w], want)
			continue
		}
		sli, ok := s.SLI(w)
		burn, burnOK := s.BurnRate(w)
		if want.Total() == 0 {
			if ok || burnOK {
				t.Errorf("%s window %s: no events but SLI %v (%v), burn %v (%v)", s.Name, WindowNames[w], sli, ok, burn, burnOK)
			}
			continue
		}
		wantSLI := ratio(want.Good, want.Total())
		wantBurn := new(big.Rat).Quo(ratio(want.Bad, want.Total()), allowed)
		if !ok || !closeTo(sli, wantSLI) || !burnOK || !closeTo(burn, wantBurn) {
			t.Errorf("%s window %s: SLI %v burn %v, want %s and %s", s.Name, WindowNames[w], sli, burn,
				wantSLI.FloatString(12), wantBurn.FloatString(12))
		}
	}
	full1 := ref.window(WindowFull, now, full)
	b := s.Budget()
	budgetEvents := new(big.Rat).Mul(allowed, ratio(full1.Total(), 1))
	remainingEvents := new(big.Rat).Sub(budgetEvents, ratio(full1.Bad, 1))
	if !closeTo(b.Events, budgetEvents) || b.ConsumedEvents != float64(full1.Bad) || !closeTo(b.RemainingEvents, remainingEvents) {
		t.Errorf("%s budget events %v consumed %v remaining %v, want %s, %d, %s", s.Name, b.Events, b.ConsumedEvents,
			b.RemainingEvents, budgetEvents.FloatString(9), full1.Bad, remainingEvents.FloatString(9))
	}
	if full1.Total() == 0 {
		if b.HasData || b.HasExhaustion {
			t.Errorf("%s: budget ratios without data", s.Name)
		}
		return
	}
	consumed := new(big.Rat).Quo(ratio(full1.Bad, 1), budgetEvents)
	remaining := new(big.Rat).Sub(one, consumed)
	if !b.HasData || !closeTo(b.ConsumedRatio, consumed) || !closeTo(b.RemainingRatio, remaining) {
		t.Errorf("%s budget consumed %v remaining %v, want %s and %s", s.Name, b.ConsumedRatio, b.RemainingRatio,
			consumed.FloatString(12), remaining.FloatString(12))
	}
	hour := ref.window(Window1h, now, full)
	if hour.Total() == 0 {
		if b.HasExhaustion {
			t.Errorf("%s: exhaustion forecast without data in the last hour", s.Name)
		}
		return
	}
	// remaining × window / burn(1h), with burn(1h) = (bad/total) / allowed.
	var wantExhaustion float64
	switch {
	case remaining.Sign() <= 0:
		wantExhaustion = 0
	case hour.Bad == 0:
		wantExhaustion = math.Inf(1)
	default:
		burn := new(big.Rat).Quo(ratio(hour.Bad, hour.Total()), allowed)
		seconds := new(big.Rat).Mul(remaining, new(big.Rat).SetFloat64(s.WindowLength.Seconds()))
		wantExhaustion, _ = new(big.Rat).Quo(seconds, burn).Float64()
	}
	if !b.HasExhaustion || (b.ExhaustionSeconds != wantExhaustion && math.Abs(b.ExhaustionSeconds-wantExhaustion) > 1e-9*wantExhaustion) {
		t.Errorf("%s exhaustion %v s, want %v s", s.Name, b.ExhaustionSeconds, wantExhaustion)
	}
}

const engineTestConfig = `
services:
  - name: shop
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
      - {name: api, http: {url: "http://127.0.0.1:1/api"}}
    slos:
      - name: availability
        objective: 99.5
        window: 7d
        sli: {probes: [home, api]}
      - name: latency
        objective: 90
        window: 2d
        sli: {probes: [api], latency_below: 300ms}
`

// newTestEngine returns an engine whose clock reads *now, with yaml
// applied.
func newTestEngine(t *testing.T, yaml string, now *time.Time) *Engine {
	t.Helper()
	e := NewEngine(EngineOptions{Now: func() time.Time { return *now }})
	applyYAML(t, e, yaml)
	return e
}

// randomEvents returns n runs spread over span before end, in random
// order, with about one failure in failEvery and durations up to 600ms.
func randomEvents(rng *rand.Rand, n int, end time.Time, span time.Duration, failEvery int) []event {
	events := make([]event, n)
	probes := []string{"home", "api"}
	for i := range events {
		events[i] = event{
			at:       end.Add(-time.Duration(rng.Int64N(int64(span)))),
			probe:    probes[rng.IntN(2)],
			success:  rng.IntN(failEvery) != 0,
			duration: time.Duration(rng.Int64N(int64(600 * time.Millisecond))),
		}
	}
	return events
}

func record(e *Engine, service string, events []event) {
	for _, ev := range events {
		e.Record(collector.ProbeID{Service: service, Probe: ev.probe},
			collector.Result{Start: ev.at, Success: ev.success, Duration: ev.duration})
	}
}

func references(events []event) map[string]*reference {
	return map[string]*reference{
		"availability": {events: events, objective: big.NewRat(995, 1000), probes: map[string]bool{"home": true, "api": true}},
		"latency":      {events: events, objective: big.NewRat(90, 100), latencyBelow: 300 * time.Millisecond, probes: map[string]bool{"api": true}},
	}
}

var fullWindows = map[string]time.Duration{"availability": 7 * 24 * time.Hour, "latency": 48 * time.Hour}

// TestEngineAgainstReference records random runs in random order over ten
// days and checks every figure at many instants against the reference,
// including instants right on and next to slot boundaries.
func TestEngineAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	end := utc("2026-11-23T12:00:00Z")
	now := end
	e := newTestEngine(t, engineTestConfig, &now)
	events := randomEvents(rng, 20000, end, 10*24*time.Hour, 7)
	// A dense last hour so the short windows hold many events.
	events = append(events, randomEvents(rng, 3000, end, time.Hour, 3)...)
	record(e, "shop", events)
	refs := references(events)

	instants := []time.Time{end, end.Add(time.Nanosecond), end.Add(9*time.Second + 999*time.Millisecond), end.Add(10 * time.Second),
		end.Add(59 * time.Second), end.Add(time.Minute), end.Add(5 * time.Minute), end.Add(5*time.Minute + time.Second),
		end.Add(59 * time.Minute), end.Add(time.Hour), end.Add(6*time.Hour + 1), end.Add(47 * time.Hour), end.Add(72 * time.Hour),
		end.Add(6 * 24 * time.Hour), end.Add(8 * 24 * time.Hour)}
	for _, at := range instants {
		now = at
		snap := e.Evaluate(at)
		for i := range snap.SLOs {
			s := &snap.SLOs[i]
			checkStatus(t, s, refs[s.Name], at, fullWindows[s.Name])
		}
	}
	// Eighteen days on, every window is empty: no data, not 100%.
	snap := e.Evaluate(end.Add(18 * 24 * time.Hour))
	for _, s := range snap.SLOs {
		for w := range numWindows {
			if s.Windows[w].Total() != 0 {
				t.Errorf("%s window %s still holds %+v", s.Name, WindowNames[w], s.Windows[w])
			}
		}
		if s.Good+s.Bad == 0 {
			t.Errorf("%s: counters lost their totals", s.Name)
		}
	}
}

// TestEngineWindowEdges places single events right at the edges of the
// 5-minute window (10-second slots) and the 7-day window (hourly slots).
func TestEngineWindowEdges(t *testing.T) {
	now := utc("2026-11-23T12:00:05Z")
	e := newTestEngine(t, engineTestConfig, &now)
	record(e, "shop", []event{
		{at: utc("2026-11-23T11:55:00Z"), probe: "home", success: false},           // first instant of the 5m window
		{at: utc("2026-11-23T11:54:59.999999999Z"), probe: "home", success: false}, // last instant before it
		{at: utc("2026-11-16T12:00:00Z"), probe: "home", success: true},            // first instant of the 7d window
		{at: utc("2026-11-16T11:59:59Z"), probe: "home", success: true},            // just before
	})
	s := e.Evaluate(now).SLOs[0]
	if got := s.Windows[Window5m]; got != eventsOf(Counts{Bad: 1}) {
		t.Errorf("5m window = %+v, want the one bad event at its first instant", got)
	}
	if got := s.Windows[WindowFull]; got != eventsOf(Counts{Good: 1, Bad: 2}) {
		t.Errorf("full window = %+v, want {Good:1 Bad:2}", got)
	}
	if want := utc("2026-11-16T12:00:00Z"); !s.WindowStart.Equal(want) {
		t.Errorf("window start %s, want %s", s.WindowStart, want)
	}
	// Ten seconds later the 5m window has moved past 11:55:00.
	s = e.Evaluate(now.Add(10 * time.Second)).SLOs[0]
	if got := s.Windows[Window5m]; got != eventsOf(Counts{}) {
		t.Errorf("5m window 10s later = %+v, want empty", got)
	}
}

// TestEngineRestartMidWindow saves the state halfway through a run of
// events, restores it into a new engine and records the rest: the figures
// equal those of one engine that saw everything.
func TestEngineRestartMidWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	end := utc("2026-11-23T12:00:00Z")
	events := randomEvents(rng, 8000, end, 9*24*time.Hour, 5)
	// Sorted halves: the restart happens at the middle of the stream.
	first, second := splitAt(events, end.Add(-3*24*time.Hour))

	now := end.Add(-3 * 24 * time.Hour)
	before := newTestEngine(t, engineTestConfig, &now)
	record(before, "shop", first)
	before.Evaluate(now)
	state, err := before.MarshalState()
	if err != nil {
		t.Fatal(err)
	}

	after := NewEngine(EngineOptions{Now: func() time.Time { return now }})
	if err := after.UnmarshalState(state); err != nil {
		t.Fatalf("UnmarshalState: %v", err)
	}
	applyYAML(t, after, engineTestConfig)
	now = end // the rest of the events happen after the restart
	record(after, "shop", second)
	refs := references(events)
	snap := after.Evaluate(end)
	for i := range snap.SLOs {
		s := &snap.SLOs[i]
		checkStatus(t, s, refs[s.Name], end, fullWindows[s.Name])
		var total Counts
		for _, ev := range events {
			if refs[s.Name].probes[ev.probe] {
				total.add(refs[s.Name].counts(ev.at, ev.at.Add(1), ev.at))
			}
		}
		if s.Good != total.Good || s.Bad != total.Bad {
			t.Errorf("%s counters good %d bad %d after restart, want %d and %d", s.Name, s.Good, s.Bad, total.Good, total.Bad)
		}
	}
}

func splitAt(events []event, at time.Time) (before, after []event) {
	for _, e := range events {
		if e.at.Before(at) {
			before = append(before, e)
		} else {
			after = append(after, e)
		}
	}
	return before, after
}

// TestEngineBudgetExhaustion checks the exhaustion forecast on figures
// worked out by hand. Objective 99.5% over 7d allows 0.5% bad events.
func TestEngineBudgetExhaustion(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	many := func(n int, at time.Time, success bool) []event {
		events := make([]event, n)
		for i := range events {
			events[i] = event{at: at, probe: "home", success: success}
		}
		return events
	}
	twoDaysAgo, halfHourAgo := now.Add(-48*time.Hour), now.Add(-30*time.Minute)
	tests := []struct {
		name   string
		events []event
		// want is the forecast in seconds; NaN for absent.
		want float64
	}{
		{
			// Full window: 9990 good, 20 bad: the budget is 0.005 × 10010 =
			// 50.05 events, 20 spent, so 30.05/50.05 = 601/1001 is left.
			// Last hour: 10 bad of 1000, burn rate 0.01/0.005 = 2. At burn 1
			// the budget lasts one window (604800 s), so what is left lasts
			// 601/1001 × 604800 / 2 = 181742400/1001 s.
			name: "burning",
			events: append(append(append(many(9000, twoDaysAgo, true), many(10, twoDaysAgo, false)...),
				many(990, halfHourAgo, true)...), many(10, halfHourAgo, false)...),
			want: 181742400.0 / 1001,
		},
		{name: "not burning", events: append(many(9000, twoDaysAgo, true), append(many(10, twoDaysAgo, false), many(100, halfHourAgo, true)...)...), want: math.Inf(1)},
		{name: "overspent", events: append(many(100, twoDaysAgo, false), many(100, halfHourAgo, true)...), want: 0},
		{name: "no data in the last hour", events: many(100, twoDaysAgo, true), want: math.NaN()},
		{name: "no data at all", want: math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t, engineTestConfig, &now)
			record(e, "shop", tt.events)
			b := e.Evaluate(now).SLOs[0].Budget()
			switch {
			case math.IsNaN(tt.want):
				if b.HasExhaustion {
					t.Errorf("forecast %v s, want none", b.ExhaustionSeconds)
				}
			case !b.HasExhaustion:
				t.Errorf("no forecast, want %v s", tt.want)
			case b.ExhaustionSeconds != tt.want && math.Abs(b.ExhaustionSeconds-tt.want) > 1e-9*tt.want:
				t.Errorf("forecast %v s, want %v s", b.ExhaustionSeconds, tt.want)
			}
		})
	}
}

// TestEngineClockSteps: a result stamped ahead of the clock is not
// counted; after the wall clock is stepped back a day, new events still
// land in the windows (the rings rewind instead of treating them as too
// old until the clock catches up).
func TestEngineClockSteps(t *testing.T) {
	now := utc("2026-11-23T12:00:00Z")
	e := newTestEngine(t, engineTestConfig, &now)
	record(e, "shop", []event{{at: now.Add(24 * time.Hour), probe: "home", success: false}})
	if s := e.Evaluate(now.Add(25 * time.Hour)).SLOs[0]; s.Bad != 0 {
		t.Errorf("a result stamped a day ahead counted: %d bad", s.Bad)
	}
	record(e, "shop", []event{{at: now, probe: "home", success: true}})
	now = now.Add(-24 * time.Hour) // the clock is stepped back a day
	record(e, "shop", []event{{at: now, probe: "home", success: false}})
	s := e.Evaluate(now).SLOs[0]
	if s.Windows[Window5m] != eventsOf(Counts{Bad: 1}) {
		t.Errorf("5m window after a step back = %+v, want the one event at the new time", s.Windows[Window5m])
	}
}
