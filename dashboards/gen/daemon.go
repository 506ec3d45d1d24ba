package main

// daemon is reliabilityd itself: whether it runs with the configuration
// intended, whether its schedulers keep time, whether it evaluates and
// saves its state, and what a scrape of it costs.
func (s *set) daemon() *dashboard {
	b := newBuilder()
	byJob, byInstance := `job=~"$job"`, `instance=~"$instance"`
	d := func(metric string, matchers ...string) string {
		return sel(metric, append([]string{byJob, byInstance}, matchers...)...)
	}
	rate := func(agg, labels, metric string, matchers ...string) string {
		return agg + ` by (instance` + labels + `) (rate(` + d(metric, matchers...) + `[$__rate_interval]))`
	}
	// quantiles draws the quantiles phis (by default the median and the
	// 99th percentile) of a histogram.
	quantiles := func(metric, labels, legend string, phis ...string) []query {
		if len(phis) == 0 {
			phis = []string{"0.50", "0.99"}
		}
		var out []query
		for _, phi := range phis {
			out = append(out, q(`histogram_quantile(`+phi+`, sum by (instance`+labels+`, le) (rate(`+d(metric+"_bucket")+`[$__rate_interval])))`,
				legend+" p"+phi[2:]))
		}
		return out
	}
	since := func(metric string) string { return `time() - max by (instance) (` + d(metric) + `)` }

	b.row("Overview")
	b.add(4, 4, withMappings(stat("Scraped", "Whether Prometheus's last scrape of the daemon succeeded (up).", "none",
		q(`max by (instance) (`+d("up")+`)`, "{{instance}}")), upDown()))
	versions := stat("Version", "reliabilityd_build_info: version and revision of each daemon.", "none",
		q(`max by (instance, version, revision) (`+d("reliabilityd_build_info")+`)`, "{{instance}}: {{version}} ({{revision}})"))
	versions.Options["textMode"] = "name"
	b.add(5, 4, versions)
	b.add(5, 4, withMappings(stat("Configuration", "Whether the last load or reload of the configuration succeeded (reliabilityd_config_last_reload_successful); after a failure the previous one stays in force.", "none",
		q(`max by (instance) (`+d("reliabilityd_config_last_reload_successful")+`)`, "{{instance}}")),
		mappings(valueText{"0", "reload failed", "red"}, valueText{"1", "loaded", "green"})))
	b.add(5, 4, stat("Configuration applied", "Time since the configuration was last applied (reliabilityd_config_last_reload_success_timestamp_seconds).", "s",
		q(since("reliabilityd_config_last_reload_success_timestamp_seconds"), "{{instance}}")))
	b.add(5, 4, stat("Uptime", "Time since the process started (process_start_time_seconds).", "s",
		q(since("process_start_time_seconds"), "{{instance}}")))

	b.row("Scheduling")
	b.add(12, 8, timeseries("Scheduler lag", "Delay between a run's due time and its start (reliabilityd_scheduler_lag_seconds), per scheduler: probes, capacity sources, backup checks.", "s",
		quantiles("reliabilityd_scheduler_lag_seconds", ", scheduler", "{{instance}} {{scheduler}}")...))
	b.add(12, 8, bars("Late and skipped runs",
		"Runs started more than min(10 % of the interval, 1 s) late, and runs skipped because the previous run of the same probe was still going or the scheduler woke up more than an interval late.", "ops",
		q(rate("sum", ", scheduler", "reliabilityd_scheduler_late_runs_total"), "{{instance}} {{scheduler}} late"),
		q(rate("sum", ", scheduler", "reliabilityd_scheduler_skipped_runs_total"), "{{instance}} {{scheduler}} skipped")))
	b.add(8, 8, withOverrides(timeseries("Runs in flight", "Runs in flight against the concurrency cap (dashed; global.max_concurrent_probes for the probes).", "short",
		q(`max by (instance, scheduler) (`+d("reliabilityd_scheduler_runs_in_flight")+`)`, "{{instance}} {{scheduler}}"),
		q(`max by (instance, scheduler) (`+d("reliabilityd_scheduler_max_concurrent_runs")+`)`, "{{instance}} {{scheduler}} cap")), dashed("B")))
	b.add(8, 8, timeseries("Scheduled", "Probes, capacity sources and backup checks scheduled (reliabilityd_scheduler_probes).", "short",
		q(`max by (instance, scheduler) (`+d("reliabilityd_scheduler_probes")+`)`, "{{instance}} {{scheduler}}")))
	b.add(8, 8, timeseries("Probe runs per wakeup", "Probe runs per scheduler wakeup: how well start phases are batched (--scheduler.slot).", "short",
		q(`sum by (instance) (rate(`+d("probe_runs_total")+`[$__rate_interval])) / `+rate("sum", "", "reliabilityd_scheduler_wakeups_total", `scheduler="probes"`), "{{instance}}")))
	b.add(24, 7, timeseries("Probe runs by service", "Probe runs per second of each selected service (probe_runs_total).", "ops",
		q(`sum by (service) (rate(`+d("probe_runs_total", byService)+`[$__rate_interval]))`, "{{service}}")))

	b.row("Configuration, evaluation and state")
	b.add(8, 7, bars("Configuration reloads", "Loads and reloads of the configuration in each bar's interval, by result (reliabilityd_config_reloads_total); a restart counts its first load.", "short",
		q(`sum by (instance, result) (`+risePerInterval(d("reliabilityd_config_reloads_total"), true)+`)`, "{{instance}} {{result}}")))
	b.add(8, 7, timeseries("SLO evaluation", "Time of one evaluation of every SLO, capacity resource and recovery figure (reliabilityd_slo_evaluation_duration_seconds).", "s",
		quantiles("reliabilityd_slo_evaluation_duration_seconds", "", "{{instance}}")...))
	b.add(8, 7, timeseries("Time since the last evaluation", "reliabilityd_slo_last_evaluation_timestamp_seconds: should stay below global.evaluation_interval.", "s",
		q(since("reliabilityd_slo_last_evaluation_timestamp_seconds"), "{{instance}}")))
	b.add(8, 7, bars("State flushes", "State flushes per second, and failed ones (reliabilityd_state_flushes_total, reliabilityd_state_flush_failures_total).", "ops",
		q(rate("sum", "", "reliabilityd_state_flushes_total"), "{{instance}} flushes"),
		q(rate("sum", "", "reliabilityd_state_flush_failures_total"), "{{instance}} failures")))
	b.add(8, 7, timeseries("State flush duration", "Time to write the state file (reliabilityd_state_flush_duration_seconds).", "s",
		quantiles("reliabilityd_state_flush_duration_seconds", "", "{{instance}}")...))
	b.add(8, 7, withThresholds(timeseries("Time since the last good flush", "reliabilityd_state_last_flush_success_timestamp_seconds: a restart loses what happened since; the shipped alert fires above 5 minutes.", "s",
		q(since("reliabilityd_state_last_flush_success_timestamp_seconds"), "{{instance}}")), thresholds("green", 300, "red")))
	b.add(8, 7, timeseries("State file size", "Size of the state file last written (reliabilityd_state_size_bytes).", "bytes",
		q(`max by (instance) (`+d("reliabilityd_state_size_bytes")+`)`, "{{instance}}")))
	b.add(8, 7, timeseries("Kept for removed objects", "SLOs and capacity resources removed from the configuration whose history is still kept in case they come back (reliabilityd_slo_orphaned, reliabilityd_capacity_orphaned).", "short",
		q(`max by (instance) (`+d("reliabilityd_slo_orphaned")+`)`, "{{instance}} SLOs"),
		q(`max by (instance) (`+d("reliabilityd_capacity_orphaned")+`)`, "{{instance}} capacity resources")))
	b.add(8, 7, withThresholds(stat("Problems since start", "State files found corrupt and moved aside (reliabilityd_state_corrupt_files_total), and probe results stamped in the future and not counted (reliabilityd_slo_future_events_total): both should stay 0.", "none",
		q(`max by (instance) (`+d("reliabilityd_state_corrupt_files_total")+`)`, "{{instance}} corrupt state files"),
		q(`max by (instance) (`+d("reliabilityd_slo_future_events_total")+`)`, "{{instance}} future results")), thresholds("green", 1, "red")))

	// Every query of a source counts in its counters, whichever resource,
	// backup or SLI sent it. A source's failure series exist from the start
	// at 0 for every reason: the bars leave out the reasons that did not
	// occur, which would otherwise fill the legend.
	b.row("Prometheus sources")
	b.add(12, 8, timeseries("Source queries",
		"Queries per second sent to each Prometheus source (prometheus_source_queries_total), by the capacity resources, backup checks and SLIs that read it.", "ops",
		q(rate("sum", ", source", "prometheus_source_queries_total"), "{{instance}} {{source}}")))
	b.add(12, 8, bars("Source query failures by reason",
		"Failed queries of each Prometheus source in each bar's interval, by reason (prometheus_source_query_failures_total): timeout, dns, connect, tls, secret and most status errors are the source or the way to it; empty, multiple, nan, body_too_large, protocol and API errors are a query that is wrong. The landing page's Prometheus sources table shows the last error and the query it sent.", "short",
		q(`sum by (instance, source, reason) (`+risePerInterval(d("prometheus_source_query_failures_total"), true)+`) > 0`, "{{instance}} {{source}}: {{reason}}")))
	b.add(12, 8, withThresholds(withMinMax(timeseries("Source failure ratio",
		"Share of each Prometheus source's queries that failed (prometheus_source_query_failures_total over prometheus_source_queries_total). The shipped alert ReliabilitydPrometheusSourceFailing pages when more than half (the red line) fail over 10 minutes, for 10 minutes.", "percentunit",
		q(rate("sum", ", source", "prometheus_source_query_failures_total")+` / `+rate("sum", ", source", "prometheus_source_queries_total"), "{{instance}} {{source}}")),
		0, 1), thresholds("green", 0.5, "red")))
	b.add(12, 8, timeseries("Source query duration",
		"90th percentile of the time a query of each Prometheus source took, failed ones included (prometheus_source_query_duration_seconds); the source's timeout cuts it.", "s",
		quantiles("prometheus_source_query_duration_seconds", ", source", "{{instance}} {{source}}", "0.90")...))

	b.row("Scrape cost")
	b.add(8, 7, timeseries("Scrape duration", "How long Prometheus took to scrape the daemon (scrape_duration_seconds, recorded by Prometheus).", "s",
		q(`max by (instance) (`+d("scrape_duration_seconds")+`)`, "{{instance}}")))
	b.add(8, 7, timeseries("Samples per scrape", "Samples in each scrape (scrape_samples_scraped, recorded by Prometheus).", "short",
		q(`max by (instance) (`+d("scrape_samples_scraped")+`)`, "{{instance}}")))
	b.add(8, 7, timeseries("Series by service", "Probe, SLO, capacity and recovery series of each selected service: what each one adds to a scrape.", "short",
		q(`count by (service) ({__name__=~"probe_.+|slo_.+|capacity_.+|recovery_.+",`+byJob+`,`+byInstance+`,`+byService+`})`, "{{service}}")))
	b.add(8, 7, timeseries("CPU", "CPU time used per second (process_cpu_seconds_total).", "short",
		q(rate("sum", "", "process_cpu_seconds_total"), "{{instance}}")))
	b.add(8, 7, timeseries("Memory", "Resident memory (process_resident_memory_bytes) and Go heap in use (go_memstats_heap_inuse_bytes).", "bytes",
		q(`max by (instance) (`+d("process_resident_memory_bytes")+`)`, "{{instance}} resident"),
		q(`max by (instance) (`+d("go_memstats_heap_inuse_bytes")+`)`, "{{instance}} heap in use")))
	b.add(8, 7, timeseries("Metric requests", "Requests to /metrics per second by status code (promhttp_metric_handler_requests_total), and goroutines (go_goroutines).", "short",
		q(rate("sum", ", code", "promhttp_metric_handler_requests_total"), "{{instance}} {{code}}"),
		q(`max by (instance) (`+d("go_goroutines")+`)`, "{{instance}} goroutines")))

	job := labelValues("Job", "job", "reliabilityd_build_info", true)
	instance := labelValues("Instance", "instance", sel("reliabilityd_build_info", byJob), true)
	return newDashboard(uidDaemon,
		"reliabilityd itself: whether it is scraped and runs the configuration intended, whether its schedulers keep time, whether it evaluates and saves its state, whether its Prometheus sources answer, and what a scrape costs.",
		"now-6h", b,
		job, instance, serviceVariable(byJob, byInstance))
}
