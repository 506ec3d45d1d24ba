package slo

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// fakePromSource is a Prometheus API whose total is one event per second of
// the range and whose bad is 0.
func fakePromSource(t *testing.T) *collector.PrometheusSource {
	re := regexp.MustCompile(`\[(\d+)ms\]`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		q := r.Form.Get("query")
		m := re.FindStringSubmatch(q)
		ms, _ := strconv.ParseInt(m[1], 10, 64)
		v := "0"
		if strings.HasPrefix(q, "sum(increase(r") {
			v = strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"` + v + `"]}]}}`))
	}))
	t.Cleanup(srv.Close)
	cfg := config.PrometheusSourceConfig{Name: "p", URL: srv.URL, Timeout: config.Duration(5 * time.Second)}
	metrics := collector.NewPrometheusSourceMetrics(prometheus.NewRegistry())
	metrics.SetSources([]config.PrometheusSourceConfig{cfg})
	src, err := collector.NewPrometheusSource(cfg, metrics)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func covSLOs(window string) string {
	return `
      - name: api
        objective: 99
        window: ` + window + `
        sli: {prometheus: {source: p, bad: "sum(increase(e[$window]))", total: "sum(increase(r[$window]))"}}
`
}

// sliHarness runs an events-mode querier against fakePromSource into an
// engine, a minute of fake time per run, as the daemon wires them.
type sliHarness struct {
	t      *testing.T
	e      *Engine
	clock  *collector.FakeClock
	src    *collector.PrometheusSource
	now    *time.Time
	prober collector.Prober
	id     collector.ProbeID
}

func (h *sliHarness) newProber(window time.Duration) {
	h.prober = collector.NewPrometheusSLIProber(h.src, config.SLIPrometheus{Source: "p", Bad: "sum(increase(e[$window]))", Total: "sum(increase(r[$window]))", Mode: "events"},
		collector.SLIProberOptions{Interval: time.Minute, Window: window, Clock: h.clock,
			Resume: func() collector.SLICoverage { return h.e.Coverage("shop", "api") }})
}

func (h *sliHarness) run(n int) {
	for i := 0; i < n; i++ {
		h.clock.Advance(time.Minute)
		*h.now = h.clock.Now()
		res := h.prober.Probe(context.Background())
		if !res.Success {
			h.t.Fatalf("run failed: %v", res.Err)
		}
		h.e.Record(h.id, res)
	}
}

func (h *sliHarness) fullTotal() float64 {
	s := findSLO(h.e.Evaluate(*h.now), "api")
	return s.Windows[WindowFull].Total()
}

func newSLIHarness(t *testing.T, window string) *sliHarness {
	now := utc("2026-11-23T12:00:00Z")
	h := &sliHarness{t: t, clock: collector.NewFakeClock(now), src: fakePromSource(t), now: &now,
		id: collector.ProbeID{Service: "shop", Probe: collector.SLIQueryProbe("api")}}
	h.e = newTestEngine(t, queriedYAML(covSLOs(window)), h.now)
	return h
}

// wantSeconds checks that the full window holds one event per second of
// want, give or take an hour: slots are an hour long, and the window
// slides while the runs go on.
func (h *sliHarness) wantSeconds(what string, want time.Duration) {
	h.t.Helper()
	if got := h.fullTotal(); got < want.Seconds()-3600 || got > want.Seconds()+3600 {
		h.t.Errorf("%s: %.0f events in the full window, want %.0f ± 3600 (%.2f days off)", what, got, want.Seconds(), (got-want.Seconds())/86400)
	}
}

// TestSLIBackfillWhenTheWindowGrows: a 30d window grown to 90d is
// backfilled to 90 days, also when the querier is rebuilt (a restart, a
// reload) in the middle of that backfill.
func TestSLIBackfillWhenTheWindowGrows(t *testing.T) {
	for _, interrupted := range []bool{false, true} {
		h := newSLIHarness(t, "30d")
		h.newProber(30 * 24 * time.Hour)
		h.run(40)
		h.wantSeconds("30d", 30*24*time.Hour)
		applyYAML(t, h.e, queriedYAML(covSLOs("90d")))
		h.newProber(90 * 24 * time.Hour)
		h.run(1)
		if interrupted {
			h.newProber(90 * 24 * time.Hour)
		}
		h.run(100)
		h.wantSeconds(fmt.Sprintf("90d (interrupted %v)", interrupted), 90*24*time.Hour)
	}
}

// TestSLICoverageOfOlderEvents: events held from before coverage was
// tracked (a version 1 state, or a probe SLI turned into a queried one)
// are never counted again by a later backfill.
func TestSLICoverageOfOlderEvents(t *testing.T) {
	h := newSLIHarness(t, "30d")
	h.newProber(30 * 24 * time.Hour)
	h.run(40)
	o := h.e.active["shop/api"]
	o.mu.Lock()
	o.queriedFrom = time.Time{} // what a version 1 section restores
	o.mu.Unlock()
	h.newProber(30 * 24 * time.Hour)
	h.run(5)
	h.newProber(30 * 24 * time.Hour)
	h.run(40)
	h.wantSeconds("after an upgrade from version 1", 30*24*time.Hour)

	probeYAML := `
prometheus_sources: [{name: p, url: "http://127.0.0.1:9090"}]
services:
  - name: shop
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
    slos:
      - {name: api, objective: 99, window: 30d, sli: {probes: [home]}}
`
	h = newSLIHarness(t, "30d")
	applyYAML(t, h.e, probeYAML)
	for i := 720; i > 0; i-- {
		h.e.Record(collector.ProbeID{Service: "shop", Probe: "home"}, collector.Result{Start: h.now.Add(-time.Duration(i) * time.Hour), Success: true})
	}
	applyYAML(t, h.e, queriedYAML(covSLOs("30d")))
	h.newProber(30 * 24 * time.Hour)
	h.run(5)
	h.newProber(30 * 24 * time.Hour)
	h.run(40)
	// 720 probe runs, the last an hour ago; queried events from just
	// after it, one a second (the fraction carried), nothing twice.
	if got, want := h.fullTotal(), math.Floor(720+(time.Hour-time.Millisecond).Seconds()+45*60); got != want {
		t.Errorf("probe SLI turned queried: %.0f events after a restart, want %.0f", got, want)
	}
}
