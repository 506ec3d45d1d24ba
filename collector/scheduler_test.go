package collector

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// schedTestStart is where the fake clocks of these tests start: a whole
// minute, so due times are easy to reason about.
const schedTestStart = 1_800_000_000

// schedWait bounds every wait of these tests; it is only reached when a
// test fails.
const schedWait = 10 * time.Second

func TestStartPhase(t *testing.T) {
	id := ProbeID{Service: "checkout", Probe: "home"}
	h := fnv.New64a()
	h.Write([]byte("checkout\x00home"))
	raw := time.Duration(h.Sum64() % uint64(30*time.Second))

	tests := []struct {
		name     string
		id       ProbeID
		interval time.Duration
		slot     time.Duration
		want     time.Duration
	}{
		{"no slot is the raw hash", id, 30 * time.Second, 0, raw},
		{"rounded down to 50ms", id, 30 * time.Second, 50 * time.Millisecond, raw - raw%(50*time.Millisecond)},
		{"rounded down to 1s", id, 30 * time.Second, time.Second, raw - raw%time.Second},
		{"slot longer than interval", id, time.Second, time.Minute, 0},
		{"zero interval", id, 0, time.Second, 0},
		{"separator keeps fields apart", ProbeID{Service: "check", Probe: "outhome"}, 30 * time.Second, 0,
			func() time.Duration {
				h := fnv.New64a()
				h.Write([]byte("check\x00outhome"))
				return time.Duration(h.Sum64() % uint64(30*time.Second))
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StartPhase(tt.id, tt.interval, tt.slot)
			if got != tt.want {
				t.Fatalf("StartPhase = %v, want %v", got, tt.want)
			}
			if again := StartPhase(tt.id, tt.interval, tt.slot); again != got {
				t.Fatalf("StartPhase not stable: %v then %v", got, again)
			}
			if tt.interval > 0 && (got < 0 || got >= tt.interval) {
				t.Fatalf("StartPhase = %v, outside [0, %v)", got, tt.interval)
			}
		})
	}
	if a, b := StartPhase(id, 30*time.Second, 0), StartPhase(ProbeID{"check", "outhome"}, 30*time.Second, 0); a == b {
		t.Fatalf("IDs differing only by the split between service and probe share phase %v", a)
	}
}

func TestStartPhaseSpreadsProbes(t *testing.T) {
	const probes, interval, slot = 1000, 10 * time.Second, 50 * time.Millisecond
	perSecond := make([]int, interval/time.Second)
	slots := map[time.Duration]bool{}
	for i := range probes {
		phase := StartPhase(ProbeID{Service: fmt.Sprintf("svc-%d", i%37), Probe: fmt.Sprintf("probe-%d", i)}, interval, slot)
		if phase%slot != 0 {
			t.Fatalf("phase %v is not a multiple of the slot %v", phase, slot)
		}
		perSecond[phase/time.Second]++
		slots[phase] = true
	}
	// 100 expected per second; a fair hash stays well within ±40.
	for sec, n := range perSecond {
		if n < 60 || n > 140 {
			t.Errorf("second %d of the interval holds %d probes, want about 100 (all: %v)", sec, n, perSecond)
		}
	}
	// 1000 probes over 200 slots leave about 200*e^-5 ≈ 1.3 slots empty.
	if len(slots) < 190 {
		t.Errorf("probes use %d of 200 slots, want at least 190", len(slots))
	}
}

func TestNextDue(t *testing.T) {
	tests := []struct {
		name            string
		now             int64
		interval, phase time.Duration
		want            int64
	}{
		{"exactly due", 25, 10, 5, 25},
		{"just after a due time", 26, 10, 5, 35},
		{"before phase in the period", 21, 10, 5, 25},
		{"zero phase", 30, 10, 0, 30},
		{"before the epoch", -7, 10, 5, -5},
		{"real time", int64(schedTestStart * time.Second), 30 * time.Second, 1234 * time.Millisecond,
			int64(schedTestStart*time.Second + 1234*time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextDue(tt.now, tt.interval, tt.phase); got != tt.want {
				t.Fatalf("nextDue(%d, %d, %d) = %d, want %d", tt.now, tt.interval, tt.phase, got, tt.want)
			}
		})
	}
}

func TestLateThreshold(t *testing.T) {
	tests := []struct {
		interval, want time.Duration
	}{
		{2 * time.Second, 200 * time.Millisecond},
		{10 * time.Second, time.Second},
		{time.Minute, time.Second},
	}
	s := NewScheduler(SchedulerOptions{})
	for _, tt := range tests {
		t.Run(tt.interval.String(), func(t *testing.T) {
			e := s.newEntry(ScheduledProbe{Interval: tt.interval, Prober: &schedProber{}})
			if e.lateAfter != tt.want {
				t.Fatalf("late threshold = %v, want %v", e.lateAfter, tt.want)
			}
		})
	}
}

func TestSchedulerTimeoutNormalization(t *testing.T) {
	tests := []struct {
		name              string
		interval, timeout time.Duration
		want              time.Duration
	}{
		{"set", 10 * time.Second, 3 * time.Second, 3 * time.Second},
		{"zero means interval", 10 * time.Second, 0, 10 * time.Second},
		{"capped at interval", 10 * time.Second, time.Minute, 10 * time.Second},
	}
	s := NewScheduler(SchedulerOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := s.newEntry(ScheduledProbe{Interval: tt.interval, Timeout: tt.timeout, Prober: &schedProber{}})
			if e.timeout != tt.want {
				t.Fatalf("timeout = %v, want %v", e.timeout, tt.want)
			}
		})
	}
}

func TestSchedulerRunsEachProbeAtItsIntervalAndPhase(t *testing.T) {
	h := newSchedHarness(t, SchedulerOptions{})
	probes := []struct {
		id                ProbeID
		interval, timeout time.Duration
	}{
		{ProbeID{"shop", "home"}, 10 * time.Second, 2 * time.Second},
		{ProbeID{"shop", "cart"}, 15 * time.Second, 15 * time.Second},
		{ProbeID{"auth", "login"}, 30 * time.Second, 5 * time.Second},
	}
	var scheduled []ScheduledProbe
	want := map[ProbeID][]time.Time{}
	wakeTimes := map[time.Time]bool{}
	end := h.start.Add(time.Minute)
	for _, p := range probes {
		scheduled = append(scheduled, ScheduledProbe{ID: p.id, Interval: p.interval, Timeout: p.timeout,
			ConfigHash: 1, Prober: h.newProber(nil)})
		phase := StartPhase(p.id, p.interval, DefaultSchedulerSlot)
		for due := h.start.Add(phase); due.Before(end); due = due.Add(p.interval) {
			want[p.id] = append(want[p.id], due)
			wakeTimes[due] = true
		}
	}
	h.s.Apply(scheduled, 10)
	h.run()

	got := map[ProbeID][]time.Time{}
	for range len(wakeTimes) {
		h.advanceToNextTimer()
		h.waitRuns()
	}
	timeouts := map[ProbeID]time.Duration{}
	for _, p := range probes {
		timeouts[p.id] = p.timeout
	}
	for range schedSumLen(want) {
		rec := h.record()
		got[rec.id] = append(got[rec.id], rec.result.Start)
		// The fake prober reports its context's deadline minus its start.
		if rec.result.Duration != timeouts[rec.id] {
			t.Errorf("%v run at %v: context deadline %v after start, want the probe's timeout %v",
				rec.id, rec.result.Start, rec.result.Duration, timeouts[rec.id])
		}
	}
	for _, p := range probes {
		slices.SortFunc(got[p.id], time.Time.Compare)
		if !slices.Equal(got[p.id], want[p.id]) {
			t.Errorf("%v ran at %v, want %v", p.id, got[p.id], want[p.id])
		}
	}
	h.expectMetrics(schedMetricsWant{
		wakeups: len(wakeTimes), runs: schedSumLen(want), probes: 3, maxConcurrent: 10})
}

