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
var latencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

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
	// probes is replaced whole by SetProbes and never mutated after
	// publication, so Record and Collect read it without a lock.
	probes atomic.Pointer[probeSet]
	// mu serialises SetProbes.
	mu sync.Mutex

	info, success, duration, runs, failures, latency, phase, statusCode,
	lastRun, tlsEarliest, tlsLeaf *prometheus.Desc
}

// probeSet is the published set of probes.
type probeSet struct {
	byID map[ProbeID]*probeState
	// sorted orders the probes by probe name, then service: the order of
	// their label values, so the registry's sort of 10,000s of series per
	// family finds them sorted already.
	sorted []*probeState
}

// probeState is one probe's figures, guarded by mu, and the label pairs
// its series carry, built once.
type probeState struct {
	info   ProbeInfo
	labels probeLabels

	mu          sync.Mutex
	runs        uint64
	failures    [len(reasonIndex)]uint64
	last        Result
	bucketCount [len(latencyBuckets)]uint64 // per bucket, not cumulative
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
	m.probes.Store(&probeSet{byID: map[ProbeID]*probeState{}})
	return m
}

// SetProbes sets the probes to export. Probes that stay keep their
// counters and last result; removed ones disappear from the next scrape;
// new ones start from zero.
func (m *ProbeMetrics) SetProbes(infos []ProbeInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.probes.Load().byID
	next := &probeSet{byID: make(map[ProbeID]*probeState, len(infos)), sorted: make([]*probeState, 0, len(infos))}
	for _, info := range infos {
		state, ok := old[info.ID]
		if ok {
			state.mu.Lock()
			if state.info != info {
				state.info = info
				state.labels = newProbeLabels(info)
				for i, n := range state.failures {
					if n > 0 {
						state.labels.fillReason(i)
					}
				}
			}
			state.mu.Unlock()
		} else {
			state = &probeState{info: info, labels: newProbeLabels(info)}
		}
		if _, dup := next.byID[info.ID]; !dup {
			next.sorted = append(next.sorted, state)
		}
		next.byID[info.ID] = state
	}
	sort.Slice(next.sorted, func(i, j int) bool {
		a, b := next.sorted[i].info.ID, next.sorted[j].info.ID
		if a.Probe != b.Probe {
			return a.Probe < b.Probe
		}
		return a.Service < b.Service
	})
	m.probes.Store(next)
}

// Record implements Recorder. Results of unknown probes (a run that
// finished after a reload removed its probe) are dropped.
func (m *ProbeMetrics) Record(id ProbeID, result Result) {
	state, ok := m.probes.Load().byID[id]
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
		i := indexOfReason(result.Reason)
		state.labels.fillReason(i) // before the count: Collect reads the pairs of counted reasons without the lock
		state.failures[i]++
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
	probes := m.probes.Load().sorted
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

// Collect implements prometheus.Collector. It sends each family's series
// in label order (probes sorted at SetProbes, phases in a pass of their
// own), with label pairs built once per probe: at 10,000 probes the
// registry's sort and per-series label allocation otherwise dominate.
func (m *ProbeMetrics) Collect(ch chan<- prometheus.Metric) {
	probes := m.probes.Load().sorted
	phases := make([]Phases, len(probes))
	for i, state := range probes {
		phases[i] = m.collectProbe(ch, state)
	}
	for _, phase := range AllPhases() {
		for i, state := range probes {
			if d, ok := phases[i].Get(phase); ok {
				ch <- &valueMetric{desc: m.phase, labels: state.labels.phase[phase], value: d.Seconds()}
			}
		}
	}
}

// probeFigures is a copy of a probe's figures taken under its lock, so the
// metrics are built without holding it.
type probeFigures struct {
	labels      probeLabels
	isHTTP      bool
	runs        uint64
	failures    [len(reasonIndex)]uint64
	last        Result
	bucketCount [len(latencyBuckets)]uint64
	latencySum  float64
	latencyN    uint64
}

// collectProbe sends every series of one probe but its phases, which it
// returns for the phase pass.
func (m *ProbeMetrics) collectProbe(ch chan<- prometheus.Metric, state *probeState) Phases {
	state.mu.Lock()
	f := probeFigures{labels: state.labels, isHTTP: state.info.Type == "http", runs: state.runs, failures: state.failures, last: state.last,
		bucketCount: state.bucketCount, latencySum: state.latencySum, latencyN: state.latencyN}
	state.mu.Unlock()

	base := f.labels.base
	ch <- &valueMetric{desc: m.info, labels: f.labels.info, value: 1}
	ch <- &valueMetric{desc: m.runs, labels: base, value: float64(f.runs), counter: true}
	for i, n := range f.failures {
		if n > 0 {
			ch <- &valueMetric{desc: m.failures, labels: f.labels.reasons[i], value: float64(n), counter: true}
		}
	}
	ch <- newLatencyMetric(m.latency, base, &f)
	if f.last.Start.IsZero() {
		return Phases{} // never ran: no last-run figures to report
	}
	last := f.last
	ch <- &valueMetric{desc: m.success, labels: base, value: boolToFloat(last.Success)}
	ch <- &valueMetric{desc: m.duration, labels: base, value: last.Duration.Seconds()}
	ch <- &valueMetric{desc: m.lastRun, labels: base, value: float64(last.Start.UnixNano()) / 1e9}
	if f.isHTTP {
		ch <- &valueMetric{desc: m.statusCode, labels: base, value: float64(last.StatusCode)}
	}
	if last.TLS != nil {
		ch <- &valueMetric{desc: m.tlsEarliest, labels: base, value: unixSeconds(last.TLS.EarliestExpiry)}
		ch <- &valueMetric{desc: m.tlsLeaf, labels: base, value: unixSeconds(last.TLS.LeafExpiry)}
	}
	return last.Phases
}

func boolToFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }
