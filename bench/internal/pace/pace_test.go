package pace

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestPhase(t *testing.T) {
	tests := []struct {
		name     string
		i, n     int
		interval time.Duration
		want     time.Duration
	}{
		{name: "first target starts at once", i: 0, n: 1000, interval: time.Second, want: 0},
		{name: "evenly spread", i: 1, n: 1000, interval: time.Second, want: time.Millisecond},
		{name: "last target", i: 9999, n: 10000, interval: 10 * time.Second, want: 9999 * time.Millisecond},
		{name: "no targets", i: 0, n: 0, interval: time.Second, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Phase(tt.i, tt.n, tt.interval); got != tt.want {
				t.Errorf("Phase(%d, %d, %v) = %v, want %v", tt.i, tt.n, tt.interval, got, tt.want)
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
	}{
		{url: "http://127.0.0.1:8080/t/0"},
		{url: "http://[::1]:8080/probe"},
		{url: "http://localhost:9115/probe"},
		{url: "http://10.0.0.1/", wantErr: true},
		{url: "http://example.com/", wantErr: true},
		{url: "://bad", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckLoopback(tt.url)
			if (err != nil) != tt.wantErr {
				t.Errorf("CheckLoopback(%q) = %v, want error: %v", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name         string
		n            int
		interval     time.Duration
		probeFails   bool
		overrun      time.Duration // how long target 0's first run blocks
		wantFailures bool
		wantSkipped  bool
	}{
		{name: "every target runs", n: 3, interval: 20 * time.Millisecond},
		{name: "failures are counted", n: 2, interval: 20 * time.Millisecond, probeFails: true, wantFailures: true},
		{name: "an overrun skips slots", n: 1, interval: 10 * time.Millisecond, overrun: 35 * time.Millisecond, wantSkipped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*tt.interval+tt.overrun)
			defer cancel()
			var mu sync.Mutex
			perTarget := make(map[int]int)
			var stats Stats
			Run(ctx, tt.n, tt.interval, func(ctx context.Context, i int) error {
				mu.Lock()
				perTarget[i]++
				first := perTarget[i] == 1
				mu.Unlock()
				if first && i == 0 && tt.overrun > 0 {
					time.Sleep(tt.overrun) // the overrunning probe itself
				}
				if tt.probeFails {
					return errors.New("probe failed")
				}
				return nil
			}, &stats)

			var total int
			for i := range tt.n {
				// Each target has ~5 slots in the window; allow scheduling
				// noise under -race but not a runaway or a silent target.
				if perTarget[i] < 1 || perTarget[i] > 7 {
					t.Errorf("target %d ran %d times, want 1..7", i, perTarget[i])
				}
				total += perTarget[i]
			}
			if got := stats.Runs.Load(); got != int64(total) {
				t.Errorf("Runs = %d, want %d", got, total)
			}
			// A run that fails just as ctx ends is not a failure, hence
			// total-1.
			if got := stats.Failures.Load(); (got > 0) != tt.wantFailures || (tt.wantFailures && got < int64(total-1)) {
				t.Errorf("Failures = %d, want %v (of %d runs)", got, tt.wantFailures, total)
			}
			samples := stats.ErrSamples()
			if tt.wantFailures && (len(samples) == 0 || len(samples) > maxErrSamples || samples[0] != "probe failed") {
				t.Errorf("ErrSamples = %q, want 1..%d of %q", samples, maxErrSamples, "probe failed")
			}
			if !tt.wantFailures && len(samples) != 0 {
				t.Errorf("ErrSamples = %q, want none", samples)
			}
			// Only the overrun is asserted: a loaded machine may also
			// delay a timer past its next slot.
			if got := stats.Skipped.Load(); tt.wantSkipped && got == 0 {
				t.Errorf("Skipped = 0, want slots skipped after a %v overrun", tt.overrun)
			}
		})
	}
}
