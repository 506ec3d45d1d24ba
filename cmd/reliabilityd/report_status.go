package main

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/slo"
)

// status is a service's standing on the report page. The values are
// ordered: a service takes the worst status of its findings.
type status int

const (
	// statusNoData: nothing measured yet (no probe run, no SLO event, no
	// capacity sample, no backup check, no drill).
	statusNoData status = iota
	statusOK
	statusAtRisk
	statusFailing
)

// String is what the page shows.
func (s status) String() string {
	switch s {
	case statusOK:
		return "ok"
	case statusAtRisk:
		return "at risk"
	case statusFailing:
		return "failing"
	default:
		return "no data"
	}
}

// Class is the CSS class (and data-status value) of the status.
func (s status) Class() string {
	switch s {
	case statusOK:
		return "ok"
	case statusAtRisk:
		return "risk"
	case statusFailing:
		return "fail"
	default:
		return "nodata"
	}
}

// Thresholds of the status rules (docs/report.md). The burn-rate pairs are
// those of the alert rules in deploy/prometheus/slo.rules.yml, so the page
// calls a service at risk when one of their conditions holds, before their
// `for` delay.
const (
	// lowBudgetRatio: less of the error budget left than this is a risk.
	lowBudgetRatio = 0.25
	// exhaustionRiskSeconds: a resource that runs out within this at the
	// measured trend is a risk (the horizon of CapacityExhaustionWithin30Days).
	exhaustionRiskSeconds = 30 * 24 * 3600
)

// burnAlertPairs are the multiwindow burn-rate conditions of the SLO alert
// rules: both windows above the threshold.
var burnAlertPairs = [...]struct {
	long, short int
	threshold   float64
}{
	{slo.Window1h, slo.Window5m, 14.4},
	{slo.Window6h, slo.Window30m, 6},
	{slo.Window1d, slo.Window2h, 3},
	{slo.Window3d, slo.Window6h, 1},
}

// finding is one reason for a service's status: what fell short, in words.
type finding struct {
	Status status
	// Area is "slo", "capacity", "recovery" or "probes".
	Area string
	Text string
}

// assessment is a service's status with the findings behind it, worst
// first in the order the rules found them.
type assessment struct {
	Status   status
	Findings []finding
}

// serviceFigures are the figures the engines computed for one service:
// the rules read them and compute nothing the engines already do.
type serviceFigures struct {
	SLOs      []*slo.SLOStatus
	Resources []*slo.ResourceStatus
	// Recovery is nil without a recovery section.
	Recovery *slo.RecoveryStatus
	Probes   []collector.ProbeStatus
	// Schedule tells whether runs count right now.
	Schedule slo.ServiceStatus
}

// assess applies the status rules to a service's figures at now.
func assess(f *serviceFigures, now time.Time) assessment {
	var a assessment
	measured := false
	add := func(s status, area, format string, args ...any) {
		a.Findings = append(a.Findings, finding{Status: s, Area: area, Text: fmt.Sprintf(format, args...)})
	}
	for _, s := range f.SLOs {
		measured = assessSLO(s, add) || measured
	}
	for _, r := range f.Resources {
		measured = assessResource(r, add) || measured
	}
	if f.Recovery != nil {
		measured = assessRecovery(f.Recovery, now, add) || measured
	}
	measured = assessProbes(f.Probes, f.Schedule, add) || measured
	if measured {
		a.Status = statusOK
	}
	for _, fd := range a.Findings {
		a.Status = max(a.Status, fd.Status)
	}
	return a
}

// addFinding records a finding of the given status in area.
type addFinding func(s status, area, format string, args ...any)

