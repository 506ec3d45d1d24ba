package config

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// unmarshalError is how yaml.Unmarshal reports one error of our scalar
// types on the value of "v: ..." (line 1, column 4).
func unmarshalError(msg string) string {
	return "yaml: unmarshal errors:\n  line 1: column 4: " + msg
}

func TestPercentUnmarshal(t *testing.T) {
	tests := []struct {
		value   string
		want    Percent
		wantErr string
	}{
		{value: "25%", want: 25},
		{value: "25", want: 25},
		{value: "'25%'", want: 25},
		{value: "25 %", want: 25},
		{value: "99.95%", want: 99.95},
		{value: "0.5", want: 0.5},
		{value: "1e2%", want: 100},
		// Range is for validation to judge, per field.
		{value: "-5%", want: -5},
		{value: "150%", want: 150},
		{value: "~", want: 0},
		{value: "lots", wantErr: unmarshalError(`not a percentage "lots" (use e.g. 25%)`)},
		{value: "25 percent", wantErr: unmarshalError(`not a percentage "25 percent" (use e.g. 25%)`)},
		{value: "25%%", wantErr: unmarshalError(`not a percentage "25%%" (use e.g. 25%)`)},
		{value: "'%'", wantErr: unmarshalError(`not a percentage "%" (use e.g. 25%)`)},
		{value: "NaN", wantErr: unmarshalError(`not a percentage "NaN" (use e.g. 25%)`)},
		{value: "inf%", wantErr: unmarshalError(`not a percentage "inf%" (use e.g. 25%)`)},
		{value: "1e400", wantErr: unmarshalError(`not a percentage "1e400" (use e.g. 25%)`)},
		{value: "[25]", wantErr: unmarshalError("expected a percentage, got a list")},
		{value: "{a: 1}", wantErr: unmarshalError("expected a percentage, got a mapping")},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) { checkUnmarshal(t, tt.value, tt.wantErr, tt.want) })
	}
}

func TestPercentRatio(t *testing.T) {
	tests := []struct {
		percent Percent
		want    float64
	}{
		{25, 0.25}, {0, 0}, {100, 1}, {99.9, 0.999}, {0.1, 0.001}, {-50, -0.5}, {150, 1.5},
	}
	for _, tt := range tests {
		if got := tt.percent.Ratio(); got != tt.want {
			t.Errorf("Percent(%v).Ratio() = %v, want %v", float64(tt.percent), got, tt.want)
		}
	}
}

func TestQuantityUnmarshal(t *testing.T) {
	const gib, tib = 1 << 30, 1 << 40
	tests := []struct {
		value   string
		want    Quantity
		wantErr string
	}{
		{value: "64", want: 64},
		{value: "10000", want: 10000},
		{value: "0.5", want: 0.5},
		{value: "1e3", want: 1000},
		{value: "'64'", want: 64},
		{value: "500GiB", want: 500 * gib},
		{value: "1.5GiB", want: 1.5 * gib},
		{value: "2TiB", want: 2 * tib},
		{value: "1KiB", want: 1024},
		{value: "1MiB", want: 1 << 20},
		// Without the i, units are base 10.
		{value: "2TB", want: 2e12},
		{value: "1KB", want: 1000},
		{value: "3MB", want: 3e6},
		{value: "4GB", want: 4e9},
		{value: "512B", want: 512},
		{value: "~", want: 0},
		{value: "500 gigs", wantErr: unmarshalError(`not a quantity "500 gigs" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "500 GiB", wantErr: unmarshalError(`not a quantity "500 GiB" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "2tb", wantErr: unmarshalError(`not a quantity "2tb" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "2T", wantErr: unmarshalError(`not a quantity "2T" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "NaN", wantErr: unmarshalError(`not a quantity "NaN" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "Inf", wantErr: unmarshalError(`not a quantity "Inf" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "1e400", wantErr: unmarshalError(`not a quantity "1e400" (use a number, or a size such as 500GiB or 2TB)`)},
		{value: "0", wantErr: unmarshalError("must be greater than 0, got 0")},
		{value: "0GiB", wantErr: unmarshalError("must be greater than 0, got 0GiB")},
		{value: "-1", wantErr: unmarshalError("must be greater than 0, got -1")},
		{value: "-5GiB", wantErr: unmarshalError("must be greater than 0, got -5GiB")},
		{value: "[1]", wantErr: unmarshalError("expected a quantity, got a list")},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) { checkUnmarshal(t, tt.value, tt.wantErr, tt.want) })
	}
}

// TestScalarMarshal checks how percentages and quantities are written
// back, and that what is written reads back to the same value.
func TestScalarMarshal(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"percent", Percent(25), "25%\n"},
		{"fractional percent", Percent(99.95), "99.95%\n"},
		{"bytes as an integer", Quantity(536870912000), "536870912000\n"},
		{"fraction", Quantity(0.5), "0.5\n"},
		{"beyond exact integers", Quantity(1e20), "1e+20\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := yaml.Marshal(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("Marshal = %q, want %q", out, tt.want)
			}
			back := reflect.New(reflect.TypeOf(tt.value))
			if err := yaml.Unmarshal(out, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if got := back.Elem().Interface(); got != tt.value {
				t.Errorf("read back %v, want %v", got, tt.value)
			}
		})
	}
}

