package slo_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/reliabilityd/reliabilityd/slo"
)

// The forecast tests check every figure against a computation written
// independently in the test: least squares solved exactly with big.Rat, the
// predict_linear formula as Prometheus writes it, Holt's recurrence unrolled
// by hand. The package under test is seen only through its exported API.

// exactFit solves the normal equations of V = a + b*t,
//
//	n*a     + b*sum(t)   = sum(v)
//	a*sum(t) + b*sum(t²) = sum(t*v)
//
// in exact rational arithmetic over the points with finite T and V (float64
// values are exact rationals, so the result is the true least-squares fit of
// exactly the data the code sees). ok is false when sum(t²)*n = sum(t)².
func exactFit(points []slo.Point) (a, b *big.Rat, ok bool) {
	var n, st, sv, stt, stv big.Rat
	one := big.NewRat(1, 1)
	for _, p := range points {
		if !isFinite(p.T) || !isFinite(p.V) {
			continue
		}
		t, v := new(big.Rat).SetFloat64(p.T), new(big.Rat).SetFloat64(p.V)
		n.Add(&n, one)
		st.Add(&st, t)
		sv.Add(&sv, v)
		stt.Add(&stt, new(big.Rat).Mul(t, t))
		stv.Add(&stv, new(big.Rat).Mul(t, v))
	}
	den := new(big.Rat).Sub(new(big.Rat).Mul(&n, &stt), new(big.Rat).Mul(&st, &st))
	if den.Sign() == 0 {
		return nil, nil, false
	}
	num := new(big.Rat).Sub(new(big.Rat).Mul(&n, &stv), new(big.Rat).Mul(&st, &sv))
	b = new(big.Rat).Quo(num, den)
	a = new(big.Rat).Sub(&sv, new(big.Rat).Mul(b, &st))
	a.Quo(a, &n)
	return a, b, true
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return f
}

// promSample is a Prometheus float sample: T in milliseconds.
type promSample struct {
	T int64
	F float64
}

// promKahanInc is Prometheus' kahanSumInc (promql/functions.go): Neumaier's
// variant of Kahan summation, resetting the compensation on overflow.
func promKahanInc(inc, sum, c float64) (newSum, newC float64) {
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return t, c
}

// promLinearRegression restates Prometheus' linearRegression
// (promql/functions.go), which predict_linear(v, 0) evaluated at
// interceptTime returns as its intercept: one pass of compensated raw sums
// with x in seconds from interceptTime, a constant series short-cut, then
// cov/var.
func promLinearRegression(samples []promSample, interceptTime int64) (slope, intercept float64) {
	var n, sumX, cX, sumY, cY, sumXY, cXY, sumX2, cX2 float64
	initY, constY := samples[0].F, true
	for i, s := range samples {
		if constY && i > 0 && s.F != initY {
			constY = false
		}
		n++
		x := float64(s.T-interceptTime) / 1e3
		sumX, cX = promKahanInc(x, sumX, cX)
		sumY, cY = promKahanInc(s.F, sumY, cY)
		sumXY, cXY = promKahanInc(x*s.F, sumXY, cXY)
		sumX2, cX2 = promKahanInc(x*x, sumX2, cX2)
	}
	if constY {
		if math.IsInf(initY, 0) {
			return math.NaN(), math.NaN()
		}
		return 0, initY
	}
	sumX += cX
	sumY += cY
	sumXY += cXY
	sumX2 += cX2
	covXY := sumXY - sumX*sumY/n
	varX := sumX2 - sumX*sumX/n
	slope = covXY / varX
	return slope, sumY/n - slope*sumX/n
}

// promSamples turns points (T in whole milliseconds) into what Prometheus
// would have stored: no NaN gaps, since an empty slot is simply no sample.
func promSamples(t *testing.T, points []slo.Point) []promSample {
	t.Helper()
	var out []promSample
	for _, p := range points {
		if !isFinite(p.T) || !isFinite(p.V) {
			continue
		}
		ms := p.T * 1e3
		if ms != math.Trunc(ms) {
			t.Fatalf("point at %v s is not on a millisecond", p.T)
		}
		out = append(out, promSample{T: int64(ms), F: p.V})
	}
	return out
}