// assessSLO: failing when the budget of the SLO's window is spent
// (attainment below the objective, or exactly at it); at risk when less
// than lowBudgetRatio of it is left or a burn-rate alert condition holds.
// It reports whether the SLO has data.
func assessSLO(s *slo.SLOStatus, add addFinding) bool {
	sli, ok := s.SLI(slo.WindowFull)
	if !ok {
		return false
	}
	budget := s.Budget()
	switch {
	case sli < s.Objective:
		add(statusFailing, "slo", "SLO %s: %s attained over %s, below the %s objective", s.Name, percent(sli), s.Period(), asWritten(s.Objective))
	case budget.RemainingRatio <= 0:
		add(statusFailing, "slo", "SLO %s: error budget of %s spent", s.Name, s.Period())
	case budget.RemainingRatio < lowBudgetRatio:
		add(statusAtRisk, "slo", "SLO %s: only %s of the error budget left", s.Name, percent(budget.RemainingRatio))
	}
	for _, pair := range burnAlertPairs {
		long, okLong := s.BurnRate(pair.long)
		short, okShort := s.BurnRate(pair.short)
		if okLong && okShort && long > pair.threshold && short > pair.threshold {
			add(statusAtRisk, "slo", "SLO %s: burning the error budget %.1fx as fast as allowed over %s (%.1fx over %s)",
				s.Name, long, slo.WindowNames[pair.long], short, slo.WindowNames[pair.short])
			break // the most urgent pair says enough
		}
	}
	return true
}

// assessResource: failing when the headroom is below its target; at risk
// when the measured trend reaches the limit within exhaustionRiskSeconds.
// It reports whether the resource was ever sampled.
func assessResource(r *slo.ResourceStatus, add addFinding) bool {
	if !r.HasUsage {
		return false
	}
	if headroom, ok := r.Headroom(); ok && headroom < r.HeadroomTarget {
		add(statusFailing, "capacity", "%s: %s headroom, below the %s target", r.Name, percent(headroom), asWritten(r.HeadroomTarget))
	}
	if seconds, ok := r.ExhaustionSeconds(); ok && seconds < exhaustionRiskSeconds {
		if seconds <= 0 {
			add(statusAtRisk, "capacity", "%s: at its limit at the measured trend", r.Name)
		} else {
			add(statusAtRisk, "capacity", "%s: runs out in %s at the measured trend", r.Name, humanSeconds(seconds))
		}
	}
	return true
}

// assessRecovery: failing when the open unplanned outage has outlasted the
// RTO, the last one within the window did, or a backup's latest good
// recovery point is older than the RPO (or none was found); at risk while
// an unplanned outage is open within the RTO, when a backup's last check
// failed, a drill is overdue, or the last drill failed or took longer than
// the RTO. It reports whether anything was measured: a backup check or a
// drill (outages come from the probes, counted by assessProbes).
func assessRecovery(r *slo.RecoveryStatus, now time.Time, add addFinding) bool {
	measured := r.LastDrill != nil
	if c := r.Current; c != nil && !c.Planned {
		elapsed := c.Duration(now)
		switch {
		case r.RTO > 0 && elapsed > r.RTO:
			add(statusFailing, "recovery", "down for %s, over the %s RTO", humanDuration(elapsed), humanDuration(r.RTO))
		case r.RTO > 0:
			add(statusAtRisk, "recovery", "down for %s of the %s RTO", humanDuration(elapsed), humanDuration(r.RTO))
		default:
			add(statusAtRisk, "recovery", "down for %s", humanDuration(elapsed))
		}
	}
	if l := r.Last; l != nil && r.RTO > 0 && !l.End.Before(now.Add(-r.Window)) && l.Duration(now) > r.RTO {
		add(statusFailing, "recovery", "the outage of %s lasted %s, over the %s RTO", l.Start.UTC().Format(time.DateOnly),
			humanDuration(l.Duration(now)), humanDuration(r.RTO))
	}
	for i := range r.Backups {
		b := &r.Backups[i]
		if b.Checks == 0 {
			continue // not checked yet: no data
		}
		measured = true
		age, ok := b.RecoveryPointAge(now)
		switch {
		case !ok:
			add(statusFailing, "recovery", "backup %s: no good recovery point found", b.Name)
		case r.RPO > 0 && age > r.RPO:
			add(statusFailing, "recovery", "backup %s: latest good recovery point %s old, over the %s RPO", b.Name,
				humanDuration(age), humanDuration(r.RPO))
		}
		if !b.LastOK {
			add(statusAtRisk, "recovery", "backup %s: last check failed", b.Name)
		}
	}
	if r.DrillOverdue(now) {
		add(statusAtRisk, "recovery", "recovery drill overdue (due every %s)", humanDuration(r.DrillEvery))
	}
	if d := r.LastDrill; d != nil {
		switch {
		case !d.Passed:
			add(statusAtRisk, "recovery", "last recovery drill (%s) failed", d.Time.UTC().Format(time.DateOnly))
		case r.RTO > 0 && d.Duration > r.RTO:
			add(statusAtRisk, "recovery", "last recovery drill took %s, over the %s RTO", humanDuration(d.Duration), humanDuration(r.RTO))
		}
	}
	return measured
}