const capacityRoundTripConfig = `
services:
  - name: shop
    probes: [{name: home, http: {url: "https://shop.example/"}}]
    capacity:
      - name: disk
        source: {filesystem: /var/lib/shop}
        limit: 500GiB
        headroom_target: 25%
        growth: {6mo: 20%, 12mo: 45.5%, 24mo: 100%}
        interval: 5m
        timeout: 30s
        forecast: {method: holt, window: 14d, min_samples: 24, alpha: 0.3, beta: 0.05, reset_drop: 30%}
      - name: inodes
        source: {filesystem: data, inodes: true}
        limit: 2TB
      - name: memory
        source: {memory: true}
        headroom_target: 10
        forecast: {window: 36h}
      - name: cpu
        source: {cpu: true}
        limit: 1.5
        interval: 2s
      - name: fds
        source: {process: {pid_file: run/shop.pid, resource: open_fds}}
        growth: {24mo: -20%}
      - name: connections
        source: {process: {self: true, resource: connections}}
        limit: 10000
`

// TestStringRoundTripCapacity checks that what /config shows for capacity
// resources loads again to the same configuration.
func TestStringRoundTripCapacity(t *testing.T) {
	cfg, err := Parse([]byte(capacityRoundTripConfig), "first.yml")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Services[0].Capacity); n != 6 {
		t.Fatalf("parsed %d resources, want 6", n)
	}
	out := cfg.String()
	for _, want := range []string{
		"limit: 536870912000\n",
		"limit: 2000000000000\n",
		"limit: 1.5\n",
		"headroom_target: 25%\n",
		"12mo: 45.5%\n",
		"24mo: -20%\n",
		"reset_drop: 30%\n",
		"reset_drop: 50%\n",
		"window: 1d12h\n",
		"timeout: 2s\n",
		"self: true\n",
		"resource: connections\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
	again, err := Parse([]byte(out), "second.yml")
	if err != nil {
		t.Fatalf("String() output does not load: %v\n%s", err, out)
	}
	again.Filename = cfg.Filename
	if !reflect.DeepEqual(again, cfg) {
		t.Errorf("String() output loads to another configuration:\n%s\nwant:\n%s", again, out)
	}
}

// capacityConfig returns a configuration built in code with one resource:
// the defaults, a memory source, changed by edit.
func capacityConfig(edit func(*CapacityConfig)) *Config {
	resource := DefaultCapacityConfig
	resource.Name = "r"
	resource.Source = CapacitySource{Memory: true}
	edit(&resource)
	return &Config{Global: DefaultGlobalConfig, Services: []ServiceConfig{{Name: "s", Capacity: []CapacityConfig{resource}}}}
}