func TestSchedulerBatchesProbesDueInTheSameSlot(t *testing.T) {
	const interval = 10 * time.Second
	h := newSchedHarness(t, SchedulerOptions{})
	ids := schedSamePhaseIDs(t, 6, interval, DefaultSchedulerSlot)
	var scheduled []ScheduledProbe
	for _, id := range ids {
		scheduled = append(scheduled, ScheduledProbe{ID: id, Interval: interval, Prober: h.newProber(nil)})
	}
	h.s.Apply(scheduled, 0)
	h.run()

	const periods = 3
	due := h.start.Add(StartPhase(ids[0], interval, DefaultSchedulerSlot))
	for period := range periods {
		h.waitArmedAt(due)
		h.advanceTo(due)
		h.waitArmedAt(due.Add(interval))
		h.waitRuns()
		for range ids {
			if rec := h.record(); !rec.result.Start.Equal(due) {
				t.Fatalf("period %d: %v started at %v, want %v", period, rec.id, rec.result.Start, due)
			}
		}
		due = due.Add(interval)
	}
	h.expectMetrics(schedMetricsWant{
		wakeups: periods, runs: periods * len(ids), probes: len(ids), maxConcurrent: DefaultMaxConcurrentRuns})
}

func TestSchedulerSkipsRunWhilePreviousInFlight(t *testing.T) {
	const interval = 10 * time.Second
	h := newSchedHarness(t, SchedulerOptions{})
	id := ProbeID{"shop", "slow"}
	prober := h.newProber(make(chan struct{}))
	// A run ends by its next due time when its prober honours the timeout,
	// which is at most the interval; this one does not.
	prober.ignoreCtx = true
	h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, Prober: prober}}, 0)
	h.run()

	first := h.advanceToNextTimer()
	prober.waitStarted(t)
	// Two more due times pass while the first run is blocked.
	for i := range 2 {
		h.waitArmedAt(first.Add(time.Duration(i+1) * interval))
		h.advanceTo(first.Add(time.Duration(i+1) * interval))
		h.waitArmedAt(first.Add(time.Duration(i+2) * interval))
	}
	if n := prober.calls.Load(); n != 1 {
		t.Fatalf("prober called %d times while its first run was in flight, want 1", n)
	}
	schedRelease(t, prober.release)
	if rec := h.record(); !rec.result.Start.Equal(first) {
		t.Fatalf("first run started at %v, want %v", rec.result.Start, first)
	}
	h.waitRuns() // the run is over only once Record has returned
	next := h.advanceToNextTimer()
	if want := first.Add(3 * interval); !next.Equal(want) {
		t.Fatalf("next run due at %v, want %v", next, want)
	}
	schedRelease(t, prober.release)
	if rec := h.record(); !rec.result.Start.Equal(next) {
		t.Fatalf("run after the skips started at %v, want %v", rec.result.Start, next)
	}
	h.expectMetrics(schedMetricsWant{wakeups: 4, runs: 2, skipped: 2, probes: 1, maxConcurrent: DefaultMaxConcurrentRuns})
}

func TestSchedulerCountsRunsMissedWhileAsleepAsSkipped(t *testing.T) {
	const interval = 10 * time.Second
	h := newSchedHarness(t, SchedulerOptions{})
	id := ProbeID{"shop", "home"}
	h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, Prober: h.newProber(nil)}}, 0)
	h.run()

	first := h.advanceToNextTimer()
	h.waitRuns()
	h.record()
	// The host sleeps through the due times first+10s and first+20s and
	// resumes at first+35s: those two are skipped, first+30s runs 5s late.
	h.waitArmedAt(first.Add(interval))
	h.advanceTo(first.Add(35 * time.Second))
	h.waitArmedAt(first.Add(40 * time.Second))
	h.waitRuns()
	rec := h.record()
	if want := first.Add(35 * time.Second); !rec.result.Start.Equal(want) {
		t.Fatalf("run after resume started at %v, want %v", rec.result.Start, want)
	}
	h.expectMetrics(schedMetricsWant{wakeups: 2, runs: 2, skipped: 2, late: 1, lagSum: 5,
		probes: 1, maxConcurrent: DefaultMaxConcurrentRuns})
}

func TestSchedulerRespectsConcurrencyCap(t *testing.T) {
	const interval, probes, limit = 10 * time.Second, 6, 2
	h := newSchedHarness(t, SchedulerOptions{})
	release := make(chan struct{})
	tracker := &schedTracker{}
	var scheduled []ScheduledProbe
	for _, id := range schedSamePhaseIDs(t, probes, interval, DefaultSchedulerSlot) {
		p := h.newProber(release)
		p.tracker = tracker
		scheduled = append(scheduled, ScheduledProbe{ID: id, Interval: interval, Prober: p})
	}
	h.s.Apply(scheduled, limit)
	h.run()

	due := h.advanceToNextTimer()
	for started := 0; started < probes; started++ {
		tracker.waitRunning(t, limit)
		if got := testutil.ToFloat64(h.s.metrics.inFlight); got != limit {
			t.Fatalf("runs_in_flight = %v with %d runs started, want %d", got, started, limit)
		}
		if started < probes-limit {
			schedRelease(t, release)
			h.record()
		}
	}
	for range limit {
		schedRelease(t, release)
		h.record()
	}
	h.waitRuns()
	if got := tracker.max.Load(); got != limit {
		t.Fatalf("at most %d runs were in flight, want %d", got, limit)
	}
	if got := testutil.ToFloat64(h.s.metrics.inFlight); got != 0 {
		t.Fatalf("runs_in_flight = %v after all runs, want 0", got)
	}
	// The clock did not move, so runs that waited for the cap are on time.
	if now := h.clock.Now(); !now.Equal(due) {
		t.Fatalf("clock moved to %v", now)
	}
	h.expectMetrics(schedMetricsWant{wakeups: 1, runs: probes, probes: probes, maxConcurrent: limit})
}

func TestSchedulerRaisingCapStartsWaitingRuns(t *testing.T) {
	const interval = 10 * time.Second
	h := newSchedHarness(t, SchedulerOptions{})
	release := make(chan struct{})
	tracker := &schedTracker{}
	var scheduled []ScheduledProbe
	for _, id := range schedSamePhaseIDs(t, 3, interval, DefaultSchedulerSlot) {
		p := h.newProber(release)
		p.tracker = tracker
		scheduled = append(scheduled, ScheduledProbe{ID: id, Interval: interval, ConfigHash: 1, Prober: p})
	}
	h.s.Apply(scheduled, 1)
	h.run()
	h.advanceToNextTimer()
	tracker.waitRunning(t, 1)
	h.s.Apply(scheduled, 3)
	tracker.waitRunning(t, 3)
	h.expectGauge(h.s.metrics.maxConcurrent, 3)
	for range 3 {
		schedRelease(t, release)
		h.record()
	}
}

