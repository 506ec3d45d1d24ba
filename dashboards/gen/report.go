package main

// report is the overview a monthly operational review starts from: per
// service, whether the availability, capacity and recovery targets are met,
// and the alerts that are firing now.
func (s *set) report() *dashboard {
	b := newBuilder()

	b.row("Summary")
	b.add(4, 4, stat("Services", "Services selected (reliabilityd_service_info).", "none",
		q(`count(`+sel("reliabilityd_service_info", byService)+`)`, "")))
	b.add(5, 4, withNoValue(stat("SLOs meeting their objective",
		"SLOs whose SLI over their own window (rolling, or the current calendar period) is at least the objective, out of the SLOs with data in that window.",
		"none",
		q(`sum(`+sel("slo_sli_ratio", byService, `window="full"`)+` >= bool on (job, instance, service, slo) slo_objective_ratio)`, "met"),
		q(`count(`+sel("slo_sli_ratio", byService, `window="full"`)+`)`, "with data")), "no SLO data"))
	b.add(5, 4, withThresholds(stat("Least error budget left",
		"The smallest share of error budget left among the selected SLOs, in their own window; negative once overspent.",
		"percentunit", q(`min(`+sel("slo_error_budget_remaining_ratio", byService)+`)`, "")),
		thresholds("red", 0, "orange", 0.25, "green")))
	b.add(5, 4, withThresholds(stat("Resources below headroom target",
		"Capacity resources whose headroom is below their headroom_target (capacity_headroom_target_met = 0).",
		"none", q(`sum(`+sel("capacity_headroom_target_met", byService)+` == bool 0)`, "")),
		thresholds("green", 1, "red")))
	b.add(5, 4, withNoValue(withThresholds(stat("Nearest capacity exhaustion",
		"The shortest time until a resource reaches its limit at its fitted trend (capacity_exhaustion_forecast_seconds); resources that are flat or shrinking never run out and are left out.",
		"s", q(`min(`+sel("capacity_exhaustion_forecast_seconds", byService)+` < +Inf)`, "")),
		thresholds("red", 7*86400, "orange", 30*86400, "green")), "none: flat or shrinking"))

	b.add(4, 4, withThresholds(stat("Open outages", "Services in an outage now (recovery_outage_active).", "none",
		q(`sum(`+sel("recovery_outage_active", byService)+`)`, "")), thresholds("green", 1, "red")))
	b.add(5, 4, stat("Backups within RPO",
		"Backups whose latest good recovery point is at most the RPO old (recovery_rpo_met), out of all checked backups.", "none",
		q(`sum(`+sel("recovery_rpo_met", byService)+`)`, "within RPO"),
		q(`count(`+sel("recovery_rpo_met", byService)+`)`, "backups")))
	b.add(5, 4, withThresholds(stat("Overdue drills",
		"Services whose latest recovery drill is older than drills.every, or that never recorded one (recovery_drill_overdue).", "none",
		q(`sum(`+sel("recovery_drill_overdue", byService)+`)`, "")), thresholds("green", 1, "orange")))
	b.add(5, 4, withThresholds(stat("Failing probes", "Probes whose last run failed (probe_success = 0).", "none",
		q(`sum(`+sel("probe_success", byService)+` == bool 0)`, "")), thresholds("green", 1, "red")))
	b.add(5, 4, withNoValue(withThresholds(stat("Alerts firing",
		"Alerts of the rules shipped in deploy/prometheus that are firing, by severity; needs those rules loaded in this Prometheus.", "none",
		q(`count by (severity) (`+s.firingAlerts()+`)`, "{{severity}}")), thresholds("green", 1, "red")), "none"))

	b.row("Service-level objectives")
	window := func(metric, w string) string { return sel(metric, byService, `window="`+w+`"`) }
	sloBy := func(agg, expr string) string { return agg + ` by (service, slo) (` + expr + `)` }
	columns := []column{
		{query: q(`max by (service, slo, sli, period) (`+sel("slo_info", byService)+`)`, ""), hidden: true},
		{query: q(sloBy("max", sel("slo_objective_ratio", byService)), ""), header: "Objective", unit: "percentunit", decimals: intp(3)},
		{query: q(sloBy("max", window("slo_sli_ratio", "full")), ""), header: "SLI (SLO window)", unit: "percentunit", decimals: intp(3)},
		{query: q(sloBy("max", window("slo_sli_ratio", "full")+` >= bool on (job, instance, service, slo) slo_objective_ratio`), ""),
			header: "Met", mappings: yesNo(), cell: "color-background"},
		{query: q(sloBy("sum", `increase(`+sel("slo_events_total", byService, `result="good"`)+`[$__range])`)+
			" / "+sloBy("sum", `increase(`+sel("slo_events_total", byService)+`[$__range])`), ""),
			header: "SLI (time range)", unit: "percentunit", decimals: intp(3)},
		{query: q(sloBy("max", sel("slo_error_budget_remaining_ratio", byService)), ""), header: "Budget left", unit: "percentunit",
			decimals: intp(1), thresholds: thresholds("red", 0, "orange", 0.25, "green"), cell: "color-text"},
	}
	// A column per window of the burn-rate alerts, coloured at that alert's
	// threshold.
	for _, burn := range s.burn {
		columns = append(columns, column{query: q(sloBy("max", window("slo_burn_rate", burn.window)), ""), header: "Burn " + burn.window,
			decimals: intp(2), thresholds: s.burnColors(burn.window), cell: "color-text"})
	}
	columns = append(columns,
		column{query: q(sloBy("min", sel("slo_error_budget_exhaustion_forecast_seconds", byService)), ""), header: "Budget spent in", unit: "s"},
		column{query: q(sloBy("max", window("slo_window_events", "full")), ""), header: "Events", unit: "short"},
		column{query: q(sloBy("max", sel("slo_window_excluded_events", byService)), ""), header: "Planned downtime events", unit: "short"},
	)
	b.add(24, 10, table("SLOs",
		"Each SLO over its own window (rolling, or the current calendar period), as the daemon computes it, and over this dashboard's time range from the raw event counters: pick \"This month\" or \"Previous month\" in the time picker for a calendar report. Burn rates: 1 spends the budget in exactly one window length; each column turns to its alert's colour at that alert's threshold: "+s.burnSummary()+" (deploy/prometheus/slo.rules.yml).",
		[]string{"service", "slo", "sli", "period"},
		columns,
		map[string][]map[string]any{"service": serviceLink()}))
	b.add(12, 8, withThresholds(timeseries("Burn rate over the last hour",
		"slo_burn_rate{window=\"1h\"} of each SLO: how many times faster than allowed the budget is being spent. The line is the threshold of the alert on the 1h window, as in the SLOs table.", "none",
		q(sloBy("max", window("slo_burn_rate", "1h")), "{{service}}/{{slo}}")),
		s.burnColors("1h")))
	b.add(12, 8, withThresholds(timeseries("Error budget left",
		"slo_error_budget_remaining_ratio of each SLO over time: its own window's budget, so a calendar SLO starts again at 100 % each period.",
		"percentunit", q(sloBy("max", sel("slo_error_budget_remaining_ratio", byService)), "{{service}}/{{slo}}")),
		thresholds("red", 0, "green")))

	b.row("Capacity")
	resBy := func(agg, expr string) string { return agg + ` by (service, resource) (` + expr + `)` }
	projection := func(basis, horizon string) column {
		return column{query: q(resBy("max", sel("capacity_projected_utilization_ratio", byService, `basis="`+basis+`"`, `horizon="`+horizon+`"`)), ""),
			header: basis + " " + horizon, unit: "percentunit", decimals: intp(0),
			thresholds: thresholds("green", 0.75, "orange", 1, "red"), cell: "color-text"}
	}
	b.add(24, 9, table("Capacity",
		"Each resource's utilization now, its headroom against the headroom_target, the time until the fitted trend reaches the limit (absent: too little history), and the utilization the growth plan and the trend project in 12 months, over today's limit.",
		[]string{"service", "resource", "source", "method"},
		[]column{
			{query: q(`max by (service, resource, source, method) (`+sel("capacity_info", byService)+`)`, ""), hidden: true},
			{query: q(resBy("max", sel("capacity_utilization_ratio", byService)), ""), header: "Utilization", unit: "percentunit", cell: "gauge",
				thresholds: thresholds("green", 0.75, "orange", 0.9, "red")},
			{query: q(resBy("max", sel("capacity_headroom_ratio", byService)), ""), header: "Headroom", unit: "percentunit", decimals: intp(1)},
			{query: q(resBy("max", sel("capacity_headroom_target_ratio", byService)), ""), header: "Headroom target", unit: "percentunit", decimals: intp(0)},
			{query: q(resBy("max", sel("capacity_headroom_target_met", byService)), ""), header: "Target met", mappings: yesNo(), cell: "color-background"},
			{query: q(resBy("min", sel("capacity_exhaustion_forecast_seconds", byService)), ""), header: "Runs out in", unit: "s",
				thresholds: thresholds("red", 7*86400, "orange", 30*86400, "green"), cell: "color-text"},
			projection("plan", "12mo"), projection("trend", "12mo"),
		},
		map[string][]map[string]any{"service": serviceLink()}))

	b.row("Recovery")
	svcBy := func(agg, expr string) string { return agg + ` by (service) (` + expr + `)` }
	b.add(24, 8, table("Recovery",
		"Each service with a recovery section: the open outage against the RTO, the last closed one, MTTR, MTBF and unplanned downtime over the recovery window, RTO breaches over this dashboard's time range, the oldest backup against the RPO, and drills.",
		[]string{"service"},
		[]column{
			{query: q(svcBy("max", sel("recovery_rto_seconds", byService)), ""), header: "RTO", unit: "s"},
			{query: q(svcBy("max", sel("recovery_rpo_seconds", byService)), ""), header: "RPO", unit: "s"},
			{query: q(svcBy("max", sel("recovery_outage_active", byService)), ""), header: "Outage", mappings: outageMap(), cell: "color-background"},
			{query: q(svcBy("max", sel("recovery_outage_elapsed_rto_ratio", byService)), ""), header: "Open outage / RTO", unit: "percentunit",
				thresholds: thresholds("green", 0.5, "orange", 1, "red"), cell: "color-text"},
			{query: q(svcBy("max", sel("recovery_last_outage_rto_met", byService)), ""), header: "Last outage within RTO", mappings: yesNo(), cell: "color-background"},
			{query: q(svcBy("max", sel("recovery_mttr_seconds", byService)), ""), header: "MTTR", unit: "s"},
			{query: q(svcBy("max", sel("recovery_mtbf_seconds", byService)), ""), header: "MTBF", unit: "s"},
			{query: q(svcBy("max", sel("recovery_unplanned_downtime_seconds", byService)), ""), header: "Unplanned downtime", unit: "s"},
			{query: q(svcBy("sum", `increase(`+sel("recovery_rto_breaches_total", byService)+`[$__range])`), ""), header: "RTO breaches (time range)", unit: "short", decimals: intp(0)},
			{query: q(svcBy("min", sel("recovery_rpo_met", byService)), ""), header: "Backups within RPO", mappings: yesNo(), cell: "color-background"},
			{query: q(svcBy("max", sel("recovery_point_age_seconds", byService)), ""), header: "Oldest recovery point", unit: "s"},
			{query: q(svcBy("max", sel("recovery_drill_overdue", byService)), ""), header: "Drill overdue", mappings: overdue(), cell: "color-background"},
			{query: q(svcBy("max", sel("recovery_drill_rto_met", byService)), ""), header: "Last drill within RTO", mappings: yesNo(), cell: "color-background"},
		},
		map[string][]map[string]any{"service": serviceLink()}))

	b.row("Alerts")
	b.add(24, 7, labelTable("Firing alerts",
		"Alerts of the rules shipped in deploy/prometheus that are firing now, in the selected services (and the daemon's own alerts, which have no service). Needs those rules loaded in this Prometheus.",
		s.firingAlerts(), "alertstate"))

	return newDashboard(uidReport,
		"Every service at a glance: SLO attainment and error budget, capacity headroom and forecast, recovery compliance and firing alerts.",
		"now-30d", b, serviceVariable())
}
