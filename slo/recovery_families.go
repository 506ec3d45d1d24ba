package slo

import (
	"maps"
	"slices"

	dto "github.com/prometheus/client_model/go"

	"github.com/reliabilityd/reliabilityd/collector"
)

var (
	recRTO          = family{"recovery_rto_seconds", "Recovery time objective: the longest an unplanned outage may last.", dto.MetricType_GAUGE}
	recRPO          = family{"recovery_rpo_seconds", "Recovery point objective: the oldest the latest good backup may be.", dto.MetricType_GAUGE}
	recWindow       = family{"recovery_window_seconds", "Window MTTR, MTBF and unplanned downtime are computed over.", dto.MetricType_GAUGE}
	recActive       = family{"recovery_outage_active", "Whether an outage of the service is open (1) or not (0).", dto.MetricType_GAUGE}
	recActivePlan   = family{"recovery_outage_planned", "Whether the open outage started in a maintenance window (1) or not (0); absent without an open outage.", dto.MetricType_GAUGE}
	recElapsed      = family{"recovery_outage_elapsed_seconds", "How long the open outage has lasted; 0 without one.", dto.MetricType_GAUGE}
	recElapsedRatio = family{"recovery_outage_elapsed_rto_ratio", "The open unplanned outage's elapsed time over the RTO (alert at 0.5 and 1); 0 without one.", dto.MetricType_GAUGE}
	recStart        = family{"recovery_outage_start_timestamp_seconds", "When the open outage started; absent without one.", dto.MetricType_GAUGE}
	recOutages      = family{"recovery_outages_total", "Outages opened, by planned (true: started in a maintenance window).", dto.MetricType_COUNTER}
	recLastDuration = family{"recovery_last_outage_duration_seconds", "Duration of the latest closed unplanned outage.", dto.MetricType_GAUGE}
	recLastRTOMet   = family{"recovery_last_outage_rto_met", "Whether the latest closed unplanned outage lasted at most the RTO (1) or not (0).", dto.MetricType_GAUGE}
	recBreaches     = family{"recovery_rto_breaches_total", "Unplanned outages that outlasted the RTO, counted when they passed it.", dto.MetricType_COUNTER}
	recMTTR         = family{"recovery_mttr_seconds", "Mean time to repair: mean duration of the unplanned outages that ended within the window; absent without any.", dto.MetricType_GAUGE}
	recMTBF         = family{"recovery_mtbf_seconds", "Mean time between failures: time up within the window over the unplanned outages that ended in it; absent without any.", dto.MetricType_GAUGE}
	recDowntime     = family{"recovery_unplanned_downtime_seconds", "Unplanned downtime within the window, the open outage included.", dto.MetricType_GAUGE}
	recPoint        = family{"recovery_point_timestamp_seconds", "When the backup's latest good recovery point was taken.", dto.MetricType_GAUGE}
	recPointAge     = family{"recovery_point_age_seconds", "Age of the backup's latest good recovery point.", dto.MetricType_GAUGE}
	recRPOMet       = family{"recovery_rpo_met", "Whether the backup's latest good recovery point is at most the RPO old (1) or not (0); 0 when none was ever found.", dto.MetricType_GAUGE}
	recCheckOK      = family{"recovery_backup_last_check_success", "Whether the backup's last check succeeded (1) or failed (0).", dto.MetricType_GAUGE}
	recChecks       = family{"recovery_backup_checks_total", "Checks of the backup's source.", dto.MetricType_COUNTER}
	recCheckFails   = family{"recovery_backup_check_failures_total", "Failed checks of the backup's source by reason; a reason appears once it has occurred.", dto.MetricType_COUNTER}
	recDrillTime    = family{"recovery_drill_last_timestamp_seconds", "When the latest disaster-recovery drill took place.", dto.MetricType_GAUGE}
	recDrillPassed  = family{"recovery_drill_last_success", "Whether the latest drill passed (1) or failed (0).", dto.MetricType_GAUGE}
	recDrillDur     = family{"recovery_drill_last_duration_seconds", "Recovery time measured by the latest drill.", dto.MetricType_GAUGE}
	recDrillRTOMet  = family{"recovery_drill_rto_met", "Whether the latest drill recovered within the RTO (1) or not (0).", dto.MetricType_GAUGE}
	recDrillEvery   = family{"recovery_drill_interval_seconds", "How often drills are due (drills.every).", dto.MetricType_GAUGE}
	recDrillOverdue = family{"recovery_drill_overdue", "Whether a drill is overdue (1): the latest is older than drills.every, or none was recorded.", dto.MetricType_GAUGE}
	recDrills       = family{"recovery_drills_total", "Drills recorded (kept), by result (pass, fail).", dto.MetricType_COUNTER}
)

