package slo

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/collector"
)

// Engine turns probe results into SLO figures. Probe workers call Record
// concurrently; the evaluator calls Evaluate every evaluation interval and
// publishes an immutable Snapshot that /metrics and the landing page read;
// the state flusher calls MarshalState. A reload calls Apply with the new
// plan. All methods are safe for concurrent use.
type Engine struct {
	logger       *slog.Logger
	metrics      engineMetrics
	now          func() time.Time
	alsoEvaluate func(now time.Time)

	// routes is swapped whole by Apply: Record never sees half a reload.
	routes   atomic.Pointer[routeTable]
	snapshot atomic.Pointer[Snapshot]
	interval atomic.Int64 // evaluation interval, nanoseconds
	// lastStateSize is the size of the last marshalled state section.
	lastStateSize atomic.Int64
	wake          chan struct{}

	// evalMu serialises evaluations, so snapshots are published in order.
	evalMu sync.Mutex
	mu     sync.Mutex // serialises Apply and state (un)marshalling
	// active are the configured SLOs by key; orphans the removed (or not
	// yet claimed, after a restore) ones, kept until retainUntil.
	active  map[string]*objective
	orphans map[string]*objective
}

// routeTable maps each probe to the SLOs its runs count for.
type routeTable struct {
	byProbe   map[collector.ProbeID]route
	ordered   []*objective // active SLOs, by service then name
	schedules []ServiceSchedule
}

type route struct {
	schedule   *Schedule
	objectives []*objective
}

type engineMetrics struct {
	evaluations        prometheus.Counter
	evaluationDuration prometheus.Histogram
	lastEvaluation     prometheus.Gauge
	orphaned           prometheus.Gauge
	futureEvents       prometheus.Counter
}

func newEngineMetrics(reg prometheus.Registerer) (engineMetrics, error) {
	var m engineMetrics
	var errs [5]error
	m.evaluations, errs[0] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reliabilityd_slo_evaluations_total",
		Help: "SLO evaluations run.",
	}))
	m.evaluationDuration, errs[1] = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "reliabilityd_slo_evaluation_duration_seconds",
		Help:    "Time taken by one evaluation of every SLO.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 100µs to ~6.5s
	}))
	m.lastEvaluation, errs[2] = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_slo_last_evaluation_timestamp_seconds",
		Help: "When the SLO figures were last evaluated.",
	}))
	m.orphaned, errs[3] = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_slo_orphaned",
		Help: "SLOs removed from the configuration whose recorded events are still kept, in case they come back.",
	}))
	m.futureEvents, errs[4] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reliabilityd_slo_future_events_total",
		Help: "Probe results stamped more than a minute ahead of the clock, not counted towards any SLO.",
	}))
	return m, errors.Join(errs[:]...)
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Interval is the evaluation interval until Apply sets another.
	Interval time.Duration
	// AlsoEvaluate, when set, is called by Run after each evaluation with
	// the same time: the daemon evaluates capacity on the SLO evaluator's
	// tick.
	AlsoEvaluate func(now time.Time)
}

