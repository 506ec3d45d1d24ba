package slo

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// fakeSource returns its current bytes or error; tests change them between
// flushes.
type fakeSource struct {
	mu   sync.Mutex
	data []byte
	err  error
}

func (s *fakeSource) set(data string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.err = []byte(data), err
}

// MarshalState implements Snapshotter.
func (s *fakeSource) MarshalState() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return []byte(string(s.data)), nil
}

func source(data string) *fakeSource { return &fakeSource{data: []byte(data)} }

// testClock is a settable clock for the flusher.
type testClock struct{ unixNano atomic.Int64 }

func (c *testClock) now() time.Time  { return time.Unix(0, c.unixNano.Load()) }
func (c *testClock) set(t time.Time) { c.unixNano.Store(t.UnixNano()) }
func newTestClock(unixSeconds int64) *testClock {
	c := &testClock{}
	c.set(time.Unix(unixSeconds, 0))
	return c
}

type flusherFixture struct {
	store   *Store
	flusher *Flusher
	clock   *testClock
	reg     *prometheus.Registry
}

func newFlusherFixture(t *testing.T, interval time.Duration) flusherFixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	store := openTestStore(t, t.TempDir(), nil, reg)
	clock := newTestClock(fixedUnix)
	f := NewFlusher(store, interval, nil, reg)
	f.now = clock.now
	return flusherFixture{store: store, flusher: f, clock: clock, reg: reg}
}

// loadFile reads back what the flusher saved.
func (fx flusherFixture) loadFile(t *testing.T) map[string][]byte {
	t.Helper()
	got, err := fx.store.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return got
}

func (fx flusherFixture) assertCounts(t *testing.T, flushes, failures float64) {
	t.Helper()
	if got := testutil.ToFloat64(fx.flusher.metrics.flushes); got != flushes {
		t.Errorf("reliabilityd_state_flushes_total = %v, want %v", got, flushes)
	}
	if got := testutil.ToFloat64(fx.flusher.metrics.failures); got != failures {
		t.Errorf("reliabilityd_state_flush_failures_total = %v, want %v", got, failures)
	}
}

func (fx flusherFixture) assertLastSuccess(t *testing.T, unixSeconds float64) {
	t.Helper()
	if got := testutil.ToFloat64(fx.flusher.metrics.lastSuccess); got != unixSeconds {
		t.Errorf("reliabilityd_state_last_flush_success_timestamp_seconds = %v, want %v", got, unixSeconds)
	}
}

func bytesMap(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func TestFlushWritesSources(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	fx.flusher.SetSources(map[string]Snapshotter{
		"history": source("h1"),
		"slo":     source("s1"),
		"absent":  nil,
	})
	if err := fx.flusher.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{"history": "h1", "slo": "s1"}))
	fx.assertCounts(t, 1, 0)
	fx.assertLastSuccess(t, fixedUnix)

	histogram := gatherOne(t, fx.reg, "reliabilityd_state_flush_duration_seconds").GetHistogram()
	if histogram.GetSampleCount() != 1 {
		t.Errorf("flush duration observations = %d, want 1", histogram.GetSampleCount())
	}
	size := gatherOne(t, fx.reg, "reliabilityd_state_size_bytes").GetGauge().GetValue()
	if want := float64(len(mustEncode(t, bytesMap(map[string]string{"history": "h1", "slo": "s1"})))); size != want {
		t.Errorf("reliabilityd_state_size_bytes = %v, want %v", size, want)
	}
}

func TestFlushWithoutSources(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	if err := fx.flusher.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	assertSections(t, fx.loadFile(t), map[string][]byte{})
	fx.assertCounts(t, 1, 0)
}

func TestFlushKeepsLastGoodBytes(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	failing := source("good-1")
	healthy := source("other-1")
	fx.flusher.SetSources(map[string]Snapshotter{"failing": failing, "healthy": healthy})
	if err := fx.flusher.Flush(); err != nil {
		t.Fatalf("first Flush: %v", err)
	}

	failing.set("", errors.New("boom"))
	healthy.set("other-2", nil)
	fx.clock.set(time.Unix(fixedUnix+60, 0))
	err := fx.flusher.Flush()
	if err == nil || !strings.Contains(err.Error(), `section "failing"`) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Flush = %v, want an error naming section \"failing\" and its cause", err)
	}
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{"failing": "good-1", "healthy": "other-2"}))
	fx.assertCounts(t, 2, 1)
	fx.assertLastSuccess(t, fixedUnix) // the failed flush does not count as a success

	failing.set("good-2", nil)
	fx.clock.set(time.Unix(fixedUnix+120, 0))
	if err := fx.flusher.Flush(); err != nil {
		t.Fatalf("third Flush: %v", err)
	}
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{"failing": "good-2", "healthy": "other-2"}))
	fx.assertCounts(t, 3, 1)
	fx.assertLastSuccess(t, fixedUnix+120)
}

func TestFlushSourceFailingFromStart(t *testing.T) {
	tests := []struct {
		name   string
		seeded map[string][]byte
		want   map[string][]byte
	}{
		{"nothing to keep", nil, bytesMap(map[string]string{"ok": "v"})},
		{"seeded bytes kept", bytesMap(map[string]string{"bad": "from disk"}), bytesMap(map[string]string{"ok": "v", "bad": "from disk"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFlusherFixture(t, time.Minute)
			fx.flusher.Seed(tt.seeded)
			fx.flusher.SetSources(map[string]Snapshotter{
				"ok":  source("v"),
				"bad": &fakeSource{err: errors.New("not ready")},
			})
			if err := fx.flusher.Flush(); err == nil {
				t.Fatal("Flush with a failing source returned nil")
			}
			assertSections(t, fx.loadFile(t), tt.want)
			fx.assertCounts(t, 1, 1)
		})
	}
}

func TestFlushRejectsSectionFormatCannotHold(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	longName := strings.Repeat("n", MaxSectionNameBytes+1)
	fx.flusher.SetSources(map[string]Snapshotter{longName: source("x"), "ok": source("v")})
	err := fx.flusher.Flush()
	if err == nil || !strings.Contains(err.Error(), "more than 256") {
		t.Fatalf("Flush = %v, want an error about the name length", err)
	}
	// One bad source does not stop the others from being saved.
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{"ok": "v"}))
	fx.assertCounts(t, 1, 1)
}

