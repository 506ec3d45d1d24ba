package main

// service is the detail of the selected services: their SLIs against the
// objectives, the error budget burning down, every probe's runs, and the
// outages, with maintenance windows drawn as annotations.
func (s *set) service() *dashboard {
	b := newBuilder()
	bySLO := `slo=~"$slo"`
	slo := func(metric string, matchers ...string) string {
		return sel(metric, append([]string{byService, bySLO}, matchers...)...)
	}
	sloBy := func(agg, expr string) string { return agg + ` by (service, slo) (` + expr + `)` }
	probe := func(metric string, matchers ...string) string {
		return sel(metric, append([]string{byService, byProbe}, matchers...)...)
	}
	probeBy := func(agg, labels, expr string) string {
		return agg + ` by (service, probe` + labels + `) (` + expr + `)`
	}
	svcBy := func(agg, expr string) string { return agg + ` by (service) (` + expr + `)` }

	b.row("Status")
	b.add(8, 5, withMappings(stat("Probes now", "Whether each probe's last run succeeded (probe_success).", "none",
		q(probeBy("max", "", probe("probe_success")), "{{service}}/{{probe}}")), upDown()))
	b.add(8, 5, withDecimals(withThresholds(stat("SLI minus objective",
		"Each SLO's SLI over its own window, rolling or the current calendar period (slo_sli_ratio{window=\"full\"}), minus its objective (slo_objective_ratio): green at or above 0, the objective met; red below. The SLI itself is in the SLO table below.",
		"percentunit", q(sloBy("max", slo("slo_sli_ratio", `window="full"`))+" - "+sloBy("max", slo("slo_objective_ratio")), "{{service}}/{{slo}}")),
		thresholds("red", 0, "green")), 3))
	b.add(8, 5, withThresholds(stat("Error budget left", "Share of each SLO's error budget left in its window (slo_error_budget_remaining_ratio).",
		"percentunit", q(sloBy("max", slo("slo_error_budget_remaining_ratio")), "{{service}}/{{slo}}")),
		thresholds("red", 0, "orange", 0.25, "green")))
	b.add(6, 4, withMappings(stat("Outage", "Whether the service is in an outage now (recovery_outage_active); only services with a recovery section have one.", "none",
		q(svcBy("max", sel("recovery_outage_active", byService)), "{{service}}")), outageMap()))
	b.add(6, 4, withThresholds(stat("Open outage / RTO", "How long the open unplanned outage has lasted, over the RTO (recovery_outage_elapsed_rto_ratio); 0 without one.",
		"percentunit", q(svcBy("max", sel("recovery_outage_elapsed_rto_ratio", byService)), "{{service}}")),
		thresholds("green", 0.5, "orange", 1, "red")))
	b.add(6, 4, withMappings(stat("Maintenance", "Whether a maintenance window is in force (slo_maintenance_active): runs are excluded from the SLOs.", "none",
		q(svcBy("max", sel("slo_maintenance_active", byService)), "{{service}}")),
		mappings(valueText{"0", "no", "green"}, valueText{"1", "in maintenance", "blue"})))
	b.add(6, 4, withMappings(stat("Hours of operation", "Whether the service is within its hours of operation (slo_operating_time_active): runs outside them are excluded from the SLOs.", "none",
		q(svcBy("max", sel("slo_operating_time_active", byService)), "{{service}}")),
		mappings(valueText{"0", "closed", "blue"}, valueText{"1", "open", "green"})))

	b.row("Service-level objectives")
	b.add(12, 8, withOverrides(withMinMax(timeseries("SLI vs objective",
		"Each SLO's SLI over its own window (slo_sli_ratio{window=\"full\"}) and over the last hour, against its objective (dashed).",
		"percentunit",
		q(sloBy("max", slo("slo_sli_ratio", `window="full"`)), "{{service}}/{{slo}} SLI (SLO window)"),
		q(sloBy("max", slo("slo_sli_ratio", `window="1h"`)), "{{service}}/{{slo}} SLI (1h)"),
		q(sloBy("max", slo("slo_objective_ratio")), "{{service}}/{{slo}} objective")), nil, 1), dashed("C")))
	b.add(12, 8, withThresholds(timeseries("Error budget burn-down",
		"Share of the error budget left in each SLO's window (slo_error_budget_remaining_ratio); below 0 it is overspent. A calendar SLO's budget starts again at 100 % each period.",
		"percentunit", q(sloBy("max", slo("slo_error_budget_remaining_ratio")), "{{service}}/{{slo}}")),
		thresholds("red", 0, "green")))
	b.add(12, 8, withThresholds(timeseries("Burn rate",
		"slo_burn_rate over the long windows of the shipped burn-rate alerts: 1 spends the budget in exactly the window's length. A line at each alert's threshold: "+s.burnSummary()+"; each alert also needs its short window above the threshold.",
		"none", q(`max by (service, slo, window) (`+slo("slo_burn_rate", `window=~"`+s.burnWindows()+`"`)+`)`, "{{service}}/{{slo}} {{window}}")),
		s.burnLines()))
	b.add(12, 8, bars("Events",
		"Probe runs counted by each SLO, good and bad, and those excluded as planned downtime (maintenance, outside the hours of operation), in each bar's interval (slo_events_total, slo_excluded_events_total).",
		"short",
		q(`sum by (service, slo, result) (`+risePerInterval(slo("slo_events_total"), false)+`)`, "{{service}}/{{slo}} {{result}}"),
		q(`sum by (service, slo, reason) (`+risePerInterval(slo("slo_excluded_events_total"), false)+`)`, "{{service}}/{{slo}} excluded: {{reason}}")))
	b.add(24, 7, table("SLOs",
		"Each SLO's definition and its figures in its own window: the SLI and whether it meets the objective, events counted, bad events the budget allows, bad events so far, and the time until the budget is spent at the last hour's burn rate.",
		[]string{"service", "slo", "sli", "period"},
		[]column{
			{query: q(`max by (service, slo, sli, period) (`+slo("slo_info")+`)`, ""), hidden: true},
			{query: q(sloBy("max", slo("slo_objective_ratio")), ""), header: "Objective", unit: "percentunit", decimals: intp(3)},
			{query: q(sloBy("max", slo("slo_sli_ratio", `window="full"`)), ""), header: "SLI", unit: "percentunit", decimals: intp(3)},
			{query: q(sloBy("max", slo("slo_sli_ratio", `window="full"`)+` >= bool on (job, instance, service, slo) slo_objective_ratio`), ""),
				header: "Met", mappings: yesNo(), cell: "color-background"},
			{query: q(sloBy("max", slo("slo_latency_threshold_seconds")), ""), header: "Latency below", unit: "s"},
			{query: q(sloBy("max", slo("slo_window_start_timestamp_seconds"))+" * 1000", ""), header: "Window start", unit: "dateTimeAsIso"},
			{query: q(sloBy("max", slo("slo_window_seconds")), ""), header: "Window", unit: "s"},
			{query: q(sloBy("max", slo("slo_window_events", `window="full"`)), ""), header: "Events", unit: "short"},
			{query: q(sloBy("max", slo("slo_error_budget_events")), ""), header: "Bad events allowed", unit: "short", decimals: intp(1)},
			{query: q(sloBy("max", slo("slo_error_budget_consumed_events")), ""), header: "Bad events", unit: "short"},
			{query: q(sloBy("max", slo("slo_error_budget_remaining_events")), ""), header: "Bad events left", unit: "short", decimals: intp(1)},
			{query: q(sloBy("min", slo("slo_error_budget_exhaustion_forecast_seconds")), ""), header: "Budget spent in", unit: "s"},
		}, nil))

	b.row("Probes")
	b.add(24, 6, stateTimeline("Probe status", "Whether each run succeeded (probe_success), as Prometheus scraped it.", upDown(),
		q(probeBy("max", "", probe("probe_success")), "{{service}}/{{probe}}")))
	runs := func(metric string) string {
		return probeBy("sum", "", `rate(`+probe(metric)+`[$__rate_interval])`)
	}
	b.add(12, 8, withMinMax(timeseries("Success ratio",
		"Share of runs that succeeded per interval, from probe_runs_total and probe_failures_total (a probe that never failed has no failure series, hence the or).",
		"percentunit",
		q(`(`+runs("probe_runs_total")+` - (`+runs("probe_failures_total")+` or `+runs("probe_runs_total")+` * 0)) / `+runs("probe_runs_total"), "{{service}}/{{probe}}")),
		nil, 1))
	quantile := func(phi string) query {
		return q(`histogram_quantile(`+phi+`, sum by (service, probe, le) (rate(`+probe("probe_latency_seconds_bucket")+`[$__rate_interval])))`,
			"{{service}}/{{probe}} p"+phi[2:])
	}
	b.add(12, 8, timeseries("Latency of successful runs",
		"Quantiles of probe_latency_seconds: successful runs only, so a fast refusal never looks like good latency.", "s",
		quantile("0.50"), quantile("0.90"), quantile("0.99")))
	b.add(12, 8, timeseries("Duration of the last run", "probe_duration_seconds: wall time of the last run, successful or not.", "s",
		q(probeBy("max", "", probe("probe_duration_seconds")), "{{service}}/{{probe}}")))
	b.add(12, 8, timeseries("Phases of the last run",
		"probe_phase_duration_seconds: resolve, connect, tls, processing (request to first byte) and transfer; only the phases the run reached.", "s",
		q(probeBy("max", ", phase", probe("probe_phase_duration_seconds")), "{{service}}/{{probe}} {{phase}}")))
	b.add(12, 8, bars("Failures by reason", "Failed runs in each bar's interval by reason (probe_failures_total), the first failure of a reason included.", "short",
		q(probeBy("sum", ", reason", risePerInterval(probe("probe_failures_total"), true)), "{{service}}/{{probe}}: {{reason}}")))
	b.add(12, 8, timeseries("HTTP status code", "Status code of the last final HTTP response (probe_http_status_code); 0 when none was received.", "none",
		q(probeBy("max", "", probe("probe_http_status_code")), "{{service}}/{{probe}}")))
	b.add(12, 8, withThresholds(timeseries("Certificate expiry",
		"Time until the earliest certificate of the chain, and the server's own, expire, from the last TLS connection; kept while later runs fail before TLS.",
		"s",
		q(probeBy("min", "", probe("probe_tls_earliest_cert_expiry_timestamp_seconds"))+" - time()", "{{service}}/{{probe}} earliest in chain"),
		q(probeBy("min", "", probe("probe_tls_leaf_cert_expiry_timestamp_seconds"))+" - time()", "{{service}}/{{probe}} leaf")),
		thresholds("red", 3*86400, "orange", 14*86400, "green")))
	b.add(12, 8, table("Probe targets",
		"Each probe's type and target (credentials removed), how long ago it last ran, and its runs and failures over this dashboard's time range; a failure reason that first occurred in the range counts from zero.",
		[]string{"service", "probe", "type", "target"},
		[]column{
			{query: q(`max by (service, probe, type, target) (`+probe("probe_info")+`)`, ""), hidden: true},
			{query: q(`time() - `+probeBy("max", "", probe("probe_last_run_timestamp_seconds")), ""), header: "Last run", unit: "s"},
			{query: q(probeBy("sum", "", `increase(`+probe("probe_runs_total")+`[$__range])`), ""), header: "Runs", unit: "short", decimals: intp(0)},
			{query: q(probeBy("sum", "", appearedIncrease(probe("probe_failures_total"), "$__range")), ""), header: "Failures", unit: "short", decimals: intp(0)},
		}, nil))

	b.row("Outages")
	b.add(24, 5, stateTimeline("Outages", "Whether each service was in an outage (recovery_outage_active), as Prometheus scraped it.", outageMap(),
		q(svcBy("max", sel("recovery_outage_active", byService)), "{{service}}")))
	b.add(12, 7, withThresholds(timeseries("Open outage vs RTO",
		"The open unplanned outage's elapsed time over the RTO (recovery_outage_elapsed_rto_ratio): the shipped alerts page at 50 % and 100 %.",
		"percentunit", q(svcBy("max", sel("recovery_outage_elapsed_rto_ratio", byService)), "{{service}}")),
		thresholds("green", 0.5, "orange", 1, "red")))
	b.add(6, 7, withDecimals(stat("Outages in the time range", "Outages opened during this dashboard's time range, planned (started in maintenance) or not (recovery_outages_total).", "none",
		q(`sum by (service, planned) (increase(`+sel("recovery_outages_total", byService)+`[$__range]))`, "{{service}} planned={{planned}}")), 0))
	b.add(6, 7, stat("Unplanned downtime", "Unplanned downtime within the recovery window, the open outage included (recovery_unplanned_downtime_seconds).", "s",
		q(svcBy("max", sel("recovery_unplanned_downtime_seconds", byService)), "{{service}}")))

	b.collapsedRow("Per probe type", func(b *builder) {
		b.add(12, 7, stateTimeline("Transaction steps", "Per step of the last run: 1 when it succeeded, 0 when it failed or was not reached (probe_step_success). Transaction probes only.",
			mappings(valueText{"0", "failed", "red"}, valueText{"1", "ok", "green"}),
			q(probeBy("max", ", step", probe("probe_step_success")), "{{service}}/{{probe}}: {{step}}")))
		b.add(12, 7, timeseries("Transaction step durations", "Wall time of each step the last run reached (probe_step_duration_seconds).", "s",
			q(probeBy("max", ", step", probe("probe_step_duration_seconds")), "{{service}}/{{probe}}: {{step}}")))
		b.add(12, 7, bars("Transaction step failures", "Failed steps in each bar's interval by step and reason (probe_step_failures_total), the first failure of a step and reason included.", "short",
			q(probeBy("sum", ", step, reason", risePerInterval(probe("probe_step_failures_total"), true)), "{{service}}/{{probe}}: {{step}} {{reason}}")))
		b.add(12, 7, withMappings(timeseries("DNS response code", "Response code of the last DNS response (probe_dns_rcode).", "none",
			q(probeBy("max", "", probe("probe_dns_rcode")), "{{service}}/{{probe}}")),
			mappings(valueText{"0", "NOERROR", "green"}, valueText{"2", "SERVFAIL", "red"}, valueText{"3", "NXDOMAIN", "orange"}, valueText{"5", "REFUSED", "red"})))
		b.add(12, 7, timeseries("DNS records", "Records in each section of the last DNS response (probe_dns_records).", "short",
			q(probeBy("max", ", section", probe("probe_dns_records")), "{{service}}/{{probe}}: {{section}}")))
		b.add(12, 7, withMinMax(timeseries("ICMP packet loss",
			"Share of echo requests without a reply: in the last run (probe_icmp_packet_loss_ratio) and per interval from the packet counters.", "percentunit",
			q(probeBy("max", "", probe("probe_icmp_packet_loss_ratio")), "{{service}}/{{probe}} last run"),
			q(`1 - `+runs("probe_icmp_packets_received_total")+` / `+runs("probe_icmp_packets_sent_total"), "{{service}}/{{probe}} per interval")), 0, 1))
		b.add(12, 7, timeseries("ICMP round-trip time", "Minimum, mean and maximum round-trip time of the last run's replies (probe_icmp_rtt_seconds).", "s",
			q(probeBy("max", ", stat", probe("probe_icmp_rtt_seconds")), "{{service}}/{{probe}} {{stat}}")))
		b.add(12, 7, stateTimeline("gRPC health", "The serving status of the last health check response (probe_grpc_healthcheck_response): each status is a row, on while it is the one reported.",
			mappings(valueText{"0", "", "transparent"}, valueText{"1", "reported", "blue"}),
			q(probeBy("max", ", serving_status", probe("probe_grpc_healthcheck_response")), "{{service}}/{{probe}}: {{serving_status}}")))
		b.add(24, 6, table("TLS version and cipher", "TLS version and cipher suite of each probe's last TLS connection (probe_tls_version_info, probe_tls_cipher_info).",
			[]string{"service", "probe", "version", "cipher"},
			[]column{
				{query: q(probeBy("max", ", version", probe("probe_tls_version_info")), ""), hidden: true},
				{query: q(probeBy("max", ", cipher", probe("probe_tls_cipher_info")), ""), hidden: true},
			}, nil))
	})

	d := newDashboard(uidService,
		"The selected services in depth: SLIs against their objectives, the error budget burning down, each probe's success, latency, phases and failure reasons, and outages; maintenance windows and outages are annotations.",
		"now-24h", b,
		serviceVariable(),
		labelValues("Probe", "probe", sel("probe_info", byService), true),
		labelValues("SLO", "slo", sel("slo_info", byService), true))
	d.Annotations.List = []annotation{
		{Datasource: prometheus(), Enable: true, Expr: svcBy("max", sel("slo_maintenance_active", byService)), IconColor: "blue",
			Name: "Maintenance", Step: "1m", TagKeys: "service", TitleFormat: "Maintenance: {{service}}"},
		{Datasource: prometheus(), Enable: true, Expr: svcBy("max", sel("recovery_outage_active", byService)), IconColor: "red",
			Name: "Outages", Step: "1m", TagKeys: "service", TitleFormat: "Outage: {{service}}"},
		{Datasource: prometheus(), Enable: false, Expr: `1 - ` + svcBy("max", sel("slo_operating_time_active", byService)), IconColor: "purple",
			Name: "Outside hours of operation", Step: "5m", TagKeys: "service", TitleFormat: "Outside hours: {{service}}"},
	}
	return d
}
