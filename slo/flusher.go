package slo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshotter is implemented by every component whose state survives a
// restart. MarshalState is called from the flusher's goroutine while the
// component keeps running, so it must be safe for concurrent use with the
// component's other methods. The returned slice is owned by the flusher:
// the component must not modify it afterwards.
type Snapshotter interface {
	MarshalState() ([]byte, error)
}

// Flusher periodically collects the sections of its sources and saves them
// through a Store. It is the Store's only writer. It remembers the last
// bytes it got for every section, so a section survives a source that
// fails to marshal and a source that is absent for a while (a feature
// removed from the config and added back, or not yet started). Its methods
// are safe for concurrent use; flushes never overlap.
type Flusher struct {
	store    *Store
	interval time.Duration
	logger   *slog.Logger
	metrics  flusherMetrics
	// now stamps successful flushes and times them; tests replace it.
	now func() time.Time
	// newTicker starts the tick source of Run; tests replace it to drive
	// Run tick by tick.
	newTicker func(time.Duration) (ticks <-chan time.Time, stop func())

	// sources is swapped whole by SetSources, so a flush never sees half
	// of a reload.
	sources atomic.Pointer[map[string]Snapshotter]

	mu       sync.Mutex        // serializes flushes; guards sections
	sections map[string][]byte // last good bytes per section, seeded ones included
}

type flusherMetrics struct {
	lastSuccess prometheus.Gauge
	flushes     prometheus.Counter
	failures    prometheus.Counter
	duration    prometheus.Histogram
}

func newFlusherMetrics(reg prometheus.Registerer) (flusherMetrics, error) {
	var m flusherMetrics
	var errs [4]error
	m.lastSuccess, errs[0] = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_state_last_flush_success_timestamp_seconds",
		Help: "Unix time of the last flush in which every source marshalled and the state file was saved.",
	}))
	m.flushes, errs[1] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reliabilityd_state_flushes_total",
		Help: "State flushes attempted.",
	}))
	m.failures, errs[2] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reliabilityd_state_flush_failures_total",
		Help: "State flushes in which a source failed to marshal or the state file could not be saved.",
	}))
	m.duration, errs[3] = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "reliabilityd_state_flush_duration_seconds",
		Help:    "Time taken by a state flush, marshalling and saving.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8), // 1ms to ~16s
	}))
	return m, errors.Join(errs[:]...)
}

// NewFlusher returns a Flusher that saves to store every interval once Run
// is called. A nil logger discards logs; a nil reg registers no metrics. A
// metric that cannot be registered (a conflicting collector on reg) is
// logged and still counted, just not exported, because losing state over a
// metric would be the worse failure.
func NewFlusher(store *Store, interval time.Duration, logger *slog.Logger, reg prometheus.Registerer) *Flusher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics, err := newFlusherMetrics(reg)
	if err != nil {
		logger.Error("Cannot register state flusher metrics", "err", err)
	}
	return &Flusher{
		store:     store,
		interval:  interval,
		logger:    logger,
		metrics:   metrics,
		now:       time.Now,
		newTicker: newTimeTicker,
		sections:  map[string][]byte{},
	}
}

func newTimeTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Seed hands the flusher the sections Store.Load returned, so that those
// no source claims are written back unchanged by every flush. Call it once,
// before the first flush. The flusher retains the slices: the caller must
// not modify them afterwards.
func (f *Flusher) Seed(loaded map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	maps.Copy(f.sections, loaded)
}

// SetSources replaces the sources, keyed by section name. A reload calls it
// with the new runtime's sources; a flush in progress finishes with the old
// ones. The map is copied and nil sources are dropped.
func (f *Flusher) SetSources(sources map[string]Snapshotter) {
	own := make(map[string]Snapshotter, len(sources))
	for name, src := range sources {
		if src != nil {
			own[name] = src
		}
	}
	f.sources.Store(&own)
}

// Run flushes every interval until ctx is done, then returns nil without a
// last flush: the caller flushes once more with Flush after the scheduler
// has stopped, so that nothing recorded in between is lost. A failed flush
// is logged and retried at the next tick.
func (f *Flusher) Run(ctx context.Context) error {
	if f.interval <= 0 {
		return fmt.Errorf("state flusher: flush interval must be positive, got %v", f.interval)
	}
	ticks, stop := f.newTicker(f.interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			if err := f.Flush(); err != nil {
				f.logger.Warn("State flush failed; will retry", "file", f.store.Path(), "interval", f.interval, "err", err)
			}
		}
	}
}

// Flush collects every source's state and saves all sections now. A source
// whose MarshalState fails, or returns a section the format cannot hold,
// keeps its previous bytes in the file; sections no source claims are
// carried over. The flush still saves the other sections, and then returns
// the joined errors and counts one failure.
func (f *Flusher) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := f.now()
	f.metrics.flushes.Inc()

	errs := f.collect()
	if err := f.store.Save(f.sections); err != nil {
		errs = append(errs, err)
	}
	end := f.now()
	f.metrics.duration.Observe(end.Sub(start).Seconds())
	if len(errs) > 0 {
		f.metrics.failures.Inc()
		return fmt.Errorf("flush state: %w", errors.Join(errs...))
	}
	f.metrics.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	return nil
}

// collect refreshes f.sections from the sources, in name order so errors
// read the same on every flush.
func (f *Flusher) collect() []error {
	sources := f.sources.Load()
	if sources == nil {
		return nil
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(*sources)) {
		data, err := (*sources)[name].MarshalState()
		if err == nil {
			err = validateSection(name, len(data))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("section %q: %w (keeping its previous bytes)", name, err))
			continue
		}
		f.sections[name] = data
	}
	return errs
}
