package collector

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Scheduler defaults, used where SchedulerOptions or Apply leave a value
// at zero.
const (
	// DefaultSchedulerSlot groups start phases into 50ms slots. At 1,000
	// probes/s on 2 cores wakeups dominate the CPU cost: HTTP probes cost
	// about 0.21 ms each with 50ms slots, 0.28 ms with 10ms slots and 0.48
	// ms with one timer per probe. With probers that do nothing, this
	// scheduler costs about 13 µs of CPU per run (50ms) and 28 µs (10ms),
	// against 45 µs for one timer per probe.
	DefaultSchedulerSlot = 50 * time.Millisecond
	// DefaultMaxConcurrentRuns matches config.DefaultGlobalConfig.
	DefaultMaxConcurrentRuns = 1000
	// DefaultShutdownTimeout is how long Run waits for in-flight runs.
	DefaultShutdownTimeout = 10 * time.Second
)

// maxLateThreshold caps the lag after which a run counts as late; below
// it, a run is late when it starts more than a tenth of its interval late.
const maxLateThreshold = time.Second

// maxSchedulerInterval bounds probe intervals; Apply rejects longer ones.
// Due times are Unix nanoseconds in an int64: an interval of centuries
// would overflow due+interval into the past, sort that probe first in the
// queue for ever and stall every other probe. The config loader accepts
// at most a year; 366 days leaves room for a leap year. Timeouts are
// capped at the interval, so this bounds them too.
const maxSchedulerInterval = 366 * 24 * time.Hour

// ScheduledProbe is a probe as the scheduler sees it: what to run, how
// often, and an identity that survives reloads.
type ScheduledProbe struct {
	ID ProbeID
	// Interval is the time between two due times; it must be positive and
	// at most 366 days.
	Interval time.Duration
	// Timeout bounds each run. Zero or more than Interval means Interval,
	// so a probe never overlaps itself because of its timeout.
	Timeout time.Duration
	// ConfigHash identifies the configuration Prober was built from
	// (config.ProbeConfig.Hash): Apply keeps a probe whose hash is
	// unchanged and discards the new Prober.
	ConfigHash uint64
	Prober     Prober
}

