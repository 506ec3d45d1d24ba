package collector

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestCountStepFailures: failed steps are counted by step and reason in
// the order of their series, steps not run are not counted, steps the
// transaction no longer has are dropped, and a slice a snapshot may share
// is never modified.
func TestCountStepFailures(t *testing.T) {
	failAt := func(failed string, reason Reason, names ...string) []StepResult {
		steps := make([]StepResult, len(names))
		ran := true
		for i, name := range names {
			steps[i] = StepResult{Name: name, Ran: ran, Success: ran && name != failed}
			if name == failed {
				steps[i].Reason = reason
				ran = false
			}
		}
		return steps
	}
	var counts []stepFailure
	counts = countStepFailures(counts, failAt("", "", "login", "cart"))
	if counts != nil {
		t.Fatalf("a successful run counted %v", counts)
	}
	counts = countStepFailures(counts, failAt("cart", ReasonStatus, "login", "cart", "pay"))
	counts = countStepFailures(counts, failAt("cart", ReasonStatus, "login", "cart", "pay"))
	counts = countStepFailures(counts, failAt("login", ReasonTimeout, "login", "cart", "pay"))
	shared := counts
	sharedCopy := append([]stepFailure(nil), shared...)
	counts = countStepFailures(counts, failAt("cart", ReasonAssertion, "login", "cart", "pay"))
	want := []stepFailure{
		{step: "cart", reason: indexOfReason(ReasonAssertion), n: 1},
		{step: "cart", reason: indexOfReason(ReasonStatus), n: 2},
		{step: "login", reason: indexOfReason(ReasonTimeout), n: 1},
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("counts = %+v, want %+v", counts, want)
	}
	if !reflect.DeepEqual(shared, sharedCopy) {
		t.Errorf("an earlier slice changed: %+v, was %+v", shared, sharedCopy)
	}
	// "cart" renamed to "basket": its counts go, login's stay.
	counts = countStepFailures(counts, failAt("", "", "login", "basket", "pay"))
	want = []stepFailure{{step: "login", reason: indexOfReason(ReasonTimeout), n: 1}}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("after the rename, counts = %+v, want %+v", counts, want)
	}
}

// TestFamiliesSortedAcrossServices: two services may have probes of the
// same name; series of families whose labels sort between probe and
// service (reason, section) still come in the registry's order.
func TestFamiliesSortedAcrossServices(t *testing.T) {
	m := NewProbeMetrics()
	m.SetProbes([]ProbeInfo{
		{ID: ProbeID{"a", "resolver"}, Type: "dns"},
		{ID: ProbeID{"b", "resolver"}, Type: "dns"},
		{ID: ProbeID{"a", "checkout"}, Type: "transaction"},
		{ID: ProbeID{"b", "checkout"}, Type: "transaction"},
	})
	start := time.Unix(1_800_000_000, 0)
	m.Record(ProbeID{"a", "resolver"}, Result{Start: start, Success: true, DNS: &DNSResult{Answer: 1}})
	m.Record(ProbeID{"b", "resolver"}, Result{Start: start, Success: true, DNS: &DNSResult{Answer: 2}})
	m.Record(ProbeID{"a", "checkout"}, Result{Start: start, Reason: ReasonTimeout, Steps: []StepResult{{Name: "login", Ran: true, Reason: ReasonTimeout}}})
	m.Record(ProbeID{"b", "checkout"}, Result{Start: start, Reason: ReasonDNS, Steps: []StepResult{{Name: "login", Ran: true, Reason: ReasonDNS}}})
	streamed := map[string]string{}
	if err := m.EachFamily(func(mf *dto.MetricFamily) error {
		var b strings.Builder
		expfmt.MetricFamilyToText(&b, mf)
		streamed[mf.GetName()] = b.String()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) < 10 {
		t.Fatalf("only %d families gathered", len(fams))
	}
	for _, mf := range fams {
		var b strings.Builder
		expfmt.MetricFamilyToText(&b, mf)
		if streamed[mf.GetName()] != b.String() {
			t.Errorf("%s streamed:\n%s\nregistry:\n%s", mf.GetName(), streamed[mf.GetName()], b.String())
		}
	}
}
