package collector

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

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

// FamilyWriter writes gauge, counter and histogram families in the
// Prometheus text format (0.0.4) or OpenMetrics 1.0, byte for byte as
// expfmt does (a test holds it to that), but several times faster: it
// trusts what the daemon builds (valid names, label pairs in order) and
// skips expfmt's per-sample validation, and it escapes a label value only
// when it holds a character that needs it. /metrics streams hundreds of
// thousands of probe and SLO series through it. Exemplars, created
// timestamps and summaries are not supported: the streamed families have
// none. Not safe for concurrent use.
type FamilyWriter struct {
	w           io.Writer
	openMetrics bool
	buf         []byte
}

// NewFamilyWriter returns a writer of the text format, or of OpenMetrics
// when openMetrics is set. The caller writes OpenMetrics' final "# EOF".
func NewFamilyWriter(w io.Writer, openMetrics bool) *FamilyWriter {
	return &FamilyWriter{w: w, openMetrics: openMetrics, buf: make([]byte, 0, 64<<10)}
}

// Encode writes one family.
func (fw *FamilyWriter) Encode(mf *dto.MetricFamily) error {
	name := mf.GetName()
	typeName := name
	if fw.openMetrics && mf.GetType() == dto.MetricType_COUNTER {
		typeName = strings.TrimSuffix(name, "_total")
	}
	b := fw.buf[:0]
	if mf.Help != nil {
		b = append(b, "# HELP "...)
		b = append(b, typeName...)
		b = append(b, ' ')
		b = fw.appendHelp(b, mf.GetHelp())
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, typeName...)
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		b = append(b, " counter\n"...)
	case dto.MetricType_GAUGE:
		b = append(b, " gauge\n"...)
	case dto.MetricType_HISTOGRAM:
		b = append(b, " histogram\n"...)
	default:
		return fmt.Errorf("family %s: type %s is not supported", name, mf.GetType())
	}
	for _, m := range mf.Metric {
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			b = fw.appendSample(b, name, "", m.Label, "", 0, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			b = fw.appendSample(b, name, "", m.Label, "", 0, m.GetGauge().GetValue())
		case dto.MetricType_HISTOGRAM:
			b = fw.appendHistogram(b, name, m)
		}
		if len(b) > 48<<10 {
			if _, err := fw.w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	fw.buf = b[:0]
	_, err := fw.w.Write(b)
	return err
}

func (fw *FamilyWriter) appendHistogram(b []byte, name string, m *dto.Metric) []byte {
	h := m.GetHistogram()
	infSeen := false
	for _, bucket := range h.Bucket {
		upper := bucket.GetUpperBound()
		infSeen = infSeen || math.IsInf(upper, +1)
		b = fw.appendCountSample(b, name, "_bucket", m.Label, "le", upper, bucket.GetCumulativeCount())
	}
	if !infSeen {
		b = fw.appendCountSample(b, name, "_bucket", m.Label, "le", math.Inf(+1), h.GetSampleCount())
	}
	b = fw.appendSample(b, name, "_sum", m.Label, "", 0, h.GetSampleSum())
	return fw.appendCountSample(b, name, "_count", m.Label, "", 0, h.GetSampleCount())
}

// appendCountSample writes a histogram count: a float in the text format,
// an integer in OpenMetrics, as expfmt does.
func (fw *FamilyWriter) appendCountSample(b []byte, name, suffix string, labels []*dto.LabelPair, extra string, extraValue float64, count uint64) []byte {
	if !fw.openMetrics {
		return fw.appendSample(b, name, suffix, labels, extra, extraValue, float64(count))
	}
	b = fw.appendSeries(b, name, suffix, labels, extra, extraValue)
	b = strconv.AppendUint(b, count, 10)
	return append(b, '\n')
}

// appendSample writes name+suffix{labels[,extra="extraValue"]} value.
func (fw *FamilyWriter) appendSample(b []byte, name, suffix string, labels []*dto.LabelPair, extra string, extraValue, value float64) []byte {
	b = fw.appendSeries(b, name, suffix, labels, extra, extraValue)
	b = fw.appendFloat(b, value)
	return append(b, '\n')
}

// appendSeries writes a sample line up to its value.
func (fw *FamilyWriter) appendSeries(b []byte, name, suffix string, labels []*dto.LabelPair, extra string, extraValue float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	b = fw.appendLabels(b, labels, extra, extraValue)
	return append(b, ' ')
}

func (fw *FamilyWriter) appendLabels(b []byte, labels []*dto.LabelPair, extra string, extraValue float64) []byte {
	if len(labels) == 0 && extra == "" {
		return b
	}
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.GetName()...)
		b = append(b, `="`...)
		b = appendEscaped(b, l.GetValue(), true)
		b = append(b, '"')
	}
	if extra != "" {
		if len(labels) > 0 {
			b = append(b, ',')
		}
		b = append(b, extra...)
		b = append(b, `="`...)
		b = fw.appendFloat(b, extraValue)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendFloat formats as expfmt's writeFloat (text) and
// writeOpenMetricsFloat do.
func (fw *FamilyWriter) appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if fw.openMetrics && !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

func (fw *FamilyWriter) appendHelp(b []byte, help string) []byte {
	// The text format escapes backslash and newline in HELP; OpenMetrics
	// also the double quote.
	return appendEscaped(b, help, fw.openMetrics)
}

// needsEscape is strings.ContainsAny for the escaped characters, several
// times faster on the short strings of label values.
func needsEscape(s string, quote bool) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\n' || (quote && c == '"') {
			return true
		}
	}
	return false
}

// appendEscaped appends s with backslash, newline and (when quote is set)
// double quote escaped.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !needsEscape(s, quote) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
