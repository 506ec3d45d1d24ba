package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// recoveryService wraps a recovery section (indented for its place) in a
// service with probes home and api.
func recoveryService(recovery string) string {
	return `services:
  - name: shop
    probes:
      - name: home
        http: {url: "https://shop.example/"}
      - name: api
        http: {url: "https://shop.example/api"}
    recovery:
` + recovery
}

// TestRecoveryDefaults checks what loading fills in, each default written
// out by hand.
func TestRecoveryDefaults(t *testing.T) {
	const (
		day     = Duration(24 * time.Hour)
		minute  = Duration(time.Minute)
		second  = Duration(time.Second)
		mebiB   = ByteSize(1 << 20)
		backups = "/var/backups/shop/*.dump"
	)
	tests := []struct {
		name     string
		recovery string
		want     RecoveryConfig
	}{
		{
			name:     "empty section",
			recovery: "      {}\n",
			want:     RecoveryConfig{Window: 30 * day, Outage: OutageRule{OpenAfter: 3, CloseAfter: 2}},
		},
		{
			name:     "objectives only",
			recovery: "      rto: 15m\n",
			want:     RecoveryConfig{RTO: 15 * minute, Window: 30 * day, Outage: OutageRule{OpenAfter: 3, CloseAfter: 2}},
		},
		{
			name:     "open_after written",
			recovery: "      outage: {probes: [api], open_after: 1, close_after: 5}\n",
			want:     RecoveryConfig{Window: 30 * day, Outage: OutageRule{Probes: []string{"api"}, OpenAfter: 1, CloseAfter: 5}},
		},
		{
			name:     "open_after_duration leaves open_after unset",
			recovery: "      outage: {open_after_duration: 90s}\n",
			want:     RecoveryConfig{Window: 30 * day, Outage: OutageRule{OpenAfterDuration: 90 * second, CloseAfter: 2}},
		},
		{
			// As latency_below: 0s, a zero duration means none.
			name:     "open_after_duration 0s means none",
			recovery: "      outage: {open_after_duration: 0s}\n",
			want:     RecoveryConfig{Window: 30 * day, Outage: OutageRule{OpenAfter: 3, CloseAfter: 2}},
		},
		{
			name: "backup defaults",
			recovery: "      rpo: 1d\n      backups:\n" +
				"        - {name: files, file: {glob: " + backups + "}}\n" +
				"        - {name: api, http: {url: \"https://backup.example/\"}}\n",
			want: RecoveryConfig{RPO: day, Window: 30 * day, Outage: OutageRule{OpenAfter: 3, CloseAfter: 2}, Backups: []BackupConfig{
				{Name: "files", File: &BackupFile{Glob: backups}, Interval: 5 * minute, Timeout: 30 * second},
				{Name: "api", HTTP: &BackupHTTP{URL: "https://backup.example/", BodySizeLimit: mebiB}, Interval: 5 * minute, Timeout: 30 * second},
			}},
		},
		{
			name: "default timeout capped at a shorter interval only",
			recovery: "      rpo: 1d\n      backups:\n" +
				"        - {name: fast, file: {glob: " + backups + "}, interval: 10s}\n" +
				"        - {name: just-over, file: {glob: " + backups + "}, interval: 31s}\n" +
				"        - {name: explicit, file: {glob: " + backups + "}, timeout: 5s}\n",
			want: RecoveryConfig{RPO: day, Window: 30 * day, Outage: OutageRule{OpenAfter: 3, CloseAfter: 2}, Backups: []BackupConfig{
				{Name: "fast", File: &BackupFile{Glob: backups}, Interval: 10 * second, Timeout: 10 * second},
				{Name: "just-over", File: &BackupFile{Glob: backups}, Interval: 31 * second, Timeout: 30 * second},
				{Name: "explicit", File: &BackupFile{Glob: backups}, Interval: 5 * minute, Timeout: 5 * second},
			}},
		},
		{
			name:     "drills",
			recovery: "      drills: {every: 2w}\n",
			want:     RecoveryConfig{Window: 30 * day, Outage: OutageRule{OpenAfter: 3, CloseAfter: 2}, Drills: &DrillConfig{Every: 14 * day}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(recoveryService(tt.recovery)), "")
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Services[0].Recovery; got == nil || !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("recovery = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestRecoveryAbsent: a service without recovery, or with an empty key,
// has no recovery section, rather than one full of defaults.
func TestRecoveryAbsent(t *testing.T) {
	for _, data := range []string{
		"services:\n  - name: shop\n",
		"services:\n  - name: shop\n    recovery:\n",
		"services:\n  - name: shop\n    recovery: ~\n",
	} {
		cfg, err := Parse([]byte(data), "")
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		if r := cfg.Services[0].Recovery; r != nil {
			t.Errorf("Parse(%q): recovery = %#v, want nil", data, r)
		}
	}
}

// TestRecoveryValidateInCode checks the messages only a configuration
// built in code can reach: a file cannot hold a negative duration or size,
// since neither parses.
func TestRecoveryValidateInCode(t *testing.T) {
	valid := func() RecoveryConfig {
		return RecoveryConfig{
			RPO:    Duration(time.Hour),
			Window: DefaultRecoveryWindow,
			Outage: OutageRule{OpenAfter: 3, CloseAfter: 2},
			Backups: []BackupConfig{{
				Name: "db", File: &BackupFile{Glob: "/var/backups/*.dump"},
				Interval: Duration(time.Minute), Timeout: Duration(10 * time.Second),
			}},
		}
	}
	tests := []struct {
		name   string
		change func(*RecoveryConfig)
		want   string
	}{
		{"valid", func(*RecoveryConfig) {}, ""},
		{"negative rto", func(r *RecoveryConfig) { r.RTO = -1 }, "services[0].recovery.rto: must not be negative"},
		{"negative rpo", func(r *RecoveryConfig) { r.RPO = Duration(-time.Hour) },
			"services[0].recovery.rpo: must not be negative"},
		{"negative open_after_duration", func(r *RecoveryConfig) {
			r.Outage.OpenAfter = 0
			r.Outage.OpenAfterDuration = Duration(-time.Minute)
		}, "services[0].recovery.outage.open_after_duration: must not be negative"},
		{"neither open_after nor a duration", func(r *RecoveryConfig) { r.Outage.OpenAfter = 0 },
			"services[0].recovery.outage.open_after: must be at least 1, got 0"},
		{"negative min_size", func(r *RecoveryConfig) { r.Backups[0].File.MinSize = -1 },
			"services[0].recovery.backups[0].file.min_size: must not be negative"},
		{"defaults not resolved", func(r *RecoveryConfig) { *r = RecoveryConfig{} }, strings.Join([]string{
			"services[0].recovery.window: must be between 1h and 366d, got 0s",
			"services[0].recovery.outage.open_after: must be at least 1, got 0",
			"services[0].recovery.outage.close_after: must be at least 1, got 0",
		}, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.change(&r)
			cfg := &Config{Global: DefaultGlobalConfig, Services: []ServiceConfig{{Name: "shop", Recovery: &r}}}
			got := ""
			if err := cfg.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRecoveryRoundTrip: the effective configuration printed by String()
// loads back to the same configuration, recovery sections included.
func TestRecoveryRoundTrip(t *testing.T) {
	full, err := os.ReadFile("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, data string
	}{
		{"good-full.yml", string(full)},
		{"defaults only", recoveryService("      {}\n")},
		{"open_after_duration", recoveryService("      outage: {probes: [home], open_after_duration: 1m30s}\n")},
		{"odd sizes and durations", recoveryService(`      rto: 1h30m
      rpo: 36h
      window: 1y
      backups:
        - name: tar
          file: {glob: "backups/*.tar", min_size: 1500B}
          interval: 90s
        - name: api
          http:
            url: https://backup.example/status
            json_field: a.b.c
            headers: {X-Token-Id: "7", Accept: "*/*"}
            body_size_limit: 1.25MiB
            tls_config: {insecure_skip_verify: true, min_version: TLS13}
          interval: 24h
          timeout: 10m
      drills: {every: 1w}
`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "reliability.yml")
			cfg, err := Parse([]byte(tt.data), file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Services[0].Recovery == nil {
				t.Fatal("no recovery section")
			}
			out := cfg.String()
			again, err := Parse([]byte(out), cfg.Filename)
			if err != nil {
				t.Fatalf("String() output does not load: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(again, cfg) {
				t.Errorf("String() output loads to another configuration:\n%s\nwant:\n%s", again, out)
			}
		})
	}
}

// TestRelativeRecoveryPaths checks that a backup's glob, bearer token and
// TLS files resolve against the configuration file's directory, and that
// absolute ones stay as they are.
func TestRelativeRecoveryPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "reliability.yml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	data := `services:
  - name: shop
    recovery:
      rpo: 1d
      backups:
        - {name: here, file: {glob: "db/*.dump"}}
        - {name: above, file: {glob: "../spool/db-??.tar"}}
        - {name: absolute, file: {glob: "/var/backups/*.dump"}}
        - name: api
          http:
            url: https://backup.example/
            bearer_token_file: secrets/token
            tls_config: {ca_file: ca.pem, cert_file: /etc/tls/client.pem, key_file: ../client.key}
`
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf")
	backups := cfg.Services[0].Recovery.Backups
	api := backups[3].HTTP
	checks := []struct{ name, got, want string }{
		{"glob", backups[0].File.Glob, filepath.Join(conf, "db", "*.dump")},
		{"glob above", backups[1].File.Glob, filepath.Join(dir, "spool", "db-??.tar")},
		{"absolute glob", backups[2].File.Glob, "/var/backups/*.dump"},
		{"bearer_token_file", api.BearerTokenFile, filepath.Join(conf, "secrets", "token")},
		{"ca_file", api.TLSConfig.CAFile, filepath.Join(conf, "ca.pem")},
		{"absolute cert_file", api.TLSConfig.CertFile, "/etc/tls/client.pem"},
		{"key_file above", api.TLSConfig.KeyFile, filepath.Join(dir, "client.key")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestDocsRecoveryErrorExample keeps the error example of the recovery
// section of docs/configuration.md honest: it prints exactly what the docs
// show.
func TestDocsRecoveryErrorExample(t *testing.T) {
	raw, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	bad := fencedBlock(t, doc, "<!-- recovery-error-example", "yaml")
	want := fencedBlock(t, doc, "<!-- recovery-error-example", "text")
	_, err = Parse([]byte(bad), "reliability.yml")
	if err == nil {
		t.Fatal("the recovery error example loads without error")
	}
	if got := err.Error() + "\n"; got != want {
		t.Errorf("the recovery error example gives:\n%s\nthe docs show:\n%s", got, want)
	}
}