// SchedulerOptions are the dependencies and settings of a Scheduler.
// Zero values take the defaults documented on each field.
type SchedulerOptions struct {
	// Clock defaults to RealClock().
	Clock Clock
	// Recorder receives every result; nil discards them.
	Recorder Recorder
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
	// Registerer receives the scheduler's metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxConcurrent caps the runs in flight until the first Apply; zero
	// means DefaultMaxConcurrentRuns.
	MaxConcurrent int
	// Slot is the granularity of start phases; zero means
	// DefaultSchedulerSlot. Probes whose phases fall into the same slot are
	// dispatched by one wakeup.
	Slot time.Duration
	// ShutdownTimeout is how long Run waits for in-flight runs once its
	// context is done before it cancels them; zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Scheduler runs probes at their interval, each at a stable phase. One
// goroutine owns time: it sleeps on a single timer until the next slot
// in which a probe is due, then hands every probe due in that slot to a
// pool of workers whose size is the global concurrency cap.
//
// Apply and Probes are safe for concurrent use, before, during and after
// Run. The scheduler owns the probers it is given: it closes them (when
// they implement Closer) once they are no longer scheduled and have no
// run in flight.
type Scheduler struct {
	clock           Clock
	recorder        Recorder
	logger          *slog.Logger
	metrics         *schedulerMetrics
	slot            time.Duration
	shutdownTimeout time.Duration
	pool            *runPool
	// wake tells the loop that Apply changed the queue (capacity 1: one
	// pending signal is enough).
	wake chan struct{}
	// runs counts dispatched runs until they are over, including those
	// waiting for the cap.
	runs sync.WaitGroup
	// waitCtx is Run's context: runs not started when it is done never
	// start. runCtx is the parent of every run's context; cancelling it
	// aborts runs at the end of the shutdown timeout. Both are set before
	// the first dispatch and never change.
	waitCtx    context.Context
	runCtx     context.Context
	cancelRuns context.CancelFunc

	mu      sync.Mutex
	entries map[ProbeID]*schedEntry
	// draining holds, by ID, the retired entry whose run is still in
	// flight, until that run finishes. There is at most one per ID, since
	// a probe never overlaps itself, and it is the predecessor of any entry
	// scheduled for the ID meanwhile: also of one removed and then added
	// back, which is no longer in entries.
	draining map[ProbeID]*schedEntry
	queue    schedQueue // by due time; filled once Run has started
	// lastNow is the latest clock reading taken under mu (Unix
	// nanoseconds). Due times are computed from such readings, so none lies
	// more than an interval past it; a reading well before it means the
	// wall clock was stepped back. See observeNowLocked.
	lastNow int64
	started bool
	stopped bool
}

// schedEntry is one scheduled probe. The fields up to prober never
// change after creation; removed is guarded by recordMu and the rest by
// Scheduler.mu.
type schedEntry struct {
	id         ProbeID
	interval   time.Duration
	timeout    time.Duration
	phase      time.Duration
	lateAfter  time.Duration
	configHash uint64
	prober     Prober

	// recordMu makes the removal of an entry and a Record for it mutually
	// exclusive, so no result of a removed probe reaches the Recorder after
	// Apply returns.
	recordMu sync.Mutex
	removed  bool

	// Guarded by Scheduler.mu.
	due   int64 // next due time, Unix nanoseconds
	index int   // position in the queue, -1 when not queued
	// busy is set from dispatch until the run has recorded its result,
	// including while it waits in the pool's queue for the cap.
	busy bool
	// retired entries are no longer scheduled; their prober is closed
	// when the run in flight, if any, finishes, and a run still waiting
	// for the cap never starts. Written under Scheduler.mu; atomic so that
	// workers can read it without the lock.
	retired atomic.Bool
	// predecessor is the entry of the same probe ID that was draining
	// (retired with a run in flight) when this one was scheduled, until
	// that run has finished, so the same probe ID never has two runs in
	// flight.
	predecessor *schedEntry
}

// NewScheduler returns a Scheduler with no probes. It starts nothing:
// Run does.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	s := &Scheduler{
		clock:           opts.Clock,
		recorder:        opts.Recorder,
		logger:          opts.Logger,
		metrics:         newSchedulerMetrics(opts.Registerer),
		slot:            cmp.Or(opts.Slot, DefaultSchedulerSlot),
		shutdownTimeout: cmp.Or(opts.ShutdownTimeout, DefaultShutdownTimeout),
		wake:            make(chan struct{}, 1),
		entries:         map[ProbeID]*schedEntry{},
		draining:        map[ProbeID]*schedEntry{},
	}
	if s.clock == nil {
		s.clock = RealClock()
	}
	if s.recorder == nil {
		s.recorder = RecorderFunc(func(ProbeID, Result) {})
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	maxConcurrent := normalizeMaxConcurrent(opts.MaxConcurrent)
	s.pool = newRunPool(maxConcurrent, s.runOnce)
	s.metrics.maxConcurrent.Set(float64(maxConcurrent))
	return s
}

// StartPhase returns the offset of a probe's due times within its interval:
// a hash of its ID modulo the interval, rounded down to a multiple of
// slot. It depends on nothing else, so a probe keeps its phase across
// restarts and reloads, and probes spread evenly over the interval.
func StartPhase(id ProbeID, interval, slot time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id.Service))
	h.Write([]byte{0})
	h.Write([]byte(id.Probe))
	phase := time.Duration(h.Sum64() % uint64(interval))
	if slot > 0 {
		phase -= phase % slot
	}
	return phase
}

// nextDue returns the first due time at or after now (Unix nanoseconds)
// of a probe with the given interval and phase. Due times are
// k*interval + phase since the Unix epoch, so they do not depend on when
// the daemon started, and they sit on slot boundaries whenever interval
// is a multiple of the slot.
func nextDue(now int64, interval, phase time.Duration) int64 {
	i, p := int64(interval), int64(phase)
	due := now - mod(now-p, i)
	if due < now {
		due += i
	}
	return due
}

