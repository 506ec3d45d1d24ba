package collector

import (
	"errors"
	"flag"
	"fmt"
	"github.com/reliabilityd/reliabilityd/config"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// metricsFixture records a known sequence of results: an HTTP probe with
// two successes (one over TLS) and three failures, a TCP probe that never
// failed, and a probe that has not run.
func metricsFixture() *ProbeMetrics {
	m := NewProbeMetrics()
	m.SetProbes([]ProbeInfo{
		{ID: ProbeID{"shop", "home"}, Type: "http", Target: "https://shop.example/"},
		{ID: ProbeID{"shop", "db"}, Type: "tcp", Target: "db:5432"},
		{ID: ProbeID{"mail", "smtp"}, Type: "tcp", Target: "mail:25"},
		{ID: ProbeID{"shop", "checkout"}, Type: "transaction", Target: "https://shop.example/login"},
		{ID: ProbeID{"shop", "resolver"}, Type: "dns", Target: "10.0.0.53:53"},
		{ID: ProbeID{"shop", "gateway"}, Type: "icmp", Target: "10.0.0.1"},
		{ID: ProbeID{"shop", "api"}, Type: "grpc", Target: "api:443"},
	})
	start := time.Unix(1_800_000_000, 0)
	expiry := time.Unix(1_900_000_000, 0)
	var phases Phases
	phases.Add(PhaseResolve, 1*time.Millisecond)
	phases.Add(PhaseConnect, 2*time.Millisecond)
	phases.Add(PhaseTLS, 3*time.Millisecond)
	phases.Add(PhaseProcessing, 4*time.Millisecond)
	phases.Add(PhaseTransfer, 5*time.Millisecond)
	home := ProbeID{"shop", "home"}
	m.Record(home, Result{Start: start, Duration: 15 * time.Millisecond, Success: true, StatusCode: 200, Phases: phases,
		TLS: &TLSState{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", EarliestExpiry: expiry, LeafExpiry: expiry.Add(time.Hour)}})
	m.Record(home, Result{Start: start.Add(time.Second), Duration: 3 * time.Second, Success: true, StatusCode: 200})
	m.Record(home, Result{Start: start.Add(2 * time.Second), Duration: time.Second, Reason: ReasonTimeout, Err: errors.New("deadline")})
	m.Record(home, Result{Start: start.Add(3 * time.Second), Duration: time.Millisecond, Reason: ReasonStatus, StatusCode: 503})
	m.Record(home, Result{Start: start.Add(4 * time.Second), Duration: 2 * time.Millisecond, Reason: ReasonStatus, StatusCode: 500})
	var tcpPhases Phases
	tcpPhases.Add(PhaseResolve, 0)
	tcpPhases.Add(PhaseConnect, 500*time.Microsecond)
	m.Record(ProbeID{"shop", "db"}, Result{Start: start, Duration: time.Millisecond, Success: true, Phases: tcpPhases})
	recordTypeFixtures(m, start)
	// A result for a probe that is not configured (removed by a reload
	// while it ran) is dropped.
	m.Record(ProbeID{"gone", "x"}, Result{Start: start, Success: true})
	return m
}

// recordTypeFixtures records results of the probe types with families of
// their own: two transaction runs (one failing at its second step), a DNS
// response, two ICMP runs and a gRPC health check over TLS.
func recordTypeFixtures(m *ProbeMetrics, start time.Time) {
	checkout := ProbeID{"shop", "checkout"}
	m.Record(checkout, Result{Start: start, Duration: 30 * time.Millisecond, Success: true, Steps: []StepResult{
		{Name: "login", Ran: true, Success: true, Duration: 20 * time.Millisecond, StatusCode: 200},
		{Name: "cart", Ran: true, Success: true, Duration: 10 * time.Millisecond, StatusCode: 200},
	}})
	m.Record(checkout, Result{Start: start.Add(time.Second), Duration: 25 * time.Millisecond, Reason: ReasonStatus, StatusCode: 500,
		Err: errors.New(`step 2 "cart": status 500`), Steps: []StepResult{
			{Name: "login", Ran: true, Success: true, Duration: 15 * time.Millisecond, StatusCode: 200},
			{Name: "cart", Ran: true, Reason: ReasonStatus, Duration: 10 * time.Millisecond, StatusCode: 500},
			{Name: "pay"},
		}})
	m.Record(ProbeID{"shop", "resolver"}, Result{Start: start, Duration: time.Millisecond, Reason: ReasonStatus,
		DNS: &DNSResult{Rcode: 3, Authority: 1}})
	gateway := ProbeID{"shop", "gateway"}
	m.Record(gateway, Result{Start: start, Duration: time.Second, Success: true,
		Packets: &PacketResult{Sent: 3, Received: 3, RTTMin: time.Millisecond, RTTMean: 2 * time.Millisecond, RTTMax: 4 * time.Millisecond}})
	m.Record(gateway, Result{Start: start.Add(time.Second), Duration: time.Second, Reason: ReasonPacketLoss,
		Packets: &PacketResult{Sent: 4, Received: 1, RTTMin: time.Millisecond, RTTMean: time.Millisecond, RTTMax: time.Millisecond}})
	m.Record(ProbeID{"shop", "api"}, Result{Start: start, Duration: 3 * time.Millisecond, Reason: ReasonStatus, HealthStatus: "NOT_SERVING",
		TLS: &TLSState{Version: "TLS 1.2", CipherSuite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}})
}

func TestProbeMetricsGolden(t *testing.T) {
	m := metricsFixture()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	got := gatherText(t, reg)
	golden := filepath.Join("testdata", "probe_metrics.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("metrics differ from %s (run with -update to accept):\n%s", golden, got)
	}
	if err := testutil.CollectAndCompare(m, strings.NewReader(string(want))); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", mf.GetName(), mf.GetHelp(), mf.GetName(), strings.ToLower(mf.GetType().String()))
		for _, metric := range mf.GetMetric() {
			var labels []string
			for _, lp := range metric.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			l := strings.Join(labels, ",")
			switch {
			case metric.Histogram != nil:
				h := metric.GetHistogram()
				for _, bucket := range h.GetBucket() {
					fmt.Fprintf(&b, "%s_bucket{%s,le=\"%g\"} %d\n", mf.GetName(), l, bucket.GetUpperBound(), bucket.GetCumulativeCount())
				}
				fmt.Fprintf(&b, "%s_bucket{%s,le=\"+Inf\"} %d\n", mf.GetName(), l, h.GetSampleCount())
				fmt.Fprintf(&b, "%s_sum{%s} %g\n%s_count{%s} %d\n", mf.GetName(), l, h.GetSampleSum(), mf.GetName(), l, h.GetSampleCount())
			case metric.Counter != nil:
				fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), l, metric.GetCounter().GetValue())
			default:
				fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), l, metric.GetGauge().GetValue())
			}
		}
	}
	return b.String()
}