func TestFlushCarriesOverUnclaimedSections(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	fx.flusher.Seed(bytesMap(map[string]string{
		"history":      "old history",
		"capacity":     "old capacity (feature off in this config)",
		"slo/checkout": "old buckets",
	}))
	fx.flusher.SetSources(map[string]Snapshotter{"history": source("new history"), "slo/checkout": source("new buckets")})
	if err := fx.flusher.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{
		"history":      "new history",
		"capacity":     "old capacity (feature off in this config)",
		"slo/checkout": "new buckets",
	}))

	// A reload drops the SLO: its last bytes stay in the file, so adding it
	// back later restores its buckets.
	fx.flusher.SetSources(map[string]Snapshotter{"history": source("newer history")})
	if err := fx.flusher.Flush(); err != nil {
		t.Fatalf("Flush after SetSources: %v", err)
	}
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{
		"history":      "newer history",
		"capacity":     "old capacity (feature off in this config)",
		"slo/checkout": "new buckets",
	}))
	fx.assertCounts(t, 2, 0)
}

func TestFlushSaveFailure(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	fx.flusher.SetSources(map[string]Snapshotter{"history": source("h")})
	if err := fx.store.Close(); err != nil {
		t.Fatal(err)
	}
	err := fx.flusher.Flush()
	if err == nil || !strings.Contains(err.Error(), fx.store.Path()) {
		t.Fatalf("Flush on a closed store = %v, want an error naming %s", err, fx.store.Path())
	}
	fx.assertCounts(t, 1, 1)
	fx.assertLastSuccess(t, 0)
}

// manualTicker lets a test drive Run one tick at a time.
type manualTicker struct {
	ticks   chan time.Time
	stopped atomic.Bool
}

func (m *manualTicker) newTicker(time.Duration) (<-chan time.Time, func()) {
	return m.ticks, func() { m.stopped.Store(true) }
}

func TestRunFlushesOnEveryTick(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	ticker := &manualTicker{ticks: make(chan time.Time)}
	fx.flusher.newTicker = ticker.newTicker
	src := source("v1")
	fx.flusher.SetSources(map[string]Snapshotter{"history": src})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fx.flusher.Run(ctx) }()

	// The channel is unbuffered and Run takes a tick only between flushes,
	// so once the second send returns the first flush has completed.
	ticker.ticks <- time.Time{}
	ticker.ticks <- time.Time{}
	src.set("v2", nil)
	ticker.ticks <- time.Time{}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
	if !ticker.stopped.Load() {
		t.Error("Run returned without stopping its ticker")
	}
	fx.assertCounts(t, 3, 0)
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{"history": "v2"}))
}

func TestRunFlushesOnInterval(t *testing.T) {
	fx := newFlusherFixture(t, 10*time.Millisecond)
	fx.flusher.SetSources(map[string]Snapshotter{"history": source("h")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fx.flusher.Run(ctx) }()

	// Bounded poll on the flush counter: a few ticks take ~30ms; the
	// deadline only guards against a hang.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(fx.flusher.metrics.flushes) < 3 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("Run did not flush 3 times within 10s at a 10ms interval")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
	assertSections(t, fx.loadFile(t), bytesMap(map[string]string{"history": "h"}))
	if failures := testutil.ToFloat64(fx.flusher.metrics.failures); failures != 0 {
		t.Errorf("reliabilityd_state_flush_failures_total = %v, want 0", failures)
	}
}

func TestRunRejectsNonPositiveInterval(t *testing.T) {
	for _, interval := range []time.Duration{0, -time.Second} {
		fx := newFlusherFixture(t, interval)
		err := fx.flusher.Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "interval") {
			t.Errorf("Run with interval %v = %v, want an interval error", interval, err)
		}
	}
}

func TestSetSourcesDuringFlushes(t *testing.T) {
	fx := newFlusherFixture(t, time.Minute)
	fx.flusher.SetSources(map[string]Snapshotter{"a": source("a0")})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 50 {
			fx.flusher.SetSources(map[string]Snapshotter{"a": source("a"), "b": source(string(rune('0' + i%10)))})
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			if err := fx.flusher.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		}
	}()
	wg.Wait()
	fx.flusher.SetSources(map[string]Snapshotter{"a": source("final")})
	if err := fx.flusher.Flush(); err != nil {
		t.Fatal(err)
	}
	got := fx.loadFile(t)
	if string(got["a"]) != "final" {
		t.Errorf("section a = %q, want %q", got["a"], "final")
	}
	fx.assertCounts(t, 21, 0)
}

func TestNewFlusherSurvivesConflictingMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A gauge where the flusher wants a counter: registration conflicts.
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "reliabilityd_state_flushes_total", Help: "conflicting"}))
	store := openTestStore(t, t.TempDir(), nil, nil)
	f := NewFlusher(store, time.Minute, nil, reg)
	if err := f.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := testutil.ToFloat64(f.metrics.flushes); got != 1 {
		t.Errorf("unregistered flush counter = %v, want 1", got)
	}
}

func gatherOne(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return nil
}