// mod is the non-negative remainder, also for times before the epoch.
func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// Apply replaces the set of scheduled probes. It is safe before and
// during Run. Probes are matched by ID: an unchanged ConfigHash keeps the
// scheduled probe as it is (prober, next due time, run in flight) and
// closes the Prober passed in; a changed hash replaces the prober and
// recomputes the due time from the new interval; a probe no longer listed
// stops being scheduled. Discarded probers are closed once their run in
// flight, if any, has finished. When Apply returns, the Recorder receives
// no more results for removed probes. maxConcurrent <= 0 means
// DefaultMaxConcurrentRuns.
func (s *Scheduler) Apply(probes []ScheduledProbe, maxConcurrent int) {
	var toClose []Prober
	var removed []*schedEntry

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		for _, p := range probes {
			closeProber(p.Prober)
		}
		s.logger.Warn("scheduler stopped, ignoring probes applied after shutdown", "probes", len(probes))
		return
	}
	// Read under the lock: a reading taken before it can predate a
	// dispatch that the loop made meanwhile, and give a replacement a due
	// time that the loop has already handled, counted as a skip.
	now := s.clock.Now().UnixNano()
	s.observeNowLocked(now)
	listed := make(map[ProbeID]bool, len(probes))
	for _, p := range probes {
		toClose = append(toClose, s.applyOneLocked(p, listed, now)...)
	}
	for id, e := range s.entries {
		if !listed[id] {
			delete(s.entries, id)
			toClose = append(toClose, s.retireLocked(e)...)
			removed = append(removed, e)
			// The run in flight for the ID may belong to an entry that e
			// replaced: its result must be dropped as well.
			if d := s.draining[id]; d != nil && d != e {
				removed = append(removed, d)
			}
		}
	}
	limit := normalizeMaxConcurrent(maxConcurrent)
	s.pool.setLimit(limit)
	s.metrics.maxConcurrent.Set(float64(limit))
	s.metrics.probes.Set(float64(len(s.entries)))
	s.mu.Unlock()

	for _, e := range removed {
		// Waits for a Record in progress for e, which must be short.
		e.recordMu.Lock()
		e.removed = true
		e.recordMu.Unlock()
	}
	for _, p := range toClose {
		closeProber(p)
	}
	s.notify()
}

// applyOneLocked schedules p and returns the probers to close. listed
// collects the IDs seen so far.
func (s *Scheduler) applyOneLocked(p ScheduledProbe, listed map[ProbeID]bool, now int64) []Prober {
	if p.Interval <= 0 || p.Interval > maxSchedulerInterval || p.Prober == nil {
		s.logger.Error("not scheduling probe with an interval out of range or no prober",
			"service", p.ID.Service, "probe", p.ID.Probe, "interval", p.Interval,
			"max_interval", maxSchedulerInterval)
		return []Prober{p.Prober}
	}
	if listed[p.ID] {
		s.logger.Error("not scheduling duplicate probe", "service", p.ID.Service, "probe", p.ID.Probe)
		return []Prober{p.Prober}
	}
	listed[p.ID] = true
	old, exists := s.entries[p.ID]
	if exists && old.configHash == p.ConfigHash {
		if sameProber(old.prober, p.Prober) {
			return nil
		}
		return []Prober{p.Prober}
	}
	e := s.newEntry(p)
	var toClose []Prober
	if exists {
		toClose = s.retireLocked(old)
	}
	// Set after retiring old, which drains if its run is in flight. An
	// entry of the ID removed by an earlier Apply may still be draining.
	e.predecessor = s.draining[p.ID]
	s.entries[p.ID] = e
	if s.started {
		e.due = nextDue(now, e.interval, e.phase)
		if exists {
			// The loop has handled every due time of old before old.due.
			// When it dispatched old at this very instant, now equals the
			// last of them, and the replacement must not be due at it
			// again: it would be skipped, or run twice.
			if handled := old.due - int64(old.interval); e.due <= handled {
				e.due = nextDue(handled+1, e.interval, e.phase)
			}
		}
		heap.Push(&s.queue, e)
	}
	return toClose
}

