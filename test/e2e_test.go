// Package test holds end-to-end tests: they build the reliabilityd binary,
// run it on loopback against targets served by the test, and check what a
// user sees: /metrics (linted by promtool), reloads, the landing page, the
// durable state across a restart and TLS/basic auth from --web.config.file.
package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reliabilityd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "reliabilityd")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/reliabilityd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building reliabilityd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running reliabilityd process.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
}

var listeningRe = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// startDaemon runs the binary with args plus a loopback listen address on
// a free port, and waits until it listens.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, exited: make(chan struct{})}
	args = append([]string{"--web.listen-address=127.0.0.1:0"}, args...)
	d.cmd = exec.Command(binary, args...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			line := scanner.Text()
			d.mu.Lock()
			d.stderr.WriteString(line + "\n")
			d.mu.Unlock()
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log())
		}
	})
	select {
	case a := <-addr:
		d.url = "http://" + a
	case <-d.exited:
		t.Fatalf("daemon exited before listening:\n%s", d.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not listen within 30s:\n%s", d.log())
	}
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// stop sends SIGTERM and waits for the process to exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("daemon did not stop within 20s after SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		d.t.Fatalf("daemon exited with %d:\n%s", code, d.log())
	}
}

func (d *daemon) get(path string) (int, string) {
	d.t.Helper()
	resp, err := http.Get(d.url + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitFor polls /metrics until every pattern matches, or fails after limit.
func (d *daemon) waitFor(limit time.Duration, patterns ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	var body string
	for time.Now().Before(deadline) {
		_, body = d.get("/metrics")
		if matchesAll(body, patterns) {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("within %s, /metrics did not match all of %q; last scrape:\n%s", limit, patterns, grepProbe(body))
	return ""
}

func matchesAll(body string, patterns []string) bool {
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(body) {
			return false
		}
	}
	return true
}

func grepProbe(body string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "probe_") || strings.HasPrefix(line, "reliabilityd_config") ||
			strings.HasPrefix(line, "slo_events_total") || strings.HasPrefix(line, "prometheus_source_query") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBuiltInDefault: started with no configuration, the daemon probes
// itself and its /metrics passes promtool check metrics.
func TestBuiltInDefault(t *testing.T) {
	d := startDaemon(t, "--storage.path="+t.TempDir())
	body := d.waitFor(30*time.Second,
		`^probe_success\{probe="healthy",service="reliabilityd"\} 1$`,
		`^probe_success\{probe="metrics",service="reliabilityd"\} 1$`,
		`^probe_success\{probe="port",service="reliabilityd"\} 1$`,
		`^reliabilityd_build_info\{`,
		`^reliabilityd_config_last_reload_successful 1$`,
	)
	promtool := lookPromtool(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if status, text := d.get("/-/ready"); status != http.StatusOK || text != "Ready.\n" {
		t.Errorf("/-/ready = %d %q", status, text)
	}
	if status, text := d.get("/-/healthy"); status != http.StatusOK || text != "Healthy.\n" {
		t.Errorf("/-/healthy = %d %q", status, text)
	}
	status, page := d.get("/")
	if status != http.StatusOK || !strings.Contains(page, `data-service="reliabilityd"`) {
		t.Errorf("report page = %d, want the built-in service's row:\n%s", status, page)
	}
}

// lookPromtool finds promtool; CI installs it (Debian's prometheus
// package), so it is an error there to lack it.
func lookPromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found; .ci/run installs Debian's prometheus package")
		}
		t.Skip("promtool not found: apt-get install prometheus to run this check")
	}
	return path
}

const targetConfig = `
global:
  probe_interval: 200ms
  probe_timeout: 150ms
services:
  - name: shop
    owner: payments
    priority: critical
    probes:
      - name: home
        http:
          url: %s/
          fail_if_body_not_matches_regexp: ["welcome"]
      - name: api
        http:
          url: %s/api
`

// TestReloadKeepsGoodConfig: a bad configuration, whether sent by POST
// /-/reload or SIGHUP, leaves the running one in force and says where the
// error is; a good one replaces it.
func TestReloadKeepsGoodConfig(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "welcome to the shop")
	}))
	defer target.Close()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf(targetConfig, target.URL, target.URL))

	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	d.waitFor(20*time.Second,
		`^probe_success\{probe="home",service="shop"\} 1$`,
		`^probe_success\{probe="api",service="shop"\} 0$`,
		`^probe_failures_total\{probe="api",reason="status",service="shop"\} [1-9]`,
		`^probe_http_status_code\{probe="api",service="shop"\} 503$`,
		`^reliabilityd_service_info\{owner="payments",priority="critical",service="shop"\} 1$`,
	)

	writeFile(t, configFile, "services:\n  - name: shop\n    probes:\n      - name: home\n        interval: soon\n        http: {url: relative}\n")
	resp, err := http.Post(d.url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST /-/reload of a bad config = %d, want 500", resp.StatusCode)
	}
	for _, want := range []string{configFile + ":5:19:", "interval", configFile + ":6:21:", "url"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("reload error %q does not contain %q", msg, want)
		}
	}
	body := d.waitFor(5*time.Second, `^reliabilityd_config_last_reload_successful 0$`)
	runsBefore := probeRuns(t, body, "home")
	// The old configuration keeps running.
	d.waitFor(5*time.Second, fmt.Sprintf(`^probe_runs_total\{probe="home",service="shop"\} (%s)$`, greaterThan(runsBefore)))

	if status, _ := d.get("/-/reload"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", status)
	}

	// A good configuration by SIGHUP: the api probe goes, a tcp probe comes.
	good := fmt.Sprintf(`
services:
  - name: shop
    probes:
      - {name: home, interval: 200ms, timeout: 150ms, http: {url: "%s/", fail_if_body_not_matches_regexp: [welcome]}}
      - {name: port, interval: 200ms, timeout: 150ms, tcp: {address: "%s"}}
`, target.URL, strings.TrimPrefix(target.URL, "http://"))
	writeFile(t, configFile, good)
	d.cmd.Process.Signal(syscall.SIGHUP)
	body = d.waitFor(10*time.Second,
		`^reliabilityd_config_last_reload_successful 1$`,
		`^probe_success\{probe="port",service="shop"\} 1$`,
	)
	if strings.Contains(body, `probe="api"`) {
		t.Errorf("removed probe api still exported:\n%s", grepProbe(body))
	}
	// home's configuration did not change: its counters carried over.
	if runs := probeRuns(t, body, "home"); runs < runsBefore {
		t.Errorf("probe_runs_total of the unchanged probe went from %d to %d", runsBefore, runs)
	}
}

