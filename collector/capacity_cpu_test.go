package collector

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// TestCPUSource feeds the source a sequence of /proc/stat readings by
// swapping the stat file of a fixture root between samples.
//
// testdata/procfs/stat (reading A), aggregate "cpu" line, in ticks:
//
//	user 1000 nice 0 system 500 idle 8000 iowait 200 irq 50 softirq 50
//	steal 200 guest 300 guest_nice 0
//	busy  = 1000 + 0 + 500 + 50 + 50 + 200 = 1800 (guest is inside user)
//	total = 1800 + 8000 + 200 = 10000
//
// testdata/procfs/stat.later (reading B):
//
//	user 1600 nice 100 system 800 idle 8800 iowait 300 irq 70 softirq 80
//	steal 250 guest 500 guest_nice 50
//	busy  = 1600 + 100 + 800 + 70 + 80 + 250 = 2900
//	total = 2900 + 8800 + 300 = 12000
//
// A then B: (2900 - 1800) / (12000 - 10000) = 1100 / 2000 = 0.55 of the
// time busy, times 4 CPUs (cpu0..cpu3) = 2.2 busy CPUs. Counting guest
// (200) and guest_nice (50) again would give 1350 / 2250 * 4 = 2.4.
func TestCPUSource(t *testing.T) {
	const (
		readingA = "stat"
		readingB = "stat.later"
	)
	root := t.TempDir()
	src, err := NewCapacitySource(config.CapacitySource{CPU: true}, 0, CapacityDeps{ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		reading    string
		want       Measurement
		wantNoData bool
	}{
		{reading: readingA, wantNoData: true}, // nothing to compare with
		{reading: readingB, want: Measurement{Usage: 2.2, Limit: 4}},
		{reading: readingB, wantNoData: true},                        // no time passed
		{reading: readingA, wantNoData: true},                        // counters went backwards
		{reading: readingB, want: Measurement{Usage: 2.2, Limit: 4}}, // afresh from A
	} {
		copyFixture(t, root, map[string]string{"stat": step.reading})
		m, err := src.Sample(context.Background())
		if step.wantNoData {
			if !errors.Is(err, ErrNoSample) {
				t.Errorf("sample %d (%s): got %+v, %v; want ErrNoSample", i, step.reading, m, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("sample %d (%s): %v", i, step.reading, err)
		}
		if math.Abs(m.Usage-step.want.Usage) > 1e-9 || m.Limit != step.want.Limit {
			t.Errorf("sample %d (%s): got %+v, want %+v", i, step.reading, m, step.want)
		}
	}
}

// TestCPUSourceFirstSampleThroughProber checks that the first sample
// reaches the scheduler's consumers as "nothing yet", not as a failure.
func TestCPUSourceFirstSampleThroughProber(t *testing.T) {
	root := t.TempDir()
	copyFixture(t, root, map[string]string{"stat": "stat"})
	src, err := NewCapacitySource(config.CapacitySource{CPU: true}, 0, CapacityDeps{ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	result := NewCapacityProber(src).Probe(context.Background())
	if result.Success || result.Reason != "" || !errors.Is(result.Err, ErrNoSample) || result.Measurement != nil {
		t.Errorf("first sample: Success %v, Reason %q, Err %v, Measurement %v; want an ErrNoSample with no reason",
			result.Success, result.Reason, result.Err, result.Measurement)
	}
}

func TestCPUSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		stat string // "" leaves the file out
		want Reason
	}{
		{name: "no stat", want: ReasonNotFound},
		{name: "unparsable", stat: "cpu  lots of time\ncpu0 1 2 3 4\n", want: ReasonProtocol},
		{name: "no per-CPU lines", stat: "cpu  1000 0 500 8000 200 50 50 200 0 0\n", want: ReasonProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.stat != "" {
				writeFixture(t, root, "stat", tc.stat)
			}
			src, err := NewCapacitySource(config.CapacitySource{CPU: true}, 0, CapacityDeps{ProcRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Sample(context.Background())
			if errors.Is(err, ErrNoSample) {
				t.Fatalf("got ErrNoSample (%v), want a failure", err)
			}
			wantSourceError(t, err, tc.want, "stat")
		})
	}
}

func TestCPUSourceContextDone(t *testing.T) {
	src, err := NewCapacitySource(config.CapacitySource{CPU: true}, 0, CapacityDeps{ProcRoot: "testdata/procfs"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = src.Sample(ctx)
	wantSourceError(t, err, ReasonTimeout)
}

// TestCPUSourceLive reads the real /proc/stat twice.
func TestCPUSourceLive(t *testing.T) {
	src, err := NewCapacitySource(config.CapacitySource{CPU: true}, 0, CapacityDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Sample(context.Background()); !errors.Is(err, ErrNoSample) {
		t.Fatalf("first sample: %v, want ErrNoSample", err)
	}
	// Burn CPU until the kernel's tick counters move (each tick is 10 ms
	// of some CPU's time), bounded so it cannot spin forever.
	var m Measurement
	for i := 0; i < 1000; i++ {
		spin(time.Millisecond)
		if m, err = src.Sample(context.Background()); !errors.Is(err, ErrNoSample) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !(m.Usage >= 0 && m.Usage <= m.Limit && m.Limit >= 1) {
		t.Errorf("got %+v, want 0 <= usage <= limit, limit >= 1", m)
	}
}

// spin keeps a CPU busy for d.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}
