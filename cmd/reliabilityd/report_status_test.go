package main

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/slo"
)

// sloStatus returns an availability SLO of objective 99 % over 1d whose
// full window holds good and bad events, and whose burn-rate windows hold
// the counts of windows (by window index).
func sloStatus(good, bad float64, windows map[int]slo.WindowEvents) *slo.SLOStatus {
	s := &slo.SLOStatus{Definition: &slo.Definition{Service: "shop", Name: "availability", Objective: 0.99, ErrorBudget: 0.01,
		Window: 24 * time.Hour}, WindowLength: 24 * time.Hour}
	s.Windows[slo.WindowFull] = slo.WindowEvents{Good: good, Bad: bad}
	for w, c := range windows {
		s.Windows[w] = c
	}
	return s
}

// resource returns a resource with a headroom target of 25 % and, when
// usage is not negative, a reading of usage out of 100, with a trend
// growing by slope a second from usage.
func resource(usage, slope float64) *slo.ResourceStatus {
	r := &slo.ResourceStatus{ResourceDefinition: &slo.ResourceDefinition{Service: "shop", Name: "disk", HeadroomTarget: 0.25}}
	if usage >= 0 {
		r.HasUsage, r.Usage, r.Limit = true, usage, 100
		r.Trend, r.HasTrend = slo.Trend{Level: usage, Slope: slope, Samples: 10}, true
	}
	return r
}

// recovery returns recovery figures with an RTO of 1h, an RPO of 1h, a
// 30d window and drills due every 30 days, changed by edit.
func recovery(edit func(r *slo.RecoveryStatus)) *slo.RecoveryStatus {
	r := &slo.RecoveryStatus{RecoveryDefinition: &slo.RecoveryDefinition{Service: "shop", RTO: time.Hour, RPO: time.Hour,
		Window: 30 * 24 * time.Hour, DrillEvery: 30 * 24 * time.Hour}}
	edit(r)
	return r
}

func backup(name string, point time.Time, checks uint64, lastOK bool) slo.BackupStatus {
	b := slo.BackupStatus{Name: name}
	b.Point, b.Checks, b.LastOK = point, checks, lastOK
	return b
}

// probe returns a probe of shop whose last run succeeded or failed for
// reason; never run when start is zero.
func probe(name string, start time.Time, reason collector.Reason) collector.ProbeStatus {
	p := collector.ProbeStatus{ProbeInfo: collector.ProbeInfo{ID: collector.ProbeID{Service: "shop", Probe: name}}}
	if !start.IsZero() {
		p.Runs = 1
		p.Last = collector.Result{Start: start, Success: reason == "", Reason: reason}
	}
	return p
}

