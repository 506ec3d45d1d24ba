package collector

import (
	"reflect"
	"testing"
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