func TestRunPoolLimit(t *testing.T) {
	tests := []struct {
		name         string
		first, later int // limit for the first jobs, then for the later ones
		jobs         int
		wantFirst    int // jobs running at once under the first limit
		wantLater    int
	}{
		{"lowered", 3, 1, 3, 3, 1},
		{"raised", 1, 3, 3, 1, 3},
		{"unchanged", 2, 2, 4, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			tracker := &schedTracker{}
			var done sync.WaitGroup
			pool := newRunPool(tt.first, func(runJob) {
				defer done.Done()
				tracker.enter()
				defer tracker.leave()
				<-release
			})
			submit := func(n int) {
				for range n {
					done.Add(1)
					pool.submit(runJob{})
				}
			}
			submit(tt.jobs)
			tracker.waitRunning(t, tt.wantFirst)
			pool.setLimit(tt.later)
			tracker.waitRunning(t, min(tt.jobs, max(tt.wantFirst, tt.later)))
			for range tt.jobs {
				schedRelease(t, release)
			}
			done.Wait()

			tracker.max.Store(0)
			submit(tt.jobs)
			tracker.waitRunning(t, tt.wantLater)
			for range tt.jobs {
				schedRelease(t, release)
			}
			done.Wait()
			if got := int(tracker.max.Load()); got != tt.wantLater {
				t.Fatalf("at most %d jobs ran at once after setLimit(%d), want %d", got, tt.later, tt.wantLater)
			}
			if dropped := pool.close(); len(dropped) != 0 {
				t.Fatalf("close dropped %d jobs, want none", len(dropped))
			}
			pool.wait()
			if pool.workers != 0 {
				t.Fatalf("%d workers left after close", pool.workers)
			}
		})
	}
}

func TestRunPoolCloseDropsWaitingJobs(t *testing.T) {
	release := make(chan struct{})
	started := make(chan int, 10)
	pool := newRunPool(1, func(j runJob) {
		started <- int(j.due)
		<-release
	})
	for i := range 4 {
		pool.submit(runJob{due: int64(i)})
	}
	if got := <-started; got != 0 {
		t.Fatalf("first job run is %d, want 0 (FIFO)", got)
	}
	dropped := pool.close()
	close(release)
	pool.wait()
	var dues []int64
	for _, j := range dropped {
		dues = append(dues, j.due)
	}
	if want := []int64{1, 2, 3}; !slices.Equal(dues, want) {
		t.Fatalf("dropped %v, want %v", dues, want)
	}
	if len(started) != 0 {
		t.Fatalf("%d more jobs ran after close", len(started))
	}
}

func TestJobQueueWrapsAndGrows(t *testing.T) {
	var q jobQueue
	next, want := int64(0), int64(0)
	// Interleave pushes and pops so the ring wraps before it grows.
	for round := range 5 {
		for range 10 + round*7 {
			q.push(runJob{due: next})
			next++
		}
		for range 6 + round*5 {
			j, ok := q.pop()
			if !ok || j.due != want {
				t.Fatalf("round %d: pop = %d, %v; want %d", round, j.due, ok, want)
			}
			want++
		}
	}
	for q.len() > 0 {
		j, _ := q.pop()
		if j.due != want {
			t.Fatalf("pop = %d, want %d", j.due, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d jobs, pushed %d", want, next)
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop from an empty queue succeeded")
	}
}

func TestSchedulerRunWaitingForCapIsLateAndSkipsItsNextDue(t *testing.T) {
	h := newSchedHarness(t, SchedulerOptions{})
	holder := h.newProber(make(chan struct{}))
	waiter := h.newProber(nil)
	holderProbe := ScheduledProbe{ID: ProbeID{"batch", "holder"}, Interval: time.Hour, ConfigHash: 1, Prober: holder}
	h.s.Apply([]ScheduledProbe{holderProbe}, 1)
	h.run()

	holderDue := h.advanceToNextTimer()
	holder.waitStarted(t)
	// Add a second probe while the first holds the only slot. The holder's
	// hash is unchanged: it keeps running with its own prober.
	waiterProbe := ScheduledProbe{ID: ProbeID{"batch", "waiter"}, Interval: 10 * time.Second, Prober: waiter}
	h.s.Apply([]ScheduledProbe{holderProbe, waiterProbe}, 1)
	waiterDue := time.Unix(0, nextDue(holderDue.UnixNano(), 10*time.Second, StartPhase(waiterProbe.ID, 10*time.Second, DefaultSchedulerSlot)))
	if waiterDue.Equal(holderDue) {
		t.Fatalf("test needs the waiter to be due after %v", holderDue)
	}
	h.waitArmedAt(waiterDue)
	h.advanceTo(waiterDue)
	// The waiter's next due time passes while it still waits: skipped.
	h.waitArmedAt(waiterDue.Add(10 * time.Second))
	h.advanceTo(waiterDue.Add(12 * time.Second))
	h.waitArmedAt(waiterDue.Add(20 * time.Second))
	if n := waiter.calls.Load(); n != 0 {
		t.Fatalf("waiter ran %d times while the cap was held", n)
	}

	schedRelease(t, holder.release)
	for range 2 {
		rec := h.record()
		if rec.id == waiterProbe.ID && !rec.result.Start.Equal(waiterDue.Add(12*time.Second)) {
			t.Fatalf("waiter started at %v, want once the cap was released at %v", rec.result.Start, waiterDue.Add(12*time.Second))
		}
	}
	h.waitRuns()
	h.expectMetrics(schedMetricsWant{wakeups: 3, runs: 2, skipped: 1, late: 1, lagSum: 12,
		probes: 2, maxConcurrent: 1})
}

func TestSchedulerProbeTimeout(t *testing.T) {
	h := newSchedHarness(t, SchedulerOptions{})
	prober := h.newProber(make(chan struct{}))
	h.s.Apply([]ScheduledProbe{{ID: ProbeID{"shop", "hang"}, Interval: 10 * time.Second, Timeout: 3 * time.Second, Prober: prober}}, 0)
	h.run()

	due := h.advanceToNextTimer()
	prober.waitStarted(t)
	h.advanceTo(due.Add(3 * time.Second))
	rec := h.record()
	if rec.ctxErr != context.DeadlineExceeded {
		t.Fatalf("probe context error = %v, want %v", rec.ctxErr, context.DeadlineExceeded)
	}
	if got := ClassifyError(nil, rec.ctxErr); got != ReasonTimeout {
		t.Fatalf("timeout classified as %q", got)
	}
}

func TestSchedulerApply(t *testing.T) {
	const interval = 10 * time.Second
	id := ProbeID{"shop", "home"}
	other := ProbeID{"shop", "cart"}

	t.Run("unchanged hash keeps prober, due time and run in flight", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{})
		old := h.newProber(make(chan struct{}))
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, ConfigHash: 7, Prober: old}}, 0)
		h.run()
		due := h.advanceToNextTimer()
		old.waitStarted(t)

		fresh := h.newProber(nil)
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: 2 * interval, ConfigHash: 7, Prober: fresh}}, 0)
		if fresh.closed.Load() != 1 || old.closed.Load() != 0 {
			t.Fatalf("closed: new prober %d times, old %d times; want 1 and 0", fresh.closed.Load(), old.closed.Load())
		}
		h.waitArmedAt(due.Add(interval)) // the old interval still holds
		schedRelease(t, old.release)
		if rec := h.record(); !rec.result.Start.Equal(due) || rec.prober != old {
			t.Fatalf("run in flight: recorded start %v by %p, want %v by the old prober", rec.result.Start, rec.prober, due)
		}
		h.waitRuns()
		h.advanceTo(due.Add(interval))
		schedRelease(t, old.release)
		if rec := h.record(); rec.prober != old {
			t.Fatalf("next run used %p, want the old prober %p", rec.prober, old)
		}
		if fresh.calls.Load() != 0 {
			t.Fatalf("discarded prober ran %d times", fresh.calls.Load())
		}
	})

	t.Run("same prober passed again is not closed", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{})
		p := h.newProber(nil)
		probes := []ScheduledProbe{{ID: id, Interval: interval, ConfigHash: 7, Prober: p}}
		h.s.Apply(probes, 0)
		h.s.Apply(probes, 0)
		if p.closed.Load() != 0 {
			t.Fatalf("prober closed %d times, want 0", p.closed.Load())
		}
	})

	t.Run("changed hash replaces prober after the run in flight", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{})
		old := h.newProber(make(chan struct{}))
		old.ignoreCtx = true // so its run outlasts its timeout
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, ConfigHash: 1, Prober: old}}, 0)
		h.run()
		due := h.advanceToNextTimer()
		old.waitStarted(t)

		replacement := h.newProber(nil)
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: 3 * interval, ConfigHash: 2, Prober: replacement}}, 0)
		if old.closed.Load() != 0 {
			t.Fatal("old prober closed while its run is in flight")
		}
		newDue := time.Unix(0, nextDue(due.UnixNano(), 3*interval, StartPhase(id, 3*interval, DefaultSchedulerSlot)))
		if newDue.Equal(due) {
			t.Fatalf("test needs the replacement to be due after %v", due)
		}
		// Due while the old run is still in flight: skipped, never overlapping.
		h.waitArmedAt(newDue)
		h.advanceTo(newDue)
		h.waitArmedAt(newDue.Add(3 * interval))
		if replacement.calls.Load() != 0 {
			t.Fatal("replacement ran while the old prober's run was in flight")
		}
		schedRelease(t, old.release)
		if rec := h.record(); rec.prober != old {
			t.Fatalf("recorded run of %p, want the old prober", rec.prober)
		}
		h.waitRuns()
		if old.closed.Load() != 1 {
			t.Fatalf("old prober closed %d times after its run, want 1", old.closed.Load())
		}
		h.advanceTo(newDue.Add(3 * interval))
		h.waitArmedAt(newDue.Add(6 * interval))
		h.waitRuns()
		if rec := h.record(); rec.prober != replacement || !rec.result.Start.Equal(newDue.Add(3*interval)) {
			t.Fatalf("run at %v by %p, want %v by the replacement", rec.result.Start, rec.prober, newDue.Add(3*interval))
		}
		h.expectMetrics(schedMetricsWant{wakeups: 3, runs: 2, skipped: 1, probes: 1, maxConcurrent: DefaultMaxConcurrentRuns})
	})

	t.Run("removed probe stops, its result is dropped, its prober closed after the run", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{})
		removed := h.newProber(make(chan struct{}))
		kept := h.newProber(nil)
		keptProbe := ScheduledProbe{ID: other, Interval: time.Hour, Prober: kept}
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, Prober: removed}, keptProbe}, 0)
		h.run()
		removedDue := time.Unix(0, nextDue(h.start.UnixNano(), interval, StartPhase(id, interval, DefaultSchedulerSlot)))
		keptDue := time.Unix(0, nextDue(h.start.UnixNano(), time.Hour, StartPhase(other, time.Hour, DefaultSchedulerSlot)))
		if !removedDue.Before(keptDue) {
			t.Fatalf("test needs %v (due %v) to run before %v (due %v)", id, removedDue, other, keptDue)
		}
		if due := h.advanceToNextTimer(); !due.Equal(removedDue) {
			t.Fatalf("first wakeup at %v, want %v", due, removedDue)
		}
		removed.waitStarted(t)

		h.s.Apply([]ScheduledProbe{keptProbe}, 0)
		if got, want := h.s.Probes(), []ProbeID{other}; !slices.Equal(got, want) {
			t.Fatalf("Probes() = %v, want %v", got, want)
		}
		if removed.closed.Load() != 0 {
			t.Fatal("removed prober closed while its run is in flight")
		}
		schedRelease(t, removed.release)
		h.waitRuns()
		if removed.closed.Load() != 1 {
			t.Fatalf("removed prober closed %d times, want 1", removed.closed.Load())
		}
		// Only the kept probe is left to wake for.
		h.waitArmedAt(keptDue)
		h.advanceTo(keptDue)
		h.waitArmedAt(keptDue.Add(time.Hour))
		h.waitRuns()
		if rec := h.record(); rec.id != other {
			t.Fatalf("recorded %v, want only %v (the removed probe's result is dropped)", rec.id, other)
		}
		h.expectNoRecord()
		if n := removed.calls.Load(); n != 1 {
			t.Fatalf("removed probe ran %d times, want 1", n)
		}
		h.expectMetrics(schedMetricsWant{wakeups: 2, runs: 2, probes: 1, maxConcurrent: DefaultMaxConcurrentRuns})
	})

	t.Run("run waiting for the cap of a removed probe never starts", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{})
		ids := schedSamePhaseIDs(t, 2, interval, DefaultSchedulerSlot)
		release := make(chan struct{})
		first, second := h.newProber(release), h.newProber(release)
		h.s.Apply([]ScheduledProbe{
			{ID: ids[0], Interval: interval, Prober: first},
			{ID: ids[1], Interval: interval, Prober: second},
		}, 1)
		h.run()
		h.advanceToNextTimer()
		running, waiting := first, second
		select {
		case <-first.started:
		case <-second.started:
			running, waiting = second, first
		case <-time.After(schedWait):
			t.Fatal("no probe started")
		}
		var keep ScheduledProbe
		for i, p := range []*schedProber{first, second} {
			if p == running {
				keep = ScheduledProbe{ID: ids[i], Interval: interval, Prober: p}
			}
		}
		h.s.Apply([]ScheduledProbe{keep}, 1)
		schedRelease(t, release)
		if rec := h.record(); rec.prober != running {
			t.Fatalf("recorded a run of %p, want %p", rec.prober, running)
		}
		h.waitRuns()
		if n := waiting.calls.Load(); n != 0 {
			t.Fatalf("removed probe ran %d times after its removal", n)
		}
		if waiting.closed.Load() != 1 || running.closed.Load() != 0 {
			t.Fatalf("closed: removed %d times, kept %d times; want 1 and 0", waiting.closed.Load(), running.closed.Load())
		}
		h.expectNoRecord()
	})

	t.Run("before Run, invalid and duplicate probes, cap changes", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{MaxConcurrent: 5})
		h.expectGauge(h.s.metrics.maxConcurrent, 5)
		dup, invalid := h.newProber(nil), h.newProber(nil)
		h.s.Apply([]ScheduledProbe{
			{ID: id, Interval: interval, Prober: h.newProber(nil)},
			{ID: ProbeID{"auth", "login"}, Interval: interval, Prober: h.newProber(nil)},
			{ID: id, Interval: interval, Prober: dup},
			{ID: ProbeID{"auth", "zero"}, Prober: invalid},
			{ID: ProbeID{"auth", "nil"}, Interval: interval},
		}, 3)
		want := []ProbeID{{"auth", "login"}, {"shop", "home"}}
		if got := h.s.Probes(); !slices.Equal(got, want) {
			t.Fatalf("Probes() = %v, want %v", got, want)
		}
		if dup.closed.Load() != 1 || invalid.closed.Load() != 1 {
			t.Fatalf("duplicate closed %d, invalid closed %d times; want 1 each", dup.closed.Load(), invalid.closed.Load())
		}
		h.expectGauge(h.s.metrics.probes, 2)
		h.expectGauge(h.s.metrics.maxConcurrent, 3)
		h.s.Apply(nil, 0)
		h.expectGauge(h.s.metrics.probes, 0)
		h.expectGauge(h.s.metrics.maxConcurrent, DefaultMaxConcurrentRuns)
	})
}

func TestSchedulerRunInFlightAcrossReloads(t *testing.T) {
	const interval = 10 * time.Second
	id := ProbeID{"shop", "slow"}
	tests := []struct {
		name string
		// applies are the Applies made while the first run is in flight:
		// the probe with that config hash and a new prober, or 0 for none.
		applies []uint64
		// wantOldRecorded is whether the result of the run in flight is
		// recorded: only while the probe is never removed.
		wantOldRecorded bool
	}{
		{"replaced", []uint64{2}, true},
		{"replaced, then removed", []uint64{2, 0}, false},
		{"removed, then added back", []uint64{0, 2}, false},
		{"removed, then added back with the same hash", []uint64{0, 1}, false},
		{"removed, added back, removed", []uint64{0, 2, 0}, false},
		{"replaced, removed, added back", []uint64{2, 0, 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSchedHarness(t, SchedulerOptions{})
			old := h.newProber(make(chan struct{}))
			old.ignoreCtx = true // so its run outlasts its timeout and next due time
			h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, ConfigHash: 1, Prober: old}}, 0)
			h.run()
			due := h.advanceToNextTimer()
			old.waitStarted(t)
			// Apply off the dispatch instant, so replacements are due at
			// due+interval whatever the tie rule.
			h.advanceTo(due.Add(time.Second))

			var latest *schedProber
			for _, hash := range tt.applies {
				if hash == 0 {
					h.s.Apply(nil, 0)
					latest = nil
					continue
				}
				latest = h.newProber(nil)
				h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, ConfigHash: hash, Prober: latest}}, 0)
			}
			wakeups, runs, skipped, probes := 1, 1, 0, 0
			if latest != nil {
				// Due while the old run is in flight: skipped, never overlapping.
				h.waitArmedAt(due.Add(interval))
				h.advanceTo(due.Add(interval))
				h.waitArmedAt(due.Add(2 * interval))
				h.expectCounter("skipped while the old run is in flight", h.s.metrics.skipped, 1)
				wakeups, skipped, probes = 2, 1, 1
			} else {
				h.blockUntil("no timer armed", func(d []time.Time) bool { return len(d) == 0 })
			}

			schedRelease(t, old.release)
			h.waitRuns() // the old run has recorded its result or dropped it
			if tt.wantOldRecorded {
				if rec := h.record(); rec.prober != old {
					t.Fatalf("recorded a run of %p, want the old prober %p", rec.prober, old)
				}
			} else {
				h.expectNoRecord()
			}
			if latest != nil {
				h.advanceTo(due.Add(2 * interval))
				h.waitArmedAt(due.Add(3 * interval))
				h.waitRuns()
				if rec := h.record(); rec.prober != latest || !rec.result.Start.Equal(due.Add(2*interval)) {
					t.Fatalf("run at %v by %p, want %v by the latest prober %p",
						rec.result.Start, rec.prober, due.Add(2*interval), latest)
				}
				wakeups, runs = 3, 2
			}
			for _, p := range h.probers {
				wantCalls, wantClosed := int32(0), int32(1)
				if p == old {
					wantCalls = 1
				}
				if p == latest {
					wantCalls, wantClosed = 1, 0
				}
				if p.calls.Load() != wantCalls || p.closed.Load() != wantClosed {
					t.Errorf("prober %d: ran %d times, closed %d times; want %d and %d",
						p.tag, p.calls.Load(), p.closed.Load(), wantCalls, wantClosed)
				}
			}
			h.s.mu.Lock()
			draining := len(h.s.draining)
			h.s.mu.Unlock()
			if draining != 0 {
				t.Errorf("%d entries still draining with no run in flight", draining)
			}
			h.expectMetrics(schedMetricsWant{wakeups: wakeups, runs: runs, skipped: skipped, lagSum: 0,
				probes: probes, maxConcurrent: DefaultMaxConcurrentRuns})
		})
	}
}

// schedHookClock is a FakeClock whose next Now, once a hook is stored,
// runs the hook after reading the time, to let a test act between a
// caller's clock reading and what the caller does next.
type schedHookClock struct {
	*FakeClock
	hook atomic.Pointer[func()]
}

func (c *schedHookClock) Now() time.Time {
	now := c.FakeClock.Now()
	if hook := c.hook.Swap(nil); hook != nil {
		(*hook)()
	}
	return now
}

func TestSchedulerReplacementIsNotDueAtAHandledTime(t *testing.T) {
	const interval = 10 * time.Second
	id := ProbeID{"shop", "home"}
	tests := []struct {
		name string
		// applyAt is when the replacement is applied, relative to the old
		// probe's first due time D.
		applyAt time.Duration
		// wantOldRun is whether the old probe runs at D.
		wantOldRun bool
		// wantReplacementAt is the replacement's first run, relative to D.
		wantReplacementAt time.Duration
		wantWakeups       int
	}{
		// The loop has just dispatched the old probe at D and the clock
		// still reads D: the replacement is due at D+interval, not at D
		// again, where it would be skipped (or run twice).
		{"applied at the instant of the dispatch", 0, true, interval, 2},
		// If Apply read the clock before taking the lock, the loop could
		// dispatch the old probe at D in between, and the replacement
		// would be due at D again, from the stale reading.
		{"applied just before the dispatch", -time.Second, false, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSchedHarness(t, SchedulerOptions{})
			clock := &schedHookClock{FakeClock: h.clock}
			h.s.clock = clock
			old := h.newProber(make(chan struct{}))
			old.ignoreCtx = true
			h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, ConfigHash: 1, Prober: old}}, 0)
			h.run()
			due := h.waitArmed()
			h.advanceTo(due.Add(tt.applyAt))
			if tt.wantOldRun {
				h.waitArmedAt(due.Add(interval))
				old.waitStarted(t)
			}

			// Runs inside Apply's clock reading. While Apply holds s.mu
			// there, nothing can be dispatched before it computes due
			// times; if it did not, let the loop dispatch in between, as it
			// may in production. The loop is idle, so TryLock fails only
			// because Apply holds the lock.
			hook := func() {
				if !h.s.mu.TryLock() {
					return
				}
				h.s.mu.Unlock()
				if h.clock.Now().Before(due) {
					h.advanceTo(due)
					old.waitStarted(t)
				}
			}
			clock.hook.Store(&hook)
			replacement := h.newProber(nil)
			h.s.Apply([]ScheduledProbe{{ID: id, Interval: interval, ConfigHash: 2, Prober: replacement}}, 0)
			runs := 1
			if tt.wantOldRun {
				runs = 2
			}
			if got := int(old.calls.Load()); got != runs-1 {
				t.Fatalf("old prober ran %d times, want %d: the loop dispatched between Apply's clock reading and its lock", got, runs-1)
			}
			if tt.wantOldRun {
				schedRelease(t, old.release)
				if rec := h.record(); rec.prober != old || !rec.result.Start.Equal(due) {
					t.Fatalf("run at %v by %p, want %v by the old prober", rec.result.Start, rec.prober, due)
				}
				h.waitRuns()
			}

			at := due.Add(tt.wantReplacementAt)
			h.waitArmedAt(at)
			h.advanceTo(at)
			h.waitArmedAt(at.Add(interval))
			h.waitRuns()
			if rec := h.record(); rec.prober != replacement || !rec.result.Start.Equal(at) {
				t.Fatalf("run at %v by %p, want %v by the replacement", rec.result.Start, rec.prober, at)
			}
			if old.closed.Load() != 1 {
				t.Fatalf("old prober closed %d times, want 1", old.closed.Load())
			}
			h.expectMetrics(schedMetricsWant{wakeups: tt.wantWakeups, runs: runs, lagSum: 0,
				probes: 1, maxConcurrent: DefaultMaxConcurrentRuns})
		})
	}
}

func TestSchedulerRejectsIntervalsOutOfRange(t *testing.T) {
	const day, year = 24 * time.Hour, 365 * 24 * time.Hour
	candidate, valid := ProbeID{"batch", "candidate"}, ProbeID{"shop", "home"}
	tests := []struct {
		name          string
		interval      time.Duration
		wantScheduled bool
	}{
		{"zero", 0, false},
		{"negative", -time.Second, false},
		{"366 days", 366 * day, true},
		{"just over 366 days", 366*day + time.Nanosecond, false},
		// Overflowed due+interval sorted such a probe first and stalled
		// every other probe.
		{"290 years", 290 * year, false},
		{"longest duration", math.MaxInt64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSchedHarness(t, SchedulerOptions{})
			p, good := h.newProber(nil), h.newProber(nil)
			h.s.Apply([]ScheduledProbe{
				{ID: candidate, Interval: tt.interval, Prober: p},
				{ID: valid, Interval: time.Second, Prober: good},
			}, 0)
			h.run()
			want, wantClosed := []ProbeID{valid}, int32(1)
			if tt.wantScheduled {
				want, wantClosed = []ProbeID{candidate, valid}, 0
			}
			if got := h.s.Probes(); !slices.Equal(got, want) {
				t.Fatalf("Probes() = %v, want %v", got, want)
			}
			if p.closed.Load() != wantClosed {
				t.Fatalf("prober closed %d times, want %d", p.closed.Load(), wantClosed)
			}
			// The 1s probe is due first and runs on time.
			goodDue := time.Unix(0, nextDue(h.start.UnixNano(), time.Second, StartPhase(valid, time.Second, DefaultSchedulerSlot)))
			if at := h.waitArmed(); !at.Equal(goodDue) {
				t.Fatalf("timer armed for %v, want %v, when the 1s probe is due", at, goodDue)
			}
			h.advanceTo(goodDue)
			h.waitArmedAt(goodDue.Add(time.Second))
			h.waitRuns()
			if rec := h.record(); rec.id != valid {
				t.Fatalf("recorded %v, want %v", rec.id, valid)
			}
			h.expectMetrics(schedMetricsWant{wakeups: 1, runs: 1, lagSum: 0,
				probes: len(want), maxConcurrent: DefaultMaxConcurrentRuns})
		})
	}
}

func TestSchedulerWallClockStepBack(t *testing.T) {
	const interval, slot = 10 * time.Second, DefaultSchedulerSlot
	a := ProbeID{"shop", "home"}
	firstA := time.Unix(0, nextDue(int64(schedTestStart*time.Second), interval, StartPhase(a, interval, slot)))
	// b, every 20s, is first due after a's second due time, so that
	// removing a leaves the timer to be armed for b's due time.
	var b ProbeID
	var firstB time.Time
	for i := 0; ; i++ {
		b = ProbeID{"shop", fmt.Sprintf("b%d", i)}
		firstB = time.Unix(0, nextDue(int64(schedTestStart*time.Second), 2*interval, StartPhase(b, 2*interval, slot)))
		if firstB.After(firstA.Add(interval)) {
			break
		}
	}
	tests := []struct {
		name     string
		interval time.Duration // of a
		// step moves the wall clock a second after a's first run.
		step time.Duration
		// afterStep is what an Apply after the step does: nothing (""),
		// "replace" a, or "remove" a, leaving b (scheduled only then).
		afterStep string
		// wantID runs next, at its due time before the step plus wantShift.
		wantID      ProbeID
		wantShift   time.Duration
		wantWakeups int
	}{
		// Due times follow the stepped wall clock: a runs when the timer
		// fires, not an hour later.
		{"step of many intervals", interval, -time.Hour, "", a, -time.Hour, 2},
		// A probe is not due before its next due time on the wall
		// clock: the step only delays it, by less than an interval.
		{"step shorter than the interval", time.Hour, -10 * time.Minute, "", a, 0, 3},
		// Left alone: the loop wakes half a slot early and a runs on time.
		{"step of less than a slot", interval, -slot / 2, "", a, 0, 3},
		{"step then replacement", interval, -time.Hour, "replace", a, -time.Hour, 2},
		// The timer is re-armed for b from the stepped clock: b's due
		// time must be recomputed first, not an hour ahead.
		{"step then removal of the probe due first", interval, -time.Hour, "remove", b, -time.Hour, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSchedHarness(t, SchedulerOptions{})
			probes := []ScheduledProbe{{ID: a, Interval: tt.interval, ConfigHash: 1, Prober: h.newProber(nil)}}
			if tt.afterStep == "remove" {
				probes = append(probes, ScheduledProbe{ID: b, Interval: 2 * interval, ConfigHash: 1, Prober: h.newProber(nil)})
			}
			h.s.Apply(probes, 0)
			h.run()
			first := h.advanceToNextTimer()
			h.waitRuns()
			if rec := h.record(); rec.id != a {
				t.Fatalf("first run by %v, want %v", rec.id, a)
			}

			h.advanceTo(first.Add(time.Second))
			h.clock.StepWall(tt.step)
			// The next due time of wantID before the step.
			next := first.Add(tt.interval)
			switch tt.afterStep {
			case "replace":
				h.s.Apply([]ScheduledProbe{{ID: a, Interval: tt.interval, ConfigHash: 2, Prober: h.newProber(nil)}}, 0)
			case "remove":
				h.s.Apply(probes[1:], 0)
				next = firstB
			}
			if tt.afterStep != "" {
				// The loop has reacted to the Apply: the run is next.
				h.waitArmedAt(next.Add(tt.wantShift))
			}
			for range tt.wantWakeups - 1 {
				h.advanceToNextTimer()
			}
			h.waitRuns()
			if rec, want := h.record(), next.Add(tt.wantShift); rec.id != tt.wantID || !rec.result.Start.Equal(want) {
				t.Fatalf("%v ran at %v, want %v at %v", rec.id, rec.result.Start, tt.wantID, want)
			}
			h.expectMetrics(schedMetricsWant{wakeups: tt.wantWakeups, runs: 2, lagSum: 0,
				probes: 1, maxConcurrent: DefaultMaxConcurrentRuns})
		})
	}
}

func TestSchedulerShutdown(t *testing.T) {
	const shutdownTimeout = 7 * time.Second
	id := ProbeID{"shop", "slow"}

	t.Run("waits for the run in flight", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{ShutdownTimeout: shutdownTimeout})
		p := h.newProber(make(chan struct{}))
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: 10 * time.Second, Prober: p}}, 0)
		h.run()
		due := h.advanceToNextTimer()
		p.waitStarted(t)

		h.cancel()
		h.waitArmedAt(due.Add(shutdownTimeout))
		select {
		case <-h.runDone:
			t.Fatal("Run returned with a run in flight")
		default:
		}
		schedRelease(t, p.release)
		h.waitStopped()
		if rec := h.record(); rec.ctxErr != nil {
			t.Fatalf("run finished before the shutdown timeout has context error %v", rec.ctxErr)
		}
		if p.closed.Load() != 1 {
			t.Fatalf("prober closed %d times at shutdown, want 1", p.closed.Load())
		}
		if got := h.s.Probes(); len(got) != 0 {
			t.Fatalf("Probes() = %v after shutdown", got)
		}
	})

	t.Run("cancels runs after the timeout", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{ShutdownTimeout: shutdownTimeout})
		p := h.newProber(make(chan struct{}))
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: time.Minute, Prober: p}}, 0)
		h.run()
		due := h.advanceToNextTimer()
		p.waitStarted(t)

		h.cancel()
		h.waitArmedAt(due.Add(shutdownTimeout))
		h.advanceTo(due.Add(shutdownTimeout))
		h.waitStopped()
		// The cancelled run measured the shutdown, not the target: it
		// returned (the scheduler stopped) and nothing was recorded.
		h.expectNoRecord()
		if p.closed.Load() != 1 {
			t.Fatalf("prober closed %d times at shutdown, want 1", p.closed.Load())
		}
	})

	t.Run("runs waiting for the cap never start", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{ShutdownTimeout: shutdownTimeout})
		ids := schedSamePhaseIDs(t, 2, 10*time.Second, DefaultSchedulerSlot)
		release := make(chan struct{})
		first, second := h.newProber(release), h.newProber(release)
		h.s.Apply([]ScheduledProbe{
			{ID: ids[0], Interval: 10 * time.Second, Prober: first},
			{ID: ids[1], Interval: 10 * time.Second, Prober: second},
		}, 1)
		h.run()
		h.advanceToNextTimer()
		var started *schedProber
		select {
		case <-first.started:
			started = first
		case <-second.started:
			started = second
		case <-time.After(schedWait):
			t.Fatal("no probe started")
		}
		h.cancel()
		h.waitArmedAt(h.clock.Now().Add(shutdownTimeout))
		schedRelease(t, release)
		h.waitStopped()
		if rec := h.record(); rec.prober != started {
			t.Fatalf("recorded a run of %p, want only %p", rec.prober, started)
		}
		h.expectNoRecord()
		if n := first.calls.Load() + second.calls.Load(); n != 1 {
			t.Fatalf("%d runs started, want 1", n)
		}
		if first.closed.Load() != 1 || second.closed.Load() != 1 {
			t.Fatal("probers not closed at shutdown")
		}
	})

	t.Run("Run twice and Apply after shutdown", func(t *testing.T) {
		h := newSchedHarness(t, SchedulerOptions{})
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: time.Second, Prober: h.newProber(nil)}}, 0)
		h.run()
		h.waitArmed() // Run has started
		if err := h.s.Run(context.Background()); err == nil {
			t.Fatal("second Run returned nil, want an error")
		}
		h.cancel()
		h.waitStopped()
		late := h.newProber(nil)
		h.s.Apply([]ScheduledProbe{{ID: id, Interval: time.Second, Prober: late}}, 0)
		if late.closed.Load() != 1 || len(h.s.Probes()) != 0 || h.probers[0].closed.Load() != 1 {
			t.Fatalf("Apply after shutdown: prober closed %d times, probes %v", late.closed.Load(), h.s.Probes())
		}
	})
}

func TestSchedulerRegistersMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	NewScheduler(SchedulerOptions{Registerer: reg})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	names := []string{
		"reliabilityd_scheduler_probes", "reliabilityd_scheduler_runs_in_flight",
		"reliabilityd_scheduler_max_concurrent_runs", "reliabilityd_scheduler_late_runs_total",
		"reliabilityd_scheduler_skipped_runs_total", "reliabilityd_scheduler_lag_seconds",
		"reliabilityd_scheduler_wakeups_total",
	}
	count, err := testutil.GatherAndCount(reg, names...)
	if err != nil || count != len(names) {
		t.Fatalf("gathered %d of the %d scheduler metrics (err %v)", count, len(names), err)
	}
}

// BenchmarkSchedulerDispatch measures the scheduler's own cost per run:
// due-time queue, worker pool, timeout context, metrics and Record,
// around a prober that does nothing. It drives dispatch directly,
// with the real clock for contexts, so no waiting is measured.
func BenchmarkSchedulerDispatch(b *testing.B) {
	const probes, interval, slot = 10_000, 10 * time.Second, 10 * time.Millisecond
	var recorded atomic.Int64
	s := NewScheduler(SchedulerOptions{
		Recorder: RecorderFunc(func(ProbeID, Result) { recorded.Add(1) }),
		Slot:     slot,
	})
	var scheduled []ScheduledProbe
	for i := range probes {
		scheduled = append(scheduled, ScheduledProbe{ID: ProbeID{"bench", fmt.Sprintf("p%d", i)},
			Interval: interval, Prober: schedNoopProber{}})
	}
	s.Apply(scheduled, 0)
	if err := s.start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.cancelRuns()
	now := s.queue[0].due
	started, steps := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for started < b.N {
		// Step through due times slot by slot, as the timer would.
		now += int64(slot)
		steps++
		started += s.dispatchAt(now)
		if steps%int(interval/slot/2) == 0 {
			// Keep pace every half interval, so that every run is over
			// before its probe is due again, as it is when the timer, not
			// this loop, sets the pace.
			s.runs.Wait()
		}
	}
	s.runs.Wait()
	b.StopTimer()
	s.pool.close()
	s.pool.wait()
	if skipped := testutil.ToFloat64(s.metrics.skipped); skipped != 0 {
		b.Fatalf("%v runs skipped: the benchmark measures a scheduler that falls behind", skipped)
	}
	if int(recorded.Load()) != started {
		b.Fatalf("recorded %d of %d runs", recorded.Load(), started)
	}
	b.ReportMetric(float64(started)/float64(steps), "runs/dispatch")
}

type schedNoopProber struct{}

func (schedNoopProber) Probe(context.Context) Result { return Result{Success: true} }

// schedProber is a Prober that reports each call and, when release is
// set, blocks until it receives from release or its context is done.
type schedProber struct {
	clock   *FakeClock
	tag     int
	release chan struct{}
	// ignoreCtx makes Probe wait for release even past its timeout.
	ignoreCtx bool
	started   chan struct{}
	tracker   *schedTracker
	calls     atomic.Int32
	closed    atomic.Int32
}

func (p *schedProber) Probe(ctx context.Context) Result {
	start := p.clock.Now()
	deadline, _ := ctx.Deadline()
	p.calls.Add(1)
	if p.tracker != nil {
		p.tracker.enter()
		defer p.tracker.leave()
	}
	p.started <- struct{}{}
	switch {
	case p.release != nil && p.ignoreCtx:
		<-p.release
	case p.release != nil:
		select {
		case <-p.release:
		case <-ctx.Done():
		}
	}
	// StatusCode carries the prober's tag so tests can tell which prober
	// produced a recorded result.
	return Result{Start: start, Duration: deadline.Sub(start), Success: ctx.Err() == nil, Err: ctx.Err(),
		StatusCode: p.tag}
}

func (p *schedProber) Close() { p.closed.Add(1) }

// schedRelease lets one blocked run of a prober return.
func schedRelease(t *testing.T, release chan<- struct{}) {
	t.Helper()
	select {
	case release <- struct{}{}:
	case <-time.After(schedWait):
		t.Fatal("no run waiting to be released")
	}
}

func (p *schedProber) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-p.started:
	case <-time.After(schedWait):
		t.Fatal("prober not started")
	}
}

// schedTracker counts runs in progress across probers.
type schedTracker struct {
	mu      sync.Mutex
	current int
	max     atomic.Int32
	changed chan struct{}
}

func (c *schedTracker) enter() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current++
	if int32(c.current) > c.max.Load() {
		c.max.Store(int32(c.current))
	}
	c.notifyLocked()
}

func (c *schedTracker) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current--
	c.notifyLocked()
}

func (c *schedTracker) notifyLocked() {
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

func (c *schedTracker) waitRunning(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(schedWait)
	for {
		c.mu.Lock()
		current := c.current
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		if current == n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d runs in progress, want %d", current, n)
		}
	}
}

