package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	maxBackupInterval = Duration(24 * time.Hour)
	defaultBackupBody = ByteSize(1 << 20)
)

// resolveRecoveryDefaults fills what the recovery section leaves unset.
// isSet tells whether a field was written, so an explicit 0 stays 0 and
// fails validation.
func resolveRecoveryDefaults(r *RecoveryConfig, path string, isSet func(string) bool) {
	if r.Window == 0 && !isSet(path+".window") {
		r.Window = DefaultRecoveryWindow
	}
	rule := &r.Outage
	// open_after_duration: 0s means none, as latency_below: 0s does, so
	// it leaves open_after to its default.
	if rule.OpenAfter == 0 && rule.OpenAfterDuration == 0 && !isSet(path+".outage.open_after") {
		rule.OpenAfter = DefaultOutageRule.OpenAfter
	}
	if rule.CloseAfter == 0 && !isSet(path+".outage.close_after") {
		rule.CloseAfter = DefaultOutageRule.CloseAfter
	}
	for i := range r.Backups {
		b := &r.Backups[i]
		bPath := fmt.Sprintf("%s.backups[%d]", path, i)
		if b.Interval == 0 && !isSet(bPath+".interval") {
			b.Interval = DefaultBackupInterval
		}
		if b.Timeout == 0 && !isSet(bPath+".timeout") {
			b.Timeout = min(DefaultBackupTimeout, b.Interval)
		}
		if b.HTTP != nil && b.HTTP.BodySizeLimit == 0 && !isSet(bPath+".http.body_size_limit") {
			b.HTTP.BodySizeLimit = defaultBackupBody
		}
	}
}

func (v *validator) recovery(path string, r *RecoveryConfig, probeNames map[string]string) {
	if r.RTO < 0 {
		v.addf(path+".rto", "must not be negative")
	}
	if r.RPO < 0 {
		v.addf(path+".rpo", "must not be negative")
	}
	if r.Window < MinSLOWindow || r.Window > MaxSLOWindow {
		v.addf(path+".window", "must be between %s and %s, got %s", MinSLOWindow, MaxSLOWindow, r.Window)
	}
	v.outageRule(path+".outage", &r.Outage, probeNames)
	if len(r.Backups) > 0 && r.RPO == 0 {
		v.addf(path+".rpo", "must be set when backups are listed: it is what their age is checked against")
	}
	names := map[string]string{}
	for i := range r.Backups {
		bPath := fmt.Sprintf("%s.backups[%d]", path, i)
		v.name(bPath+".name", "backup", r.Backups[i].Name, names, bPath)
		v.backup(bPath, &r.Backups[i])
	}
	if r.Drills != nil && r.Drills.Every <= 0 {
		v.addf(path+".drills.every", "must be greater than 0")
	}
}

func (v *validator) outageRule(path string, rule *OutageRule, probeNames map[string]string) {
	v.probeRefs(path+".probes", rule.Probes, probeNames)
	switch {
	case rule.OpenAfter != 0 && rule.OpenAfterDuration != 0:
		// Located at open_after_duration rather than at the rule's first
		// line, so the position names one of the two conflicting settings.
		v.addf(path+".open_after_duration", "open_after and open_after_duration are mutually exclusive: set one")
	case rule.OpenAfterDuration < 0:
		v.addf(path+".open_after_duration", "must not be negative")
	case rule.OpenAfterDuration == 0 && rule.OpenAfter < 1:
		v.addf(path+".open_after", "must be at least 1, got %d", rule.OpenAfter)
	}
	if rule.CloseAfter < 1 {
		v.addf(path+".close_after", "must be at least 1, got %d", rule.CloseAfter)
	}
}

func (v *validator) backup(path string, b *BackupConfig) {
	var found []string
	for _, source := range []struct {
		name  string
		isSet bool
	}{{"file", b.File != nil}, {"http", b.HTTP != nil}, {"prometheus", b.Prometheus != nil}} {
		if source.isSet {
			found = append(found, source.name)
		}
	}
	switch {
	case len(found) == 0:
		v.addf(path, "a backup needs exactly one source (file, http or prometheus), found none")
	case len(found) > 1:
		v.addf(path, "a backup needs exactly one source (file, http or prometheus), found %s", strings.Join(found, " and "))
	case b.Prometheus != nil:
		v.prometheusRef(path+".prometheus", b.Prometheus.Source)
		v.promQL(path+".prometheus.query", b.Prometheus.Query, true)
	case b.File != nil:
		if b.File.Glob == "" {
			v.addf(path+".file.glob", "must be set")
		} else if _, err := filepath.Match(b.File.Glob, ""); err != nil {
			// The pattern is not quoted: it has been resolved against the
			// configuration's directory by now, and the position already
			// shows what was written.
			v.addf(path+".file.glob", "invalid pattern: %v", err)
		}
		if b.File.MinSize < 0 {
			v.addf(path+".file.min_size", "must not be negative")
		}
	default:
		v.url(path+".http.url", b.HTTP.URL)
		if f := b.HTTP.JSONField; f != "" && (strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") || strings.Contains(f, "..")) {
			v.addf(path+".http.json_field", "invalid field path %q: use names separated by dots, e.g. status.last_success", f)
		}
		if b.HTTP.BodySizeLimit <= 0 {
			v.addf(path+".http.body_size_limit", "must be greater than 0")
		}
		v.tlsConfig(path+".http.tls_config", &b.HTTP.TLSConfig)
		for _, name := range sortedKeys(b.HTTP.Headers) {
			headerPath := path + ".http.headers[" + strconv.Quote(name) + "]"
			if !isToken(name) {
				v.addf(headerPath, "invalid header name %q", name)
			}
			if strings.ContainsAny(b.HTTP.Headers[name], "\r\n\x00") {
				v.addf(headerPath, "a header value must not contain CR, LF or NUL")
			}
		}
	}
	switch {
	case b.Interval < Duration(time.Second) || b.Interval > maxBackupInterval:
		v.addf(path+".interval", "must be between 1s and %s, got %s", maxBackupInterval, b.Interval)
	case b.Timeout <= 0:
		v.addf(path+".timeout", "must be greater than 0")
	case b.Timeout > b.Interval:
		v.addf(path+".timeout", "%s must not exceed the interval (%s)", b.Timeout, b.Interval)
	}
}