// TestValidateCapacity checks validation on configurations built in code,
// where no parser stands in front of it, and the edges of the bounds.
func TestValidateCapacity(t *testing.T) {
	const (
		minute = Duration(time.Minute)
		hour   = Duration(time.Hour)
		day    = 24 * hour
	)
	path := "services[0].capacity[0]."
	tests := []struct {
		name string
		edit func(*CapacityConfig)
		want string // "" for valid
	}{
		{"defaults", func(*CapacityConfig) {}, ""},
		{"negative limit", func(c *CapacityConfig) { c.Limit = -1 }, path + "limit: must be greater than 0, got -1"},
		{"NaN limit", func(c *CapacityConfig) { c.Limit = Quantity(math.NaN()) }, path + "limit: must be greater than 0, got NaN"},
		{"NaN headroom", func(c *CapacityConfig) { c.HeadroomTarget = Percent(math.NaN()) },
			path + "headroom_target: must be at least 0% and less than 100%, got NaN%"},
		{"headroom 0", func(c *CapacityConfig) { c.HeadroomTarget = 0 }, ""},
		{"headroom 99.99", func(c *CapacityConfig) { c.HeadroomTarget = 99.99 }, ""},
		{"growth -99.9", func(c *CapacityConfig) { g := Percent(-99.9); c.Growth.Months6 = &g }, ""},
		{"interval 1s", func(c *CapacityConfig) { c.Interval, c.Timeout = Duration(time.Second), Duration(time.Second) }, ""},
		{"interval 24h", func(c *CapacityConfig) { c.Interval, c.Forecast.Window = day, 35*day }, ""},
		{"interval 999ms", func(c *CapacityConfig) { c.Interval = Duration(999 * time.Millisecond) }, path + "interval: must be between 1s and 1d, got 999ms"},
		{"zero interval", func(c *CapacityConfig) { c.Interval = 0 }, path + "interval: must be between 1s and 1d, got 0s"},
		{"timeout equal to interval", func(c *CapacityConfig) { c.Timeout = minute }, ""},
		{"window 35d", func(c *CapacityConfig) { c.Forecast.Window = 35 * day }, ""},
		{"window over 35d", func(c *CapacityConfig) { c.Forecast.Window = 35*day + minute },
			path + "forecast.window: must be greater than 0 and at most 35d (the usage history kept), got 35d1m"},
		// 5-minute slots up to 48h: 1h holds 12 of them.
		{"1h holds 12 fine slots", func(c *CapacityConfig) { c.Forecast.Window = hour }, ""},
		{"1h holds fewer than 13", func(c *CapacityConfig) { c.Forecast.Window, c.Forecast.MinSamples = hour, 13 },
			path + "forecast.window: 1h holds at most 12 history slots of 5m, fewer than min_samples (13)"},
		{"48h holds 576 fine slots", func(c *CapacityConfig) { c.Forecast.Window, c.Forecast.MinSamples = 48*hour, 576 }, ""},
		{"48h holds fewer than 577", func(c *CapacityConfig) { c.Forecast.Window, c.Forecast.MinSamples = 48*hour, 577 },
			path + "forecast.window: 2d holds at most 576 history slots of 5m, fewer than min_samples (577)"},
		// Hourly slots beyond: 49h holds 49 of them.
		{"49h holds 49 hourly slots", func(c *CapacityConfig) { c.Forecast.Window, c.Forecast.MinSamples = 49*hour, 49 }, ""},
		{"49h holds fewer than 50", func(c *CapacityConfig) { c.Forecast.Window, c.Forecast.MinSamples = 49*hour, 50 },
			path + "forecast.window: 2d1h holds at most 49 history slots of 1h, fewer than min_samples (50)"},
		// Samples sparser than slots: one slot per sample.
		{"10m samples fill 6 slots of 1h", func(c *CapacityConfig) { c.Interval, c.Forecast.Window, c.Forecast.MinSamples = 10*minute, hour, 6 }, ""},
		{"10m samples fill fewer than 7", func(c *CapacityConfig) { c.Interval, c.Forecast.Window, c.Forecast.MinSamples = 10*minute, hour, 7 },
			path + "interval: 10m leaves at most 6 samples in the forecast window of 1h, fewer than forecast.min_samples (7)"},
		{"daily samples with the default window", func(c *CapacityConfig) { c.Interval = day },
			path + "interval: 1d leaves at most 7 samples in the forecast window of 1w, fewer than forecast.min_samples (12)"},
		{"min_samples 3", func(c *CapacityConfig) { c.Forecast.MinSamples = 3 }, ""},
		{"alpha and beta 1", func(c *CapacityConfig) { c.Forecast.Alpha, c.Forecast.Beta = 1, 1 }, ""},
		{"beta over 1", func(c *CapacityConfig) { c.Forecast.Beta = 1.01 }, path + "forecast.beta: must be greater than 0 and at most 1, got 1.01"},
		{"reset_drop 100%", func(c *CapacityConfig) { c.Forecast.ResetDrop = 100 }, ""},
		{"empty method", func(c *CapacityConfig) { c.Forecast.Method = "" }, path + `forecast.method: must be linear or holt, got ""`},
		{"connections with a limit", func(c *CapacityConfig) {
			c.Source, c.Limit = CapacitySource{Process: &ProcessSource{Self: true, Resource: "connections"}}, 100
		}, ""},
		{"filesystem and process", func(c *CapacityConfig) {
			c.Source = CapacitySource{Filesystem: "/", Process: &ProcessSource{Self: true, Resource: "open_fds"}}
		}, path + "source: a source needs exactly one of filesystem, memory, cpu, process or prometheus, found filesystem and process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := capacityConfig(tt.edit).Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
			var errs Errors
			if err != nil && !errors.As(err, &errs) {
				t.Errorf("Validate() error %T is not Errors", err)
			}
		})
	}
}