func (s *Scheduler) newEntry(p ScheduledProbe) *schedEntry {
	timeout := p.Timeout
	if timeout <= 0 || timeout > p.Interval {
		timeout = p.Interval
	}
	return &schedEntry{
		id:         p.ID,
		interval:   p.Interval,
		timeout:    timeout,
		phase:      StartPhase(p.ID, p.Interval, s.slot),
		lateAfter:  min(p.Interval/10, maxLateThreshold),
		configHash: p.ConfigHash,
		prober:     p.Prober,
		index:      -1,
	}
}

// retireLocked unschedules e and returns its prober if it can be closed
// now; otherwise e drains: the run in flight closes it when it finishes.
func (s *Scheduler) retireLocked(e *schedEntry) []Prober {
	e.retired.Store(true)
	if e.index >= 0 {
		heap.Remove(&s.queue, e.index)
	}
	if e.busy {
		s.draining[e.id] = e
		return nil
	}
	return []Prober{e.prober}
}

// Probes returns the IDs of the scheduled probes, sorted by service and
// probe name.
func (s *Scheduler) Probes() []ProbeID {
	s.mu.Lock()
	ids := make([]ProbeID, 0, len(s.entries))
	for id := range s.entries {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.SortFunc(ids, func(a, b ProbeID) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Probe, b.Probe))
	})
	return ids
}

// Run schedules the probes until ctx is done. Then it starts no new run,
// waits up to the shutdown timeout for runs in flight, cancels those
// still running, waits for them to return, closes every prober and
// returns nil. Run may be called once; a second call returns an error.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	defer s.cancelRuns()
	s.loop(ctx)
	s.shutdown()
	return nil
}

func (s *Scheduler) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("scheduler: Run called twice")
	}
	s.started = true
	s.waitCtx = ctx
	// Runs outlive ctx by up to the shutdown timeout, so their context is
	// detached from it and cancelled separately.
	s.runCtx, s.cancelRuns = context.WithCancel(context.WithoutCancel(ctx))
	// The queue is built here, so a wakeup left by an Apply before Run is
	// stale; dropping it keeps the loop from re-arming needlessly.
	select {
	case <-s.wake:
	default:
	}
	now := s.clock.Now().UnixNano()
	s.lastNow = now
	for _, e := range s.entries {
		e.due = nextDue(now, e.interval, e.phase)
		heap.Push(&s.queue, e)
	}
	return nil
}

// loop is the scheduler's only long-lived goroutine. It keeps one timer,
// armed for the earliest due time, and never wakes while nothing is due.
func (s *Scheduler) loop(ctx context.Context) {
	w := wakeTimer{clock: s.clock}
	defer w.stop()
	for {
		// Read here, not in armFor, so that the reading the timer is armed
		// from is also checked for a backward step of the wall clock:
		// arming from a stepped-back clock for due times that predate the
		// step would sleep for the size of the step.
		now := s.clock.Now().UnixNano()
		if due, ok := s.earliestDue(now); ok {
			w.armFor(due, now)
		} else {
			w.stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-w.c():
			w.fired()
			if ctx.Err() != nil {
				return
			}
			s.metrics.wakeups.Inc()
			s.dispatchAt(s.clock.Now().UnixNano())
		}
	}
}

// earliestDue returns the earliest due time, and false when no probe is
// scheduled. now is the clock reading the loop arms its timer from.
func (s *Scheduler) earliestDue(now int64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observeNowLocked(now)
	if len(s.queue) == 0 {
		return 0, false
	}
	return s.queue[0].due, true
}

// wakeTimer is the loop's one timer, created on first use. It remembers
// the due time it is armed for, so that a wakeup that does not change the
// earliest due time (an Apply of later probes) does not touch the timer.
type wakeTimer struct {
	clock Clock
	timer Timer
	armed bool
	at    int64 // Unix nanoseconds, valid while armed
}

