package slo

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/reliabilityd/reliabilityd/collector"
)

// family describes one exported SLO metric family. value returns the
// series of one SLO (or service) for the families' label layout; ok false
// leaves the series out.
type family struct {
	name, help string
	kind       dto.MetricType
}

var (
	famInfo       = family{"slo_info", "Static description of an SLO: its SLI kind (availability, latency) and its period (rolling window length, or week, month, quarter).", dto.MetricType_GAUGE}
	famObjective  = family{"slo_objective_ratio", "Target ratio of good events.", dto.MetricType_GAUGE}
	famLatency    = family{"slo_latency_threshold_seconds", "Latency SLOs: a run is good when it succeeded in less than this.", dto.MetricType_GAUGE}
	famWindowLen  = family{"slo_window_seconds", "Length of the SLO's full window (for a calendar window, of the current period).", dto.MetricType_GAUGE}
	famWindowFrom = family{"slo_window_start_timestamp_seconds", "Start of the SLO's full window.", dto.MetricType_GAUGE}
	famEvents     = family{"slo_events_total", "Events counted towards the SLO, by result (good, bad), since its state began; absent for SLIs in window mode.", dto.MetricType_COUNTER}
	famExcluded   = family{"slo_excluded_events_total", "Events excluded from the SLO as planned downtime, by reason (maintenance, outside_hours); absent for SLIs in window mode.", dto.MetricType_COUNTER}
	famWinEvents  = family{"slo_window_events", "Events counted in each window (good and bad); 0 means no data, and the window's SLI and burn rate are then absent.", dto.MetricType_GAUGE}
	famWinExcl    = family{"slo_window_excluded_events", "Events excluded as planned downtime in the full window; absent for SLIs in window mode.", dto.MetricType_GAUGE}
	famSLI        = family{"slo_sli_ratio", "Ratio of good events in each window; absent when the window holds no events.", dto.MetricType_GAUGE}
	famBurn       = family{"slo_burn_rate", "Ratio of bad events in each window over the ratio the objective allows; absent when the window holds no events.", dto.MetricType_GAUGE}
	famBudget     = family{"slo_error_budget_ratio", "Share of events allowed to be bad: 1 - objective.", dto.MetricType_GAUGE}
	famBudgetEv   = family{"slo_error_budget_events", "Bad events the full window's events allow.", dto.MetricType_GAUGE}
	famConsumedEv = family{"slo_error_budget_consumed_events", "Bad events in the full window.", dto.MetricType_GAUGE}
	famRemainEv   = family{"slo_error_budget_remaining_events", "Bad events still allowed in the full window; negative once overspent.", dto.MetricType_GAUGE}
	famConsumed   = family{"slo_error_budget_consumed_ratio", "Share of the error budget spent in the full window; absent without data.", dto.MetricType_GAUGE}
	famRemaining  = family{"slo_error_budget_remaining_ratio", "Share of the error budget left in the full window (negative once overspent); absent without data.", dto.MetricType_GAUGE}
	famExhaustion = family{"slo_error_budget_exhaustion_forecast_seconds", "Time until the error budget is spent if the 1h burn rate goes on: 0 when spent, +Inf at a zero burn rate; absent without data in the full window or the last hour.", dto.MetricType_GAUGE}
	famMaint      = family{"slo_maintenance_active", "Whether a maintenance window of the service is in force (1) or not (0).", dto.MetricType_GAUGE}
	famHours      = family{"slo_operating_time_active", "Whether the service is within its hours of operation (1) or not (0); 1 when it has none.", dto.MetricType_GAUGE}
)

// sloLabels are an SLO's label pairs, built once per snapshot.
type sloLabels struct {
	service, slo *dto.LabelPair
}

// fixed label pairs, shared read-only.
var (
	windowPairs    = collector.FixedLabelPairs("window", WindowNames[:])
	resultGood     = collector.LabelPair("result", "good")
	resultBad      = collector.LabelPair("result", "bad")
	exclusionPairs = collector.FixedLabelPairs("reason", exclusionReasons[:])
)

// builder assembles one family at a time from a snapshot in one reused
// buffer: a scrape of 10,000 SLOs holds one family, never the whole
// exposition.
type builder struct {
	collector.FamilyBuffer
	snap   *Snapshot
	labels []sloLabels
}

func (b *builder) start(f family, capacity int) {
	b.Start(f.name, f.help, f.kind, capacity, 4)
}

// EachFamily calls emit with every SLO metric family of the current
// snapshot that has series, one at a time; a family is valid only during
// the call. Series come grouped by SLO, in the snapshot's order (by
// service, then name). It stops at the first error emit returns.
func (e *Engine) EachFamily(emit func(*dto.MetricFamily) error) error {
	snap := e.Snapshot()
	b := &builder{snap: snap, labels: make([]sloLabels, len(snap.SLOs))}
	for i := range snap.SLOs {
		b.labels[i] = sloLabels{service: collector.LabelPair("service", snap.SLOs[i].Service), slo: collector.LabelPair("slo", snap.SLOs[i].Name)}
	}
	for _, build := range b.steps() {
		if mf := build(); len(mf.Metric) > 0 {
			if err := emit(mf); err != nil {
				return err
			}
		}
	}
	return nil
}