// relClose reports whether got is within tol of want, relative to want; a
// want of exactly 0 or ±Inf must be met exactly, and tol 0 means exactly.
func relClose(got, want, tol float64) bool {
	if got == want {
		return true
	}
	if want == 0 || math.IsInf(want, 0) {
		return false
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// series returns n points step seconds apart, the last at last (seconds
// relative to now), with V = f(T).
func series(n int, step, last float64, f func(t float64) float64) []slo.Point {
	points := make([]slo.Point, n)
	for i := range points {
		t := last - float64(n-1-i)*step
		points[i] = slo.Point{T: t, V: f(t)}
	}
	return points
}

const (
	fiveMinutes = 300.0
	hour        = 3600.0
	day         = 86400.0
	gib         = 1 << 30
)

func TestLinearTrend(t *testing.T) {
	// Deterministic noise: a fixed seed, one generator per series so the
	// cases do not depend on each other's order.
	noise := func(seed uint64, sd float64) func() float64 {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		return func() float64 { return rng.NormFloat64() * sd }
	}
	diskNoise := noise(1, 0.2*gib)
	smallNoise := noise(2, 25)
	shrinkNoise := noise(3, 40)

	withNaNs := series(288, fiveMinutes, -150, func(t float64) float64 { return 2000 + 0.02*t + smallNoise() })
	nans := 0
	for i := range withNaNs {
		if i%7 == 3 {
			withNaNs[i].V = math.NaN()
			nans++
		}
	}
	withNaNs[11].T = math.NaN() // a point without a time is no point either
	nans++

	// Constant usage with empty slots: the gaps make the mean time inexact,
	// which without care leaves a slope of about 1e-37 (full in 1e37 s).
	flatWithGaps := series(72, fiveMinutes, -150, func(float64) float64 { return 0.1 })
	flatGaps := 0
	for i := range flatWithGaps {
		if i%3 == 0 || i%7 == 2 {
			flatWithGaps[i].V = math.NaN()
			flatGaps++
		}
	}

	equalT := series(20, fiveMinutes, -150, func(t float64) float64 { return t })
	for i := range equalT {
		equalT[i].T = -600
	}
	tooFewAfterNaN := series(12, fiveMinutes, -150, func(t float64) float64 { return 10 + t/300 })
	tooFewAfterNaN[4].V = math.NaN()

	tests := []struct {
		name        string
		points      []slo.Point
		minSamples  int
		wantOK      bool
		wantSamples int
		// exact, when set, is the generating model the exact fit must
		// reproduce with no residual at all.
		exact *[2]float64
		// limit and wantSecondsToLimit check the branch the fit leads to.
		limit              float64
		wantSecondsToLimit float64
	}{
		{
			// 48 h of 5-minute slot centres; V = 1000 + T/2 is exact in
			// float64 for these T, so the exact fit is the model itself.
			name:   "perfect linear growth",
			points: series(577, fiveMinutes, -150, func(t float64) float64 { return 1000 + t/2 }),
			// The limit 1300 is 300 above the level at 0.5 a second.
			minSamples: 12, wantOK: true, wantSamples: 577, exact: &[2]float64{1000, 0.5},
			limit: 1300, wantSecondsToLimit: 600,
		},
		{
			// 400 GiB growing 2 GiB a day, one week of hourly slots, with
			// 0.2 GiB of noise: values near 4e11 whose slope is in the low
			// digits, where one-pass raw sums lose precision.
			name: "noisy disk growth",
			points: series(168, hour, -1800, func(t float64) float64 {
				return 400*gib + 2*gib/day*t + diskNoise()
			}),
			minSamples: 12, wantOK: true, wantSamples: 168,
		},
		{
			name: "step up mid-window",
			points: series(288, fiveMinutes, -150, func(t float64) float64 {
				if t < -12*hour {
					return 100
				}
				return 150
			}),
			minSamples: 12, wantOK: true, wantSamples: 288,
		},
		{
			name: "shrinking",
			points: series(288, fiveMinutes, -150, func(t float64) float64 {
				return 500 - 0.01*t + shrinkNoise()
			}),
			minSamples: 12, wantOK: true, wantSamples: 288,
			limit: 5000, wantSecondsToLimit: math.Inf(1),
		},
		{
			// Flat usage: slope exactly 0 (not rounding noise), never full.
			name:       "constant",
			points:     series(100, fiveMinutes, -150, func(float64) float64 { return 0.1 }),
			minSamples: 12, wantOK: true, wantSamples: 100, exact: &[2]float64{0.1, 0},
			limit: 1, wantSecondsToLimit: math.Inf(1),
		},
		{
			name:       "constant with empty slots",
			points:     flatWithGaps,
			minSamples: 12, wantOK: true, wantSamples: 72 - flatGaps, exact: &[2]float64{0.1, 0},
			limit: 1, wantSecondsToLimit: math.Inf(1),
		},
		{
			name:       "NaN points skipped",
			points:     withNaNs,
			minSamples: 12, wantOK: true, wantSamples: 288 - nans,
		},
		{
			name:       "exactly min samples",
			points:     series(12, hour, -1800, func(t float64) float64 { return 7 + t/4096 }),
			minSamples: 12, wantOK: true, wantSamples: 12, exact: &[2]float64{7, 1.0 / 4096},
		},
		{
			name:       "too few samples",
			points:     series(11, hour, -1800, func(t float64) float64 { return 7 + t/4096 }),
			minSamples: 12,
		},
		{
			name:       "too few samples once NaN is skipped",
			points:     tooFewAfterNaN,
			minSamples: 12,
		},
		{
			name:       "all T equal",
			points:     equalT,
			minSamples: 2,
		},
		{
			name:       "one point",
			points:     []slo.Point{{T: -150, V: 3}},
			minSamples: 0,
		},
		{
			name:       "no points",
			minSamples: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := slo.LinearTrend(tc.points, tc.minSamples)
			if ok != tc.wantOK {
				t.Fatalf("LinearTrend ok = %v, want %v (trend %+v)", ok, tc.wantOK, got)
			}
			if !ok {
				return
			}
			if got.Samples != tc.wantSamples {
				t.Errorf("Samples = %d, want %d", got.Samples, tc.wantSamples)
			}
			a, b, fitted := exactFit(tc.points)
			if !fitted {
				t.Fatal("the exact fit is degenerate, but LinearTrend returned ok")
			}
			if tc.exact != nil {
				if a.Cmp(new(big.Rat).SetFloat64(tc.exact[0])) != 0 || b.Cmp(new(big.Rat).SetFloat64(tc.exact[1])) != 0 {
					t.Fatalf("exact fit level %s slope %s, want the generating %v, %v",
						a.FloatString(20), b.FloatString(20), tc.exact[0], tc.exact[1])
				}
			}
			wantLevel, wantSlope := ratFloat(a), ratFloat(b)
			if !relClose(got.Level, wantLevel, 1e-9) || !relClose(got.Slope, wantSlope, 1e-9) {
				t.Errorf("LinearTrend level %v slope %v, exact least squares level %v slope %v",
					got.Level, got.Slope, wantLevel, wantSlope)
			}
			promSlope, promLevel := promLinearRegression(promSamples(t, tc.points), 0)
			if !relClose(got.Level, promLevel, 1e-9) || !relClose(got.Slope, promSlope, 1e-9) {
				t.Errorf("LinearTrend level %v slope %v, predict_linear's regression level %v slope %v",
					got.Level, got.Slope, promLevel, promSlope)
			}
			if tc.limit != 0 {
				if s := got.SecondsToLimit(tc.limit); !relClose(s, tc.wantSecondsToLimit, 1e-9) {
					t.Errorf("SecondsToLimit(%v) = %v, want %v", tc.limit, s, tc.wantSecondsToLimit)
				}
			}
		})
	}
}

// TestLinearTrendSeasonality fits a linear trend with a daily sine on top
// over whole days and checks the slope against a bound derived here.
//
// With samples t_j = t_0 + j*h, j = 0..N-1, covering k whole periods P
// (N*h = k*P) and phi = 2*pi*h/P not a multiple of 2*pi, the sine
// s_j = A*sin(theta_0 + j*phi) sums to 0, so least squares adds to the true
// slope exactly
//
//	err = sum((t_j - mean t) * s_j) / sum((t_j - mean t)²) = h * sum(j*s_j) / (h² * N(N²-1)/12).
//
// With z = e^(i*phi), z^N = 1: sum(j*z^j) = N/(z-1), so
// sum(j*s_j) = A*N*Im(e^(i*theta_0)/(z-1)) and
//
//	err = 12*A*Im(e^(i*theta_0)/(z-1)) / (h*(N²-1)),  |err| <= 6*A / (h*(N²-1)*sin(phi/2))
//
// since |z-1| = 2*sin(phi/2).
func TestLinearTrendSeasonality(t *testing.T) {
	const (
		level     = 1e4
		slope     = 0.003 // about 260 a day
		amplitude = 500.0 // a daily swing of ±500: twice the day's growth
		phase     = 0.7
		h         = hour
		n         = 28 * 24 // 28 whole days of hourly slots
		last      = -1800.0
	)
	omega := 2 * math.Pi / day
	points := series(n, h, last, func(t float64) float64 {
		return level + slope*t + amplitude*math.Sin(omega*t+phase)
	})

	phi := omega * h
	theta0 := omega*points[0].T + phase
	z := complex(math.Cos(phi), math.Sin(phi))
	rot := complex(math.Cos(theta0), math.Sin(theta0))
	wantErr := 12 * amplitude * imag(rot/(z-1)) / (h * (n*n - 1))
	bound := 6 * amplitude / (h * (n*n - 1) * math.Sin(phi/2))
	if bound >= slope/100 {
		t.Fatalf("bound %v is not below 1%% of the slope: the window is too short to be a test", bound)
	}
	if math.Abs(wantErr) > bound {
		t.Fatalf("closed-form error %v exceeds its own bound %v", wantErr, bound)
	}

	got, ok := slo.LinearTrend(points, 12)
	if !ok {
		t.Fatal("LinearTrend returned no trend")
	}
	// 1e-9 of the slope covers float64 rounding of the sines and the sums.
	if math.Abs(got.Slope-slope) > bound+1e-9*slope {
		t.Errorf("slope %v is %v from the true %v, beyond the bound %v", got.Slope, got.Slope-slope, slope, bound)
	}
	if !relClose(got.Slope, slope+wantErr, 1e-9) {
		t.Errorf("slope %v, want %v + the closed-form seasonal error %v = %v", got.Slope, slope, wantErr, slope+wantErr)
	}
	a, b, _ := exactFit(points)
	if !relClose(got.Level, ratFloat(a), 1e-9) || !relClose(got.Slope, ratFloat(b), 1e-9) {
		t.Errorf("LinearTrend level %v slope %v, exact least squares level %v slope %v", got.Level, got.Slope, ratFloat(a), ratFloat(b))
	}
}

func TestHoltTrend(t *testing.T) {
	nan := math.NaN()

	// alpha 0.5, beta 0.25 over 10, 12, 15, 15, 19 five minutes apart. Every
	// figure is a short binary fraction, so float64 holds it exactly:
	//   l0 = 10                                b0 = 12 - 10 = 2
	//   l1 = .5*12 + .5*(10+2)      = 12       b1 = .25*(12-10) + .75*2 = 2
	//   l2 = .5*15 + .5*(12+2)      = 14.5     b2 = .25*2.5 + .75*2 = 2.125
	//   l3 = .5*15 + .5*(14.5+2.125) = 15.8125 b3 = .25*1.3125 + .75*2.125 = 1.921875
	//   l4 = .5*19 + .5*(15.8125+1.921875) = 18.3671875
	//                                          b4 = .25*2.5546875 + .75*1.921875 = 2.080078125
	const a, b = 0.5, 0.25
	l0, b0 := 10.0, 12.0-10.0
	l1 := a*12 + (1-a)*(l0+b0)
	b1 := b*(l1-l0) + (1-b)*b0
	l2 := a*15 + (1-a)*(l1+b1)
	b2 := b*(l2-l1) + (1-b)*b1
	l3 := a*15 + (1-a)*(l2+b2)
	b3 := b*(l3-l2) + (1-b)*b2
	l4 := a*19 + (1-a)*(l3+b3)
	b4 := b*(l4-l3) + (1-b)*b3
	for _, c := range []struct{ got, want float64 }{
		{l1, 12}, {b1, 2}, {l2, 14.5}, {b2, 2.125}, {l3, 15.8125}, {b3, 1.921875}, {l4, 18.3671875}, {b4, 2.080078125},
	} {
		if c.got != c.want {
			t.Fatalf("hand-unrolled recurrence: got %v, the worked figures say %v", c.got, c.want)
		}
	}

	// The same with alpha 0.3, beta 0.1 (not binary fractions: rounding
	// differs from the unrolled figures only in the last bits) over
	// 100, 103, 101, 108:
	//   l0 = 100   b0 = 3
	//   l1 = .3*103 + .7*103 = 103           b1 = .1*3 + .9*3 = 3
	//   l2 = .3*101 + .7*106 = 104.5         b2 = .1*1.5 + .9*3 = 2.85
	//   l3 = .3*108 + .7*107.35 = 107.545    b3 = .1*3.045 + .9*2.85 = 2.8695
	const a2, b2c = 0.3, 0.1
	m0, c0 := 100.0, 3.0
	m1 := a2*103 + (1-a2)*(m0+c0)
	c1 := b2c*(m1-m0) + (1-b2c)*c0
	m2 := a2*101 + (1-a2)*(m1+c1)
	c2 := b2c*(m2-m1) + (1-b2c)*c1
	m3 := a2*108 + (1-a2)*(m2+c2)
	c3 := b2c*(m3-m2) + (1-b2c)*c2
	if !relClose(m3, 107.545, 1e-12) || !relClose(c3, 2.8695, 1e-12) {
		t.Fatalf("hand-unrolled recurrence: l3 %v b3 %v, the worked figures say 107.545 and 2.8695", m3, c3)
	}

	tests := []struct {
		name        string
		values      []float64
		step        float64
		alpha, beta float64
		minSamples  int
		wantOK      bool
		want        slo.Trend
		tol         float64 // relative; 0 is exact
	}{
		{
			name: "five steps", values: []float64{10, 12, 15, 15, 19}, step: fiveMinutes, alpha: a, beta: b, minSamples: 5,
			wantOK: true, want: slo.Trend{Level: l4, Slope: b4 / fiveMinutes, Samples: 5},
		},
		{
			name: "non-binary smoothing", values: []float64{100, 103, 101, 108}, step: hour, alpha: a2, beta: b2c, minSamples: 4,
			wantOK: true, want: slo.Trend{Level: m3, Slope: c3 / hour, Samples: 4}, tol: 1e-12,
		},
		{
			// Leading empty slots are dropped; the empty slot after 12 is 12
			// again; so this is the five-step series with 12 repeated:
			// 10, 12, 12, 15, 19.
			name:   "NaN carried forward",
			values: []float64{nan, nan, 10, 12, nan, 15, 19}, step: fiveMinutes, alpha: a, beta: b, minSamples: 4,
			wantOK: true, want: unrolledHolt([]float64{10, 12, 12, 15, 19}, fiveMinutes, a, b, 4),
		},
		{
			// An empty second slot gives trend_0 = 0 (10 carried), then the
			// level moves; a trailing empty slot repeats 19.
			name:   "NaN in trend_0 and at the end",
			values: []float64{10, nan, 15, 19, nan}, step: fiveMinutes, alpha: a, beta: b, minSamples: 3,
			wantOK: true, want: unrolledHolt([]float64{10, 10, 15, 19, 19}, fiveMinutes, a, b, 3),
		},
		{
			name:   "too few samples",
			values: []float64{10, 12, 15, 15, 19}, step: fiveMinutes, alpha: a, beta: b, minSamples: 6,
		},
		{
			name:   "too few samples once NaN is skipped",
			values: []float64{10, 12, nan, 15, 19}, step: fiveMinutes, alpha: a, beta: b, minSamples: 5,
		},
		{
			// One observation and a carried copy cannot make trend_0.
			name:   "one sample",
			values: []float64{nan, 10, nan}, step: fiveMinutes, alpha: a, beta: b, minSamples: 1,
		},
		{
			name: "all empty", values: []float64{nan, nan}, step: fiveMinutes, alpha: a, beta: b,
		},
		{
			name: "zero step", values: []float64{1, 2, 3}, step: 0, alpha: a, beta: b,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := slo.HoltTrend(tc.values, tc.step, tc.alpha, tc.beta, tc.minSamples)
			if ok != tc.wantOK {
				t.Fatalf("HoltTrend ok = %v, want %v (trend %+v)", ok, tc.wantOK, got)
			}
			if !ok {
				return
			}
			if got.Samples != tc.want.Samples {
				t.Errorf("Samples = %d, want %d", got.Samples, tc.want.Samples)
			}
			if !relClose(got.Level, tc.want.Level, tc.tol) || !relClose(got.Slope, tc.want.Slope, tc.tol) {
				t.Errorf("HoltTrend level %v slope %v, want %v and %v", got.Level, got.Slope, tc.want.Level, tc.want.Slope)
			}
		})
	}
}

