package main

import (
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/slo"
)

func newTestMetricsHandler(maxRequests int) *metricsHandler {
	registry := prometheus.NewRegistry()
	registry.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "reliabilityd_test_gauge", Help: "A test gauge."}))
	probes := collector.NewProbeMetrics()
	id := collector.ProbeID{Service: "shop", Probe: "home"}
	probes.SetProbes([]collector.ProbeInfo{{ID: id, Type: "http", Target: "http://x/"}})
	probes.Record(id, collector.Result{Start: time.Unix(1_800_000_000, 0), Success: true, Duration: time.Millisecond, StatusCode: 200})
	return newMetricsHandler(registry, maxRequests, slog.New(slog.DiscardHandler), probes.EachFamily, slo.NewEngine(slo.EngineOptions{}).EachFamily)
}

func TestMetricsHandlerFormats(t *testing.T) {
	tests := []struct {
		name, accept, encoding string
		wantType               string
		wantLines              []string
	}{
		{"text", "", "", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
			[]string{"reliabilityd_test_gauge 0", `probe_success{probe="home",service="shop"} 1`, `probe_runs_total{probe="home",service="shop"} 1`}},
		{"openmetrics", "application/openmetrics-text;version=1.0.0", "", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
			[]string{`probe_runs_total{probe="home",service="shop"} 1.0`, "# EOF"}},
		{"gzip", "", "gzip", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
			[]string{`probe_http_status_code{probe="home",service="shop"} 200`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.encoding != "" {
				req.Header.Set("Accept-Encoding", tc.encoding)
			}
			rec := httptest.NewRecorder()
			newTestMetricsHandler(0).ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type %q, want %q", got, tc.wantType)
			}
			var body io.Reader = rec.Body
			if tc.encoding == "gzip" {
				if rec.Header().Get("Content-Encoding") != "gzip" {
					t.Fatalf("no gzip Content-Encoding")
				}
				gz, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = gz
			}
			text, _ := io.ReadAll(body)
			for _, want := range tc.wantLines {
				if !strings.Contains(string(text), want+"\n") {
					t.Errorf("body lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

func TestMetricsHandlerLimit(t *testing.T) {
	h := newTestMetricsHandler(1)
	h.inFlight <- struct{}{} // one scrape in flight
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("scrape over the limit: status %d, want 503", rec.Code)
	}
	<-h.inFlight
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("scrape within the limit: status %d, want 200", rec.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{"": false, "gzip": true, "deflate, gzip;q=1.0": true, "gzip;q=0": false, "identity": false, "GZIP": true} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(req); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