type schedRecord struct {
	id     ProbeID
	result Result
	ctxErr error
	prober *schedProber
}

// schedHarness runs a Scheduler on a FakeClock with a fresh registry and
// a recorder that hands results to the test.
type schedHarness struct {
	t       *testing.T
	start   time.Time
	clock   *FakeClock
	reg     *prometheus.Registry
	s       *Scheduler
	records chan schedRecord
	cancel  context.CancelFunc
	runDone chan error
	// probers are indexed by tag; releases are closed at cleanup so that
	// no prober blocks the shutdown.
	probers  []*schedProber
	releases []chan struct{}
}

func newSchedHarness(t *testing.T, opts SchedulerOptions) *schedHarness {
	h := &schedHarness{
		t:       t,
		start:   time.Unix(schedTestStart, 0),
		reg:     prometheus.NewRegistry(),
		records: make(chan schedRecord, 100),
	}
	h.clock = NewFakeClock(h.start)
	opts.Clock, opts.Registerer = h.clock, h.reg
	opts.Recorder = RecorderFunc(func(id ProbeID, r Result) {
		h.records <- schedRecord{id: id, result: r, ctxErr: r.Err}
	})
	h.s = NewScheduler(opts)
	return h
}

func (h *schedHarness) newProber(release chan struct{}) *schedProber {
	p := &schedProber{clock: h.clock, tag: len(h.probers), release: release, started: make(chan struct{}, 100)}
	h.probers = append(h.probers, p)
	if release != nil && !slices.Contains(h.releases, release) {
		h.releases = append(h.releases, release)
	}
	return p
}

// run starts Run in a goroutine; the test's cleanup stops it.
func (h *schedHarness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.runDone = make(chan error, 1)
	go func() { h.runDone <- h.s.Run(ctx) }()
	h.t.Cleanup(func() {
		for _, release := range h.releases {
			close(release)
		}
		cancel()
		select {
		case err := <-h.runDone:
			if err != nil {
				h.t.Errorf("Run returned %v", err)
			}
			h.runDone <- err
		case <-time.After(schedWait):
			h.t.Error("Run did not return")
		}
	})
}

func (h *schedHarness) waitStopped() {
	h.t.Helper()
	select {
	case err := <-h.runDone:
		if err != nil {
			h.t.Fatalf("Run returned %v", err)
		}
		h.runDone <- err
	case <-time.After(schedWait):
		h.t.Fatal("Run did not return")
	}
}

func (h *schedHarness) blockUntil(what string, ready func([]time.Time) bool) []time.Time {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), schedWait)
	defer cancel()
	var last []time.Time
	err := h.clock.BlockUntil(ctx, func(deadlines []time.Time) bool {
		last = deadlines
		return ready(deadlines)
	})
	if err != nil {
		h.t.Fatalf("waiting for %s: armed timers %v: %v", what, last, err)
	}
	return last
}

// waitArmed waits until the scheduler has armed a timer.
func (h *schedHarness) waitArmed() time.Time {
	h.t.Helper()
	return h.blockUntil("an armed timer", func(d []time.Time) bool { return len(d) == 1 })[0]
}

// waitArmedAt waits until the only armed timer is set for at: the
// scheduler has reacted to the last Advance or Apply.
func (h *schedHarness) waitArmedAt(at time.Time) {
	h.t.Helper()
	h.blockUntil("a timer at "+at.String(), func(d []time.Time) bool { return len(d) == 1 && d[0].Equal(at) })
}

// advanceToNextTimer waits for the scheduler's timer, advances the clock
// to it and waits until the scheduler has dispatched and re-armed.
func (h *schedHarness) advanceToNextTimer() time.Time {
	h.t.Helper()
	at := h.waitArmed()
	h.advanceTo(at)
	h.blockUntil("the timer re-armed", func(d []time.Time) bool { return len(d) == 1 && d[0].After(at) })
	return at
}

func (h *schedHarness) advanceTo(at time.Time) {
	h.t.Helper()
	d := at.Sub(h.clock.Now())
	if d < 0 {
		h.t.Fatalf("cannot advance back to %v", at)
	}
	h.clock.Advance(d)
}

// waitRuns waits for every run goroutine. Call it only while the loop is
// idle (timer re-armed), so no run is added meanwhile.
func (h *schedHarness) waitRuns() {
	h.t.Helper()
	done := make(chan struct{})
	go func() {
		h.s.runs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(schedWait):
		h.t.Fatal("runs still in flight")
	}
}

func (h *schedHarness) record() schedRecord {
	h.t.Helper()
	select {
	case rec := <-h.records:
		rec.prober = h.probers[rec.result.StatusCode]
		return rec
	case <-time.After(schedWait):
		h.t.Fatal("no result recorded")
	}
	return schedRecord{}
}

func (h *schedHarness) expectNoRecord() {
	h.t.Helper()
	select {
	case rec := <-h.records:
		h.t.Fatalf("unexpected result recorded for %v", rec.id)
	default:
	}
}

type schedMetricsWant struct {
	wakeups, runs, skipped, late, probes, maxConcurrent int
	// lagSum is the expected sum of lags in seconds; -1 skips the check.
	lagSum float64
}

func (h *schedHarness) expectMetrics(want schedMetricsWant) {
	h.t.Helper()
	h.expectCounter("wakeups", h.s.metrics.wakeups, want.wakeups)
	h.expectCounter("skipped", h.s.metrics.skipped, want.skipped)
	h.expectCounter("late", h.s.metrics.late, want.late)
	h.expectGauge(h.s.metrics.probes, float64(want.probes))
	h.expectGauge(h.s.metrics.maxConcurrent, float64(want.maxConcurrent))
	count, sum := h.lag()
	if count != uint64(want.runs) {
		h.t.Errorf("lag observations = %d, want %d (one per run)", count, want.runs)
	}
	if want.lagSum >= 0 && sum != want.lagSum {
		h.t.Errorf("lag sum = %vs, want %vs", sum, want.lagSum)
	}
}

func (h *schedHarness) expectCounter(name string, c prometheus.Counter, want int) {
	h.t.Helper()
	if got := testutil.ToFloat64(c); got != float64(want) {
		h.t.Errorf("%s = %v, want %d", name, got, want)
	}
}

func (h *schedHarness) expectGauge(g prometheus.Gauge, want float64) {
	h.t.Helper()
	if got := testutil.ToFloat64(g); got != want {
		h.t.Errorf("%s = %v, want %v", g.Desc(), got, want)
	}
}

func (h *schedHarness) lag() (uint64, float64) {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "reliabilityd_scheduler_lag_seconds" {
			hist := f.GetMetric()[0].GetHistogram()
			return hist.GetSampleCount(), hist.GetSampleSum()
		}
	}
	h.t.Fatal("lag histogram not registered")
	return 0, 0
}

// schedSamePhaseIDs returns n probe IDs that share one start phase.
func schedSamePhaseIDs(t *testing.T, n int, interval, slot time.Duration) []ProbeID {
	t.Helper()
	byPhase := map[time.Duration][]ProbeID{}
	for i := range 10_000 {
		id := ProbeID{Service: "batch", Probe: fmt.Sprintf("p%d", i)}
		phase := StartPhase(id, interval, slot)
		byPhase[phase] = append(byPhase[phase], id)
		if len(byPhase[phase]) == n {
			return byPhase[phase]
		}
	}
	t.Fatalf("no %d IDs share a phase", n)
	return nil
}

func schedSumLen[K comparable, V any](m map[K][]V) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
