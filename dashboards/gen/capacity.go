package main

// capacity is for capacity planning: usage against the limit and the
// headroom target, the fitted trend and when it reaches the limit, and what
// the growth plan and the trend project at 6, 12 and 24 months.
func (s *set) capacity() *dashboard {
	b := newBuilder()
	byResource := `resource=~"$resource"`
	res := func(metric string, matchers ...string) string {
		return sel(metric, append([]string{byService, byResource}, matchers...)...)
	}
	resBy := func(agg, expr string) string { return agg + ` by (service, resource) (` + expr + `)` }

	b.row("Now")
	b.add(24, 9, table("Resources",
		"Each resource's latest sample (usage and limit in the source's unit: bytes, inodes, CPUs, file descriptors or connections), headroom against its target, the fitted trend per day, how many history slots it rests on, and when it reaches the limit (absent: fewer than forecast.min_samples slots since the last reset).",
		[]string{"service", "resource", "source", "method"},
		[]column{
			{query: q(`max by (service, resource, source, method) (`+res("capacity_info")+`)`, ""), hidden: true},
			{query: q(resBy("max", res("capacity_usage")), ""), header: "Usage", unit: "short"},
			{query: q(resBy("max", res("capacity_limit")), ""), header: "Limit", unit: "short"},
			{query: q(resBy("max", res("capacity_utilization_ratio")), ""), header: "Utilization", unit: "percentunit", cell: "gauge",
				thresholds: thresholds("green", 0.75, "orange", 0.9, "red")},
			{query: q(resBy("max", res("capacity_headroom_ratio")), ""), header: "Headroom", unit: "percentunit", decimals: intp(1)},
			{query: q(resBy("max", res("capacity_headroom_target_ratio")), ""), header: "Headroom target", unit: "percentunit", decimals: intp(0)},
			{query: q(resBy("max", res("capacity_headroom_target_met")), ""), header: "Target met", mappings: yesNo(), cell: "color-background"},
			{query: q(resBy("max", res("capacity_trend_per_second"))+" * 86400", ""), header: "Trend per day", unit: "short"},
			{query: q(resBy("max", res("capacity_trend_samples")), ""), header: "Trend slots", unit: "short", decimals: intp(0)},
			{query: q(resBy("min", res("capacity_exhaustion_forecast_seconds")), ""), header: "Runs out in", unit: "s",
				thresholds: thresholds("red", 7*86400, "orange", 30*86400, "green"), cell: "color-text"},
			{query: q(`time() - `+resBy("max", res("capacity_last_sample_timestamp_seconds")), ""), header: "Last sample", unit: "s"},
		},
		map[string][]map[string]any{"service": serviceLink()}))

	b.row("Usage")
	b.add(12, 8, withOverrides(withMinMax(timeseries("Utilization vs headroom target",
		"capacity_utilization_ratio against the utilization its headroom_target allows (1 - target, dashed).", "percentunit",
		q(resBy("max", res("capacity_utilization_ratio")), "{{service}}/{{resource}}"),
		q(`1 - `+resBy("max", res("capacity_headroom_target_ratio")), "{{service}}/{{resource}} ceiling")), 0, 1), dashed("B")))
	b.add(12, 8, withOverrides(timeseries("Usage vs limit",
		"capacity_usage against capacity_limit (dashed), in the source's unit.", "short",
		q(resBy("max", res("capacity_usage")), "{{service}}/{{resource}}"),
		q(resBy("max", res("capacity_limit")), "{{service}}/{{resource}} limit")), dashed("B")))

	b.row("Trend and forecast")
	b.add(12, 8, withThresholds(timeseries("Time until the limit",
		"capacity_exhaustion_forecast_seconds: when the fitted trend (linear least squares or Holt, per forecast.method over forecast.window) reaches the limit. Flat or shrinking resources never do and are not drawn.",
		"s", q(resBy("min", res("capacity_exhaustion_forecast_seconds"))+" < +Inf", "{{service}}/{{resource}}")),
		thresholds("red", 7*86400, "orange", 30*86400, "green")))
	b.add(12, 8, timeseries("Trend per day",
		"Slope of the fitted trend (capacity_trend_per_second), per day, in the source's unit.", "short",
		q(resBy("max", res("capacity_trend_per_second"))+" * 86400", "{{service}}/{{resource}}")))

	b.row("Growth plan")
	b.add(12, 9, table("Projections",
		"Utilization at each horizon over today's limit: the growth plan applied to today's usage (only the horizons the plan sets) and the fitted trend extrapolated. Above 100 %, the limit must grow by then.",
		[]string{"service", "resource", "horizon"},
		[]column{
			{query: q(`max by (service, resource, horizon) (`+res("capacity_projected_utilization_ratio", `basis="plan"`)+`)`, ""), header: "Plan",
				unit: "percentunit", decimals: intp(0), thresholds: thresholds("green", 0.75, "orange", 1, "red"), cell: "color-text"},
			{query: q(`max by (service, resource, horizon) (`+res("capacity_projected_utilization_ratio", `basis="trend"`)+`)`, ""), header: "Trend",
				unit: "percentunit", decimals: intp(0), thresholds: thresholds("green", 0.75, "orange", 1, "red"), cell: "color-text"},
		}, nil))
	b.add(12, 9, withThresholds(timeseries("Projections over time",
		"capacity_projected_utilization_ratio by basis and horizon: how the plan and the trend moved as usage and the trend changed.", "percentunit",
		q(`max by (service, resource, basis, horizon) (`+res("capacity_projected_utilization_ratio")+`)`, "{{service}}/{{resource}} {{basis}} {{horizon}}")),
		thresholds("green", 1, "red")))

	b.row("Sampling")
	b.add(12, 7, bars("Sample failures by reason", "Failed samples in each bar's interval by reason (capacity_sample_failures_total), the first failure of a reason included: a failure never becomes a reading of 0.", "short",
		q(`sum by (service, resource, reason) (`+risePerInterval(res("capacity_sample_failures_total"), true)+`)`, "{{service}}/{{resource}}: {{reason}}")))
	b.add(12, 7, timeseries("Age of the latest sample", "Time since the latest successful sample (capacity_last_sample_timestamp_seconds).", "s",
		q(`time() - `+resBy("max", res("capacity_last_sample_timestamp_seconds")), "{{service}}/{{resource}}")))

	return newDashboard(uidCapacity,
		"Capacity resources of the selected services: usage against the limit and the headroom target, the fitted trend and when it reaches the limit, and the growth plan's projections against the trend's.",
		"now-7d", b,
		serviceVariable(),
		labelValues("Resource", "resource", sel("capacity_info", byService), true))
}
