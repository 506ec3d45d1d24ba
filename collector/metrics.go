package collector

import (
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/config"
)

// LatencyBuckets are the upper bounds of probe_latency_seconds. They span
// loopback (1 ms) to a slow remote page (10 s) in roughly 2.5x steps.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// ProbeInfo is the static description of a probe that its metrics carry.
type ProbeInfo struct {
	ID       ProbeID
	Type     string        // "http", "tcp"
	Target   string        // URL or address, credentials removed
	Interval time.Duration // for the landing page
}

// ProbeInfoFromConfig describes probe cfg of service.
func ProbeInfoFromConfig(service string, cfg *config.ProbeConfig) ProbeInfo {
	info := ProbeInfo{ID: ProbeID{Service: service, Probe: cfg.Name}, Type: cfg.Type(), Interval: cfg.Interval.Duration()}
	switch {
	case cfg.HTTP != nil:
		info.Target = redactURL(cfg.HTTP.URL)
	case cfg.TCP != nil:
		info.Target = cfg.TCP.Address
	}
	return info
}

// redactURL drops user information from a URL so it can be shown.
func redactURL(raw string) string {
	parsed, err := url.Parse(raw)
	if err != nil || parsed.User == nil {
		return raw
	}
	parsed.User = nil
	return parsed.String()
}

// ProbeStatus is what ProbeMetrics knows of a probe: its description,
// counters and last result. A copy, owned by the caller.
type ProbeStatus struct {
	ProbeInfo
	Runs     uint64
	Failures map[Reason]uint64
	Last     Result // zero Start when the probe has not run yet
}

// ProbeMetrics keeps per-probe counters and the last result of every probe
// and exports them as Prometheus metrics. It implements Recorder (called
// concurrently by probe runs) and prometheus.Collector (called by scrapes).
// A scrape reads what the runs recorded and computes nothing else; neither
// blocks the other for longer than copying one probe's figures.
type ProbeMetrics struct {
	// probes maps a probe to its state. The map is replaced whole by
	// SetProbes and never mutated after publication, so Record and Collect
	// read it without a lock.
	probes atomic.Pointer[map[ProbeID]*probeState]
	// mu serialises SetProbes.
	mu sync.Mutex

	info, success, duration, runs, failures, latency, phase, statusCode,
	lastRun, tlsEarliest, tlsLeaf *prometheus.Desc
}

// probeState is one probe's figures, guarded by mu.
type probeState struct {
	info ProbeInfo

	mu          sync.Mutex
	runs        uint64
	failures    [len(reasonIndex)]uint64
	last        Result
	bucketCount [13]uint64 // per latencyBuckets, not cumulative
	latencySum  float64
	latencyN    uint64
}

// reasonIndex numbers the reasons for the fixed-size failure counters.
var reasonIndex = [...]Reason{
	ReasonDNS, ReasonConnect, ReasonTLS, ReasonTimeout, ReasonStatus, ReasonAssertion,
	ReasonBodyTooLarge, ReasonRedirect, ReasonProtocol, ReasonSecret, ReasonInternal,
}

func indexOfReason(reason Reason) int {
	for i, r := range reasonIndex {
		if r == reason {
			return i
		}
	}
	return len(reasonIndex) - 1 // an unknown reason counts as internal
}

// NewProbeMetrics returns ProbeMetrics exporting no probe yet.
func NewProbeMetrics() *ProbeMetrics {
	labels := []string{"service", "probe"}
	m := &ProbeMetrics{
		info: prometheus.NewDesc("probe_info", "Static description of a probe: its type and target.",
			append(labels, "type", "target"), nil),
		success: prometheus.NewDesc("probe_success", "Whether the last run of the probe succeeded (1) or failed (0).", labels, nil),
		duration: prometheus.NewDesc("probe_duration_seconds", "Wall time of the last run of the probe.",
			labels, nil),
		runs: prometheus.NewDesc("probe_runs_total", "Runs of the probe since the daemon started.", labels, nil),
		failures: prometheus.NewDesc("probe_failures_total",
			"Failed runs of the probe by reason. A reason appears once it has occurred.", append(labels, "reason"), nil),
		latency: prometheus.NewDesc("probe_latency_seconds", "Wall time of the successful runs of the probe.",
			labels, nil),
		phase: prometheus.NewDesc("probe_phase_duration_seconds", "Duration of each phase of the last run of the probe.",
			append(labels, "phase"), nil),
		statusCode: prometheus.NewDesc("probe_http_status_code", "HTTP status code of the last run's final response, 0 if none.",
			labels, nil),
		lastRun: prometheus.NewDesc("probe_last_run_timestamp_seconds", "When the last run of the probe started.",
			labels, nil),
		tlsEarliest: prometheus.NewDesc("probe_tls_earliest_cert_expiry_timestamp_seconds",
			"Earliest NotAfter in the certificate chain seen by the last run that made a TLS connection.", labels, nil),
		tlsLeaf: prometheus.NewDesc("probe_tls_leaf_cert_expiry_timestamp_seconds",
			"NotAfter of the server certificate seen by the last run that made a TLS connection.", labels, nil),
	}
	empty := map[ProbeID]*probeState{}
	m.probes.Store(&empty)
	return m
}