// armFor arms the timer to fire at at, now being the current time (both
// Unix nanoseconds).
func (w *wakeTimer) armFor(at, now int64) {
	if w.armed && w.at == at {
		return
	}
	d := time.Duration(at - now)
	if w.timer == nil {
		w.timer = w.clock.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	w.armed, w.at = true, at
}

// c returns the channel to wait on: nil, blocking forever, when disarmed.
func (w *wakeTimer) c() <-chan time.Time {
	if !w.armed {
		return nil
	}
	return w.timer.C()
}

func (w *wakeTimer) fired() { w.armed = false }

func (w *wakeTimer) stop() {
	if w.armed {
		w.timer.Stop()
		w.armed = false
	}
}

// dispatchAt hands every probe due by now (Unix nanoseconds) to the
// pool and returns how many it handed over. A probe whose previous run is
// still in flight, or that the scheduler wakes for more than a whole
// interval late, has runs skipped rather than run back to back.
func (s *Scheduler) dispatchAt(now int64) int {
	skipped, started := 0, 0
	s.mu.Lock()
	s.observeNowLocked(now)
	for len(s.queue) > 0 && s.queue[0].due <= now {
		e := s.queue[0]
		due := e.due
		if missed := (now - due) / int64(e.interval); missed > 0 {
			skipped += int(missed)
			due += missed * int64(e.interval)
			s.logSkip(e, due, "scheduler woke more than an interval late")
		}
		if e.predecessor != nil && !e.predecessor.busy {
			e.predecessor = nil
		}
		if e.busy || e.predecessor != nil {
			skipped++
			s.logSkip(e, due, "previous run still in flight")
		} else {
			e.busy = true
			started++
			s.runs.Add(1)
			s.pool.submit(runJob{entry: e, due: due})
		}
		e.due = due + int64(e.interval)
		heap.Fix(&s.queue, 0)
	}
	s.mu.Unlock()
	if skipped > 0 {
		s.metrics.skipped.Add(float64(skipped))
	}
	return started
}

// observeNowLocked notes a clock reading taken under s.mu, before due
// times are compared with it or computed from it. Due times are wall
// times but the timer that waits for them counts elapsed time: when the
// wall clock is stepped back (NTP, a restored VM), every due time lies up
// to the size of the step ahead and nothing would run until the wall
// clock caught up. So a reading more than a slot before lastNow
// recomputes every due time from now, as at start. Smaller steps are left
// alone: they delay runs by less than a slot, and since lastNow keeps the
// largest reading, repeated small steps add up to one that is caught.
func (s *Scheduler) observeNowLocked(now int64) {
	if !s.started || now >= s.lastNow-int64(s.slot) {
		s.lastNow = max(s.lastNow, now)
		return
	}
	s.logger.Warn("wall clock stepped back, rescheduling every probe from the current time",
		"step", time.Duration(s.lastNow-now), "probes", len(s.queue))
	for _, e := range s.queue {
		e.due = nextDue(now, e.interval, e.phase)
	}
	heap.Init(&s.queue)
	s.lastNow = now
}

func (s *Scheduler) logSkip(e *schedEntry, due int64, why string) {
	if !s.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	s.logger.Debug("skipping probe run", "service", e.id.Service, "probe", e.id.Probe,
		"due", time.Unix(0, due), "why", why)
}

// runOnce runs a job on a pool worker: it runs the prober under its
// timeout and records the result, unless the scheduler is shutting down
// or the probe was removed or replaced while the job waited for the cap.
func (s *Scheduler) runOnce(job runJob) {
	e := job.entry
	defer s.runs.Done()
	defer s.finish(e)
	if s.waitCtx.Err() != nil || e.retired.Load() {
		return // this run never started
	}
	lag := time.Duration(s.clock.Now().UnixNano() - job.due)
	s.metrics.lag.Observe(lag.Seconds())
	if lag > e.lateAfter {
		s.metrics.late.Inc()
	}
	s.metrics.inFlight.Inc()
	ctx, cancel := s.clock.WithTimeout(s.runCtx, e.timeout)
	result := e.prober.Probe(ctx)
	cancel()
	s.metrics.inFlight.Dec()
	if s.runCtx.Err() != nil {
		// Shutdown cancelled the run: it measured the daemon stopping, not
		// the target, so it is not recorded as a failure.
		s.logger.Debug("probe run cancelled by shutdown, not recorded", "service", e.id.Service, "probe", e.id.Probe)
		return
	}

	e.recordMu.Lock()
	if !e.removed {
		s.recorder.Record(e.id, result)
	}
	e.recordMu.Unlock()
}

// finish marks e's run as over and closes its prober if e was retired
// meanwhile.
func (s *Scheduler) finish(e *schedEntry) {
	s.mu.Lock()
	e.busy = false
	if s.draining[e.id] == e {
		delete(s.draining, e.id)
	}
	retired := e.retired.Load()
	s.mu.Unlock()
	if retired {
		closeProber(e.prober)
	}
}

// shutdown drops the runs waiting for a worker, waits for the runs in
// flight, up to the shutdown timeout, then cancels them, waits for them
// to return and for the workers to exit, and closes every prober.
func (s *Scheduler) shutdown() {
	for _, job := range s.pool.close() {
		s.finish(job.entry)
		s.runs.Done()
	}
	done := make(chan struct{})
	go func() {
		s.runs.Wait()
		close(done)
	}()
	timer := s.clock.NewTimer(s.shutdownTimeout)
	select {
	case <-done:
		timer.Stop()
	case <-timer.C():
		s.logger.Warn("cancelling probe runs still in flight after the shutdown timeout",
			"timeout", s.shutdownTimeout)
		s.cancelRuns()
		<-done // probers return once their context is done
	}
	s.pool.wait()

	s.mu.Lock()
	s.stopped = true
	var toClose []Prober
	for id, e := range s.entries {
		delete(s.entries, id)
		toClose = append(toClose, s.retireLocked(e)...)
	}
	s.metrics.probes.Set(0)
	s.mu.Unlock()
	for _, p := range toClose {
		closeProber(p)
	}
}

// notify wakes the loop so it re-arms its timer for a changed queue.
func (s *Scheduler) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func normalizeMaxConcurrent(n int) int {
	if n <= 0 {
		return DefaultMaxConcurrentRuns
	}
	return n
}

func closeProber(p Prober) {
	if c, ok := p.(Closer); ok {
		c.Close()
	}
}

// sameProber reports whether a and b are the same prober, without
// panicking on probers of an uncomparable type.
func sameProber(a, b Prober) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta != nil && ta.Comparable() && a == b
}