func probeRuns(t *testing.T, body, probe string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^probe_runs_total\{probe="` + probe + `",service="shop"\} (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no probe_runs_total for %s", probe)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// greaterThan returns a regexp alternative matching integers > n (n small).
func greaterThan(n int) string {
	return fmt.Sprintf(`%d|[1-9]\d{%d,}`, n+1, len(fmt.Sprint(n)))
}

// TestConfigCheck: --config.check prints every error with file, line,
// column and field, and exits non-zero; a good file exits 0.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "services:\n  - name: a\n    probes:\n      - name: p\n        http: {url: 'ftp://x', method: GET}\n        timeout: 1x\n      - name: p\n        tcp: {address: nohostport}\n")
	out, err := exec.Command(binary, "--config.check", "--config.file="+bad).CombinedOutput()
	if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 1 {
		t.Fatalf("--config.check of a bad file: err %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{bad + ":5:", bad + ":6:", bad + ":7:", bad + ":8:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--config.check output lacks %q:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.yml")
	writeFile(t, good, "services:\n  - name: a\n    probes:\n      - {name: p, tcp: {address: '127.0.0.1:1'}}\n")
	out, err = exec.Command(binary, "--config.check", "--config.file="+good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("--config.check of a good file: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "--config.check", "--config.file="+filepath.Join("../examples", "reliability.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("--config.check of examples/reliability.yml: %v\n%s", err, out)
	}
}

// TestStateSurvivesRestart: the recent results shown on the landing page
// come back after a restart, from the state written at shutdown.
func TestStateSurvivesRestart(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer target.Close()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf("services:\n  - name: shop\n    probes:\n      - {name: teapot, interval: 100ms, timeout: 90ms, http: {url: \"%s/\"}}\n", target.URL))
	storage := filepath.Join(dir, "data")

	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage, "--storage.flush-interval=1h")
	d.waitFor(10*time.Second, `^probe_failures_total\{probe="teapot",reason="status",service="shop"\} [1-9]`)
	d.stop()
	if _, err := os.Stat(filepath.Join(storage, "state.bin")); err != nil {
		t.Fatalf("no state file after shutdown: %v", err)
	}

	target.Close() // the restarted daemon cannot reach it: only the restored history mentions status 418
	d2 := startDaemon(t, "--config.file="+configFile, "--storage.path="+storage)
	_, page := d2.get("/")
	if !strings.Contains(page, "418") {
		t.Errorf("landing page after restart lacks the restored failure (status 418):\n%s", page)
	}
}

// TestWebConfigBasicAuth: --web.config.file protects every endpoint.
func TestWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, fmt.Sprintf("basic_auth_users:\n  alice: %s\n", hash))
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, "services: []\n")
	d := startDaemon(t, "--config.file="+configFile, "--web.config.file="+webConfig, "--storage.path="+filepath.Join(dir, "data"))

	for _, path := range []string{"/metrics", "/", "/-/ready", "/config", "/api/v1/outages", "/api/v1/drills"} {
		if status, _ := d.get(path); status != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials = %d, want 401", path, status)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, d.url+path, nil)
		req.SetBasicAuth("alice", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with credentials = %d, want 200", path, resp.StatusCode)
		}
	}
	drill := exec.Command(binary, "drill", "record", "--url="+d.url, "--service=x", "--result=pass", "--duration=1m")
	if out, err := drill.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("drill record without credentials: %v\n%s; want refused with 401", err, out)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, d.url+"/-/reload", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /-/reload without credentials = %d, want 401", resp.StatusCode)
	}
}