var (
	plannedPairs = collector.FixedLabelPairs("planned", []string{"false", "true"})
	drillPairs   = collector.FixedLabelPairs("result", []string{"fail", "pass"})
)

// recoveryBuilder assembles the recovery families from a snapshot, one at
// a time, in one reused buffer.
type recoveryBuilder struct {
	collector.FamilyBuffer
	snap     *RecoverySnapshot
	services []*dto.LabelPair
}

// EachFamily calls emit with every recovery metric family of the current
// snapshot that has series, one at a time (valid only during the call).
func (r *Recovery) EachFamily(emit func(*dto.MetricFamily) error) error {
	snap := r.Snapshot()
	b := &recoveryBuilder{snap: snap, services: make([]*dto.LabelPair, len(snap.Services))}
	for i, s := range snap.Services {
		b.services[i] = collector.LabelPair("service", s.Service)
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

func seconds(d interface{ Seconds() float64 }) float64 { return d.Seconds() }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (b *recoveryBuilder) steps() []func() *dto.MetricFamily {
	now := b.snap.Time
	return []func() *dto.MetricFamily{
		b.perService(recRTO, func(s *RecoveryStatus) (float64, bool) { return seconds(s.RTO), s.RTO > 0 }),
		b.perService(recRPO, func(s *RecoveryStatus) (float64, bool) { return seconds(s.RPO), s.RPO > 0 }),
		b.perService(recWindow, func(s *RecoveryStatus) (float64, bool) { return seconds(s.Window), true }),
		b.perService(recActive, func(s *RecoveryStatus) (float64, bool) { return boolValue(s.Current != nil), true }),
		b.perService(recActivePlan, func(s *RecoveryStatus) (float64, bool) {
			return boolValue(s.Current != nil && s.Current.Planned), s.Current != nil
		}),
		b.perService(recElapsed, func(s *RecoveryStatus) (float64, bool) {
			if s.Current == nil {
				return 0, true
			}
			return seconds(s.Current.Duration(now)), true
		}),
		b.perService(recElapsedRatio, func(s *RecoveryStatus) (float64, bool) {
			if s.Current == nil || s.Current.Planned {
				return 0, s.RTO > 0
			}
			return seconds(s.Current.Duration(now)) / seconds(s.RTO), s.RTO > 0
		}),
		b.perService(recStart, func(s *RecoveryStatus) (float64, bool) {
			if s.Current == nil {
				return 0, false
			}
			return float64(s.Current.Start.UnixNano()) / 1e9, true
		}),
		b.outages,
		b.perService(recLastDuration, func(s *RecoveryStatus) (float64, bool) {
			if s.Last == nil {
				return 0, false
			}
			return seconds(s.Last.Duration(now)), true
		}),
		b.perService(recLastRTOMet, func(s *RecoveryStatus) (float64, bool) {
			if s.Last == nil || s.RTO <= 0 {
				return 0, false
			}
			return boolValue(s.Last.Duration(now) <= s.RTO), true
		}),
		b.perService(recBreaches, func(s *RecoveryStatus) (float64, bool) { return float64(s.RTOBreaches), true }),
		b.perService(recMTTR, func(s *RecoveryStatus) (float64, bool) { d, ok := s.MTTR(); return seconds(d), ok }),
		b.perService(recMTBF, func(s *RecoveryStatus) (float64, bool) { d, ok := s.MTBF(); return seconds(d), ok }),
		b.perService(recDowntime, func(s *RecoveryStatus) (float64, bool) { return seconds(s.Downtime), true }),
		b.perBackup(recPoint, func(_ *RecoveryStatus, bs *BackupStatus) (float64, bool) {
			return float64(bs.Point.UnixNano()) / 1e9, !bs.Point.IsZero()
		}),
		b.perBackup(recPointAge, func(_ *RecoveryStatus, bs *BackupStatus) (float64, bool) {
			age, ok := bs.RecoveryPointAge(now)
			return seconds(age), ok
		}),
		b.perBackup(recRPOMet, func(s *RecoveryStatus, bs *BackupStatus) (float64, bool) {
			age, ok := bs.RecoveryPointAge(now)
			return boolValue(ok && age <= s.RPO), true
		}),
		b.perBackup(recCheckOK, func(_ *RecoveryStatus, bs *BackupStatus) (float64, bool) {
			return boolValue(bs.LastOK), bs.Checks > 0
		}),
		b.perBackup(recChecks, func(_ *RecoveryStatus, bs *BackupStatus) (float64, bool) { return float64(bs.Checks), true }),
		b.checkFailures,
		b.perService(recDrillTime, func(s *RecoveryStatus) (float64, bool) {
			if s.LastDrill == nil {
				return 0, false
			}
			return float64(s.LastDrill.Time.UnixNano()) / 1e9, true
		}),
		b.perService(recDrillPassed, func(s *RecoveryStatus) (float64, bool) {
			return boolValue(s.LastDrill != nil && s.LastDrill.Passed), s.LastDrill != nil
		}),
		b.perService(recDrillDur, func(s *RecoveryStatus) (float64, bool) {
			if s.LastDrill == nil {
				return 0, false
			}
			return seconds(s.LastDrill.Duration), true
		}),
		b.perService(recDrillRTOMet, func(s *RecoveryStatus) (float64, bool) {
			if s.LastDrill == nil || s.RTO <= 0 {
				return 0, false
			}
			return boolValue(s.LastDrill.Passed && s.LastDrill.Duration <= s.RTO), true
		}),
		b.perService(recDrillEvery, func(s *RecoveryStatus) (float64, bool) { return seconds(s.DrillEvery), s.DrillEvery > 0 }),
		b.perService(recDrillOverdue, func(s *RecoveryStatus) (float64, bool) { return boolValue(s.DrillOverdue(now)), s.DrillEvery > 0 }),
		b.drills,
	}
}

func (b *recoveryBuilder) perService(f family, value func(s *RecoveryStatus) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		b.Start(f.name, f.help, f.kind, len(b.snap.Services), 1)
		for i := range b.snap.Services {
			if v, ok := value(&b.snap.Services[i]); ok {
				b.Add(v, b.services[i])
			}
		}
		return b.Family()
	}
}

func (b *recoveryBuilder) perBackup(f family, value func(s *RecoveryStatus, bs *BackupStatus) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		count := 0
		for i := range b.snap.Services {
			count += len(b.snap.Services[i].Backups)
		}
		b.Start(f.name, f.help, f.kind, count, 2)
		for i := range b.snap.Services {
			s := &b.snap.Services[i]
			for j := range s.Backups {
				if v, ok := value(s, &s.Backups[j]); ok {
					b.Add(v, collector.LabelPair("backup", s.Backups[j].Name), b.services[i])
				}
			}
		}
		return b.Family()
	}
}

