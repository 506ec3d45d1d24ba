package main

import (
	"math"
	"testing"
	"time"
)

func TestValidateDrill(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   drillJSON
		want string
	}{
		{"valid", drillJSON{Result: "pass", DurationSeconds: 1500, Time: now}, ""},
		{"valid failure, a year ago", drillJSON{Result: "fail", DurationSeconds: 0, Time: now.AddDate(-1, 0, 0)}, ""},
		{"bad result", drillJSON{Result: "maybe", Time: now}, `result must be "pass" or "fail"`},
		{"negative duration", drillJSON{Result: "pass", DurationSeconds: -1, Time: now}, "duration_seconds must be from 0 to 604800 (a week)"},
		{"huge duration", drillJSON{Result: "pass", DurationSeconds: 1e19, Time: now}, "duration_seconds must be from 0 to 604800 (a week)"},
		{"NaN duration", drillJSON{Result: "pass", DurationSeconds: math.NaN(), Time: now}, "duration_seconds must be from 0 to 604800 (a week)"},
		{"future", drillJSON{Result: "pass", Time: now.Add(time.Hour)}, "time is in the future"},
		{"slightly ahead (clock skew)", drillJSON{Result: "pass", Time: now.Add(time.Minute)}, ""},
		{"ancient", drillJSON{Result: "pass", Time: now.AddDate(-11, 0, 0)}, "time is more than ten years ago"},
	}
	for _, tt := range tests {
		if got := validateDrill(&tt.in, now); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