// unrolledHolt is the recurrence over values without gaps, exactly as
// written in the specification, to give the NaN cases an expected value;
// the five-step case above checks it against figures worked by hand.
func unrolledHolt(values []float64, step, alpha, beta float64, samples int) slo.Trend {
	level, trend := values[0], values[1]-values[0]
	for _, v := range values[1:] {
		prev := level
		level = alpha*v + (1-alpha)*(level+trend)
		trend = beta*(level-prev) + (1-beta)*trend
	}
	return slo.Trend{Level: level, Slope: trend / step, Samples: samples}
}

// TestHoltTrendLinearData: on perfectly linear data, with trend_0 = v_1 - v_0
// the first forecast level_0 + trend_0 is v_1 itself, so level_1 = v_1 and
// trend_1 = trend_0 whatever alpha and beta are, and so on by induction:
// Holt reproduces the line. With binary-fraction smoothing and integer
// values every step is exact in float64; with others, the level rounds in
// the last bit and the trend stays within 1e-12 of the true slope.
func TestHoltTrendLinearData(t *testing.T) {
	const step, slope = fiveMinutes, 7.0 // 7 per slot
	values := make([]float64, 577)
	for i := range values {
		values[i] = 1000 + slope*float64(i)
	}
	last := values[len(values)-1]
	tests := []struct {
		alpha, beta float64
		exact       bool
	}{
		{0.5, 0.25, true}, {1, 1, true}, {0.125, 0.75, true}, {0.0078125, 0.5, true},
		{0.3, 0.1, false}, {0.05, 0.9, false}, {0.9, 0.01, false}, {0.01, 0.01, false},
	}
	for _, tc := range tests {
		got, ok := slo.HoltTrend(values, step, tc.alpha, tc.beta, 12)
		if !ok {
			t.Fatalf("alpha %v beta %v: no trend", tc.alpha, tc.beta)
		}
		tol := 1e-12
		if tc.exact {
			tol = 0
		}
		if !relClose(got.Level, last, tol) || !relClose(got.Slope, slope/step, tol) {
			t.Errorf("alpha %v beta %v: level %v slope %v, want the line's %v and %v",
				tc.alpha, tc.beta, got.Level, got.Slope, last, slope/step)
		}
	}
}

