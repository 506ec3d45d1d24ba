package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// probeLabels holds the label pairs of one probe's series, built when the
// probe is configured and shared, read-only, by every scrape. Pairs are in
// label-name order, as the exposition wants them.
type probeLabels struct {
	base  []*dto.LabelPair // probe, service
	info  []*dto.LabelPair // probe, service, target, type
	phase [numPhases][]*dto.LabelPair
	// reasons is filled at the first failure of each reason: most probes
	// never see most reasons. Guarded by the probe state's mutex.
	reasons *[len(reasonIndex)][]*dto.LabelPair
}

// sharedPairs are label pairs whose value is fixed by the code.
var (
	phasePairs  = makeFixedPairs("phase", phaseNames[:])
	reasonPairs = makeFixedPairs("reason", reasonStrings())
)

func reasonStrings() []string {
	out := make([]string, len(reasonIndex))
	for i, r := range reasonIndex {
		out[i] = string(r)
	}
	return out
}

func makeFixedPairs(name string, values []string) []*dto.LabelPair {
	pairs := make([]*dto.LabelPair, len(values))
	for i, v := range values {
		pairs[i] = &dto.LabelPair{Name: proto.String(name), Value: proto.String(v)}
	}
	return pairs
}

func newProbeLabels(info ProbeInfo) probeLabels {
	probe := &dto.LabelPair{Name: proto.String("probe"), Value: proto.String(info.ID.Probe)}
	service := &dto.LabelPair{Name: proto.String("service"), Value: proto.String(info.ID.Service)}
	labels := probeLabels{
		base: []*dto.LabelPair{probe, service},
		info: []*dto.LabelPair{probe, service,
			{Name: proto.String("target"), Value: proto.String(info.Target)},
			{Name: proto.String("type"), Value: proto.String(info.Type)}},
		reasons: new([len(reasonIndex)][]*dto.LabelPair),
	}
	for phase := range labels.phase {
		labels.phase[phase] = []*dto.LabelPair{phasePairs[phase], probe, service}
	}
	return labels
}

// fillReason builds the pairs of reason number i if they are not yet. The
// caller holds the probe state's lock.
func (l probeLabels) fillReason(i int) {
	if l.reasons[i] == nil {
		l.reasons[i] = []*dto.LabelPair{l.base[0], reasonPairs[i], l.base[1]}
	}
}

// valueMetric is a gauge or counter sample with prebuilt label pairs: a
// lighter prometheus.MustNewConstMetric, which would build and sort the
// pairs again on every scrape.
type valueMetric struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	value   float64
	counter bool
}

// Desc implements prometheus.Metric.
func (m *valueMetric) Desc() *prometheus.Desc { return m.desc }

// Write implements prometheus.Metric.
func (m *valueMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	if m.counter {
		out.Counter = &dto.Counter{Value: &m.value}
	} else {
		out.Gauge = &dto.Gauge{Value: &m.value}
	}
	return nil
}

// latencyMetric is a probe's probe_latency_seconds histogram.
type latencyMetric struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	count   uint64
	sum     float64
	buckets [len(latencyBuckets)]dto.Bucket
	cumul   [len(latencyBuckets)]uint64
}

func newLatencyMetric(desc *prometheus.Desc, labels []*dto.LabelPair, f *probeFigures) *latencyMetric {
	m := &latencyMetric{desc: desc, labels: labels, count: f.latencyN, sum: f.latencySum}
	var cumulative uint64
	for i := range latencyBuckets {
		cumulative += f.bucketCount[i]
		m.cumul[i] = cumulative
		m.buckets[i] = dto.Bucket{CumulativeCount: &m.cumul[i], UpperBound: &latencyBuckets[i]}
	}
	return m
}

// Desc implements prometheus.Metric.
func (m *latencyMetric) Desc() *prometheus.Desc { return m.desc }

// Write implements prometheus.Metric.
func (m *latencyMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	buckets := make([]*dto.Bucket, len(m.buckets))
	for i := range m.buckets {
		buckets[i] = &m.buckets[i]
	}
	out.Histogram = &dto.Histogram{SampleCount: &m.count, SampleSum: &m.sum, Bucket: buckets}
	return nil
}