// perSLO builds a family with at most one series per SLO.
func (b *builder) perSLO(f family, value func(s *SLOStatus) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		b.start(f, len(b.snap.SLOs))
		for i := range b.snap.SLOs {
			if v, ok := value(&b.snap.SLOs[i]); ok {
				b.Add(v, b.labels[i].service, b.labels[i].slo)
			}
		}
		return b.Family()
	}
}

// perWindow builds a family with a series per SLO and window.
func (b *builder) perWindow(f family, value func(s *SLOStatus, w int) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		b.start(f, len(b.snap.SLOs)*numWindows)
		for i := range b.snap.SLOs {
			for w := range numWindows {
				if v, ok := value(&b.snap.SLOs[i], w); ok {
					b.Add(v, b.labels[i].service, b.labels[i].slo, windowPairs[w])
				}
			}
		}
		return b.Family()
	}
}

func always(v float64) (float64, bool) { return v, true }

func (b *builder) steps() []func() *dto.MetricFamily {
	return []func() *dto.MetricFamily{
		b.info,
		b.perSLO(famObjective, func(s *SLOStatus) (float64, bool) { return always(s.Objective) }),
		b.perSLO(famLatency, func(s *SLOStatus) (float64, bool) { return s.LatencyBelow.Seconds(), s.LatencyBelow > 0 }),
		b.perSLO(famWindowLen, func(s *SLOStatus) (float64, bool) { return always(s.WindowLength.Seconds()) }),
		b.perSLO(famWindowFrom, func(s *SLOStatus) (float64, bool) {
			return always(float64(s.WindowStart.UnixNano()) / 1e9)
		}),
		b.events,
		b.excluded,
		b.perWindow(famWinEvents, func(s *SLOStatus, w int) (float64, bool) { return always(s.Windows[w].Total()) }),
		b.perSLO(famWinExcl, func(s *SLOStatus) (float64, bool) { return s.Windows[WindowFull].Excluded, !s.QueriedWindows }),
		b.perWindow(famSLI, (*SLOStatus).SLI),
		b.perWindow(famBurn, (*SLOStatus).BurnRate),
		b.perSLO(famBudget, func(s *SLOStatus) (float64, bool) { return always(s.ErrorBudget) }),
		b.perSLO(famBudgetEv, func(s *SLOStatus) (float64, bool) { return always(s.Budget().Events) }),
		b.perSLO(famConsumedEv, func(s *SLOStatus) (float64, bool) { return always(s.Budget().ConsumedEvents) }),
		b.perSLO(famRemainEv, func(s *SLOStatus) (float64, bool) { return always(s.Budget().RemainingEvents) }),
		b.perSLO(famConsumed, func(s *SLOStatus) (float64, bool) { bu := s.Budget(); return bu.ConsumedRatio, bu.HasData }),
		b.perSLO(famRemaining, func(s *SLOStatus) (float64, bool) { bu := s.Budget(); return bu.RemainingRatio, bu.HasData }),
		b.perSLO(famExhaustion, func(s *SLOStatus) (float64, bool) {
			bu := s.Budget()
			return bu.ExhaustionSeconds, bu.HasExhaustion
		}),
		b.perService(famMaint, func(s *ServiceStatus) bool { return s.MaintenanceActive }),
		b.perService(famHours, func(s *ServiceStatus) bool { return s.InHours }),
	}
}

func (b *builder) info() *dto.MetricFamily {
	b.start(famInfo, len(b.snap.SLOs))
	for i := range b.snap.SLOs {
		s := &b.snap.SLOs[i]
		// label-name order: period, service, sli, slo
		b.Add(1, collector.LabelPair("period", s.Period()), b.labels[i].service, collector.LabelPair("sli", s.SLIKind()), b.labels[i].slo)
	}
	return b.Family()
}

func (b *builder) events() *dto.MetricFamily {
	b.start(famEvents, 2*len(b.snap.SLOs))
	for i := range b.snap.SLOs {
		s := &b.snap.SLOs[i]
		if s.QueriedWindows {
			continue // the source counts its events; none pass through here
		}
		b.Add(float64(s.Bad), resultBad, b.labels[i].service, b.labels[i].slo)
		b.Add(float64(s.Good), resultGood, b.labels[i].service, b.labels[i].slo)
	}
	return b.Family()
}

func (b *builder) excluded() *dto.MetricFamily {
	b.start(famExcluded, len(exclusionReasons)*len(b.snap.SLOs))
	for i := range b.snap.SLOs {
		if b.snap.SLOs[i].QueriedWindows {
			continue
		}
		for r, pair := range exclusionPairs {
			b.Add(float64(b.snap.SLOs[i].Excluded[r]), pair, b.labels[i].service, b.labels[i].slo)
		}
	}
	return b.Family()
}

func (b *builder) perService(f family, value func(s *ServiceStatus) bool) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		b.start(f, len(b.snap.Services))
		for i := range b.snap.Services {
			s := &b.snap.Services[i]
			v := 0.0
			if value(s) {
				v = 1
			}
			b.Add(v, collector.LabelPair("service", s.Service))
		}
		return b.Family()
	}
}