func TestAfterReset(t *testing.T) {
	nan := math.NaN()
	// values become points one slot apart; wantStart indexes the first
	// point of the expected suffix.
	tests := []struct {
		name      string
		values    []float64
		dropRatio float64
		wantStart int
	}{
		{name: "no reset", values: []float64{10, 8, 6, 12, 7}, dropRatio: 0.5, wantStart: 0},
		{name: "drop of exactly half is not a reset", values: []float64{10, 11, 5.5, 6}, dropRatio: 0.5, wantStart: 0},
		{name: "drop just over half", values: []float64{10, 11, math.Nextafter(5.5, 0), 6}, dropRatio: 0.5, wantStart: 2},
		{name: "reset at the last point", values: []float64{10, 11, 12, 1}, dropRatio: 0.5, wantStart: 3},
		{name: "reset at the first pair", values: []float64{100, 1, 2, 3}, dropRatio: 0.5, wantStart: 1},
		{
			// 100 -> 40 and 50 -> 10 are resets; only the last counts.
			name: "several resets", values: []float64{100, 40, 50, 10, 12, 14}, dropRatio: 0.5, wantStart: 3,
		},
		{
			// The drop is measured from the last value before the gap
			// (100), and the suffix starts at the reset point, not the gap.
			name: "NaNs between", values: []float64{100, nan, nan, 40, 45}, dropRatio: 0.5, wantStart: 3,
		},
		{
			name: "NaNs without reset", values: []float64{100, 60, nan, 55, nan}, dropRatio: 0.5, wantStart: 0,
		},
		{
			name: "leading NaN then reset", values: []float64{nan, 100, 20, nan}, dropRatio: 0.5, wantStart: 2,
		},
		{
			// A 100 % drop to 0 is not "more than" 100 %.
			name: "ratio one never fires on non-negative usage", values: []float64{100, 0, 5}, dropRatio: 1, wantStart: 0,
		},
		{name: "a lower ratio catches smaller drops", values: []float64{100, 89, 90}, dropRatio: 0.1, wantStart: 1},
		{name: "empty", values: nil, dropRatio: 0.5, wantStart: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			points := series(len(tc.values), fiveMinutes, -150, func(float64) float64 { return 0 })
			for i, v := range tc.values {
				points[i].V = v
			}
			got := slo.AfterReset(points, tc.dropRatio)
			want := points[tc.wantStart:]
			if len(got) != len(want) {
				t.Fatalf("AfterReset kept %d points, want the %d from index %d", len(got), len(want), tc.wantStart)
			}
			// T identifies a point (V may be NaN); the suffix shares the array.
			for i := range got {
				if got[i].T != want[i].T || &got[i] != &want[i] {
					t.Fatalf("AfterReset point %d is %+v, want %+v of the input", i, got[i], want[i])
				}
			}
		})
	}
}