func TestAssess(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	inHours := slo.ServiceStatus{Service: "shop", InHours: true}
	ranOK := []collector.ProbeStatus{probe("home", now.Add(-time.Minute), "")}
	passedDrill := &slo.Drill{Service: "shop", Time: now.Add(-24 * time.Hour), Passed: true, Duration: 10 * time.Minute}
	tests := []struct {
		name    string
		figures serviceFigures
		want    status
		// findings are the findings' statuses and texts, in order.
		findings []finding
	}{
		{name: "nothing measured", figures: serviceFigures{
			SLOs: []*slo.SLOStatus{sloStatus(0, 0, nil)}, Resources: []*slo.ResourceStatus{resource(-1, 0)},
			Recovery: recovery(func(r *slo.RecoveryStatus) {
				r.DrillEvery = 0
				r.Backups = []slo.BackupStatus{backup("db", time.Time{}, 0, false)}
			}),
			Probes: []collector.ProbeStatus{probe("home", time.Time{}, "")}, Schedule: inHours,
		}, want: statusNoData},
		{name: "no SLO, no capacity, no recovery: the probes decide", figures: serviceFigures{Probes: ranOK, Schedule: inHours}, want: statusOK},
		{name: "SLO well within its objective", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(1000, 1, nil)}}, want: statusOK},

		// SLO attainment and budget.
		{name: "SLO below its objective", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(75, 25, nil)}}, want: statusFailing,
			findings: []finding{{statusFailing, "slo", "SLO availability: 75.000 % attained over 1d, below the 99 % objective"}}},
		{name: "SLO exactly at its objective: budget spent", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(99, 1, nil)}}, want: statusFailing,
			findings: []finding{{statusFailing, "slo", "SLO availability: error budget of 1d spent"}}},
		{name: "less than a quarter of the budget left", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(992, 8, nil)}}, want: statusAtRisk,
			findings: []finding{{statusAtRisk, "slo", "SLO availability: only 20.000 % of the error budget left"}}},
		{name: "exactly a quarter of the budget left", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(397, 3, nil)}}, want: statusOK},

		// Burn rates: the alert rules' pairs, both windows above.
		{name: "fast burn over 1h and 5m", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(100000, 20, map[int]slo.WindowEvents{
			slo.Window1h: {Good: 80, Bad: 20}, slo.Window5m: {Good: 5, Bad: 5},
		})}}, want: statusAtRisk, findings: []finding{{statusAtRisk, "slo", "SLO availability: burning the error budget 20.0x as fast as allowed over 1h (50.0x over 5m)"}}},
		{name: "fast burn over 1h only: the short window has recovered", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(100000, 20, map[int]slo.WindowEvents{
			slo.Window1h: {Good: 80, Bad: 20}, slo.Window5m: {Good: 10},
		})}}, want: statusOK},
		{name: "slow burn over 3d and 6h", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(100000, 200, map[int]slo.WindowEvents{
			slo.Window3d: {Good: 980, Bad: 20}, slo.Window6h: {Good: 97, Bad: 3},
		})}}, want: statusAtRisk, findings: []finding{{statusAtRisk, "slo", "SLO availability: burning the error budget 2.0x as fast as allowed over 3d (3.0x over 6h)"}}},
		{name: "burn rate exactly at the threshold is not above it", figures: serviceFigures{SLOs: []*slo.SLOStatus{sloStatus(100000, 200, map[int]slo.WindowEvents{
			slo.Window3d: {Good: 990, Bad: 10}, slo.Window6h: {Good: 99, Bad: 1},
		})}}, want: statusOK},

		// Capacity.
		{name: "headroom below target", figures: serviceFigures{Resources: []*slo.ResourceStatus{resource(85, 0)}}, want: statusFailing,
			findings: []finding{{statusFailing, "capacity", "disk: 15.000 % headroom, below the 25 % target"}}},
		{name: "headroom exactly at target, flat", figures: serviceFigures{Resources: []*slo.ResourceStatus{resource(75, 0)}}, want: statusOK},
		{name: "runs out within 30 days", figures: serviceFigures{Resources: []*slo.ResourceStatus{resource(50, 50.0/(10*86400))}}, want: statusAtRisk,
			findings: []finding{{statusAtRisk, "capacity", "disk: runs out in 10d at the measured trend"}}},
		{name: "runs out in 31 days", figures: serviceFigures{Resources: []*slo.ResourceStatus{resource(50, 50.0/(31*86400))}}, want: statusOK},
		{name: "at the limit", figures: serviceFigures{Resources: []*slo.ResourceStatus{resource(100, 1)}}, want: statusFailing,
			findings: []finding{
				{statusFailing, "capacity", "disk: 0.000 % headroom, below the 25 % target"},
				{statusAtRisk, "capacity", "disk: at its limit at the measured trend"},
			}},
		{name: "no reading yet", figures: serviceFigures{Resources: []*slo.ResourceStatus{resource(-1, 0)}}, want: statusNoData},
		{name: "a reading without a limit", figures: serviceFigures{Resources: []*slo.ResourceStatus{func() *slo.ResourceStatus {
			r := resource(50, 1)
			r.Limit = 0
			return r
		}()}}, want: statusOK},

		// Recovery: RTO.
		{name: "open outage past the RTO", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.Current = &slo.Outage{Start: now.Add(-90 * time.Minute)}
			r.LastDrill = passedDrill
		})}, want: statusFailing, findings: []finding{{statusFailing, "recovery", "down for 1h 30m, over the 1h RTO"}}},
		{name: "open outage within the RTO", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.Current = &slo.Outage{Start: now.Add(-20 * time.Minute)}
			r.LastDrill = passedDrill
		})}, want: statusAtRisk, findings: []finding{{statusAtRisk, "recovery", "down for 20m of the 1h RTO"}}},
		{name: "open outage without an RTO", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.RTO, r.DrillEvery = 0, 0
			r.Current = &slo.Outage{Start: now.Add(-5 * time.Hour)}
		})}, want: statusAtRisk, findings: []finding{{statusAtRisk, "recovery", "down for 5h"}}},
		{name: "planned outage", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.Current = &slo.Outage{Start: now.Add(-5 * time.Hour), Planned: true}
			r.LastDrill = passedDrill
		})}, want: statusOK},
		{name: "last outage in the window outlasted the RTO", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.Last = &slo.Outage{Start: now.Add(-72 * time.Hour), End: now.Add(-70 * time.Hour)}
			r.LastDrill = passedDrill
		})}, want: statusFailing, findings: []finding{{statusFailing, "recovery", "the outage of 2026-11-20 lasted 2h, over the 1h RTO"}}},
		{name: "last outage that outlasted the RTO ended before the window", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.Last = &slo.Outage{Start: now.Add(-40 * 24 * time.Hour), End: now.Add(-38 * 24 * time.Hour)}
			r.LastDrill = passedDrill
		})}, want: statusOK},
		{name: "last outage within the RTO", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.Last = &slo.Outage{Start: now.Add(-72 * time.Hour), End: now.Add(-72*time.Hour + time.Hour)}
			r.LastDrill = passedDrill
		})}, want: statusOK},

		// Recovery: RPO and backup checks.
		{name: "recovery point within the RPO", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.DrillEvery = 0
			r.Backups = []slo.BackupStatus{backup("db", now.Add(-time.Hour), 3, true)}
		})}, want: statusOK},
		{name: "recovery point older than the RPO", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.DrillEvery = 0
			r.Backups = []slo.BackupStatus{backup("db", now.Add(-time.Hour-time.Second), 3, true)}
		})}, want: statusFailing, findings: []finding{{statusFailing, "recovery", "backup db: latest good recovery point 1h 1s old, over the 1h RPO"}}},
		{name: "no recovery point found", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.DrillEvery = 0
			r.Backups = []slo.BackupStatus{backup("db", time.Time{}, 2, false)}
		})}, want: statusFailing, findings: []finding{
			{statusFailing, "recovery", "backup db: no good recovery point found"},
			{statusAtRisk, "recovery", "backup db: last check failed"},
		}},
		{name: "last check failed, point still fresh", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.DrillEvery = 0
			r.Backups = []slo.BackupStatus{backup("db", now.Add(-10*time.Minute), 5, false)}
		})}, want: statusAtRisk, findings: []finding{{statusAtRisk, "recovery", "backup db: last check failed"}}},

		// Recovery: drills.
		{name: "no drill recorded", figures: serviceFigures{Probes: ranOK, Recovery: recovery(func(*slo.RecoveryStatus) {})},
			want: statusAtRisk, findings: []finding{{statusAtRisk, "recovery", "recovery drill overdue (due every 30d)"}}},
		{name: "last drill failed", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.LastDrill = &slo.Drill{Time: now.Add(-24 * time.Hour), Passed: false}
		})}, want: statusAtRisk, findings: []finding{{statusAtRisk, "recovery", "last recovery drill (2026-11-22) failed"}}},
		{name: "last drill over the RTO", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) {
			r.LastDrill = &slo.Drill{Time: now.Add(-24 * time.Hour), Passed: true, Duration: 61 * time.Minute}
		})}, want: statusAtRisk, findings: []finding{{statusAtRisk, "recovery", "last recovery drill took 1h 1m, over the 1h RTO"}}},
		{name: "drill passed in time", figures: serviceFigures{Recovery: recovery(func(r *slo.RecoveryStatus) { r.LastDrill = passedDrill })}, want: statusOK},

		// Probes.
		{name: "a probe's last run failed", figures: serviceFigures{Schedule: inHours, Probes: []collector.ProbeStatus{
			probe("home", now, ""), probe("api", now, collector.ReasonStatus), probe("new", time.Time{}, ""),
		}}, want: statusAtRisk, findings: []finding{{statusAtRisk, "probes", "probe api failing: status"}}},
		{name: "failing probe during maintenance", figures: serviceFigures{
			Schedule: slo.ServiceStatus{Service: "shop", InHours: true, MaintenanceActive: true},
			Probes:   []collector.ProbeStatus{probe("api", now, collector.ReasonConnect)},
		}, want: statusOK},
		{name: "failing probe outside hours of operation", figures: serviceFigures{
			Schedule: slo.ServiceStatus{Service: "shop", InHours: false},
			Probes:   []collector.ProbeStatus{probe("api", now, collector.ReasonConnect)},
		}, want: statusOK},

		// The worst finding wins; every finding is kept, in rule order.
		{name: "failing and at risk", figures: serviceFigures{
			SLOs: []*slo.SLOStatus{sloStatus(992, 8, nil)}, Resources: []*slo.ResourceStatus{resource(90, 0)},
			Schedule: inHours, Probes: []collector.ProbeStatus{probe("api", now, collector.ReasonTimeout)},
		}, want: statusFailing, findings: []finding{
			{statusAtRisk, "slo", "SLO availability: only 20.000 % of the error budget left"},
			{statusFailing, "capacity", "disk: 10.000 % headroom, below the 25 % target"},
			{statusAtRisk, "probes", "probe api failing: timeout"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assess(&tt.figures, now)
			if got.Status != tt.want {
				t.Errorf("status %q, want %q (findings %+v)", got.Status, tt.want, got.Findings)
			}
			if !slices.Equal(got.Findings, tt.findings) {
				t.Errorf("findings\n%+v\nwant\n%+v", got.Findings, tt.findings)
			}
		})
	}
}