// TestCapacityDefaultsUntouched checks that decoding resources never
// writes through to the package defaults they start from.
func TestCapacityDefaultsUntouched(t *testing.T) {
	before, beforeForecast := DefaultCapacityConfig, DefaultForecastConfig
	if _, err := Parse([]byte(capacityRoundTripConfig), "x.yml"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(DefaultCapacityConfig, before) || DefaultForecastConfig != beforeForecast {
		t.Errorf("defaults changed: %+v, %+v", DefaultCapacityConfig, DefaultForecastConfig)
	}
}

// TestCapacityTimeoutDefault checks that a timeout left out is capped at
// the interval, while one written stays as written and is judged.
func TestCapacityTimeoutDefault(t *testing.T) {
	resource := "services:\n  - name: s\n    capacity:\n      - name: r\n        source: {memory: true}\n"
	tests := []struct {
		name, fields string
		want         Duration
		wantErr      string
	}{
		{"defaults", "", Duration(10 * time.Second), ""},
		{"long interval", "        interval: 1h\n", Duration(10 * time.Second), ""},
		{"short interval", "        interval: 3s\n", Duration(3 * time.Second), ""},
		{"null timeout", "        interval: 3s\n        timeout: ~\n", 0, "x.yml:7:18: services[0].capacity[0].timeout: must be greater than 0"},
		{"explicit timeout", "        interval: 3s\n        timeout: 2s\n", Duration(2 * time.Second), ""},
		{"explicit timeout over the interval", "        interval: 3s\n        timeout: 10s\n", 0,
			"x.yml:7:18: services[0].capacity[0].timeout: 10s must not exceed the interval (3s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(resource+tt.fields), "x.yml")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Services[0].Capacity[0].Timeout; got != tt.want {
				t.Errorf("timeout = %s, want %s", got, tt.want)
			}
		})
	}
}

// checkUnmarshal decodes "v: value" into a T and compares the result, or
// the error when wantErr is set.
func checkUnmarshal[T ~float64](t *testing.T, value, wantErr string, want T) {
	t.Helper()
	var got struct {
		V T `yaml:"v"`
	}
	err := yaml.Unmarshal([]byte("v: "+value), &got)
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Fatalf("error = %v, want %s", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.V != want {
		t.Errorf("got %v, want %v", float64(got.V), float64(want))
	}
}