func TestTrendSecondsToLimit(t *testing.T) {
	// The worked example of docs/capacity.md: 400 GiB of 500 GiB growing
	// 2 GiB a day is full in 50 days.
	tests := []struct {
		name  string
		trend slo.Trend
		limit float64
		want  float64
		tol   float64
	}{
		{name: "at the limit", trend: slo.Trend{Level: 100, Slope: 1}, limit: 100, want: 0},
		{name: "at the limit and flat", trend: slo.Trend{Level: 100, Slope: 0}, limit: 100, want: 0},
		{name: "over the limit and growing", trend: slo.Trend{Level: 120, Slope: 5}, limit: 100, want: 0},
		{name: "over the limit and shrinking", trend: slo.Trend{Level: 120, Slope: -5}, limit: 100, want: 0},
		{name: "flat", trend: slo.Trend{Level: 50, Slope: 0}, limit: 100, want: math.Inf(1)},
		{name: "shrinking", trend: slo.Trend{Level: 50, Slope: -0.25}, limit: 100, want: math.Inf(1)},
		{name: "growing", trend: slo.Trend{Level: 40, Slope: 0.5}, limit: 100, want: 120},
		{name: "growing from empty", trend: slo.Trend{Level: 0, Slope: 0.125}, limit: 1, want: 8},
		{
			name:  "docs worked example",
			trend: slo.Trend{Level: 400 * gib, Slope: 2 * gib / day}, limit: 500 * gib, want: 50 * day, tol: 1e-14,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.trend.SecondsToLimit(tc.limit)
			if !relClose(got, tc.want, tc.tol) {
				t.Errorf("%+v.SecondsToLimit(%v) = %v, want %v", tc.trend, tc.limit, got, tc.want)
			}
		})
	}
}

