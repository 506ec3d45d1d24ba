package collector

import (
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// FamilyBuffer builds one metric family of gauges or counters at a time in
// memory it reuses for the next one: the metrics, values and label slices
// of a family are a few slabs rather than allocations per series. /metrics
// streams the probe and SLO families through it, so a scrape holds about
// one family, never the whole exposition. A family returned by Family is
// valid until the next Start. Not safe for concurrent use.
type FamilyBuffer struct {
	name, help string
	kind       dto.MetricType
	metrics    []dto.Metric
	values     []float64
	gauges     []dto.Gauge
	counts     []dto.Counter
	labels     []*dto.LabelPair
	out        []*dto.Metric
}

// Start begins a family of up to capacity series with labelsPerSeries
// labels each (a hint; more labels still fit).
func (b *FamilyBuffer) Start(name, help string, kind dto.MetricType, capacity, labelsPerSeries int) {
	b.name, b.help, b.kind = name, help, kind
	b.metrics = grow(b.metrics, capacity)
	b.values = grow(b.values, capacity)
	b.labels = grow(b.labels, capacity*labelsPerSeries)[:0]
	b.out = grow(b.out, capacity)[:0]
	if kind == dto.MetricType_COUNTER {
		b.counts = grow(b.counts, capacity)
	} else {
		b.gauges = grow(b.gauges, capacity)
	}
}

// grow returns a zeroed slice of length n, reusing buf's memory when it
// is large enough.
func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// Add appends a series with value and label pairs, which must be sorted by
// label name. At most capacity series fit.
func (b *FamilyBuffer) Add(value float64, pairs ...*dto.LabelPair) {
	i := len(b.out)
	metric := &b.metrics[i]
	b.values[i] = value
	start := len(b.labels)
	b.labels = append(b.labels, pairs...)
	metric.Label = b.labels[start:len(b.labels):len(b.labels)]
	if b.kind == dto.MetricType_COUNTER {
		b.counts[i].Value = &b.values[i]
		metric.Counter = &b.counts[i]
	} else {
		b.gauges[i].Value = &b.values[i]
		metric.Gauge = &b.gauges[i]
	}
	b.out = append(b.out, metric)
}

// Family returns the family built since Start.
func (b *FamilyBuffer) Family() *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(b.name), Help: proto.String(b.help), Type: b.kind.Enum(), Metric: b.out}
}

// LabelPair returns a label pair for a family's series.
func LabelPair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// FixedLabelPairs returns a pair for each value of a label whose values
// the code fixes, built once and shared read-only.
func FixedLabelPairs(name string, values []string) []*dto.LabelPair {
	pairs := make([]*dto.LabelPair, len(values))
	for i, v := range values {
		pairs[i] = LabelPair(name, v)
	}
	return pairs
}
