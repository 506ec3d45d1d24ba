package collector

import (
	"sort"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// probeFamily describes one metric family of ProbeMetrics. The table is
// read-only.
type probeFamily struct {
	name, help string
	labels     []string // variable labels, in the order of prometheus.NewDesc
	kind       dto.MetricType
}

var (
	baseLabels = []string{"service", "probe"}

	familyInfo = probeFamily{"probe_info", "Static description of a probe: its type and target.",
		[]string{"service", "probe", "type", "target"}, dto.MetricType_GAUGE}
	familyRuns = probeFamily{"probe_runs_total", "Runs of the probe since the daemon started.",
		baseLabels, dto.MetricType_COUNTER}
	familyFailures = probeFamily{"probe_failures_total", "Failed runs of the probe by reason. A reason appears once it has occurred.",
		[]string{"service", "probe", "reason"}, dto.MetricType_COUNTER}
	familyLatency = probeFamily{"probe_latency_seconds", "Wall time of the successful runs of the probe.",
		baseLabels, dto.MetricType_HISTOGRAM}
	familySuccess = probeFamily{"probe_success", "Whether the last run of the probe succeeded (1) or failed (0).",
		baseLabels, dto.MetricType_GAUGE}
	familyDuration = probeFamily{"probe_duration_seconds", "Wall time of the last run of the probe.",
		baseLabels, dto.MetricType_GAUGE}
	familyLastRun = probeFamily{"probe_last_run_timestamp_seconds", "When the last run of the probe started.",
		baseLabels, dto.MetricType_GAUGE}
	familyPhase = probeFamily{"probe_phase_duration_seconds", "Duration of each phase of the last run of the probe.",
		[]string{"service", "probe", "phase"}, dto.MetricType_GAUGE}
	familyStatusCode = probeFamily{"probe_http_status_code", "HTTP status code of the last run's final response, 0 if none.",
		baseLabels, dto.MetricType_GAUGE}
	familyTLSEarliest = probeFamily{"probe_tls_earliest_cert_expiry_timestamp_seconds",
		"Earliest NotAfter in the certificate chain seen by the last run that made a TLS connection.", baseLabels, dto.MetricType_GAUGE}
	familyTLSLeaf = probeFamily{"probe_tls_leaf_cert_expiry_timestamp_seconds",
		"NotAfter of the server certificate seen by the last run that made a TLS connection.", baseLabels, dto.MetricType_GAUGE}

	// probeFamilies lists every family, in the order EachFamily emits them.
	probeFamilies = []probeFamily{familyInfo, familyRuns, familyFailures, familyLatency, familySuccess,
		familyDuration, familyLastRun, familyPhase, familyStatusCode, familyTLSEarliest, familyTLSLeaf}
)

// probeLabels are the label pairs of one probe, built when the probe is
// configured and shared read-only by every scrape.
type probeLabels struct {
	probe, service, target, kind *dto.LabelPair
}

func newProbeLabels(info ProbeInfo) probeLabels {
	return probeLabels{
		probe:   LabelPair("probe", info.ID.Probe),
		service: LabelPair("service", info.ID.Service),
		target:  LabelPair("target", info.Target),
		kind:    LabelPair("type", info.Type),
	}
}

// EachFamily calls emit with every probe metric family that has series,
// one family at a time, all built from one snapshot of the figures. Series
// come sorted by label values, as the exposition formats want them. A
// family is only valid during the call: EachFamily keeps nothing, so a
// scrape holds one family in memory, never the whole scrape. It stops at
// the first error emit returns.
func (m *ProbeMetrics) EachFamily(emit func(*dto.MetricFamily) error) error {
	return m.eachFamily(emit, true)
}

// eachFamily implements EachFamily. With reuse, the memory of a family is
// reused for the next one once emit returned, which keeps a scrape's
// allocations to about one family's size; Collect cannot reuse, because a
// registry keeps the series it was sent until the scrape is written.
func (m *ProbeMetrics) eachFamily(emit func(*dto.MetricFamily) error, reuse bool) error {
	b := familyBuilder{probes: m.snapshot(), reuse: reuse}
	steps := []func() *dto.MetricFamily{
		b.info, b.runs, b.failures, b.latency,
		b.lastRun(familySuccess, func(p *probeCopy) (float64, bool) { return boolToFloat(p.figures.last.Success), true }),
		b.lastRun(familyDuration, func(p *probeCopy) (float64, bool) { return p.figures.last.Duration.Seconds(), true }),
		b.lastRun(familyLastRun, func(p *probeCopy) (float64, bool) {
			return float64(p.figures.last.Start.UnixNano()) / 1e9, true
		}),
		b.phases,
		b.lastRun(familyStatusCode, func(p *probeCopy) (float64, bool) {
			return float64(p.figures.last.StatusCode), p.info.Type == "http" || p.info.Type == "transaction"
		}),
		b.lastRun(familyTLSEarliest, func(p *probeCopy) (float64, bool) {
			tls := p.figures.last.TLS
			return tlsExpiry(tls, func(t *TLSState) float64 { return unixSeconds(t.EarliestExpiry) })
		}),
		b.lastRun(familyTLSLeaf, func(p *probeCopy) (float64, bool) {
			tls := p.figures.last.TLS
			return tlsExpiry(tls, func(t *TLSState) float64 { return unixSeconds(t.LeafExpiry) })
		}),
	}
	steps = append(steps, b.typeSteps()...)
	for _, step := range steps {
		if mf := step(); len(mf.Metric) > 0 {
			if err := emit(mf); err != nil {
				return err
			}
		}
	}
	return nil
}

func tlsExpiry(tls *TLSState, expiry func(*TLSState) float64) (float64, bool) {
	if tls == nil {
		return 0, false
	}
	return expiry(tls), true
}

// familyBuilder builds families from a snapshot. Each family's metrics,
// values and label slices are allocated in a few slabs rather than per
// series.
type familyBuilder struct {
	probes []probeCopy
	reuse  bool
	spare  *FamilyBuffer // the previous family's memory, when reuse is set
}

// newSlab returns a buffer started for capacity series of family: the
// previous family's buffer when the builder reuses memory, else a new one.
func (b *familyBuilder) newSlab(family probeFamily, capacity int) *FamilyBuffer {
	s := b.spare
	if s == nil || !b.reuse {
		s = &FamilyBuffer{}
	}
	b.spare = s
	s.Start(family.name, family.help, family.kind, capacity, len(family.labels))
	return s
}

func (b *familyBuilder) info() *dto.MetricFamily {
	s := b.newSlab(familyInfo, len(b.probes))
	for i := range b.probes {
		l := &b.probes[i].labels
		s.Add(1, l.probe, l.service, l.target, l.kind)
	}
	return s.Family()
}

func (b *familyBuilder) runs() *dto.MetricFamily {
	s := b.newSlab(familyRuns, len(b.probes))
	for i := range b.probes {
		p := &b.probes[i]
		s.Add(float64(p.figures.runs), p.labels.probe, p.labels.service)
	}
	return s.Family()
}

func (b *familyBuilder) failures() *dto.MetricFamily {
	count := 0
	for i := range b.probes {
		for _, n := range b.probes[i].figures.failures {
			if n > 0 {
				count++
			}
		}
	}
	s := b.newSlab(familyFailures, count)
	// The reason label sorts between probe and service: within each probe
	// name, reasons come first, then services.
	b.eachProbeName(func(group []probeCopy) {
		for _, reason := range reasonsByName {
			for i := range group {
				p := &group[i]
				if n := p.figures.failures[reason]; n > 0 {
					s.Add(float64(n), p.labels.probe, reasonPairs[reason], p.labels.service)
				}
			}
		}
	})
	return s.Family()
}

// eachProbeName calls f with each run of probes sharing a probe name (two
// services may both have a probe "home"), in order: families with a label
// sorting between probe and service order their series within such runs.
func (b *familyBuilder) eachProbeName(f func(group []probeCopy)) {
	for start := 0; start < len(b.probes); {
		end := start + 1
		for end < len(b.probes) && b.probes[end].info.ID.Probe == b.probes[start].info.ID.Probe {
			end++
		}
		f(b.probes[start:end])
		start = end
	}
}

// lastRun returns a step building a family with one series per probe that
// has run and for which value reports ok.
func (b *familyBuilder) lastRun(family probeFamily, value func(*probeCopy) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		s := b.newSlab(family, len(b.probes))
		for i := range b.probes {
			p := &b.probes[i]
			if p.figures.last.Start.IsZero() {
				continue // never ran: no last-run figures to report
			}
			if v, ok := value(p); ok {
				s.Add(v, p.labels.probe, p.labels.service)
			}
		}
		return s.Family()
	}
}