func (b *recoveryBuilder) outages() *dto.MetricFamily {
	b.Start(recOutages.name, recOutages.help, recOutages.kind, 2*len(b.snap.Services), 2)
	for i := range b.snap.Services {
		for planned, pair := range plannedPairs {
			b.Add(float64(b.snap.Services[i].Outages[planned]), pair, b.services[i])
		}
	}
	return b.Family()
}

func (b *recoveryBuilder) drills() *dto.MetricFamily {
	b.Start(recDrills.name, recDrills.help, recDrills.kind, 2*len(b.snap.Services), 2)
	for i := range b.snap.Services {
		if b.snap.Services[i].DrillEvery <= 0 && b.snap.Services[i].LastDrill == nil {
			continue
		}
		for passed, pair := range drillPairs {
			b.Add(float64(b.snap.Services[i].Drills[passed]), pair, b.services[i])
		}
	}
	return b.Family()
}

func (b *recoveryBuilder) checkFailures() *dto.MetricFamily {
	count := 0
	for i := range b.snap.Services {
		for j := range b.snap.Services[i].Backups {
			count += len(b.snap.Services[i].Backups[j].Failures)
		}
	}
	b.Start(recCheckFails.name, recCheckFails.help, recCheckFails.kind, count, 3)
	for i := range b.snap.Services {
		for j := range b.snap.Services[i].Backups {
			bs := &b.snap.Services[i].Backups[j]
			for _, reason := range slices.Sorted(maps.Keys(bs.Failures)) {
				b.Add(float64(bs.Failures[reason]), collector.LabelPair("backup", bs.Name), collector.LabelPair("reason", string(reason)), b.services[i])
			}
		}
	}
	return b.Family()
}
