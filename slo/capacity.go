package slo

import (
	"cmp"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// Horizons of the projections, by label value: 6 months is half of 365
// days, a year 365 days, two years 730.
var horizons = [...]struct {
	name   string
	length time.Duration
}{{"6mo", 4380 * time.Hour}, {"12mo", 8760 * time.Hour}, {"24mo", 17520 * time.Hour}}

const numHorizons = len(horizons)

// ResourceDefinition is one capacity resource as the engine uses it,
// resolved from the configuration. Read-only once built.
type ResourceDefinition struct {
	Service, Name, Source string
	// Limit is the configured limit; 0 takes the source's.
	Limit float64
	// HeadroomTarget is the share of the limit that should stay free.
	HeadroomTarget float64
	// Growth is the plan's relative growth by horizon; Planned tells which
	// horizons the plan sets.
	Growth  [numHorizons]float64
	Planned [numHorizons]bool
	// Forecast settings.
	Method     string
	Window     time.Duration
	MinSamples int
	Alpha      float64
	Beta       float64
	ResetDrop  float64
}

// Key identifies the resource across reloads and restarts.
func (d *ResourceDefinition) Key() string { return stateKey(d.Service, d.Name) }

// ID is the resource's identity in the sampling scheduler.
func (d *ResourceDefinition) ID() collector.ProbeID {
	return collector.ProbeID{Service: d.Service, Probe: d.Name}
}

// NewResourceDefinition resolves one resource of a validated configuration.
func NewResourceDefinition(service string, c *config.CapacityConfig) *ResourceDefinition {
	d := &ResourceDefinition{
		Service: service, Name: c.Name, Source: c.Source.Type(), Limit: float64(c.Limit),
		HeadroomTarget: c.HeadroomTarget.Ratio(),
		Method:         c.Forecast.Method, Window: c.Forecast.Window.Duration(), MinSamples: c.Forecast.MinSamples,
		Alpha: c.Forecast.Alpha, Beta: c.Forecast.Beta, ResetDrop: c.Forecast.ResetDrop.Ratio(),
	}
	for i, growth := range []*config.Percent{c.Growth.Months6, c.Growth.Months12, c.Growth.Months24} {
		if growth != nil {
			d.Growth[i], d.Planned[i] = growth.Ratio(), true
		}
	}
	return d
}

// CapacityPlan is every capacity resource of a configuration.
func CapacityPlan(cfg *config.Config) []*ResourceDefinition {
	var defs []*ResourceDefinition
	for i := range cfg.Services {
		for j := range cfg.Services[i].Capacity {
			defs = append(defs, NewResourceDefinition(cfg.Services[i].Name, &cfg.Services[i].Capacity[j]))
		}
	}
	return defs
}

// resource holds a capacity resource's latest reading, its usage history
// and its counters. Its mutex guards everything, def included.
type resource struct {
	mu     sync.Mutex
	def    *ResourceDefinition
	fine   valueRing
	coarse valueRing
	// last is the latest successful reading, taken at lastTime.
	last     collector.Measurement
	lastTime time.Time
	samples  uint64
	failures map[collector.Reason]uint64
}

func newResource(def *ResourceDefinition) *resource {
	return &resource{def: def, fine: newValueRing(fineHistory), coarse: newValueRing(coarseHistory),
		failures: map[collector.Reason]uint64{}}
}

func (r *resource) record(result *collector.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch m := result.Measurement; {
	case m != nil && result.Success:
		r.samples++
		// The latest sample received is the latest reading, even when the
		// clock was stepped back: results of one source arrive in order.
		r.last, r.lastTime = *m, result.Start
		r.fine.add(result.Start, m.Usage)
		r.coarse.add(result.Start, m.Usage)
	case errors.Is(result.Err, collector.ErrNoSample):
		// A source that needs two readings (CPU) has taken its first.
	default:
		reason := result.Reason
		if reason == "" {
			reason = collector.ReasonInternal
		}
		r.failures[reason]++
	}
}

// ResourceStatus is one resource's figures at a snapshot's time.
type ResourceStatus struct {
	*ResourceDefinition
	// HasUsage tells whether a sample ever succeeded; the figures below
	// are those of the latest successful one, taken at LastSample.
	HasUsage   bool
	Usage      float64
	Limit      float64
	LastSample time.Time
	Samples    uint64
	Failures   map[collector.Reason]uint64
	// Trend is the fitted trend; HasTrend false when the window holds too
	// few samples (after the last reset).
	Trend    Trend
	HasTrend bool
}

// Utilization returns usage over limit; false without usage or limit.
func (s *ResourceStatus) Utilization() (float64, bool) {
	if !s.HasUsage || s.Limit <= 0 {
		return 0, false
	}
	return s.Usage / s.Limit, true
}

// Headroom returns the share of the limit left: 1 - utilization.
func (s *ResourceStatus) Headroom() (float64, bool) {
	u, ok := s.Utilization()
	return 1 - u, ok
}

// ExhaustionSeconds returns the time until the trend reaches the limit:
// 0 when already reached, +Inf when the trend is flat or shrinking; false
// without a trend or a limit.
func (s *ResourceStatus) ExhaustionSeconds() (float64, bool) {
	if !s.HasTrend || s.Limit <= 0 {
		return 0, false
	}
	return s.Trend.SecondsToLimit(s.Limit), true
}

// ProjectedPlan returns the utilization the growth plan expects at
// horizon h: today's usage grown by the plan, over today's limit.
func (s *ResourceStatus) ProjectedPlan(h int) (float64, bool) {
	if !s.Planned[h] || !s.HasUsage || s.Limit <= 0 {
		return 0, false
	}
	return s.Usage * (1 + s.Growth[h]) / s.Limit, true
}

// ProjectedTrend returns the utilization the measured trend reaches at
// horizon h, over today's limit.
func (s *ResourceStatus) ProjectedTrend(h int) (float64, bool) {
	if !s.HasTrend || s.Limit <= 0 {
		return 0, false
	}
	return s.Trend.ValueAt(horizons[h].length.Seconds()) / s.Limit, true
}

// evalScratch is the space one evaluation reuses from resource to
// resource: the window's points and Holt's slot values. Allocating them per
// resource made an evaluation of 10,000 resources churn megabytes.
type evalScratch struct {
	points []Point
	slots  []float64
}

// status computes the resource's figures at now.
func (r *resource) status(now time.Time, scratch *evalScratch) ResourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	def := r.def
	s := ResourceStatus{ResourceDefinition: def, HasUsage: !r.lastTime.IsZero(), Usage: r.last.Usage, Limit: r.last.Limit,
		LastSample: r.lastTime, Samples: r.samples, Failures: copyFailures(r.failures)}
	if def.Limit > 0 {
		s.Limit = def.Limit
	}
	ring := &r.coarse
	if def.Window <= fineHistorySpan {
		ring = &r.fine
	}
	scratch.points = ring.points(now, def.Window, scratch.points)
	recent := AfterReset(scratch.points, def.ResetDrop)
	switch def.Method {
	case "holt":
		s.Trend, s.HasTrend, scratch.slots = holtOverSlots(recent, ring.resolution, def, scratch.slots)
	default:
		s.Trend, s.HasTrend = LinearTrend(recent, def.MinSamples)
	}
	return s
}

