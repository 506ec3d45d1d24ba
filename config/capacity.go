package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/units"
	"gopkg.in/yaml.v3"
)

// Defaults of capacity resources.
var (
	// DefaultCapacityConfig holds the defaults of a `capacity` resource.
	DefaultCapacityConfig = CapacityConfig{
		Interval: Duration(time.Minute),
		Timeout:  Duration(10 * time.Second),
		Forecast: DefaultForecastConfig,
	}
	// DefaultForecastConfig holds the defaults of a resource's `forecast`.
	DefaultForecastConfig = ForecastConfig{
		Method:     "linear",
		Window:     Duration(7 * 24 * time.Hour),
		MinSamples: 12,
		Alpha:      0.5,
		Beta:       0.1,
		ResetDrop:  Percent(50),
	}
)

// CapacityConfig is one capacity resource of a service: what is used of
// it, out of which limit, and the plan for it.
type CapacityConfig struct {
	Name   string         `yaml:"name"`
	Source CapacitySource `yaml:"source"`
	// Limit is the capacity; when unset it comes from the source
	// (filesystem size, memory, CPUs, the process' file limit).
	Limit Quantity `yaml:"limit,omitempty"`
	// HeadroomTarget is the share of the limit that should stay free.
	HeadroomTarget Percent `yaml:"headroom_target,omitempty"`
	// Growth is the business plan's expected growth of usage, relative to
	// today, by horizon.
	Growth GrowthPlan `yaml:"growth,omitempty"`
	// Interval is how often the source is sampled; Timeout bounds a sample.
	// Load fills them, and Forecast, from DefaultCapacityConfig when left
	// out (CapacityConfig has no UnmarshalYAML: yaml.v3 drops a list element
	// whose unmarshaler fails, which would shift the indexes of the
	// resources after it in every error).
	Interval Duration       `yaml:"interval"`
	Timeout  Duration       `yaml:"timeout"`
	Forecast ForecastConfig `yaml:"forecast"`
}

// CapacitySource says where a resource's usage is read. Exactly one of
// Filesystem, Memory, CPU, Process and Prometheus is set.
type CapacitySource struct {
	// Filesystem is a path on the filesystem to watch: used and total
	// bytes (or inodes, with Inodes) as df reports them.
	Filesystem string `yaml:"filesystem,omitempty"`
	Inodes     bool   `yaml:"inodes,omitempty"`
	// Memory watches host memory: MemTotal - MemAvailable of MemTotal.
	Memory bool `yaml:"memory,omitempty"`
	// CPU watches host CPU: busy CPUs (averaged over the sampling
	// interval) of the number of CPUs.
	CPU     bool           `yaml:"cpu,omitempty"`
	Process *ProcessSource `yaml:"process,omitempty"`
	// Prometheus reads usage (and the limit) from PromQL queries.
	Prometheus *CapacityPrometheus `yaml:"prometheus,omitempty"`
}

// Type names the source: filesystem, memory, cpu, process or prometheus;
// "" if none.
func (s *CapacitySource) Type() string {
	switch {
	case s.Filesystem != "":
		return "filesystem"
	case s.Memory:
		return "memory"
	case s.CPU:
		return "cpu"
	case s.Process != nil:
		return "process"
	case s.Prometheus != nil:
		return "prometheus"
	}
	return ""
}

// ProcessSource watches a resource of one process, found by PIDFile or,
// with Self, the daemon itself.
type ProcessSource struct {
	PIDFile string `yaml:"pid_file,omitempty"`
	Self    bool   `yaml:"self,omitempty"`
	// Resource is open_fds (limit: the process' soft file limit) or
	// connections (its TCP sockets; the limit must be configured).
	Resource string `yaml:"resource"`
}

// GrowthPlan is the expected growth of usage at 6, 12 and 24 months,
// relative to today's usage (20% means 1.2 times today's).
type GrowthPlan struct {
	Months6  *Percent `yaml:"6mo,omitempty"`
	Months12 *Percent `yaml:"12mo,omitempty"`
	Months24 *Percent `yaml:"24mo,omitempty"`
}

// ForecastConfig says how the trend is estimated.
type ForecastConfig struct {
	// Method is linear (least squares over Window, as PromQL's
	// predict_linear) or holt (Holt's double exponential smoothing).
	Method string `yaml:"method"`
	// Window is the trailing window of samples the trend is fitted to.
	Window Duration `yaml:"window"`
	// MinSamples is how many samples the window must hold before any
	// forecast is made.
	MinSamples int `yaml:"min_samples"`
	// Alpha and Beta smooth the level and the trend (holt only).
	Alpha float64 `yaml:"alpha"`
	Beta  float64 `yaml:"beta"`
	// ResetDrop: usage falling by more than this share of its previous
	// value between two samples (a cleanup, a restart) starts a new trend;
	// older samples are ignored by the forecast.
	ResetDrop Percent `yaml:"reset_drop"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *ForecastConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultForecastConfig
	type plain ForecastConfig
	return unmarshal((*plain)(c))
}

// Percent is a percentage, written "25%" or 25.
type Percent float64

// Ratio returns the percentage as a ratio (25% gives 0.25), rounded to the
// float nearest the decimal written.
func (p Percent) Ratio() float64 { return decimalRatio(float64(p)) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return scalarError(n, "expected a percentage, got %s", describeNode(n, ""))
	}
	text := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	v, err := strconv.ParseFloat(text, 64)
	// ParseFloat also reads NaN and Inf, which would slip through every
	// range check.
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return scalarError(n, "not a percentage %q (use e.g. 25%%)", n.Value)
	}
	*p = Percent(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (p Percent) MarshalYAML() (any, error) {
	return strconv.FormatFloat(float64(p), 'g', -1, 64) + "%", nil
}

// Quantity is an amount of a resource, greater than 0: a plain number
// (connections, CPUs) or a size in bytes with a unit (500GiB, 2TB).
type Quantity float64

// UnmarshalYAML implements yaml.Unmarshaler. Zero and negative amounts are
// rejected here, where the value is still known to be written: an explicit
// 0 must not pass for "unset".
func (q *Quantity) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return scalarError(n, "expected a quantity, got %s", describeNode(n, ""))
	}
	v, ok := parseQuantity(n.Value)
	switch {
	case !ok:
		return scalarError(n, "not a quantity %q (use a number, or a size such as 500GiB or 2TB)", n.Value)
	case v <= 0:
		return scalarError(n, "must be greater than 0, got %s", n.Value)
	}
	*q = Quantity(v)
	return nil
}

// parseQuantity reads a number or a size: KiB, MiB, GiB, TiB are base 2;
// KB, MB, GB, TB base 10, as disk vendors and df -H count.
func parseQuantity(text string) (float64, bool) {
	if v, err := strconv.ParseFloat(text, 64); err == nil {
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	// units.ParseBase2Bytes also takes KB as 1024: only an "i" makes a
	// size base 2.
	if v, err := units.ParseBase2Bytes(text); err == nil && strings.Contains(text, "i") {
		return float64(v), true
	}
	if v, err := units.ParseMetricBytes(text); err == nil {
		return float64(v), true
	}
	return 0, false
}

// MarshalYAML implements yaml.Marshaler. A whole number is written as an
// integer (536870912000, not 5.36870912e+11), which reads back the same.
func (q Quantity) MarshalYAML() (any, error) {
	if v := float64(q); v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v), nil
	}
	return float64(q), nil
}

// String formats the quantity as a plain number.
func (q Quantity) String() string { return fmt.Sprint(float64(q)) }
