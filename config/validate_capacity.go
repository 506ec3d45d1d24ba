package config

import (
	"strings"
	"time"
)

// Bounds of capacity settings. The forecast window is bounded by the
// usage history kept per resource (docs/capacity.md).
const (
	MinCapacityInterval = Duration(time.Second)
	MaxCapacityInterval = Duration(24 * time.Hour)
	MaxForecastWindow   = Duration(35 * 24 * time.Hour)
	minForecastSamples  = 3
)

// The usage history a trend is fitted to (slo/capacity_history.go): slot
// means, 5-minute slots for windows up to 48 hours, hourly slots beyond.
// min_samples counts these slots, not raw samples, so a window must hold
// enough of them or the resource never gets a forecast.
const (
	fineHistorySlot   = Duration(5 * time.Minute)
	fineHistorySpan   = Duration(48 * time.Hour)
	coarseHistorySlot = Duration(time.Hour)
)

func (v *validator) capacity(path string, c *CapacityConfig) {
	v.capacitySource(path+".source", &c.Source, c.Limit > 0)
	if !(c.Limit >= 0) { // NaN too: a configuration built in code has no parser in front
		v.addf(path+".limit", "must be greater than 0, got %v", float64(c.Limit))
	}
	if !(c.HeadroomTarget >= 0 && c.HeadroomTarget < 100) {
		v.addf(path+".headroom_target", "must be at least 0%% and less than 100%%, got %v%%", float64(c.HeadroomTarget))
	}
	for _, g := range []struct {
		name  string
		value *Percent
	}{{"6mo", c.Growth.Months6}, {"12mo", c.Growth.Months12}, {"24mo", c.Growth.Months24}} {
		if g.value != nil && !(*g.value > -100) {
			v.addf(path+".growth."+g.name, "must be greater than -100%% (a plan cannot shrink usage to nothing), got %v%%", float64(*g.value))
		}
	}
	intervalOK := c.Interval >= MinCapacityInterval && c.Interval <= MaxCapacityInterval
	switch {
	case !intervalOK:
		v.addf(path+".interval", "must be between %s and %s, got %s", MinCapacityInterval, MaxCapacityInterval, c.Interval)
	case c.Timeout <= 0:
		v.addf(path+".timeout", "must be greater than 0")
	case c.Timeout > c.Interval:
		v.addf(path+".timeout", "%s must not exceed the interval (%s)", c.Timeout, c.Interval)
	}
	interval := c.Interval
	if !intervalOK {
		// Reported above; counting samples at it would only add noise.
		interval = 0
	}
	v.forecast(path+".forecast", &c.Forecast, interval, path+".interval")
}

func (v *validator) capacitySource(path string, s *CapacitySource, hasLimit bool) {
	var found []string
	for _, source := range []struct {
		name  string
		isSet bool
	}{{"filesystem", s.Filesystem != ""}, {"memory", s.Memory}, {"cpu", s.CPU}, {"process", s.Process != nil}, {"prometheus", s.Prometheus != nil}} {
		if source.isSet {
			found = append(found, source.name)
		}
	}
	switch len(found) {
	case 0:
		v.addf(path, "a source needs exactly one of filesystem, memory, cpu, process or prometheus, found none")
	case 1:
	default:
		last := len(found) - 1
		v.addf(path, "a source needs exactly one of filesystem, memory, cpu, process or prometheus, found %s and %s",
			strings.Join(found[:last], ", "), found[last])
	}
	if s.Inodes && s.Filesystem == "" {
		v.addf(path+".inodes", "only applies to a filesystem source")
	}
	if p := s.Prometheus; p != nil {
		v.prometheusRef(path+".prometheus", p.Source)
		v.promQL(path+".prometheus.usage", p.Usage, true)
		v.promQL(path+".prometheus.limit", p.Limit, false)
		if p.Limit == "" && !hasLimit {
			v.addf(path+".prometheus", "needs a limit query, or the resource's limit")
		}
	}
	if p := s.Process; p != nil {
		switch {
		case p.PIDFile == "" && !p.Self:
			v.addf(path+".process", "needs pid_file or self: true")
		case p.PIDFile != "" && p.Self:
			v.addf(path+".process.self", "pid_file and self: true are mutually exclusive")
		}
		switch p.Resource {
		case "open_fds":
		case "connections":
			if !hasLimit {
				v.addf(path+".process.resource", "connections have no limit of their own: set the resource's limit")
			}
		case "":
			v.addf(path+".process.resource", "must be set: open_fds or connections")
		default:
			v.addf(path+".process.resource", "must be open_fds or connections, got %q", p.Resource)
		}
	}
}

// forecast checks a resource's forecast settings; interval is the
// resource's sampling interval (at intervalPath), 0 when it is invalid.
func (v *validator) forecast(path string, f *ForecastConfig, interval Duration, intervalPath string) {
	if f.Method != "linear" && f.Method != "holt" {
		v.addf(path+".method", "must be linear or holt, got %q", f.Method)
	}
	windowOK := f.Window > 0 && f.Window <= MaxForecastWindow
	if !windowOK {
		// In days, as the history is described; Duration would say 5w.
		v.addf(path+".window", "must be greater than 0 and at most %dd (the usage history kept), got %s",
			MaxForecastWindow/Duration(24*time.Hour), f.Window)
	}
	switch {
	case f.MinSamples < minForecastSamples:
		v.addf(path+".min_samples", "must be at least %d, got %d: a trend from fewer points is a guess", minForecastSamples, f.MinSamples)
	case interval > 0 && windowOK:
		slots, slot := forecastSlots(f.Window, interval)
		switch {
		case slots >= int64(f.MinSamples):
		case interval > slot:
			// Samples are sparser than slots: the interval is what starves
			// the window.
			v.addf(intervalPath, "%s leaves at most %d samples in the forecast window of %s, fewer than forecast.min_samples (%d)",
				interval, slots, f.Window, f.MinSamples)
		default:
			v.addf(path+".window", "%s holds at most %d history slots of %s, fewer than min_samples (%d)",
				f.Window, slots, slot, f.MinSamples)
		}
	}
	if !(f.Alpha > 0 && f.Alpha <= 1) {
		v.addf(path+".alpha", "must be greater than 0 and at most 1, got %v", f.Alpha)
	}
	if !(f.Beta > 0 && f.Beta <= 1) {
		v.addf(path+".beta", "must be greater than 0 and at most 1, got %v", f.Beta)
	}
	if !(f.ResetDrop > 0 && f.ResetDrop <= 100) {
		v.addf(path+".reset_drop", "must be greater than 0%% and at most 100%%, got %v%%", float64(f.ResetDrop))
	}
}

// forecastSlots returns how many history slots with samples a window can
// hold, and the slot length: one sample per slot at most, so a sampling
// interval longer than the slot leaves slots empty.
func forecastSlots(window, interval Duration) (int64, Duration) {
	slot := fineHistorySlot
	if window > fineHistorySpan {
		slot = coarseHistorySlot
	}
	return int64(window / max(slot, interval)), slot
}