// NewEngine returns an engine with no SLOs. It starts no goroutines.
func NewEngine(opts EngineOptions) *Engine {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics, err := newEngineMetrics(opts.Registerer)
	if err != nil {
		logger.Error("Cannot register SLO engine metrics", "err", err)
	}
	e := &Engine{
		logger:       logger,
		metrics:      metrics,
		now:          opts.Now,
		alsoEvaluate: opts.AlsoEvaluate,
		wake:         make(chan struct{}, 1),
		active:       map[string]*objective{},
		orphans:      map[string]*objective{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.interval.Store(int64(cmp.Or(opts.Interval, 15*time.Second)))
	e.routes.Store(&routeTable{byProbe: map[collector.ProbeID]route{}})
	e.snapshot.Store(&Snapshot{})
	return e
}

// Apply makes plan the engine's SLOs and evaluates them. An SLO that
// keeps its key keeps its events whatever else changed (objective,
// window, probes); one with renamed_from takes over its former name's
// events; a removed one becomes an orphan, kept until its events have
// left its windows, so that re-adding it restores them. interval is the
// new evaluation interval.
func (e *Engine) Apply(plan *Plan, interval time.Duration) {
	e.mu.Lock()
	active := make(map[string]*objective, len(plan.SLOs))
	claimed := make(map[*objective]bool, len(plan.SLOs))
	for _, def := range plan.SLOs {
		o := e.claim(def)
		active[def.Key()] = o
		claimed[o] = true
	}
	for key, o := range e.active {
		if !claimed[o] {
			e.orphans[key] = o
			e.logger.Info("SLO removed from the configuration; keeping its events in case it comes back",
				"slo", key, "until", o.retainUntil().UTC().Format(time.RFC3339))
		}
	}
	e.active = active
	e.routes.Store(newRouteTable(plan, active))
	e.mu.Unlock()

	if interval > 0 && e.interval.Swap(int64(interval)) != int64(interval) {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	e.Evaluate(e.now()) // not now: a Run tick may have published a later snapshot meanwhile
}

// claim returns the objective for def: the running one, an orphan (a
// removed or restored SLO), or the one it was renamed from; else a new one.
// The caller holds e.mu.
func (e *Engine) claim(def *Definition) *objective {
	key := def.Key()
	o := e.active[key]
	if o == nil {
		o = e.orphans[key]
		delete(e.orphans, key)
	}
	if o == nil && def.RenamedFrom != "" {
		oldKey := stateKey(def.Service, def.RenamedFrom)
		if o = e.active[oldKey]; o == nil {
			o = e.orphans[oldKey]
			delete(e.orphans, oldKey)
		}
		if o != nil {
			e.logger.Info("SLO renamed; its events carry over", "from", oldKey, "to", key)
		}
	}
	if o == nil {
		return newObjective(def)
	}
	o.mu.Lock()
	o.reshape(def)
	o.mu.Unlock()
	return o
}

func newRouteTable(plan *Plan, active map[string]*objective) *routeTable {
	table := &routeTable{byProbe: map[collector.ProbeID]route{}, schedules: plan.Schedules}
	for _, def := range plan.SLOs {
		o := active[def.Key()]
		table.ordered = append(table.ordered, o)
		for _, probe := range def.Probes {
			id := collector.ProbeID{Service: def.Service, Probe: probe}
			r := table.byProbe[id]
			r.schedule = def.Schedule
			r.objectives = append(r.objectives, o)
			table.byProbe[id] = r
		}
	}
	slices.SortFunc(table.ordered, func(a, b *objective) int {
		return cmp.Or(cmp.Compare(a.def.Service, b.def.Service), cmp.Compare(a.def.Name, b.def.Name))
	})
	table.schedules = slices.Clone(plan.Schedules)
	slices.SortFunc(table.schedules, func(a, b ServiceSchedule) int { return cmp.Compare(a.Service, b.Service) })
	return table
}

// Record implements collector.Recorder: the run counts for every SLO over
// its probe, as excluded when the service is in maintenance or outside its
// hours of operation at the run's start.
func (e *Engine) Record(id collector.ProbeID, result collector.Result) {
	r, ok := e.routes.Load().byProbe[id]
	if !ok {
		return
	}
	now := e.now()
	if result.Events != nil {
		e.recordEvents(r, result.Events, now)
		return
	}
	if result.Windows != nil {
		if result.Start.After(now.Add(maxFutureSkew)) {
			e.metrics.futureEvents.Inc() // would never go stale
			return
		}
		for _, o := range r.objectives {
			o.recordWindows(result.Windows, result.Start)
		}
		return
	}
	if result.Start.After(now.Add(maxFutureSkew)) {
		// Stamped ahead of the clock: counting it would move every ring's
		// head into the future. Never happens with the scheduler's own
		// clock; counted so that it shows if it does.
		e.metrics.futureEvents.Inc()
		return
	}
	exclusion := r.schedule.Exclusion(result.Start)
	for _, o := range r.objectives {
		o.record(&result, exclusion, now)
	}
}

// recordEvents records the events an SLI query counted, each excluded by
// the schedule at its own time.
func (e *Engine) recordEvents(r route, events []collector.EventCounts, now time.Time) {
	for i := range events {
		ev := &events[i]
		if ev.At.After(now.Add(maxFutureSkew)) {
			e.metrics.futureEvents.Inc()
			continue
		}
		exclusion := r.schedule.Exclusion(ev.At)
		for _, o := range r.objectives {
			o.recordEvents(ev, exclusion, now)
		}
	}
}

// Coverage returns what the recorded events of the SLO named slo of
// service cover: from the oldest range counted by queries that is still
// held (zero when unknown) to the newest event (zero when none). A queried
// SLI resumes counting after it, and backfills the window before it.
func (e *Engine) Coverage(service, slo string) collector.SLICoverage {
	e.mu.Lock()
	o := e.active[stateKey(service, slo)]
	e.mu.Unlock()
	if o == nil {
		return collector.SLICoverage{}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return collector.SLICoverage{From: o.queriedFrom, To: o.lastEvent}
}

// maxFutureSkew is how far ahead of the engine's clock a result may be
// stamped and still count.
const maxFutureSkew = time.Minute

// Evaluate computes every SLO's figures at now, publishes them as the
// current Snapshot and returns it. It also forgets orphans whose events
// have all left their windows.
func (e *Engine) Evaluate(now time.Time) *Snapshot {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	start := time.Now()
	table := e.routes.Load()
	snap := &Snapshot{Time: now, SLOs: make([]SLOStatus, len(table.ordered)), Services: make([]ServiceStatus, len(table.schedules))}
	stale := e.figuresStale()
	for i, o := range table.ordered {
		snap.SLOs[i] = o.status(now, stale)
	}
	for i, s := range table.schedules {
		snap.Services[i] = ServiceStatus{Service: s.Service, MaintenanceActive: s.Schedule.InMaintenance(now), InHours: s.Schedule.InHours(now)}
	}
	e.snapshot.Store(snap)
	e.expireOrphans(now)
	e.metrics.evaluations.Inc()
	e.metrics.evaluationDuration.Observe(time.Since(start).Seconds())
	e.metrics.lastEvaluation.Set(float64(now.UnixNano()) / 1e9)
	return snap
}

// figuresStale is how long a window-mode SLI's figures are shown after
// they were queried: Prometheus' staleness period (5 minutes), or two
// evaluation intervals when longer, so that a failed query or two leave
// the last figures in place.
func (e *Engine) figuresStale() time.Duration {
	return max(5*time.Minute, 2*time.Duration(e.interval.Load()))
}

func (e *Engine) expireOrphans(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, o := range e.orphans {
		if until := o.retainUntil(); now.After(until) {
			delete(e.orphans, key)
			e.logger.Info("Dropping the events of a removed SLO: they have left its windows", "slo", key)
		}
	}
	e.metrics.orphaned.Set(float64(len(e.orphans)))
}

// Snapshot returns the latest published snapshot; never nil.
func (e *Engine) Snapshot() *Snapshot { return e.snapshot.Load() }

// Run is the evaluator actor: it evaluates every evaluation interval until
// ctx is done. A new interval from Apply takes effect at once.
func (e *Engine) Run(ctx context.Context) error {
	for {
		timer := time.NewTimer(time.Duration(e.interval.Load()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-e.wake:
			timer.Stop()
		case <-timer.C:
			now := e.now()
			e.Evaluate(now)
			if e.alsoEvaluate != nil {
				e.alsoEvaluate(now)
			}
		}
	}
}