// holtOverSlots runs Holt's smoothing over the slots from the first point
// to the last (empty slots in between carry the previous value forward)
// and moves the level from the last slot's centre to now. values is
// scratch space for the slots, returned for reuse.
func holtOverSlots(points []Point, resolution int64, def *ResourceDefinition, values []float64) (Trend, bool, []float64) {
	if len(points) == 0 {
		return Trend{}, false, values
	}
	step := float64(resolution) / 1e9
	first, last := points[0].T, points[len(points)-1].T
	n := int(math.Round((last-first)/step)) + 1
	values = slices.Grow(values[:0], n)[:n]
	for i := range values {
		values[i] = math.NaN()
	}
	for _, p := range points {
		values[int(math.Round((p.T-first)/step))] = p.V
	}
	trend, ok := HoltTrend(values, step, def.Alpha, def.Beta, def.MinSamples)
	if ok {
		trend.Level += trend.Slope * -last // from the last slot's centre to now
	}
	return trend, ok, values
}

func copyFailures(m map[collector.Reason]uint64) map[collector.Reason]uint64 {
	out := make(map[collector.Reason]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CapacitySnapshot is one evaluation of every resource, sorted by service
// and name. Immutable once published.
type CapacitySnapshot struct {
	Time      time.Time
	Resources []ResourceStatus
}

// Capacity turns capacity samples into figures and forecasts. The
// sampling scheduler's workers call Record; the evaluator calls Evaluate;
// the state flusher MarshalState; a reload Apply. Safe for concurrent use.
type Capacity struct {
	logger  *slog.Logger
	metrics capacityMetrics

	routes   atomic.Pointer[capacityRoutes]
	snapshot atomic.Pointer[CapacitySnapshot]

	evalMu sync.Mutex // serialises evaluations
	mu     sync.Mutex // serialises Apply and state (un)marshalling
	active map[string]*resource
	// orphans are removed (or restored, not yet configured) resources,
	// kept until their history has aged out.
	orphans       map[string]*resource
	lastStateSize atomic.Int64
}

type capacityRoutes struct {
	byID    map[collector.ProbeID]*resource
	ordered []*resource
}

type capacityMetrics struct {
	orphaned prometheus.Gauge
}

// NewCapacity returns an engine without resources. A nil logger discards
// logs; a nil reg registers no metrics.
func NewCapacity(logger *slog.Logger, reg prometheus.Registerer) *Capacity {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Capacity{logger: logger, active: map[string]*resource{}, orphans: map[string]*resource{}}
	var err error
	c.metrics.orphaned, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_capacity_orphaned",
		Help: "Capacity resources removed from the configuration whose usage history is still kept, in case they come back.",
	}))
	if err != nil {
		logger.Error("Cannot register capacity metrics", "err", err)
	}
	c.routes.Store(&capacityRoutes{byID: map[collector.ProbeID]*resource{}})
	c.snapshot.Store(&CapacitySnapshot{})
	return c
}