func (b *familyBuilder) phases() *dto.MetricFamily {
	s := b.newSlab(familyPhase, len(b.probes)*int(numPhases))
	for _, phase := range phasesByName {
		for i := range b.probes {
			p := &b.probes[i]
			if d, ok := p.figures.last.Phases.Get(phase); ok && !p.figures.last.Start.IsZero() {
				s.Add(d.Seconds(), phasePairs[phase], p.labels.probe, p.labels.service)
			}
		}
	}
	return s.Family()
}

func (b *familyBuilder) latency() *dto.MetricFamily {
	n := len(b.probes)
	metrics := make([]dto.Metric, n)
	histograms := make([]dto.Histogram, n)
	buckets := make([]dto.Bucket, n*len(latencyBuckets))
	bucketPtrs := make([]*dto.Bucket, n*len(latencyBuckets))
	cumulative := make([]uint64, n*len(latencyBuckets))
	labels := make([]*dto.LabelPair, 0, 2*n)
	out := make([]*dto.Metric, n)
	for i := range b.probes {
		p := &b.probes[i]
		var running uint64
		for j := range latencyBuckets {
			k := i*len(latencyBuckets) + j
			running += p.figures.bucketCount[j]
			cumulative[k] = running
			buckets[k].CumulativeCount = &cumulative[k]
			buckets[k].UpperBound = &latencyBuckets[j]
			bucketPtrs[k] = &buckets[k]
		}
		h := &histograms[i]
		h.SampleCount = &p.figures.latencyN
		h.SampleSum = &p.figures.latencySum
		h.Bucket = bucketPtrs[i*len(latencyBuckets) : (i+1)*len(latencyBuckets) : (i+1)*len(latencyBuckets)]
		labels = append(labels, p.labels.probe, p.labels.service)
		metrics[i].Label = labels[2*i : 2*i+2 : 2*i+2]
		metrics[i].Histogram = h
		out[i] = &metrics[i]
	}
	return &dto.MetricFamily{Name: proto.String(familyLatency.name), Help: proto.String(familyLatency.help),
		Type: familyLatency.kind.Enum(), Metric: out}
}

// Label pairs whose value is fixed by the code, shared read-only, and the
// reasons' indexes in the order of their names.
var (
	reasonsByName = sortedReasonIndexes()
	// phasesByName orders the phases by name, so the series come sorted.
	phasesByName = sortedPhases()
	phasePairs   = FixedLabelPairs("phase", phaseNames[:])
	reasonPairs  = FixedLabelPairs("reason", reasonStrings())
)

func sortedPhases() []Phase {
	phases := AllPhases()
	sort.Slice(phases, func(a, b int) bool { return phases[a].String() < phases[b].String() })
	return phases
}

func sortedReasonIndexes() []int {
	order := make([]int, len(reasonIndex))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return reasonIndex[order[a]] < reasonIndex[order[b]] })
	return order
}

func reasonStrings() []string {
	out := make([]string, len(reasonIndex))
	for i, r := range reasonIndex {
		out[i] = string(r)
	}
	return out
}
