package slo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// savedState returns the state of an engine with the reload test's SLOs
// and a day of runs every 30 seconds.
func savedState(t testing.TB) ([]byte, *Engine) {
	now := utc("2026-11-23T12:00:00Z")
	e := NewEngine(EngineOptions{Now: func() time.Time { return now }})
	cfgYAML := sloYAML(`
      - {name: a, objective: 99, window: 7d, sli: {probes: [home]}}
      - {name: m, objective: 99, calendar: month, timezone: Europe/Berlin, sli: {probes: [home, api]}}
`)
	applyYAML(t.(*testing.T), e, cfgYAML)
	var events []event
	for i := range 2880 {
		events = append(events, event{at: now.Add(-time.Duration(i) * 30 * time.Second), probe: "home", success: i%100 != 0})
	}
	record(e, "shop", events)
	state, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	return state, e
}

func TestStateRoundTrip(t *testing.T) {
	state, original := savedState(t)
	// Steady probing fills buckets with equal counts: the runs keep the
	// section far below one byte per bucket (2 SLOs × ~1,000-1,700 slots).
	if len(state) > 1500 {
		t.Errorf("state of 2 SLOs with steady probing is %d bytes, want run-length encoding to keep it under 1500", len(state))
	}
	restored := NewEngine(EngineOptions{})
	if err := restored.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	again, err := restored.MarshalState()
	if err != nil || !bytes.Equal(again, state) {
		t.Fatalf("state changed across a round trip (err %v)", err)
	}
	applyYAML(t, restored, sloYAML(`
      - {name: a, objective: 99, window: 7d, sli: {probes: [home]}}
      - {name: m, objective: 99, calendar: month, timezone: Europe/Berlin, sli: {probes: [home, api]}}
`))
	now := utc("2026-11-23T12:00:00Z")
	want, got := original.Evaluate(now), restored.Evaluate(now)
	for i := range want.SLOs {
		w, g := want.SLOs[i], got.SLOs[i]
		if w.Windows != g.Windows || w.Good != g.Good || w.Bad != g.Bad || !w.WindowStart.Equal(g.WindowStart) {
			t.Errorf("%s restored: %+v, want %+v", w.Name, g.Windows, w.Windows)
		}
	}
}

// TestStateRejectsDamage: every truncation, an unknown version, trailing
// bytes and out-of-range values are errors that restore nothing.
func TestStateRejectsDamage(t *testing.T) {
	state, _ := savedState(t)
	for cut := 0; cut < len(state); cut++ {
		e := NewEngine(EngineOptions{})
		if err := e.UnmarshalState(state[:cut]); err == nil {
			t.Fatalf("a state cut at %d of %d bytes was accepted", cut, len(state))
		}
		if len(e.orphans) != 0 {
			t.Fatalf("a state cut at %d bytes restored %d SLOs", cut, len(e.orphans))
		}
	}
	tests := []struct {
		name   string
		damage func([]byte) []byte
		msg    string
	}{
		{"unknown version", func(b []byte) []byte { b[0] = 9; return b }, "unknown version 9"},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0) }, "trailing"},
		{"huge count", func(b []byte) []byte { return append([]byte{1, 0xff, 0xff, 0xff, 0x0f}, b[2:]...) }, "exceeds"},
	}
	for _, tt := range tests {
		damaged := tt.damage(bytes.Clone(state))
		err := NewEngine(EngineOptions{}).UnmarshalState(damaged)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.msg)
		}
	}
}

// FuzzUnmarshalState: no input panics, and what is accepted marshals back
// to the same bytes.
func FuzzUnmarshalState(f *testing.F) {
	state, _ := savedState(&testing.T{})
	f.Add(state)
	f.Add([]byte{sloStateVersion, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e := NewEngine(EngineOptions{})
		if err := e.UnmarshalState(data); err != nil {
			return
		}
		again, err := e.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			// Equal buckets written as separate runs merge, and keys sort:
			// accepted input need not be canonical, but it must be stable.
			e2 := NewEngine(EngineOptions{})
			if err := e2.UnmarshalState(again); err != nil {
				t.Fatalf("re-marshalled state is rejected: %v", err)
			}
			third, _ := e2.MarshalState()
			if !bytes.Equal(third, again) {
				t.Fatal("marshalling is not stable")
			}
		}
	})
}
