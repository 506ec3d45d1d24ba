package collector

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/reliabilityd/reliabilityd/config"
)

// latencyBuckets are the upper bounds of probe_latency_seconds:
// prometheus.DefBuckets, 5 ms to 10 s. Every bucket is a series per probe,
// so there are as few as a latency SLO needs.
var latencyBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// ProbeInfo is the static description of a probe that its metrics carry.
type ProbeInfo struct {
	ID       ProbeID
	Type     string        // "http", "tcp", ...: config.ProbeTypes
	Target   string        // URL or address, credentials removed
	Interval time.Duration // for the landing page
}

// ProbeInfoFromConfig describes probe cfg of service.
func ProbeInfoFromConfig(service string, cfg *config.ProbeConfig) ProbeInfo {
	info := ProbeInfo{ID: ProbeID{Service: service, Probe: cfg.Name}, Type: cfg.Type(), Interval: cfg.Interval.Duration()}
	if section := cfg.Section(); section != nil {
		info.Target = section.Target()
	}
	return info
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
// and exports them as Prometheus metric families. It implements Recorder
// (called concurrently by probe runs). A scrape copies what the runs
// recorded and computes nothing else; neither blocks the other for longer
// than copying one probe's figures.
//
// The families are streamed one at a time by EachFamily, already sorted
// and consistent, instead of going through a prometheus.Registry: at
// 10,000 probes the registry's per-series re-sorting, hashing and
// whole-scrape tree cost seconds and a hundred megabytes a scrape (see
// docs/benchmarks.md). Collect offers the same families to a registry,
// for tests and small set-ups.
type ProbeMetrics struct {
	// probes is replaced whole by SetProbes and never mutated after
	// publication, so Record and scrapes read it without a lock.
	probes atomic.Pointer[probeSet]
	// mu serialises SetProbes.
	mu sync.Mutex

	descs map[string]*prometheus.Desc
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
	mu      sync.Mutex
	info    ProbeInfo
	labels  probeLabels
	figures probeFigures
}

// probeFigures are what a probe's runs have recorded.
type probeFigures struct {
	runs        uint64
	failures    [len(reasonIndex)]uint64
	last        Result
	bucketCount [len(latencyBuckets)]uint64 // per bucket, not cumulative
	latencySum  float64
	latencyN    uint64
	// stepFailures counts failed transaction steps. Copy on write: never
	// modified once stored, so snapshots share it.
	stepFailures []stepFailure
	// packetsSent and packetsReceived count ICMP echo requests and replies.
	packetsSent, packetsReceived uint64
}

// indexOfReason returns reason's index in reasonIndex; an unknown reason
// counts as internal.
func indexOfReason(reason Reason) int {
	internal := 0
	for i, r := range reasonIndex {
		if r == reason {
			return i
		}
		if r == ReasonInternal {
			internal = i
		}
	}
	return internal
}

// NewProbeMetrics returns ProbeMetrics exporting no probe yet.
func NewProbeMetrics() *ProbeMetrics {
	m := &ProbeMetrics{descs: map[string]*prometheus.Desc{}}
	for _, f := range allProbeFamilies() {
		m.descs[f.name] = prometheus.NewDesc(f.name, f.help, f.labels, nil)
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
	f := &state.figures
	f.runs++
	keepTLS := f.last.TLS
	f.last = result
	if result.TLS == nil {
		// A run that failed before TLS keeps reporting the last known
		// certificate: expiry alerts must not flap with connectivity.
		f.last.TLS = keepTLS
	}
	if result.Steps != nil {
		f.stepFailures = countStepFailures(f.stepFailures, result.Steps)
	}
	if result.Packets != nil {
		f.packetsSent += uint64(result.Packets.Sent)
		f.packetsReceived += uint64(result.Packets.Received)
	}
	if !result.Success {
		f.failures[indexOfReason(result.Reason)]++
		return
	}
	seconds := result.Duration.Seconds()
	f.latencySum += seconds
	f.latencyN++
	for i, bound := range latencyBuckets {
		if seconds <= bound {
			f.bucketCount[i]++
			break
		}
	}
}

// Status returns the status of every probe, sorted by service, then probe.
func (m *ProbeMetrics) Status() []ProbeStatus {
	snapshot := m.snapshot()
	out := make([]ProbeStatus, len(snapshot))
	for i, p := range snapshot {
		out[i] = ProbeStatus{ProbeInfo: p.info, Runs: p.figures.runs, Last: p.figures.last, Failures: map[Reason]uint64{}}
		for reason, n := range p.figures.failures {
			if n > 0 {
				out[i].Failures[reasonIndex[reason]] = n
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID.Service != out[j].ID.Service {
			return out[i].ID.Service < out[j].ID.Service
		}
		return out[i].ID.Probe < out[j].ID.Probe
	})
	return out
}

// probeCopy is one probe as a scrape sees it.
type probeCopy struct {
	info    ProbeInfo
	labels  probeLabels
	figures probeFigures
}

// snapshot copies every probe's figures, in label order, each under its
// own lock: a scrape builds every family from this one copy.
func (m *ProbeMetrics) snapshot() []probeCopy {
	probes := m.probes.Load().sorted
	out := make([]probeCopy, len(probes))
	for i, state := range probes {
		state.mu.Lock()
		out[i] = probeCopy{info: state.info, labels: state.labels, figures: state.figures}
		state.mu.Unlock()
	}
	return out
}

// allProbeFamilies returns every family EachFamily may emit.
func allProbeFamilies() []probeFamily {
	return append(append([]probeFamily(nil), probeFamilies...), typeFamilies...)
}

// Describe implements prometheus.Collector.
func (m *ProbeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range allProbeFamilies() {
		ch <- m.descs[f.name]
	}
}

// Collect implements prometheus.Collector with the families of EachFamily.
func (m *ProbeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.eachFamily(func(mf *dto.MetricFamily) error {
		desc := m.descs[mf.GetName()]
		for _, metric := range mf.Metric {
			ch <- dtoMetric{desc: desc, metric: metric}
		}
		return nil
	}, false)
}

// dtoMetric adapts a built dto.Metric to prometheus.Metric.
type dtoMetric struct {
	desc   *prometheus.Desc
	metric *dto.Metric
}

// Desc implements prometheus.Metric.
func (m dtoMetric) Desc() *prometheus.Desc { return m.desc }

// Write implements prometheus.Metric.
func (m dtoMetric) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter, out.Histogram = m.metric.Label, m.metric.Gauge, m.metric.Counter, m.metric.Histogram
	return nil
}

func boolToFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }
