package collector

import (
	"bytes"
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// edgeFamilies are families with the values and strings FamilyWriter must
// format exactly as expfmt: special floats, integers that need ".0" in
// OpenMetrics, large and small exponents, escaping in HELP and label
// values, series without labels, histograms with and without an explicit
// +Inf bucket.
func edgeFamilies() []*dto.MetricFamily {
	values := []float64{0, 1, -1, 2, -2.5, 0.1, 1e21, 1e-7, 123456789012, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64}
	gauge := &dto.MetricFamily{Name: proto.String("edge_gauge"), Help: proto.String(`back\slash "quoted" and` + "\nnewline"),
		Type: dto.MetricType_GAUGE.Enum()}
	for i, v := range values {
		gauge.Metric = append(gauge.Metric, &dto.Metric{
			Label: []*dto.LabelPair{LabelPair("a", strings.Repeat("x", i)), LabelPair("b", "q\"uote\\back\nline")},
			Gauge: &dto.Gauge{Value: proto.Float64(v)},
		})
	}
	gauge.Metric = append(gauge.Metric, &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(3)}})
	counter := &dto.MetricFamily{Name: proto.String("edge_events_total"), Help: proto.String("plain help"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{LabelPair("result", "good")}, Counter: &dto.Counter{Value: proto.Float64(42)}},
			{Counter: &dto.Counter{Value: proto.Float64(0.5)}},
		}}
	bucket := func(upper float64, count uint64) *dto.Bucket {
		return &dto.Bucket{UpperBound: proto.Float64(upper), CumulativeCount: proto.Uint64(count)}
	}
	histogram := &dto.MetricFamily{Name: proto.String("edge_seconds"), Help: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{LabelPair("probe", "p")}, Histogram: &dto.Histogram{SampleCount: proto.Uint64(7), SampleSum: proto.Float64(1.25),
				Bucket: []*dto.Bucket{bucket(0.005, 1), bucket(1, 5), bucket(10, 7)}}},
			{Histogram: &dto.Histogram{SampleCount: proto.Uint64(2), SampleSum: proto.Float64(3),
				Bucket: []*dto.Bucket{bucket(1, 1), bucket(math.Inf(1), 2)}}},
		}}
	return []*dto.MetricFamily{gauge, counter, histogram}
}

// TestFamilyWriterMatchesExpfmt: for the probe families of the metrics
// fixture and for edge cases, in both formats, FamilyWriter writes the
// same bytes as expfmt's encoders.
func TestFamilyWriterMatchesExpfmt(t *testing.T) {
	var families []*dto.MetricFamily
	// Collect (not EachFamily) builds families that stay valid.
	if err := metricsFixture().eachFamily(func(mf *dto.MetricFamily) error {
		families = append(families, mf)
		return nil
	}, false); err != nil {
		t.Fatal(err)
	}
	if len(families) < 10 {
		t.Fatalf("only %d probe families in the fixture", len(families))
	}
	families = append(families, edgeFamilies()...)
	for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
		var want, got bytes.Buffer
		encoder := expfmt.NewEncoder(&want, format)
		writer := NewFamilyWriter(&got, format.FormatType() == expfmt.TypeOpenMetrics)
		for _, mf := range families {
			if err := encoder.Encode(mf); err != nil {
				t.Fatalf("expfmt %s: %v", format, err)
			}
			if err := writer.Encode(mf); err != nil {
				t.Fatalf("FamilyWriter %s: %v", format, err)
			}
		}
		if got.String() != want.String() {
			t.Errorf("%s: FamilyWriter differs from expfmt:\n%s", format, lineDiff(want.String(), got.String()))
		}
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)) && len(out) < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			out = append(out, "want: "+wl, "got:  "+gl)
		}
	}
	return strings.Join(out, "\n")
}

func TestFamilyWriterRejectsSummaries(t *testing.T) {
	mf := &dto.MetricFamily{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum()}
	if err := NewFamilyWriter(&bytes.Buffer{}, false).Encode(mf); err == nil {
		t.Error("a summary was accepted")
	}
}
