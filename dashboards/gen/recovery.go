package main

// recovery is for continuity reviews: outages and their durations against
// the RTO, MTTR and MTBF, recovery points against the RPO, and drills.
func (s *set) recovery() *dashboard {
	b := newBuilder()
	byBackup := `backup=~"$backup"`
	svc := func(metric string, matchers ...string) string {
		return sel(metric, append([]string{byService}, matchers...)...)
	}
	backup := func(metric string, matchers ...string) string {
		return sel(metric, append([]string{byService, byBackup}, matchers...)...)
	}
	svcBy := func(agg, expr string) string { return agg + ` by (service) (` + expr + `)` }
	backupBy := func(agg, labels, expr string) string {
		return agg + ` by (service, backup` + labels + `) (` + expr + `)`
	}
	inRange := func(agg, labels, metric string, matchers ...string) string {
		return agg + ` by (service` + labels + `) (increase(` + svc(metric, matchers...) + `[$__range]))`
	}
	// The RTO applies to unplanned outages only: recovery_outage_elapsed_seconds
	// counts a planned one (started in maintenance) too.
	unplannedElapsed := svcBy("max", svc("recovery_outage_elapsed_seconds")+
		` unless on (job, instance, service) `+svc("recovery_outage_planned")+` == 1`)

	b.row("Compliance")
	b.add(24, 8, table("Services",
		"Each service with a recovery section: its objectives, the open outage, and how long it has lasted against the RTO unless it is planned (started in maintenance), the last closed unplanned outage, MTTR, MTBF and unplanned downtime over the recovery window (recovery.window), and outages and RTO breaches over this dashboard's time range.",
		[]string{"service"},
		[]column{
			{query: q(svcBy("max", svc("recovery_rto_seconds")), ""), header: "RTO", unit: "s"},
			{query: q(svcBy("max", svc("recovery_rpo_seconds")), ""), header: "RPO", unit: "s"},
			{query: q(svcBy("max", svc("recovery_window_seconds")), ""), header: "Window", unit: "s"},
			{query: q(svcBy("max", svc("recovery_outage_active")), ""), header: "Outage", mappings: outageMap(), cell: "color-background"},
			{query: q(unplannedElapsed, ""), header: "Open unplanned outage", unit: "s"},
			{query: q(svcBy("max", svc("recovery_outage_elapsed_rto_ratio")), ""), header: "Open outage / RTO", unit: "percentunit",
				thresholds: thresholds("green", 0.5, "orange", 1, "red"), cell: "color-text"},
			{query: q(svcBy("max", svc("recovery_last_outage_duration_seconds")), ""), header: "Last outage", unit: "s"},
			{query: q(svcBy("max", svc("recovery_last_outage_rto_met")), ""), header: "Within RTO", mappings: yesNo(), cell: "color-background"},
			{query: q(svcBy("max", svc("recovery_mttr_seconds")), ""), header: "MTTR", unit: "s"},
			{query: q(svcBy("max", svc("recovery_mtbf_seconds")), ""), header: "MTBF", unit: "s"},
			{query: q(svcBy("max", svc("recovery_unplanned_downtime_seconds")), ""), header: "Unplanned downtime", unit: "s"},
			{query: q(inRange("sum", "", "recovery_outages_total", `planned="false"`), ""), header: "Unplanned outages (time range)", unit: "short", decimals: intp(0)},
			{query: q(inRange("sum", "", "recovery_rto_breaches_total"), ""), header: "RTO breaches (time range)", unit: "short", decimals: intp(0),
				thresholds: thresholds("green", 1, "red"), cell: "color-text"},
		},
		map[string][]map[string]any{"service": serviceLink()}))

	b.row("Outages")
	b.add(24, 5, stateTimeline("Outages", "Whether each service was in an outage (recovery_outage_active), as Prometheus scraped it.", outageMap(),
		q(svcBy("max", svc("recovery_outage_active")), "{{service}}")))
	b.add(12, 8, withOverrides(timeseries("Open outage vs RTO",
		"How long the open unplanned outage has lasted (recovery_outage_elapsed_seconds) against the RTO (dashed). A planned outage (started in maintenance, recovery_outage_planned) is not drawn: the RTO does not apply to it.", "s",
		q(unplannedElapsed, "{{service}} open unplanned outage"),
		q(svcBy("max", svc("recovery_rto_seconds")), "{{service}} RTO")), dashed("B")))
	b.add(12, 8, withOverrides(timeseries("Last outage vs RTO",
		"Duration of the latest closed unplanned outage (recovery_last_outage_duration_seconds) against the RTO (dashed).", "s",
		q(svcBy("max", svc("recovery_last_outage_duration_seconds")), "{{service}} last outage"),
		q(svcBy("max", svc("recovery_rto_seconds")), "{{service}} RTO")), dashed("B")))
	b.add(12, 8, timeseries("MTTR and MTBF",
		"Mean time to repair and between failures over the recovery window, unplanned outages only (recovery_mttr_seconds, recovery_mtbf_seconds); absent while no outage ended in the window.", "s",
		q(svcBy("max", svc("recovery_mttr_seconds")), "{{service}} MTTR"),
		q(svcBy("max", svc("recovery_mtbf_seconds")), "{{service}} MTBF")))
	b.add(12, 8, timeseries("Unplanned downtime in the recovery window",
		"recovery_unplanned_downtime_seconds: the part of every unplanned outage within the trailing recovery window, the open one included.", "s",
		q(svcBy("max", svc("recovery_unplanned_downtime_seconds")), "{{service}}")))

	b.row("Backups")
	b.add(24, 7, table("Backups",
		"Each backup's latest good recovery point, its age against the service's RPO, and its checks over this dashboard's time range. A failed check never freshens the recovery point.",
		[]string{"service", "backup"},
		[]column{
			{query: q(backupBy("max", "", backup("recovery_point_timestamp_seconds"))+" * 1000", ""), header: "Recovery point", unit: "dateTimeAsIso"},
			{query: q(backupBy("max", "", backup("recovery_point_age_seconds")), ""), header: "Age", unit: "s"},
			{query: q(backupBy("max", "", backup("recovery_rpo_met")+` * 0 + on (job, instance, service) group_left () recovery_rpo_seconds`), ""),
				header: "RPO", unit: "s"},
			{query: q(backupBy("max", "", backup("recovery_rpo_met")), ""), header: "Within RPO", mappings: yesNo(), cell: "color-background"},
			{query: q(backupBy("max", "", backup("recovery_backup_last_check_success")), ""), header: "Last check", mappings: mappings(valueText{"0", "failed", "red"}, valueText{"1", "ok", "green"}), cell: "color-background"},
			{query: q(backupBy("sum", "", `increase(`+backup("recovery_backup_checks_total")+`[$__range])`), ""), header: "Checks (time range)", unit: "short", decimals: intp(0)},
		}, nil))
	b.add(12, 8, withOverrides(timeseries("Recovery point age vs RPO",
		"Age of each backup's latest good recovery point (recovery_point_age_seconds) against the service's RPO (dashed).", "s",
		q(backupBy("max", "", backup("recovery_point_age_seconds")), "{{service}}/{{backup}}"),
		q(svcBy("max", svc("recovery_rpo_seconds")), "{{service}} RPO")), dashed("B")))
	b.add(12, 8, bars("Backup check failures by reason", "Failed checks in each bar's interval by reason (recovery_backup_check_failures_total), the first failure of a reason included.", "short",
		q(backupBy("sum", ", reason", risePerInterval(backup("recovery_backup_check_failures_total"), true)), "{{service}}/{{backup}}: {{reason}}")))

	b.row("Drills")
	b.add(24, 6, table("Drills",
		"The latest recorded drill of each service (reliabilityd drill record): when, whether it passed, the recovery time it measured and whether that was within the RTO; how often drills are due; and drills over this dashboard's time range.",
		[]string{"service"},
		[]column{
			{query: q(svcBy("max", svc("recovery_drill_last_timestamp_seconds"))+" * 1000", ""), header: "Last drill", unit: "dateTimeAsIso"},
			{query: q(svcBy("max", svc("recovery_drill_last_success")), ""), header: "Passed", mappings: yesNo(), cell: "color-background"},
			{query: q(svcBy("max", svc("recovery_drill_last_duration_seconds")), ""), header: "Recovery time", unit: "s"},
			{query: q(svcBy("max", svc("recovery_drill_rto_met")), ""), header: "Within RTO", mappings: yesNo(), cell: "color-background"},
			{query: q(svcBy("max", svc("recovery_drill_interval_seconds")), ""), header: "Due every", unit: "s"},
			{query: q(svcBy("max", svc("recovery_drill_overdue")), ""), header: "Overdue", mappings: overdue(), cell: "color-background"},
			{query: q(inRange("sum", "", "recovery_drills_total", `result="pass"`), ""), header: "Passed (time range)", unit: "short", decimals: intp(0)},
			{query: q(inRange("sum", "", "recovery_drills_total", `result="fail"`), ""), header: "Failed (time range)", unit: "short", decimals: intp(0)},
		},
		map[string][]map[string]any{"service": serviceLink()}))
	b.add(24, 7, withOverrides(timeseries("Drill recovery time vs RTO",
		"Recovery time measured by the latest drill (recovery_drill_last_duration_seconds) against the RTO (dashed).", "s",
		q(svcBy("max", svc("recovery_drill_last_duration_seconds")), "{{service}} drill"),
		q(svcBy("max", svc("recovery_rto_seconds")), "{{service}} RTO")), dashed("B")))

	return newDashboard(uidRecovery,
		"Outages and their durations against the RTO, MTTR and MTBF, backups' recovery points against the RPO, and recovery drills.",
		"now-30d", b,
		serviceVariable(),
		labelValues("Backup", "backup", sel("recovery_rpo_met", byService), true))
}