// schedQueue is a min-heap of entries by due time.
type schedQueue []*schedEntry

func (q schedQueue) Len() int           { return len(q) }
func (q schedQueue) Less(i, j int) bool { return q[i].due < q[j].due }
func (q schedQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

// Push implements heap.Interface.
func (q *schedQueue) Push(x any) {
	e := x.(*schedEntry)
	e.index = len(*q)
	*q = append(*q, e)
}

// Pop implements heap.Interface.
func (q *schedQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}

// runJob is one dispatched run.
type runJob struct {
	entry *schedEntry
	due   int64 // Unix nanoseconds
}

// runPool runs jobs on at most limit workers, in submission order. Jobs
// beyond the limit wait in a queue: that is the concurrency cap. Workers
// start on demand and then stay, so the pool holds as many goroutines as
// runs were ever in flight at once (at most the cap). Reusing workers
// keeps their grown stacks: a fresh goroutine per run pays for growing
// its stack on every run (measured at ~5 µs a run for a 30 KiB stack).
type runPool struct {
	run func(runJob)

	mu   sync.Mutex
	cond sync.Cond // idle workers wait on it
	// limit caps workers; workers counts the started ones still running.
	limit, workers int
	// idle counts workers waiting on cond that nobody has woken yet.
	idle   int
	queue  jobQueue
	closed bool
	exited sync.WaitGroup
}

func newRunPool(limit int, run func(runJob)) *runPool {
	p := &runPool{run: run, limit: limit}
	p.cond.L = &p.mu
	return p
}

// submit queues j and makes sure a worker will take it: an idle one, or a
// new one while there are fewer than limit.
func (p *runPool) submit(j runJob) {
	p.mu.Lock()
	p.queue.push(j)
	p.wakeLocked()
	p.mu.Unlock()
}

// wakeLocked wakes or starts a worker for a queued job if the limit
// allows.
func (p *runPool) wakeLocked() {
	switch {
	case p.idle > 0:
		// Counted here, not by the worker, so that the next submit does
		// not count on a worker that is already woken.
		p.idle--
		p.cond.Signal()
	case p.workers < p.limit:
		p.workers++
		p.exited.Add(1)
		go p.work()
	}
}

func (p *runPool) work() {
	defer p.exited.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && p.workers <= p.limit {
		j, ok := p.queue.pop()
		if !ok {
			p.idle++
			p.cond.Wait()
			continue
		}
		p.mu.Unlock()
		p.run(j)
		p.mu.Lock()
	}
	p.workers--
}

// setLimit changes the cap. Workers beyond a lowered limit exit after
// their current job; a raised limit starts workers for queued jobs.
func (p *runPool) setLimit(limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = limit
	if p.workers > p.limit {
		p.wakeAllLocked()
	}
	for range min(p.queue.len(), p.limit-p.workers) {
		p.wakeLocked()
	}
}

// close stops the pool: workers exit once their current job is done. It
// returns the jobs that were still waiting, which will never run.
func (p *runPool) close() []runJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.wakeAllLocked()
	var dropped []runJob
	for j, ok := p.queue.pop(); ok; j, ok = p.queue.pop() {
		dropped = append(dropped, j)
	}
	return dropped
}

