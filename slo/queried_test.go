package slo

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// TestQueriedSLIEvents: an SLI counted from a Prometheus source records
// the events its results carry into the same windows as probe runs; a
// failed query records nothing, not a bad event.
func TestQueriedSLIEvents(t *testing.T) {
	cfg, err := config.Parse([]byte(`prometheus_sources: [{name: p, url: "http://127.0.0.1:9090"}]
services:
  - name: shop
    slos:
      - name: requests
        objective: 99
        window: 1h
        sli: {prometheus: {source: p, bad: "sum(increase(e[$window]))", total: "sum(increase(r[$window]))"}}
`), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	engine := NewEngine(EngineOptions{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	engine.Apply(NewPlan(cfg), time.Second)
	id := collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("requests")}
	engine.Record(id, collector.Result{Start: now, Success: true, Events: []collector.EventCounts{
		{At: now.Add(-2 * time.Hour), Good: 5000}, // older than the window: only in the totals
		{At: now.Add(-time.Minute), Good: 990, Bad: 10}}})
	engine.Record(id, collector.Result{Start: now, Reason: collector.ReasonConnect, Err: errors.New("refused")})
	// A run that failed after counting a range keeps that range's events.
	engine.Record(id, collector.Result{Start: now, Reason: collector.ReasonTimeout, Err: errors.New("slow"),
		Events: []collector.EventCounts{{At: now.Add(-time.Second), Good: 1000}}})
	if last := engine.Coverage("shop", "requests").To; !last.Equal(now.Add(-time.Second)) {
		t.Errorf("coverage ends at %v, want %v", last, now.Add(-time.Second))
	}
	status := engine.Evaluate(now).SLOs[0]
	if status.Good != 6990 || status.Bad != 10 {
		t.Errorf("%d good, %d bad events, want 6990 and 10 (the failed query records none)", status.Good, status.Bad)
	}
	if sli, ok := status.SLI(WindowFull); !ok || sli != 1990.0/2000 {
		t.Errorf("SLI %v (%v), want %v", sli, ok, 1990.0/2000)
	}
}
