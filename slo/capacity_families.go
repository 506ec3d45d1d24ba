package slo

import (
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"

	"github.com/reliabilityd/reliabilityd/collector"
)

var (
	capInfo         = family{"capacity_info", "Static description of a capacity resource: its source (filesystem, memory, cpu, process) and forecast method (linear, holt).", dto.MetricType_GAUGE}
	capUsage        = family{"capacity_usage", "Usage of the resource at its latest successful sample, in the source's unit (bytes, inodes, CPUs, file descriptors, connections).", dto.MetricType_GAUGE}
	capLimit        = family{"capacity_limit", "Limit of the resource: configured, or read from the source.", dto.MetricType_GAUGE}
	capUtil         = family{"capacity_utilization_ratio", "Usage over limit.", dto.MetricType_GAUGE}
	capHeadroom     = family{"capacity_headroom_ratio", "Share of the limit left: 1 - utilization.", dto.MetricType_GAUGE}
	capTarget       = family{"capacity_headroom_target_ratio", "Share of the limit that should stay free (headroom_target).", dto.MetricType_GAUGE}
	capTargetMet    = family{"capacity_headroom_target_met", "Whether the headroom is at least its target (1) or not (0).", dto.MetricType_GAUGE}
	capExhaustion   = family{"capacity_exhaustion_forecast_seconds", "Time until the trend reaches the limit: 0 when reached, +Inf when flat or shrinking; absent with too few samples since the last reset.", dto.MetricType_GAUGE}
	capSlope        = family{"capacity_trend_per_second", "Slope of the fitted usage trend, in the source's unit per second; absent without a trend.", dto.MetricType_GAUGE}
	capTrendSamples = family{"capacity_trend_samples", "History slots the trend was fitted to (after the last reset, within the forecast window).", dto.MetricType_GAUGE}
	capProjected    = family{"capacity_projected_utilization_ratio", "Utilization projected at each horizon (6mo, 12mo, 24mo) from the growth plan (basis=plan: today's usage grown by the plan) and from the measured trend (basis=trend), over today's limit.", dto.MetricType_GAUGE}
	capSamples      = family{"capacity_samples_total", "Successful samples of the resource's source.", dto.MetricType_COUNTER}
	capFailures     = family{"capacity_sample_failures_total", "Failed samples of the resource's source by reason. A reason appears once it has occurred.", dto.MetricType_COUNTER}
	capLastSample   = family{"capacity_last_sample_timestamp_seconds", "When the latest successful sample was taken.", dto.MetricType_GAUGE}
)

var (
	horizonPairs = func() []*dto.LabelPair {
		names := make([]string, numHorizons)
		for i, h := range horizons {
			names[i] = h.name
		}
		return collector.FixedLabelPairs("horizon", names)
	}()
	basisPlan  = collector.LabelPair("basis", "plan")
	basisTrend = collector.LabelPair("basis", "trend")
)

// capacityBuilder assembles the capacity families from a snapshot, one at
// a time, in one reused buffer.
type capacityBuilder struct {
	collector.FamilyBuffer
	snap   *CapacitySnapshot
	labels []struct{ resource, service *dto.LabelPair }
}