// assessProbes: at risk while a probe's last run failed, unless the
// service's runs do not count right now (maintenance, outside hours of
// operation). It reports whether any probe has run.
func assessProbes(probes []collector.ProbeStatus, schedule slo.ServiceStatus, add addFinding) bool {
	measured := false
	excluded := schedule.MaintenanceActive || (schedule.Service != "" && !schedule.InHours)
	for i := range probes {
		p := &probes[i]
		if p.Last.Start.IsZero() {
			continue
		}
		measured = true
		if !p.Last.Success && !excluded {
			add(statusAtRisk, "probes", "probe %s failing: %s", p.ID.Probe, p.Last.Reason)
		}
	}
	return measured
}

// percent shows a ratio in percent with three decimals, as the rest of the
// page does.
func percent(ratio float64) string {
	return fmt.Sprintf("%.3f %%", ratio*100)
}

// asWritten shows a configured ratio (an objective, a headroom target) in
// percent as the configuration writes it: "99.9 %", not "99.900 %".
func asWritten(ratio float64) string {
	// Rounded to the configuration's precision: 0.999 is 99.9, not
	// 99.90000000000001.
	return strconv.FormatFloat(math.Round(ratio*1e8)/1e6, 'f', -1, 64) + " %"
}

// humanDuration shows d in its largest unit and the next one that is not
// zero ("3d 4h", "5m 12s", "1h 1s"), in milliseconds below a second.
func humanDuration(d time.Duration) string { return humanSeconds(d.Seconds()) }

// runDuration shows how long a run (a probe, a transaction step) took, or
// a run's time limit, in the format of humanDuration but finer below a
// minute, where runs are measured: "310µs", "12ms", "1s 234ms".
func runDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + runDuration(-d)
	case d.Round(time.Microsecond) < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Round(time.Microsecond)/time.Microsecond)
	case d.Round(time.Millisecond) < time.Second:
		return fmt.Sprintf("%dms", d.Round(time.Millisecond)/time.Millisecond)
	case d.Round(time.Millisecond) < time.Minute:
		d = d.Round(time.Millisecond)
		if ms := d % time.Second / time.Millisecond; ms != 0 {
			return fmt.Sprintf("%ds %dms", d/time.Second, ms)
		}
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return humanDuration(d)
}

// humanSeconds is humanDuration for a number of seconds that may be too
// large for a time.Duration, or +Inf ("never").
func humanSeconds(seconds float64) string {
	switch {
	case math.IsInf(seconds, 1):
		return "never"
	case math.IsNaN(seconds) || math.IsInf(seconds, -1):
		return "–"
	case seconds < 0:
		return "-" + humanSeconds(-seconds)
	case math.Round(seconds*1000) < 1000: // not "1000ms"
		return fmt.Sprintf("%.0fms", seconds*1000)
	}
	units := [...]struct {
		suffix string
		length float64
	}{{"y", 365 * 24 * 3600}, {"d", 24 * 3600}, {"h", 3600}, {"m", 60}, {"s", 1}}
	seconds = math.Round(seconds)
	for i, u := range units[:len(units)-1] {
		if seconds < u.length {
			continue
		}
		whole := math.Floor(seconds / u.length)
		out := fmt.Sprintf("%.0f%s", whole, u.suffix)
		rest := seconds - whole*u.length
		for _, next := range units[i+1:] {
			if n := math.Floor(rest / next.length); n > 0 {
				return out + fmt.Sprintf(" %.0f%s", n, next.suffix)
			}
		}
		return out
	}
	return fmt.Sprintf("%.0fs", seconds)
}
