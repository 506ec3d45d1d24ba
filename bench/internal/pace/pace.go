// Package pace drives the benchmark's reference probers: one goroutine per
// target, each sleeping until its own evenly spread phase of a fixed
// interval, as Prometheus scrape loops do. It is the naive floor the
// daemon's scheduler is compared with, so it stays deliberately plain: one
// timer per target, no grouping of wake-ups.
package pace

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a Run did. Its fields are safe to read while Run is
// still going.
type Stats struct {
	// Runs counts calls of the probe function.
	Runs atomic.Int64
	// Failures counts calls that returned an error.
	Failures atomic.Int64
	// Skipped counts slots that had already passed when a goroutine got
	// back to its timer (the previous run overran its interval).
	Skipped atomic.Int64

	mu sync.Mutex
	// errSamples holds the first maxErrSamples failures, so a log says why
	// probes failed without growing with the run.
	errSamples []string
}

// maxErrSamples bounds Stats.errSamples.
const maxErrSamples = 5

// addFailure counts err and keeps it if fewer than maxErrSamples are kept.
func (s *Stats) addFailure(err error) {
	s.Failures.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errSamples) < maxErrSamples {
		s.errSamples = append(s.errSamples, err.Error())
	}
}

// ErrSamples returns a copy of the first few failures' messages.
func (s *Stats) ErrSamples() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errSamples...)
}

// String summarises s on one line for the benchmark's logs, followed by
// the sampled failures, one per line.
func (s *Stats) String() string {
	out := fmt.Sprintf("runs=%d failures=%d skipped=%d", s.Runs.Load(), s.Failures.Load(), s.Skipped.Load())
	for _, msg := range s.ErrSamples() {
		out += "\nfailure: " + msg
	}
	return out
}

// Phase returns the offset of target i of n within interval: the targets'
// start times are spread evenly so the aggregate rate is n/interval.
func Phase(i, n int, interval time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(int64(interval) * int64(i) / int64(n))
}

// ProbeFunc runs one probe of target i.
type ProbeFunc func(ctx context.Context, i int) error

// Run calls probe(ctx, i) for each target i in [0, n) at
// start+Phase(i)+k*interval until ctx is done, and returns once every
// goroutine has returned. stats may be read concurrently.
func Run(ctx context.Context, n int, interval time.Duration, probe ProbeFunc, stats *Stats) {
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { loop(ctx, i, start.Add(Phase(i, n, interval)), interval, probe, stats) })
	}
	wg.Wait()
}

// loop is one target's goroutine. When a run overruns, the slots that have
// already passed are skipped (and counted) rather than fired in a burst.
func loop(ctx context.Context, i int, next time.Time, interval time.Duration, probe ProbeFunc, stats *Stats) {
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		stats.Runs.Add(1)
		if err := probe(ctx, i); err != nil && ctx.Err() == nil {
			stats.addFailure(err)
		}
		next = next.Add(interval)
		for now := time.Now(); !next.After(now); next = next.Add(interval) {
			stats.Skipped.Add(1)
		}
		timer.Reset(time.Until(next))
	}
}

// CheckLoopback returns an error unless rawURL's host is a loopback
// address: the benchmark must never send traffic off the machine.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("url %q: %w", rawURL, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("url %q: host %q is not a loopback address", rawURL, host)
	}
	return nil
}