// wait blocks until every worker has exited; call it after close.
func (p *runPool) wait() { p.exited.Wait() }

func (p *runPool) wakeAllLocked() {
	p.idle = 0
	p.cond.Broadcast()
}

// jobQueue is a FIFO ring buffer. It grows to the largest backlog seen,
// at most one job per scheduled probe, and never shrinks.
type jobQueue struct {
	buf        []runJob
	head, size int
}

func (q *jobQueue) len() int { return q.size }

func (q *jobQueue) push(j runJob) {
	if q.size == len(q.buf) {
		grown := make([]runJob, max(16, 2*len(q.buf)))
		n := copy(grown, q.buf[q.head:])
		copy(grown[n:], q.buf[:q.head])
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = j
	q.size++
}

func (q *jobQueue) pop() (runJob, bool) {
	if q.size == 0 {
		return runJob{}, false
	}
	j := q.buf[q.head]
	q.buf[q.head] = runJob{} // drop the entry pointer
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return j, true
}

// schedulerMetrics are the scheduler's own metrics.
type schedulerMetrics struct {
	probes        prometheus.Gauge
	inFlight      prometheus.Gauge
	maxConcurrent prometheus.Gauge
	late          prometheus.Counter
	skipped       prometheus.Counter
	lag           prometheus.Histogram
	wakeups       prometheus.Counter
}

// newSchedulerMetrics registers the metrics on reg; nil registers none.
func newSchedulerMetrics(reg prometheus.Registerer) *schedulerMetrics {
	f := promauto.With(reg)
	return &schedulerMetrics{
		probes: f.NewGauge(prometheus.GaugeOpts{
			Name: "reliabilityd_scheduler_probes",
			Help: "Number of probes scheduled.",
		}),
		inFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "reliabilityd_scheduler_runs_in_flight",
			Help: "Number of probe runs in progress, not counting runs waiting for the concurrency cap.",
		}),
		maxConcurrent: f.NewGauge(prometheus.GaugeOpts{
			Name: "reliabilityd_scheduler_max_concurrent_runs",
			Help: "Maximum number of probe runs in flight at once.",
		}),
		late: f.NewCounter(prometheus.CounterOpts{
			Name: "reliabilityd_scheduler_late_runs_total",
			Help: "Probe runs that started more than min(10% of their interval, 1s) after their due time.",
		}),
		skipped: f.NewCounter(prometheus.CounterOpts{
			Name: "reliabilityd_scheduler_skipped_runs_total",
			Help: "Probe runs not started because the previous run of the probe was still in flight or the scheduler woke more than an interval late.",
		}),
		lag: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "reliabilityd_scheduler_lag_seconds",
			Help:    "Time from a probe run's due time to its start.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		wakeups: f.NewCounter(prometheus.CounterOpts{
			Name: "reliabilityd_scheduler_wakeups_total",
			Help: "Times the scheduler's timer woke it to start due probes; compare with probe_runs_total to see batching.",
		}),
	}
}