func TestStatusNames(t *testing.T) {
	for _, tt := range []struct {
		s            status
		name, class  string
		worseThanAll []status
	}{
		{statusNoData, "no data", "nodata", nil},
		{statusOK, "ok", "ok", []status{statusNoData}},
		{statusAtRisk, "at risk", "risk", []status{statusNoData, statusOK}},
		{statusFailing, "failing", "fail", []status{statusNoData, statusOK, statusAtRisk}},
	} {
		if tt.s.String() != tt.name || tt.s.Class() != tt.class {
			t.Errorf("status %d: %q/%q, want %q/%q", tt.s, tt.s.String(), tt.s.Class(), tt.name, tt.class)
		}
		for _, better := range tt.worseThanAll {
			if max(tt.s, better) != tt.s {
				t.Errorf("%q does not rank worse than %q", tt.s, better)
			}
		}
	}
}

func TestHumanSeconds(t *testing.T) {
	for _, tt := range []struct {
		seconds float64
		want    string
	}{
		{0, "0ms"},
		{0.25, "250ms"},
		{0.9996, "1s"},
		{1, "1s"},
		{59.6, "1m"},
		{61, "1m 1s"},
		{3600, "1h"},
		{3661, "1h 1m"},
		{86400 + 7200 + 59, "1d 2h"},
		{86400 + 59, "1d 59s"},
		{400 * 86400, "1y 35d"},
		{-90, "-1m 30s"},
		{math.Inf(1), "never"},
		{math.NaN(), "–"},
	} {
		if got := humanSeconds(tt.seconds); got != tt.want {
			t.Errorf("humanSeconds(%v) = %q, want %q", tt.seconds, got, tt.want)
		}
	}
	if got := humanDuration(90 * time.Minute); got != "1h 30m" {
		t.Errorf("humanDuration(90m) = %q", got)
	}
}

func TestAsWritten(t *testing.T) {
	for _, tt := range []struct {
		ratio float64
		want  string
	}{
		{0.99, "99 %"},
		{0.999, "99.9 %"},
		{0.99999, "99.999 %"},
		{1 - 0.8, "20 %"},
		{0, "0 %"},
		{1, "100 %"},
	} {
		if got := asWritten(tt.ratio); got != tt.want {
			t.Errorf("asWritten(%v) = %q, want %q", tt.ratio, got, tt.want)
		}
	}
}

func TestRunDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0µs"},
		{310 * time.Microsecond, "310µs"},
		{999_600 * time.Nanosecond, "1ms"},
		{12_345 * time.Microsecond, "12ms"},
		{999_600 * time.Microsecond, "1s"},
		{1234 * time.Millisecond, "1s 234ms"},
		{5 * time.Second, "5s"},
		{90 * time.Second, "1m 30s"},
		{30 * time.Minute, "30m"},
		{-2 * time.Millisecond, "-2ms"},
	} {
		if got := runDuration(tt.d); got != tt.want {
			t.Errorf("runDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