// EachFamily calls emit with every capacity metric family of the current
// snapshot that has series, one at a time (valid only during the call).
func (c *Capacity) EachFamily(emit func(*dto.MetricFamily) error) error {
	snap := c.Snapshot()
	b := &capacityBuilder{snap: snap, labels: make([]struct{ resource, service *dto.LabelPair }, len(snap.Resources))}
	for i, r := range snap.Resources {
		b.labels[i].resource = collector.LabelPair("resource", r.Name)
		b.labels[i].service = collector.LabelPair("service", r.Service)
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

func (b *capacityBuilder) steps() []func() *dto.MetricFamily {
	withUsage := func(f func(s *ResourceStatus) (float64, bool)) func(s *ResourceStatus) (float64, bool) {
		return func(s *ResourceStatus) (float64, bool) {
			if !s.HasUsage {
				return 0, false
			}
			return f(s)
		}
	}
	return []func() *dto.MetricFamily{
		b.info,
		b.perResource(capUsage, withUsage(func(s *ResourceStatus) (float64, bool) { return s.Usage, true })),
		b.perResource(capLimit, withUsage(func(s *ResourceStatus) (float64, bool) { return s.Limit, s.Limit > 0 })),
		b.perResource(capUtil, (*ResourceStatus).Utilization),
		b.perResource(capHeadroom, (*ResourceStatus).Headroom),
		b.perResource(capTarget, func(s *ResourceStatus) (float64, bool) { return s.HeadroomTarget, true }),
		b.perResource(capTargetMet, func(s *ResourceStatus) (float64, bool) {
			headroom, ok := s.Headroom()
			if headroom >= s.HeadroomTarget {
				return 1, ok
			}
			return 0, ok
		}),
		b.perResource(capExhaustion, (*ResourceStatus).ExhaustionSeconds),
		b.perResource(capSlope, func(s *ResourceStatus) (float64, bool) { return s.Trend.Slope, s.HasTrend }),
		b.perResource(capTrendSamples, func(s *ResourceStatus) (float64, bool) { return float64(s.Trend.Samples), s.HasTrend }),
		b.projected,
		b.perResource(capSamples, func(s *ResourceStatus) (float64, bool) { return float64(s.Samples), true }),
		b.failures,
		b.perResource(capLastSample, withUsage(func(s *ResourceStatus) (float64, bool) {
			return float64(s.LastSample.UnixNano()) / 1e9, true
		})),
	}
}

func (b *capacityBuilder) perResource(f family, value func(s *ResourceStatus) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		b.Start(f.name, f.help, f.kind, len(b.snap.Resources), 2)
		for i := range b.snap.Resources {
			if v, ok := value(&b.snap.Resources[i]); ok && !math.IsNaN(v) {
				b.Add(v, b.labels[i].resource, b.labels[i].service)
			}
		}
		return b.Family()
	}
}

func (b *capacityBuilder) info() *dto.MetricFamily {
	b.Start(capInfo.name, capInfo.help, capInfo.kind, len(b.snap.Resources), 4)
	for i := range b.snap.Resources {
		r := &b.snap.Resources[i]
		b.Add(1, collector.LabelPair("method", r.Method), b.labels[i].resource, b.labels[i].service,
			collector.LabelPair("source", r.Source))
	}
	return b.Family()
}

func (b *capacityBuilder) projected() *dto.MetricFamily {
	b.Start(capProjected.name, capProjected.help, capProjected.kind, 2*numHorizons*len(b.snap.Resources), 4)
	for i := range b.snap.Resources {
		r := &b.snap.Resources[i]
		for h := range numHorizons {
			if v, ok := r.ProjectedPlan(h); ok {
				b.Add(v, basisPlan, horizonPairs[h], b.labels[i].resource, b.labels[i].service)
			}
			if v, ok := r.ProjectedTrend(h); ok {
				b.Add(v, basisTrend, horizonPairs[h], b.labels[i].resource, b.labels[i].service)
			}
		}
	}
	return b.Family()
}

func (b *capacityBuilder) failures() *dto.MetricFamily {
	count := 0
	for i := range b.snap.Resources {
		count += len(b.snap.Resources[i].Failures)
	}
	b.Start(capFailures.name, capFailures.help, capFailures.kind, count, 3)
	for i := range b.snap.Resources {
		failures := b.snap.Resources[i].Failures
		reasons := make([]collector.Reason, 0, len(failures))
		for reason := range failures {
			reasons = append(reasons, reason)
		}
		slices.Sort(reasons)
		for _, reason := range reasons {
			b.Add(float64(failures[reason]), collector.LabelPair("reason", string(reason)), b.labels[i].resource, b.labels[i].service)
		}
	}
	return b.Family()
}