func TestProbeMetricsFigures(t *testing.T) {
	m := metricsFixture()
	status := m.Status()
	if len(status) != 7 {
		t.Fatalf("got %d probes, want 7", len(status))
	}
	// Sorted by service, then probe.
	wantOrder := []ProbeID{{"mail", "smtp"}, {"shop", "api"}, {"shop", "checkout"}, {"shop", "db"}, {"shop", "gateway"}, {"shop", "home"}, {"shop", "resolver"}}
	for i, want := range wantOrder {
		if status[i].ID != want {
			t.Errorf("status[%d] = %v, want %v", i, status[i].ID, want)
		}
	}
	home := status[5]
	if home.Runs != 5 || home.Failures[ReasonStatus] != 2 || home.Failures[ReasonTimeout] != 1 || len(home.Failures) != 2 {
		t.Errorf("home: runs %d failures %v, want 5 runs, status 2, timeout 1", home.Runs, home.Failures)
	}
	if home.Last.StatusCode != 500 || home.Last.Success {
		t.Errorf("home last = %+v, want the failed 500", home.Last)
	}
	// The last TLS state survives runs that made no TLS connection.
	if home.Last.TLS == nil || home.Last.TLS.EarliestExpiry.Unix() != 1_900_000_000 {
		t.Errorf("home last TLS = %+v, want the expiry of the earlier TLS run", home.Last.TLS)
	}
	if !status[0].Last.Start.IsZero() || status[0].Runs != 0 {
		t.Errorf("smtp never ran, got %+v", status[0])
	}
}

func TestProbeMetricsSetProbesKeepsState(t *testing.T) {
	m := metricsFixture()
	m.SetProbes([]ProbeInfo{
		{ID: ProbeID{"shop", "home"}, Type: "http", Target: "https://shop.example/v2"},
		{ID: ProbeID{"new", "probe"}, Type: "tcp", Target: "x:1"},
	})
	status := m.Status()
	if len(status) != 2 {
		t.Fatalf("got %d probes after SetProbes, want 2: %+v", len(status), status)
	}
	if status[0].ID != (ProbeID{"new", "probe"}) || status[0].Runs != 0 {
		t.Errorf("new probe = %+v, want zero runs", status[0])
	}
	if status[1].Runs != 5 || status[1].Target != "https://shop.example/v2" {
		t.Errorf("kept probe = runs %d target %q, want 5 runs and the new target", status[1].Runs, status[1].Target)
	}
	if n := testutil.CollectAndCount(m, "probe_runs_total"); n != 2 {
		t.Errorf("probe_runs_total series = %d, want 2", n)
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://user:pw@host/path": "https://host/path",
		"http://host:80/":           "http://host:80/",
		"::bad":                     "::bad",
	} {
		if got := config.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// BenchmarkProbeMetricsGather measures a full /metrics gather of 10,000
// HTTP probes that have all run (the scrape floor is 1 s for this size).
func BenchmarkProbeMetricsGather(b *testing.B) {
	m := benchProbeMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchProbeMetrics returns 10,000 HTTP probes that have each run twice,
// once failing.
func benchProbeMetrics() *ProbeMetrics {
	m := NewProbeMetrics()
	infos := make([]ProbeInfo, 10_000)
	for i := range infos {
		infos[i] = ProbeInfo{ID: ProbeID{fmt.Sprintf("svc%d", i/10), fmt.Sprintf("p%d", i%10)}, Type: "http", Target: fmt.Sprintf("http://127.0.0.1:8080/t/%d", i)}
	}
	m.SetProbes(infos)
	var phases Phases
	for _, p := range AllPhases() {
		phases.Add(p, time.Millisecond)
	}
	for _, info := range infos {
		m.Record(info.ID, Result{Start: time.Now(), Duration: 5 * time.Millisecond, Success: true, StatusCode: 200, Phases: phases})
		m.Record(info.ID, Result{Start: time.Now(), Duration: 5 * time.Millisecond, Reason: ReasonTimeout})
	}
	return m
}

// TestEachFamilyMatchesRegistry: the streamed families the daemon serves
// are exactly what a registry gathers from Collect (the golden above).
func TestEachFamilyMatchesRegistry(t *testing.T) {
	m := metricsFixture()

	// A streamed family is only valid during the call: encode it there.
	texts := map[string]string{}
	err := m.EachFamily(func(mf *dto.MetricFamily) error {
		var text strings.Builder
		_, err := expfmt.MetricFamilyToText(&text, mf)
		texts[mf.GetName()] = text.String()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(texts))
	for name := range texts {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(texts[name])
	}
	// Both through the same writer, so only content can differ.
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	regFamilies, _ := reg.Gather()
	var w strings.Builder
	for _, mf := range regFamilies {
		expfmt.MetricFamilyToText(&w, mf)
	}
	if b.String() != w.String() {
		t.Errorf("streamed families differ from the registry's:\nstreamed:\n%s\nregistry:\n%s", b.String(), w.String())
	}
	if !strings.Contains(b.String(), `probe_phase_duration_seconds{phase="connect",probe="db",service="shop"} 0.0005`) {
		t.Errorf("streamed families lack the fixture's figures:\n%s", b.String())
	}
}

// BenchmarkProbeMetricsScrape measures what the daemon's /metrics does for
// 10,000 HTTP probes: stream every family through the text encoder.
func BenchmarkProbeMetricsScrape(b *testing.B) {
	m := benchProbeMetrics()
	b.ReportAllocs()
	for b.Loop() {
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		if err := m.EachFamily(enc.Encode); err != nil {
			b.Fatal(err)
		}
	}
}
