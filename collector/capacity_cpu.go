package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/prometheus/procfs"
)

// cpuSource reads host CPU use from <proc>/stat: Usage is the number of
// busy CPUs averaged since the previous sample, Limit the number of CPUs
// (the per-CPU lines of stat: the online CPUs).
//
// Busy time is user + nice + system + irq + softirq + steal of the
// aggregate "cpu" line; idle and iowait are not busy. guest and
// guest_nice are left out: Linux already counts guest time in user (and
// guest_nice in nice), so adding them would count it twice. Steal is
// counted as busy: it is CPU this host was owed and did not get, so the
// headroom is not there either.
//
// Usage = (busy delta / total delta) * CPUs, with total = busy + idle +
// iowait. The first sample has no previous reading: it records one and
// returns an error wrapping ErrNoSample, as does a sample whose deltas
// make no sense (no time passed, busy time going backwards, or more busy
// than total time, which iowait can cause: Linux does not keep it
// monotonic): the next sample starts afresh from it.
//
// Reading stat does not block on anything remote, so Sample runs it
// inline and checks ctx only before starting. mu guards the previous
// reading, so Sample is safe for concurrent use.
type cpuSource struct {
	proc procfs.FS
	root string

	mu sync.Mutex
	// prevBusy and prevTotal are the counters of the previous reading, in
	// seconds; havePrev false before the first.
	prevBusy, prevTotal float64
	havePrev            bool
}

// Sample implements CapacitySource.
func (s *cpuSource) Sample(ctx context.Context) (Measurement, error) {
	file := filepath.Join(s.root, "stat")
	if ctx.Err() != nil {
		return Measurement{}, contextError(ctx, "reading "+file)
	}
	stat, err := s.proc.Stat()
	if err != nil {
		return Measurement{}, sourceError(fmt.Errorf("reading %s: %w", file, err))
	}
	cpus := len(stat.CPU)
	if cpus == 0 {
		return Measurement{}, &SourceError{Reason: ReasonProtocol, Err: fmt.Errorf("reading %s: no per-CPU lines", file)}
	}
	c := stat.CPUTotal
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	total := busy + c.Idle + c.Iowait

	s.mu.Lock()
	defer s.mu.Unlock()
	prevBusy, prevTotal, havePrev := s.prevBusy, s.prevTotal, s.havePrev
	s.prevBusy, s.prevTotal, s.havePrev = busy, total, true
	if !havePrev {
		return Measurement{}, fmt.Errorf("%s: first reading taken: %w", file, ErrNoSample)
	}
	dBusy, dTotal := busy-prevBusy, total-prevTotal
	if dTotal <= 0 || dBusy < 0 || dBusy > dTotal {
		return Measurement{}, fmt.Errorf("%s: counters moved by %+gs busy of %+gs total, reading taken afresh: %w",
			file, dBusy, dTotal, ErrNoSample)
	}
	return Measurement{Usage: dBusy / dTotal * float64(cpus), Limit: float64(cpus)}, nil
}