func TestTrendValueAt(t *testing.T) {
	tests := []struct {
		name    string
		trend   slo.Trend
		seconds float64
		want    float64
	}{
		{name: "now", trend: slo.Trend{Level: 10, Slope: 3}, seconds: 0, want: 10},
		{name: "growing", trend: slo.Trend{Level: 10, Slope: 0.5}, seconds: 4380 * hour, want: 10 + 0.5*4380*hour},
		{name: "past", trend: slo.Trend{Level: 10, Slope: 0.5}, seconds: -8, want: 6},
		{name: "shrinking, still positive", trend: slo.Trend{Level: 10, Slope: -1}, seconds: 4, want: 6},
		{name: "shrinking to exactly zero", trend: slo.Trend{Level: 10, Slope: -1}, seconds: 10, want: 0},
		{name: "shrinking below zero is floored", trend: slo.Trend{Level: 10, Slope: -1}, seconds: 25, want: 0},
		{name: "flat", trend: slo.Trend{Level: 7, Slope: 0}, seconds: 17520 * hour, want: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.trend.ValueAt(tc.seconds); got != tc.want || math.Signbit(got) {
				t.Errorf("%+v.ValueAt(%v) = %v, want %v", tc.trend, tc.seconds, got, tc.want)
			}
		})
	}
}