// Apply makes defs the resources. A resource that keeps its key keeps its
// history and counters whatever else changed; a removed one is kept as an
// orphan until its history has aged out (35 days after its last sample),
// so re-adding it restores it.
func (c *Capacity) Apply(defs []*ResourceDefinition, now time.Time) {
	c.mu.Lock()
	active := make(map[string]*resource, len(defs))
	routes := &capacityRoutes{byID: make(map[collector.ProbeID]*resource, len(defs))}
	for _, def := range defs {
		key := def.Key()
		r := c.active[key]
		if r == nil {
			r = c.orphans[key]
			delete(c.orphans, key)
		}
		if r == nil {
			r = newResource(def)
		} else {
			r.mu.Lock()
			r.def = def
			r.mu.Unlock()
		}
		active[key] = r
		routes.byID[def.ID()] = r
		routes.ordered = append(routes.ordered, r)
	}
	for key, r := range c.active {
		if active[key] == nil {
			c.orphans[key] = r
			c.logger.Info("Capacity resource removed from the configuration; keeping its history in case it comes back", "resource", key)
		}
	}
	slices.SortFunc(routes.ordered, func(a, b *resource) int {
		return cmp.Or(cmp.Compare(a.def.Service, b.def.Service), cmp.Compare(a.def.Name, b.def.Name))
	})
	c.active = active
	c.routes.Store(routes)
	c.mu.Unlock()
	c.Evaluate(now)
}

// Record implements collector.Recorder for the sampling scheduler.
func (c *Capacity) Record(id collector.ProbeID, result collector.Result) {
	if r := c.routes.Load().byID[id]; r != nil {
		r.record(&result)
	}
}

// Evaluate computes every resource's figures at now and publishes them.
func (c *Capacity) Evaluate(now time.Time) *CapacitySnapshot {
	c.evalMu.Lock()
	defer c.evalMu.Unlock()
	routes := c.routes.Load()
	snap := &CapacitySnapshot{Time: now, Resources: make([]ResourceStatus, len(routes.ordered))}
	var scratch evalScratch
	for i, r := range routes.ordered {
		snap.Resources[i] = r.status(now, &scratch)
	}
	c.snapshot.Store(snap)
	c.expireOrphans(now)
	return snap
}

func (c *Capacity) expireOrphans(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := coarseHistory.resolution * time.Duration(coarseHistory.length)
	for key, r := range c.orphans {
		r.mu.Lock()
		last := r.lastTime
		r.mu.Unlock()
		if now.Sub(last) > keep {
			delete(c.orphans, key)
			c.logger.Info("Dropping the history of a removed capacity resource: it has aged out", "resource", key)
		}
	}
	c.metrics.orphaned.Set(float64(len(c.orphans)))
}

// Snapshot returns the latest published snapshot; never nil.
func (c *Capacity) Snapshot() *CapacitySnapshot { return c.snapshot.Load() }