// SetProbes sets the probes to export. Probes that stay keep their
// counters and last result; removed ones disappear from the next scrape;
// new ones start from zero.
func (m *ProbeMetrics) SetProbes(infos []ProbeInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.probes.Load()
	next := make(map[ProbeID]*probeState, len(infos))
	for _, info := range infos {
		if state, ok := old[info.ID]; ok {
			state.mu.Lock()
			state.info = info
			state.mu.Unlock()
			next[info.ID] = state
			continue
		}
		next[info.ID] = &probeState{info: info}
	}
	m.probes.Store(&next)
}

// Record implements Recorder. Results of unknown probes (a run that
// finished after a reload removed its probe) are dropped.
func (m *ProbeMetrics) Record(id ProbeID, result Result) {
	state, ok := (*m.probes.Load())[id]
	if !ok {
		return
	}
	state.mu.Lock()
	defer state.mu.Unlock()
	state.runs++
	keepTLS := state.last.TLS
	state.last = result
	if result.TLS == nil {
		// A run that failed before TLS keeps reporting the last known
		// certificate: expiry alerts must not flap with connectivity.
		state.last.TLS = keepTLS
	}
	if !result.Success {
		state.failures[indexOfReason(result.Reason)]++
		return
	}
	seconds := result.Duration.Seconds()
	state.latencySum += seconds
	state.latencyN++
	for i, bound := range latencyBuckets {
		if seconds <= bound {
			state.bucketCount[i]++
			break
		}
	}
}

// Status returns the status of every probe, sorted by service and probe.
func (m *ProbeMetrics) Status() []ProbeStatus {
	probes := *m.probes.Load()
	out := make([]ProbeStatus, 0, len(probes))
	for _, state := range probes {
		state.mu.Lock()
		status := ProbeStatus{ProbeInfo: state.info, Runs: state.runs, Last: state.last, Failures: map[Reason]uint64{}}
		for i, n := range state.failures {
			if n > 0 {
				status.Failures[reasonIndex[i]] = n
			}
		}
		state.mu.Unlock()
		out = append(out, status)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID.Service != out[j].ID.Service {
			return out[i].ID.Service < out[j].ID.Service
		}
		return out[i].ID.Probe < out[j].ID.Probe
	})
	return out
}

// Describe implements prometheus.Collector.
func (m *ProbeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.info, m.success, m.duration, m.runs, m.failures, m.latency,
		m.phase, m.statusCode, m.lastRun, m.tlsEarliest, m.tlsLeaf} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *ProbeMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, state := range *m.probes.Load() {
		m.collectProbe(ch, state)
	}
}

// probeFigures is a copy of a probe's figures taken under its lock, so the
// metrics are built without holding it.
type probeFigures struct {
	runs        uint64
	failures    [len(reasonIndex)]uint64
	last        Result
	bucketCount [13]uint64
	latencySum  float64
	latencyN    uint64
}

func (m *ProbeMetrics) collectProbe(ch chan<- prometheus.Metric, state *probeState) {
	state.mu.Lock()
	info := state.info
	figures := probeFigures{runs: state.runs, failures: state.failures, last: state.last,
		bucketCount: state.bucketCount, latencySum: state.latencySum, latencyN: state.latencyN}
	state.mu.Unlock()

	service, probe := info.ID.Service, info.ID.Probe
	ch <- prometheus.MustNewConstMetric(m.info, prometheus.GaugeValue, 1, service, probe, info.Type, info.Target)
	ch <- prometheus.MustNewConstMetric(m.runs, prometheus.CounterValue, float64(figures.runs), service, probe)
	for i, n := range figures.failures {
		if n > 0 {
			ch <- prometheus.MustNewConstMetric(m.failures, prometheus.CounterValue, float64(n), service, probe, string(reasonIndex[i]))
		}
	}
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cumulative uint64
	for i, bound := range latencyBuckets {
		cumulative += figures.bucketCount[i]
		buckets[bound] = cumulative
	}
	ch <- prometheus.MustNewConstHistogram(m.latency, figures.latencyN, figures.latencySum, buckets, service, probe)
	if figures.last.Start.IsZero() {
		return // never ran: no last-run figures to report
	}
	last := figures.last
	ch <- prometheus.MustNewConstMetric(m.success, prometheus.GaugeValue, boolToFloat(last.Success), service, probe)
	ch <- prometheus.MustNewConstMetric(m.duration, prometheus.GaugeValue, last.Duration.Seconds(), service, probe)
	ch <- prometheus.MustNewConstMetric(m.lastRun, prometheus.GaugeValue, float64(last.Start.UnixNano())/1e9, service, probe)
	for _, phase := range AllPhases() {
		if d, ok := last.Phases.Get(phase); ok {
			ch <- prometheus.MustNewConstMetric(m.phase, prometheus.GaugeValue, d.Seconds(), service, probe, phase.String())
		}
	}
	if info.Type == "http" {
		ch <- prometheus.MustNewConstMetric(m.statusCode, prometheus.GaugeValue, float64(last.StatusCode), service, probe)
	}
	if last.TLS != nil {
		ch <- prometheus.MustNewConstMetric(m.tlsEarliest, prometheus.GaugeValue, unixSeconds(last.TLS.EarliestExpiry), service, probe)
		ch <- prometheus.MustNewConstMetric(m.tlsLeaf, prometheus.GaugeValue, unixSeconds(last.TLS.LeafExpiry), service, probe)
	}
}

func boolToFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }
