package collector

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// sliWindowConcurrency caps the queries of one window-mode run in flight:
// enough to overlap a slow long-window query with the short ones, few
// enough not to flood the source.
const sliWindowConcurrency = 4

// SLIWindowProberOptions configure a window-mode SLI's prober.
type SLIWindowProberOptions struct {
	// Windows returns the lengths of the windows to count at a time: the
	// burn-rate windows and the SLO's full window (for a calendar window,
	// the part of the period up to then), without repeats.
	Windows func(at time.Time) []time.Duration
	Clock   Clock
}

// prometheusSLIWindowProber counts an SLO's events over each of its
// windows whole, at every run.
type prometheusSLIWindowProber struct {
	src     *PrometheusSource
	queries sliQueries
	opts    SLIWindowProberOptions
}

// NewPrometheusSLIWindowProber builds the prober of an SLO whose events a
// source counts window by window (sli.prometheus mode window).
//
// A run queries good (or bad) and total for every window, with the
// placeholder replaced by the window's length in milliseconds, at the
// run's start (whole milliseconds), at most four windows at a time, the
// longest first. The Result carries one WindowCounts per window counted,
// longest first; nothing is kept between runs. An empty good or bad result is 0, an empty total fails its
// window with ReasonEmpty (the counters are gone, or never matched). A
// window whose query failed is left out of the Result, whose Reason and
// Err are then those of the longest failed window.
func NewPrometheusSLIWindowProber(src *PrometheusSource, cfg config.SLIPrometheus, opts SLIWindowProberOptions) Prober {
	if opts.Clock == nil {
		opts.Clock = RealClock()
	}
	return &prometheusSLIWindowProber{src: src, queries: newSLIQueries(cfg), opts: opts}
}

// Probe implements Prober.
func (p *prometheusSLIWindowProber) Probe(ctx context.Context) Result {
	began := time.Now()
	now := p.opts.Clock.Now().Truncate(time.Millisecond)
	// Longest first: the slowest queries must not wait for the quick
	// ones and run out of the run's time.
	lengths := slices.Clone(p.opts.Windows(now))
	slices.SortFunc(lengths, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	counts := make([]WindowCounts, len(lengths))
	errs := make([]error, len(lengths))
	slots := make(chan struct{}, sliWindowConcurrency)
	var wg sync.WaitGroup
	for i, length := range lengths {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			window := strconv.FormatInt(length.Milliseconds(), 10) + "ms"
			good, total, err := countEvents(ctx, p.src, p.queries, window, now, true)
			counts[i], errs[i] = WindowCounts{Length: length, Good: good, Total: total}, err
		}()
	}
	wg.Wait()
	result := Result{Start: now, Windows: make([]WindowCounts, 0, len(lengths)), Success: true}
	for i := range lengths {
		switch {
		case errs[i] == nil:
			result.Windows = append(result.Windows, counts[i])
		case result.Success:
			result.Success = false
			result.Reason, result.Err = sourceFailure(ctx, errs[i]), fmt.Errorf("window %s: %w", config.Duration(lengths[i]), errs[i])
		}
	}
	result.Duration = time.Since(began)
	return result
}

// String describes the prober for logs.
func (p *prometheusSLIWindowProber) String() string {
	return fmt.Sprintf("prometheus SLI (window mode) of source %q", p.src.name)
}
