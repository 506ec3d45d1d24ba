package config

import (
	"time"
)

// Defaults of the recovery section.
var (
	// DefaultOutageRule holds the defaults of `recovery.outage`.
	DefaultOutageRule = OutageRule{OpenAfter: 3, CloseAfter: 2}
	// DefaultRecoveryWindow is the window MTTR, MTBF and downtime are
	// computed over.
	DefaultRecoveryWindow = Duration(30 * 24 * time.Hour)
	// DefaultBackupInterval and DefaultBackupTimeout apply to backups that
	// set none.
	DefaultBackupInterval = Duration(5 * time.Minute)
	DefaultBackupTimeout  = Duration(30 * time.Second)
)

// RecoveryConfig holds a service's recovery objectives, how its outages
// are detected, its backups and its disaster-recovery drills.
type RecoveryConfig struct {
	// RTO is the recovery time objective: the longest an unplanned outage
	// may last. RPO is the recovery point objective: the oldest the latest
	// good backup may be.
	RTO Duration `yaml:"rto,omitempty"`
	RPO Duration `yaml:"rpo,omitempty"`
	// Window is what MTTR, MTBF and unplanned downtime are computed over.
	Window  Duration       `yaml:"window,omitempty"`
	Outage  OutageRule     `yaml:"outage,omitempty"`
	Backups []BackupConfig `yaml:"backups,omitempty"`
	Drills  *DrillConfig   `yaml:"drills,omitempty"`
}

// OutageRule says when the service's probes make an outage. A probe is
// down after OpenAfter consecutive failed runs (or, with OpenAfterDuration,
// once it has failed for that long); it is up again after CloseAfter
// consecutive successes. The service is in an outage while any of Probes
// is down.
type OutageRule struct {
	// Probes are the probes watched; every probe of the service when empty.
	Probes            []string `yaml:"probes,omitempty"`
	OpenAfter         int      `yaml:"open_after,omitempty"`
	OpenAfterDuration Duration `yaml:"open_after_duration,omitempty"`
	CloseAfter        int      `yaml:"close_after,omitempty"`
}

// BackupConfig is one backup whose latest good recovery point is watched.
// Exactly one of File, HTTP and Prometheus is set.
type BackupConfig struct {
	Name string      `yaml:"name"`
	File *BackupFile `yaml:"file,omitempty"`
	HTTP *BackupHTTP `yaml:"http,omitempty"`
	// Prometheus reads the recovery point from a PromQL query.
	Prometheus *BackupPrometheus `yaml:"prometheus,omitempty"`
	Interval   Duration          `yaml:"interval,omitempty"`
	Timeout    Duration          `yaml:"timeout,omitempty"`
}

// Type names the backup's source: file, http or prometheus; "" when none
// is set.
func (b *BackupConfig) Type() string {
	switch {
	case b.File != nil:
		return "file"
	case b.HTTP != nil:
		return "http"
	case b.Prometheus != nil:
		return "prometheus"
	}
	return ""
}

// BackupFile finds the recovery point as the newest file (by modification
// time) matching Glob, at least MinSize bytes large.
type BackupFile struct {
	Glob    string   `yaml:"glob"`
	MinSize ByteSize `yaml:"min_size,omitempty"`
}

// BackupHTTP reads the recovery point's time from an HTTP endpoint: its
// Last-Modified header, or with JSONField, a field of its JSON body (a
// dot-separated path; the value an RFC 3339 string or Unix seconds).
type BackupHTTP struct {
	URL             string            `yaml:"url"`
	JSONField       string            `yaml:"json_field,omitempty"`
	Headers         map[string]string `yaml:"headers,omitempty"`
	BearerTokenFile string            `yaml:"bearer_token_file,omitempty"`
	TLSConfig       TLSConfig         `yaml:"tls_config,omitempty"`
	// BodySizeLimit bounds how much of the body is read.
	BodySizeLimit ByteSize `yaml:"body_size_limit,omitempty"`
}

// DrillConfig says how often disaster-recovery drills are due.
type DrillConfig struct {
	Every Duration `yaml:"every"`
}
