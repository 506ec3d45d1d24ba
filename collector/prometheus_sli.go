package collector

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// Bounds of an SLI's backfill: ranges older than the last evaluation
// interval are counted in chunks of sliChunk (aligned to the hour, the
// resolution of long SLO windows), at most maxSLIChunks per run, so a
// backfill of 30 days takes 30 runs and never floods the source.
const (
	sliChunk     = time.Hour
	maxSLIChunks = 24
)

// SLIQueryProbe is the probe name under which an SLO's queried events are
// recorded: the engine routes them like the runs of a probe. A colon
// cannot occur in a probe's name, so it never clashes with one.
func SLIQueryProbe(slo string) string { return "sli:" + slo }

// SLIProberOptions configure a queried SLI's prober.
type SLIProberOptions struct {
	// Interval is how often it runs (the evaluation interval).
	Interval time.Duration
	// Window bounds the backfill: no range older than Window is counted.
	Window time.Duration
	// Resume returns when the SLO's last recorded event happened (zero
	// if it has none): the first run counts from there, backfilling the
	// gap a restart left, or from Window ago for an SLO without events.
	Resume func() time.Time
	Clock  Clock
}

// prometheusSLIProber counts an SLO's events with queries of a Prometheus
// source: at every run, the increase of the counters over the ranges since
// the previous run's end. Runs never overlap (the scheduler's promise);
// mu makes it safe anyway.
type prometheusSLIProber struct {
	src              *PrometheusSource
	goodOrBad, total string
	countsBad        bool
	opts             SLIProberOptions
	mu               sync.Mutex
	// last is the end of the range counted last; zero before the first
	// run.
	last                  time.Time
	carryGood, carryTotal float64 // fractions of events not yet recorded
}

// NewPrometheusSLIProber builds the prober of an SLO whose events come
// from src.
//
// A run counts the ranges from the end of the last one counted to now:
// the recent part in one range, older parts (a backfill) in hour-aligned
// chunks, at most 24 per run; the next run continues. Each range's events
// are one EventCounts of the Result, at just before the range's end.
// Counters' increases are fractional (Prometheus extrapolates them):
// fractions carry over to the next range, so the events recorded add up to
// the increases. An empty result counts 0 events. A failed query ends the
// run with the Result's Reason and Err, keeping the events of the ranges
// counted before it; the next run retries the failed range. Nothing is
// ever recorded for a range whose query failed.
func NewPrometheusSLIProber(src *PrometheusSource, cfg config.SLIPrometheus, opts SLIProberOptions) Prober {
	p := &prometheusSLIProber{src: src, goodOrBad: cfg.Good, total: cfg.Total, opts: opts}
	if cfg.Good == "" {
		p.goodOrBad, p.countsBad = cfg.Bad, true
	}
	if p.opts.Clock == nil {
		p.opts.Clock = RealClock()
	}
	return p
}

// Probe implements Prober.
func (p *prometheusSLIProber) Probe(ctx context.Context) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Whole milliseconds: ranges are written in them.
	now := p.opts.Clock.Now().Truncate(time.Millisecond)
	result := Result{Start: now, Events: []EventCounts{}}
	if p.last.IsZero() {
		p.last = p.resumeFrom(now)
	}
	// A clock stepped back behind the last range leaves nothing new.
	if oldest := now.Add(-p.opts.Window); p.last.Before(oldest) {
		p.last = oldest
	}
	for chunks := 0; p.last.Before(now) && chunks < maxSLIChunks; chunks++ {
		end := now
		if now.Sub(p.last) > p.opts.Interval {
			// Backfill: up to the next hour boundary.
			if boundary := p.last.Truncate(sliChunk).Add(sliChunk); boundary.Before(now) {
				end = boundary
			}
		}
		good, total, err := p.count(ctx, p.last, end)
		if err != nil {
			result.Duration = time.Since(result.Start)
			result.Reason, result.Err = sourceFailure(ctx, err), err
			return result
		}
		result.Events = append(result.Events, p.record(good, total, end))
		p.last = end
	}
	result.Duration = time.Since(result.Start)
	result.Success = true
	return result
}

// resumeFrom returns where a new prober starts counting: after the SLO's
// last recorded event (recorded just before its range's end), or a
// window ago when it has none: the whole window is backfilled.
func (p *prometheusSLIProber) resumeFrom(now time.Time) time.Time {
	if p.opts.Resume != nil {
		if last := p.opts.Resume(); !last.IsZero() {
			return last.Add(time.Millisecond).Truncate(time.Millisecond)
		}
	}
	return now.Add(-p.opts.Window)
}

// record turns a range's counts into whole events, carrying fractions.
func (p *prometheusSLIProber) record(good, total float64, end time.Time) EventCounts {
	goodSum, totalSum := good+p.carryGood, total+p.carryTotal
	wholeTotal := math.Floor(totalSum)
	wholeGood := min(math.Floor(goodSum), wholeTotal)
	p.carryGood, p.carryTotal = goodSum-wholeGood, totalSum-wholeTotal
	return EventCounts{At: end.Add(-time.Millisecond), Good: uint64(wholeGood), Bad: uint64(wholeTotal - wholeGood)}
}

// count queries the good (or bad) and total events over [start, end].
// Good is clamped to [0, total]: extrapolated increases of two counters
// may disagree by a fraction.
func (p *prometheusSLIProber) count(ctx context.Context, start, end time.Time) (good, total float64, err error) {
	window := strconv.FormatInt(end.Sub(start).Milliseconds(), 10) + "ms"
	render := strings.NewReplacer("$window", window, "{{.window}}", window).Replace
	total, err = p.src.query(ctx, instantQuery{expr: render(p.total), at: end, check: nonNegative("total"), emptyIsZero: true})
	if err != nil {
		return 0, 0, err
	}
	part, err := p.src.query(ctx, instantQuery{expr: render(p.goodOrBad), at: end, check: nonNegative("the count"), emptyIsZero: true})
	if err != nil {
		return 0, 0, err
	}
	part = min(part, total)
	if p.countsBad {
		return total - part, total, nil
	}
	return part, total, nil
}

// String describes the prober for logs.
func (p *prometheusSLIProber) String() string {
	return fmt.Sprintf("prometheus SLI of source %q", p.src.name)
}
