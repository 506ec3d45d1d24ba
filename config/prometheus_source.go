package config

import (
	"strconv"
	"time"
)

// DefaultPrometheusSourceTimeout bounds a query of a Prometheus source that
// sets no timeout.
var DefaultPrometheusSourceTimeout = Duration(30 * time.Second)

// PrometheusSourceConfig is a Prometheus-compatible HTTP API (Prometheus,
// Thanos, Mimir, VictoriaMetrics) that capacity resources and backups read
// figures from with PromQL queries.
type PrometheusSourceConfig struct {
	// Name is what resources and backups refer to, and the `source` label
	// of the source's metrics.
	Name string `yaml:"name"`
	// URL is the API's base URL, without /api/v1 (with a path prefix such
	// as /prometheus for Mimir). It must not hold credentials.
	URL string `yaml:"url"`
	// Timeout bounds a query; a resource's or backup's own timeout, when
	// shorter, bounds it too.
	Timeout Duration `yaml:"timeout"`
	// Headers are sent with every query, e.g. X-Scope-OrgID for a tenant.
	Headers map[string]string `yaml:"headers,omitempty"`
	// BearerTokenFile and BasicAuth's password file are read at every
	// query, so credentials can be rotated without a reload.
	BearerTokenFile string     `yaml:"bearer_token_file,omitempty"`
	BasicAuth       *BasicAuth `yaml:"basic_auth,omitempty"`
	TLSConfig       TLSConfig  `yaml:"tls_config,omitempty"`
}

// CapacityPrometheus reads a resource's usage, and optionally its limit,
// from instant queries of a Prometheus source. Each query must return
// exactly one sample.
type CapacityPrometheus struct {
	Source string `yaml:"source"`
	Usage  string `yaml:"usage"`
	Limit  string `yaml:"limit,omitempty"`
}

// BackupPrometheus reads a backup's latest good recovery point from an
// instant query of a Prometheus source: one sample whose value is Unix
// seconds, e.g. velero_backup_last_successful_timestamp{schedule="daily"}.
type BackupPrometheus struct {
	Source string `yaml:"source"`
	Query  string `yaml:"query"`
}

// resolvePaths calls resolve with each file path of c.
func (c *PrometheusSourceConfig) resolvePaths(resolve func(path *string)) {
	resolve(&c.BearerTokenFile)
	if c.BasicAuth != nil {
		resolve(&c.BasicAuth.PasswordFile)
	}
	c.TLSConfig.resolvePaths(resolve)
}

// resolvePrometheusSourceDefaults fills what the sources leave unset;
// an explicit 0 stays and fails validation.
func resolvePrometheusSourceDefaults(sources []PrometheusSourceConfig, isSet func(string) bool) {
	for i := range sources {
		if sources[i].Timeout == 0 && !isSet(prometheusSourcePath(i)+".timeout") {
			sources[i].Timeout = DefaultPrometheusSourceTimeout
		}
	}
}

func prometheusSourcePath(i int) string { return "prometheus_sources[" + strconv.Itoa(i) + "]" }
