package collector

import (
	"context"
	"errors"
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

// SLICoverage is the span of time an SLO's queried events cover: from
// the start of the oldest range counted to the end of the newest. Zero
// times when unknown (no events, or events from probes).
type SLICoverage struct {
	From, To time.Time
}

// SLIProberOptions configure a queried SLI's prober.
type SLIProberOptions struct {
	// Interval is how often it runs (the evaluation interval).
	Interval time.Duration
	// Window bounds the backfill: no range older than Window is counted.
	Window time.Duration
	// Resume returns what the SLO's recorded events cover. The first run
	// counts from the end of it, backfilling the gap a restart left (or
	// from Window ago for an SLO without events), and backfills the part
	// of the window before its start (the window grew).
	Resume func() SLICoverage
	Clock  Clock
}

// prometheusSLIProber counts an SLO's events with queries of a Prometheus
// source: at every run, the increase of the counters over the ranges since
// the previous run's end. Runs never overlap (the scheduler's promise);
// mu makes it safe anyway.
type prometheusSLIProber struct {
	src     *PrometheusSource
	queries sliQueries
	opts    SLIProberOptions
	mu      sync.Mutex
	// last is the end of the range counted last; zero before the first
	// run.
	last time.Time
	// older is the part of the window before the first recorded event
	// still to backfill, [older.From, older.To); empty when none.
	older                 SLICoverage
	carryGood, carryTotal float64 // fractions of events not yet recorded
}

// NewPrometheusSLIProber builds the prober of an SLO whose events come
// from src (sli.prometheus mode events).
//
// A run counts the ranges from the end of the last one counted to now:
// the recent part in one range, older parts (a backfill) in hour-aligned
// chunks, at most 24 per run; the next run continues. Each range's events
// are one EventCounts of the Result, at just before the range's end.
// Counters' increases are fractional (Prometheus extrapolates them):
// fractions carry over to the next range, so the events recorded add up to
// the increases. With chunks to spare, a run then backfills the part of
// the window older than the SLO's first recorded event (its window grew).
//
// An empty good or bad result counts 0 events (no request failed). An
// empty total is 0 events for a backfilled range (before the counters
// existed); for the range that ends now it is 0 events too, but the run
// fails with ReasonEmpty: the counters are gone, or never matched. Any
// other failed query ends the run with the Result's Reason and Err,
// keeping the events of the ranges counted before it; the next run
// retries the failed range. Nothing is ever recorded for a range whose
// query failed.
func NewPrometheusSLIProber(src *PrometheusSource, cfg config.SLIPrometheus, opts SLIProberOptions) Prober {
	p := &prometheusSLIProber{src: src, queries: newSLIQueries(cfg), opts: opts}
	if p.opts.Clock == nil {
		p.opts.Clock = RealClock()
	}
	return p
}

// Probe implements Prober.
func (p *prometheusSLIProber) Probe(ctx context.Context) (result Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	began := time.Now() // the clock may be a test's
	// Whole milliseconds: ranges are written in them.
	now := p.opts.Clock.Now().Truncate(time.Millisecond)
	result = Result{Start: now, Events: []EventCounts{}}
	defer func() { result.Duration = time.Since(began) }()
	if p.last.IsZero() {
		p.resume(now)
	}
	// A clock stepped back behind the last range leaves nothing new.
	oldest := now.Add(-p.opts.Window)
	if p.last.Before(oldest) {
		p.last = oldest
	}
	chunks := 0
	var emptyErr error
	for ; p.last.Before(now) && chunks < maxSLIChunks; chunks++ {
		end := p.chunkEnd(p.last, now)
		ev, err := p.countRange(ctx, p.last, end, end.Equal(now))
		if isEmpty(err) {
			// The range's counters are gone: no events, and no point in
			// asking again. Counted as a failure, so it shows.
			ev, emptyErr, err = EventCounts{From: p.last, At: end.Add(-time.Millisecond)}, err, nil
		}
		if err != nil {
			return p.failed(ctx, result, err)
		}
		result.Events = append(result.Events, ev)
		p.last = end
	}
	if p.older.From.Before(oldest) {
		p.older.From = oldest
	}
	// Newest first: each range adjoins the events already recorded, so
	// what they cover stays one span however the backfill is interrupted.
	for ; p.older.From.Before(p.older.To) && chunks < maxSLIChunks; chunks++ {
		start := p.chunkStart(p.older.From, p.older.To)
		ev, err := p.countRange(ctx, start, p.older.To, false)
		if err != nil {
			return p.failed(ctx, result, err)
		}
		result.Events = append(result.Events, ev)
		p.older.To = start
	}
	if emptyErr != nil {
		return p.failed(ctx, result, emptyErr)
	}
	result.Success = true
	return result
}

// isEmpty tells whether err is a query's empty result.
func isEmpty(err error) bool {
	var srcErr *SourceError
	return errors.As(err, &srcErr) && srcErr.Reason == ReasonEmpty
}

// chunkEnd returns the end of the range counted from start towards end:
// end itself when within an evaluation interval, else the next hour
// boundary before it (a backfill chunk).
func (p *prometheusSLIProber) chunkEnd(start, end time.Time) time.Time {
	if end.Sub(start) <= p.opts.Interval {
		return end
	}
	if boundary := start.Truncate(sliChunk).Add(sliChunk); boundary.Before(end) {
		return boundary
	}
	return end
}

// chunkStart returns the start of the range counted back from end
// towards start: start itself when within an evaluation interval, else the
// hour boundary before end (a backfill chunk), but not before start.
func (p *prometheusSLIProber) chunkStart(start, end time.Time) time.Time {
	if end.Sub(start) <= p.opts.Interval {
		return start
	}
	boundary := end.Truncate(sliChunk)
	if boundary.Equal(end) {
		boundary = end.Add(-sliChunk)
	}
	return later(boundary, start)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (p *prometheusSLIProber) failed(ctx context.Context, result Result, err error) Result {
	result.Reason, result.Err = sourceFailure(ctx, err), err
	return result
}

// resume places a new prober: after the SLO's last recorded event
// (recorded just before its range's end), or a window ago when it has
// none: the whole window is backfilled. When the recorded events start
// after the window's start, the part before them is backfilled too.
func (p *prometheusSLIProber) resume(now time.Time) {
	p.last = now.Add(-p.opts.Window)
	if p.opts.Resume == nil {
		return
	}
	covered := p.opts.Resume()
	if covered.To.IsZero() {
		return
	}
	p.last = covered.To.Add(time.Millisecond).Truncate(time.Millisecond)
	if !covered.From.IsZero() {
		p.older = SLICoverage{From: now.Add(-p.opts.Window), To: covered.From.Truncate(time.Millisecond)}
	}
}

// countRange counts the events of [start, end] into whole events.
func (p *prometheusSLIProber) countRange(ctx context.Context, start, end time.Time, live bool) (EventCounts, error) {
	good, total, err := p.count(ctx, start, end, live)
	if err != nil {
		return EventCounts{}, err
	}
	ev := p.record(good, total, end)
	ev.From = start
	return ev, nil
}

// record turns a range's counts into whole events, carrying fractions.
func (p *prometheusSLIProber) record(good, total float64, end time.Time) EventCounts {
	goodSum, totalSum := good+p.carryGood, total+p.carryTotal
	wholeTotal := math.Floor(totalSum)
	wholeGood := min(math.Floor(goodSum), wholeTotal)
	p.carryGood, p.carryTotal = goodSum-wholeGood, totalSum-wholeTotal
	return EventCounts{At: end.Add(-time.Millisecond), Good: uint64(wholeGood), Bad: uint64(wholeTotal - wholeGood)}
}

// count queries the good (or bad) and total events over [start, end]; an
// empty total fails with ReasonEmpty when live.
func (p *prometheusSLIProber) count(ctx context.Context, start, end time.Time, live bool) (good, total float64, err error) {
	window := strconv.FormatInt(end.Sub(start).Milliseconds(), 10) + "ms"
	return countEvents(ctx, p.src, p.queries, window, end, live)
}

// sliQueries are an SLI's queries: total, and good or (countsBad) bad.
type sliQueries struct {
	goodOrBad, total string
	countsBad        bool
}

func newSLIQueries(cfg config.SLIPrometheus) sliQueries {
	if cfg.Good == "" {
		return sliQueries{goodOrBad: cfg.Bad, total: cfg.Total, countsBad: true}
	}
	return sliQueries{goodOrBad: cfg.Good, total: cfg.Total}
}

// countEvents runs an SLI's queries at at with window in place of the
// placeholder and returns good and total. An empty good or bad result is
// 0; an empty total is 0 unless emptyTotalFails. Good is clamped to
// [0, total]: extrapolated increases of two counters may disagree by a
// fraction.
func countEvents(ctx context.Context, src *PrometheusSource, q sliQueries, window string, at time.Time,
	emptyTotalFails bool) (good, total float64, err error) {
	render := strings.NewReplacer("$window", window, "{{.window}}", window).Replace
	total, err = src.query(ctx, instantQuery{expr: render(q.total), at: at, check: nonNegative("total"), emptyIsZero: !emptyTotalFails})
	if err != nil {
		return 0, 0, err
	}
	part, err := src.query(ctx, instantQuery{expr: render(q.goodOrBad), at: at, check: nonNegative("the count"), emptyIsZero: true})
	if err != nil {
		return 0, 0, err
	}
	part = min(part, total)
	if q.countsBad {
		return total - part, total, nil
	}
	return part, total, nil
}

// String describes the prober for logs.
func (p *prometheusSLIProber) String() string {
	return fmt.Sprintf("prometheus SLI of source %q", p.src.name)
}
