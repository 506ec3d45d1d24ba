package collector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// probeWithin runs prober once with timeout, 5 s when zero: long enough
// for any run that should succeed on a loaded CI machine.
func probeWithin(t *testing.T, prober Prober, timeout time.Duration) Result {
	t.Helper()
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return prober.Probe(ctx)
}

// checkProberError checks that newProber refuses cfg with an error
// starting with wantErr.
func checkProberError(t *testing.T, newProber NewProberFunc, cfg config.ProbeConfig, wantErr string) {
	t.Helper()
	prober, err := newProber(cfg, ProberDeps{})
	if err == nil || !strings.HasPrefix(err.Error(), wantErr) {
		t.Fatalf("constructor = %v, %v; want error starting with %q", prober, err, wantErr)
	}
}
