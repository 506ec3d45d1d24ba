package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliabilityd/reliabilityd/config"
)

func TestRunFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	badCA := filepath.Join(dir, "bad-ca.yml")
	os.WriteFile(good, []byte("services:\n  - name: a\n    probes:\n      - {name: p, tcp: {address: '127.0.0.1:9'}}\n"), 0o600)
	os.WriteFile(bad, []byte("services:\n  - name: a\n    probes:\n      - {name: p, tcp: {address: nope}, colour: red}\n"), 0o600)
	os.WriteFile(badCA, []byte("services:\n  - name: a\n    probes:\n      - {name: p, http: {url: 'https://x/', tls_config: {ca_file: missing.pem}}}\n"), 0o600)

	badWeb := filepath.Join(dir, "web.yml")
	os.WriteFile(badWeb, []byte("tls_server_config: {cert_file: nope.pem}\n"), 0o600)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"version", []string{"--version"}, 0, []string{"reliabilityd, version"}, nil},
		{"help", []string{"--help"}, 0, []string{"--config.file", "--web.listen-address", "--storage.path", "--log.level"}, nil},
		{"unknown flag", []string{"--no-such-flag"}, 2, nil, []string{"unknown long flag"}},
		{"bad flush interval", []string{"--storage.flush-interval=0s"}, 2, nil, []string{"--storage.flush-interval must be positive"}},
		{"bad slot", []string{"--scheduler.slot=-1s"}, 2, nil, []string{"--scheduler.slot must be positive"}},
		{"bad web config", []string{"--web.config.file=" + badWeb, "--config.check", "--config.file=" + good}, 1, nil, []string{"--web.config.file " + badWeb}},
		{"check needs a file", []string{"--config.check"}, 2, nil, []string{"--config.check needs --config.file"}},
		{"check good", []string{"--config.check", "--config.file=" + good}, 0, []string{"OK (1 services, 1 probes, 0 SLOs, 0 capacity resources)"}, nil},
		{"check bad", []string{"--config.check", "--config.file=" + bad}, 1, nil, []string{bad + ":4:", "colour", "address"}},
		{"check unreadable CA", []string{"--config.check", "--config.file=" + badCA}, 1, nil, []string{`probe "p"`, "missing.pem"}},
		{"check missing file", []string{"--config.check", "--config.file=" + filepath.Join(dir, "none.yml")}, 1, nil, []string{"none.yml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			for _, want := range tc.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestRunFailsOnBadFirstConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("services: 3\n"), 0o600)
	var stdout, stderr bytes.Buffer
	code := run([]string{"--config.file=" + bad, "--web.listen-address=127.0.0.1:0", "--storage.path=" + filepath.Join(dir, "data")}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), bad+":1:") {
		t.Errorf("exit %d, stderr %s; want 1 and the error's position", code, stderr.String())
	}
}

func TestSelfURL(t *testing.T) {
	for _, tc := range []struct{ listen, wantPrefix string }{
		{"127.0.0.1:0", "http://127.0.0.1:"},
		{"0.0.0.0:0", "http://127.0.0.1:"},
		{":0", "http://127.0.0.1:"},
		{"[::1]:0", "http://[::1]:"},
	} {
		l, err := net.Listen("tcp", tc.listen)
		if err != nil {
			t.Logf("skipping %s: %v", tc.listen, err)
			continue
		}
		got := selfURL([]net.Listener{l})
		l.Close()
		if !strings.HasPrefix(got, tc.wantPrefix) {
			t.Errorf("selfURL(%s) = %q, want prefix %q", tc.listen, got, tc.wantPrefix)
		}
	}
	if got := selfURL(nil); got != "http://127.0.0.1:10089" {
		t.Errorf("selfURL(nil) = %q", got)
	}
}

// TestCapacityHashStable: two loads of the same resource hash alike (a
// reload keeps its sampler, and a CPU source its previous reading), and a
// change to its source, or to the Prometheus source it queries, does not.
func TestCapacityHashStable(t *testing.T) {
	load := func(sources, resource string) *config.Config {
		cfg, err := config.Parse([]byte(sources+"services:\n  - name: a\n    capacity:\n      - "+resource+"\n"), "x.yml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	hash := func(cfg *config.Config) uint64 { return capacityHash(cfg, &cfg.Services[0].Capacity[0]) }
	fds := "{name: fds, source: {process: {self: true, resource: open_fds}}}"
	if hash(load("", fds)) != hash(load("", fds)) {
		t.Error("the same resource hashes differently across loads")
	}
	if hash(load("", fds)) == hash(load("", "{name: fds, source: {process: {self: true, resource: connections}}, limit: 10}")) {
		t.Error("a changed source hashes the same")
	}
	prom := "{name: q, source: {prometheus: {source: p, usage: up}}, limit: 10}"
	source := func(url string) string { return "prometheus_sources: [{name: p, url: '" + url + "'}]\n" }
	if hash(load(source("http://127.0.0.1:9090"), prom)) != hash(load(source("http://127.0.0.1:9090"), prom)) {
		t.Error("the same prometheus resource hashes differently across loads")
	}
	if hash(load(source("http://127.0.0.1:9090"), prom)) == hash(load(source("http://127.0.0.1:9091"), prom)) {
		t.Error("a changed prometheus source hashes the same")
	}
}
