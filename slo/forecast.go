package slo

import "math"

// The capacity forecast math: pure functions over usage history, no I/O and
// no clock. Times are seconds relative to the evaluation time (negative in
// the past), so a fitted Level is the usage now and every horizon is a plain
// number of seconds ahead.

// Point is one usage value at T seconds (relative to any origin; the engine
// passes seconds relative to now, negative in the past).
type Point struct{ T, V float64 }

// Trend is a fitted linear model of usage over time: V(t) = Level + Slope*t,
// with t in seconds relative to the evaluation time, so Level is the fitted
// usage now and Slope is per second. Samples is how many points the fit rests
// on. The fitting functions return it with ok=false when there is no
// forecast; such a Trend must not be used.
type Trend struct {
	Level, Slope float64
	Samples      int
}

// LinearTrend fits V = a + b*t by ordinary least squares over points and
// returns Level = a (the fitted value at t=0) and Slope = b: the model
// PromQL's predict_linear fits, with its intercept at the evaluation time,
// when points' T are relative to that time. Points whose T or V is NaN or
// infinite are skipped (an empty slot is NaN; one infinite value would turn
// the whole fit into NaN). It returns ok=false with fewer than minSamples
// usable points, or when they all have the same T (no slope can be fitted,
// which includes fewer than two points).
//
// The sums are taken around the means (two passes, compensated summation)
// rather than from raw sums of squares: usage in bytes is large next to its
// change over a window, and the one-pass formula loses digits to
// cancellation there. Usage that does not change at all gets Slope exactly
// 0, as predict_linear gives, rather than rounding noise (about 1e-37 once
// empty slots make the mean time inexact), so a flat resource reads "never
// full" instead of "full in 10^36 seconds".
func LinearTrend(points []Point, minSamples int) (Trend, bool) {
	var (
		n            int
		sumT, sumV   compensatedSum
		firstV       float64
		constant     = true
		firstT       float64
		distinctTime bool
	)
	for _, p := range points {
		if !usable(p) {
			continue
		}
		if n == 0 {
			firstT, firstV = p.T, p.V
		} else {
			distinctTime = distinctTime || p.T != firstT
			constant = constant && p.V == firstV
		}
		n++
		sumT.add(p.T)
		sumV.add(p.V)
	}
	if n < minSamples || !distinctTime {
		return Trend{}, false
	}
	if constant {
		return Trend{Level: firstV, Samples: n}, true
	}
	meanT, meanV := sumT.value()/float64(n), sumV.value()/float64(n)
	var sxx, sxy compensatedSum
	for _, p := range points {
		if !usable(p) {
			continue
		}
		dt := p.T - meanT
		sxx.add(dt * dt)
		sxy.add(dt * (p.V - meanV))
	}
	slope := sxy.value() / sxx.value()
	return Trend{Level: meanV - slope*meanT, Slope: slope, Samples: n}, true
}

func usable(p Point) bool { return finite(p.T) && finite(p.V) }

// finite reports whether f is neither NaN nor infinite: f-f is 0 for any
// finite f and NaN otherwise. One subtraction rather than math.IsNaN and
// math.IsInf keeps finite and usable inlined: the fits call them for every
// point of every resource, several million times an evaluation.
func finite(f float64) bool { return f-f == 0 }

// compensatedSum is Neumaier's improved Kahan summation (the one PromQL
// uses): up to 841 slots of values around 10^11 would otherwise lose the
// low digits that the slope lives in.
type compensatedSum struct{ sum, c float64 }

func (s *compensatedSum) add(x float64) {
	t := s.sum + x
	if math.Abs(s.sum) >= math.Abs(x) {
		s.c += (s.sum - t) + x
	} else {
		s.c += (x - t) + s.sum
	}
	s.sum = t
}

func (s *compensatedSum) value() float64 { return s.sum + s.c }

// HoltTrend runs Holt's double exponential smoothing over equally spaced
// values, step seconds apart, the last one at t=0:
//
//	level_0 = v_0, trend_0 = v_1 - v_0
//	level_i = alpha*v_i + (1-alpha)*(level_{i-1} + trend_{i-1})
//	trend_i = beta*(level_i - level_{i-1}) + (1-beta)*trend_{i-1}
//
// and returns Level = the last level and Slope = the last trend / step (per
// second). Samples is the number of non-empty values.
//
// A NaN (or infinite) value is an empty slot. Leading empty slots are
// dropped: there is nothing to carry yet. Any later empty slot takes the
// previous value (the last observed one, or the one carried before it):
// usage is assumed unchanged while unobserved, which damps the trend over a
// gap rather than extrapolating it; the window's time span, and so the
// meaning of step, stays intact. The same applies to v_1 in trend_0.
//
// It returns ok=false with fewer than minSamples non-empty values, with
// fewer than two (trend_0 needs two observations: a carried copy of v_0
// would only claim the trend is 0), or when step is not a positive number.
// alpha and beta are used as given; the configuration keeps them in (0, 1].
func HoltTrend(values []float64, step float64, alpha, beta float64, minSamples int) (Trend, bool) {
	if !(step > 0) || math.IsInf(step, 0) {
		return Trend{}, false
	}
	start := len(values)
	n := 0
	for i, v := range values {
		if finite(v) {
			if n == 0 {
				start = i
			}
			n++
		}
	}
	if n < minSamples || n < 2 {
		return Trend{}, false
	}
	values = values[start:]
	prev := values[0]
	next := func(v float64) float64 {
		if finite(v) {
			prev = v
		}
		return prev
	}
	level := next(values[0])
	trend := next(values[1]) - level
	for _, raw := range values[1:] {
		v := next(raw)
		previous := level
		level = alpha*v + (1-alpha)*(level+trend)
		trend = beta*(level-previous) + (1-beta)*trend
	}
	return Trend{Level: level, Slope: trend / step, Samples: n}, true
}

// AfterReset returns the suffix of points (in time order) that starts at the
// last reset: a point whose value is lower than the previous non-NaN one by
// more than dropRatio of that previous value (0.5: falls by more than half;
// a fall of exactly half is not a reset). Usage that drops like that was
// cleaned up or restarted; the trend before it says nothing of the trend
// after. NaN (or infinite) points are never a reset nor the value a drop is
// measured from, but stay in the result where they lie. Without a reset it returns points.
// The result shares points' backing array.
//
// dropRatio 1 can only fire on negative usage, so it effectively disables
// reset detection.
func AfterReset(points []Point, dropRatio float64) []Point {
	start := 0
	prev, seen := 0.0, false
	for i, p := range points {
		if !finite(p.V) {
			continue
		}
		if seen && prev-p.V > dropRatio*prev {
			start = i
		}
		prev, seen = p.V, true
	}
	return points[start:]
}

// SecondsToLimit returns how long until the trend reaches limit, from t=0:
// 0 when the usage now (Level) is already at or above limit, +Inf (never)
// when the trend is flat or shrinking, else (limit - Level) / Slope.
func (t Trend) SecondsToLimit(limit float64) float64 {
	switch {
	case t.Level >= limit:
		return 0
	case t.Slope <= 0:
		return math.Inf(1)
	default:
		return (limit - t.Level) / t.Slope
	}
}

// ValueAt returns the trend's usage seconds after t=0, Level + Slope*seconds,
// floored at 0: a shrinking trend projects an empty resource, never a
// negative usage.
func (t Trend) ValueAt(seconds float64) float64 {
	return math.Max(0, t.Level+t.Slope*seconds)
}
