//go:build unix

// Package transaction benchmarks the CPU cost of one run of a five-step
// transaction probe against a login flow on loopback
// (docs/benchmarks.md, "Transaction probe benchmark"):
//
//	go test -run '^$' -bench . -benchmem -count 5 ./bench/transaction
//
// Two sub-benchmarks: server=in-process serves the flow from an
// httptest.Server in the benchmark's own process, so ns/op, B/op,
// allocs/op and cpu-ns/op count the server's work too; server=subprocess
// serves it from a child process (this test binary, started again), so
// B/op, allocs/op and cpu-ns/op are the prober's alone. cpu-ns/op is the
// process's user+system CPU time (getrusage) per run; ns/op is wall time.
package transaction

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// serverEnv, set to 1, makes the test binary serve the login flow instead
// of running tests: see startSubprocessServer.
const serverEnv = "RELIABILITYD_BENCH_TRANSACTION_SERVER"

const (
	benchUser     = "probe@example.com"
	benchPassword = "correct horse&battery"
	benchCSRF     = "csrf-7f3a"
	benchSession  = "session-51e2"
	benchToken    = "token-9b1c"
)

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(serveUntilStdinCloses())
	}
	os.Exit(m.Run())
}

// shopHandler is the login flow: a form with a CSRF token, a form POST
// setting a session cookie and returning a bearer token, two API calls
// wanting both, and a logout.
func shopHandler() http.Handler {
	authorized := func(r *http.Request) bool {
		cookie, err := r.Cookie("session")
		return err == nil && cookie.Value == benchSession && r.Header.Get("Authorization") == "Bearer "+benchToken
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><body><form action="/login" method="post"><input type="hidden" name="csrf" value="%s">`+
			`<input name="user"><input name="password" type="password"></form></body></html>`, benchCSRF)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("user") != benchUser || r.PostFormValue("password") != benchPassword || r.PostFormValue("csrf") != benchCSRF {
			http.Error(w, `{"error": "bad credentials"}`, http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: benchSession, Path: "/", HttpOnly: true})
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data": {"token": %q, "user": {"email": %q}}}`, benchToken, benchUser)
	})
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orders": [{"id": "o-1", "status": "paid", "total": 42.50}, {"id": "o-2", "status": "shipped", "total": 7}]}`)
	})
	mux.HandleFunc("GET /api/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"order": {"id": %q, "status": "paid", "items": [{"sku": "A-1", "qty": 2}]}}`, r.PathValue("id"))
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "", Path: "/", MaxAge: -1})
		// The server closes the connection first, so TIME_WAIT stays on
		// its side: thousands of runs a second would otherwise fill the
		// client's ephemeral ports, and connect() would cost more the more
		// of them wait (see docs/benchmarks.md).
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// transactionYAML is the five-step probe; $URL is the server.
const transactionYAML = `
services:
  - name: shop
    probes:
      - name: checkout
        timeout: 5s
        transaction:
          secrets:
            password: password
          variables:
            user: probe@example.com
          steps:
            - name: login-page
              url: $URL/login
              assertions:
                - {header: Content-Type, regexp: '^text/html'}
              captures:
                - {name: csrf, regexp: 'name="csrf" value="([^"]+)"'}
            - name: login
              method: POST
              url: $URL/login
              headers: {Content-Type: application/x-www-form-urlencoded}
              body: 'user={{ var "user" | urlquery }}&password={{ secret "password" | urlquery }}&csrf={{ var "csrf" | urlquery }}'
              valid_status_codes: [200]
              captures:
                - {name: token, json_path: data.token}
                - {name: session, cookie: session}
            - name: orders
              url: $URL/api/orders
              headers: {Authorization: 'Bearer {{ var "token" }}'}
              assertions:
                - {json_path: 'orders[0].status', equals: paid}
                - {max_duration: 5s}
              captures:
                - {name: order, json_path: 'orders[0].id'}
            - name: order
              url: '$URL/api/orders/{{ var "order" | urlquery }}'
              headers: {Authorization: 'Bearer {{ var "token" }}'}
              assertions:
                - {body_not_regexp: '"error"'}
                - {json_path: 'order.items[0].qty', equals: "2"}
            - name: logout
              method: POST
              url: $URL/logout
              valid_status_codes: [204]
`

// newProber builds the probe against baseURL from the configuration as a
// user writes it, so loading and defaults are the real ones.
func newProber(b *testing.B, baseURL string) collector.Prober {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(benchPassword+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "reliability.yml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(transactionYAML, "$URL", baseURL)), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	prober, err := collector.NewProber(cfg.Services[0].Probes[0], collector.ProberDeps{})
	if err != nil {
		b.Fatal(err)
	}
	return prober
}

func BenchmarkTransaction5Steps(b *testing.B) {
	b.Run("server=in-process", func(b *testing.B) {
		srv := httptest.NewServer(shopHandler())
		b.Cleanup(srv.Close)
		benchmarkRuns(b, srv.URL)
	})
	b.Run("server=subprocess", func(b *testing.B) {
		benchmarkRuns(b, startSubprocessServer(b))
	})
}

// benchmarkRuns runs the transaction b.N times, one after the other, each
// on fresh connections, and reports the process CPU time per run.
func benchmarkRuns(b *testing.B, baseURL string) {
	prober := newProber(b, baseURL)
	runOnce := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if result := prober.Probe(ctx); !result.Success || len(result.Steps) != 5 {
			b.Fatalf("run failed: %v (%d steps)", result.Err, len(result.Steps))
		}
	}
	runOnce() // warm-up: connections, pools, page faults
	b.ReportAllocs()
	cpuBefore := processCPU(b)
	b.ResetTimer()
	for b.Loop() {
		runOnce()
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpuBefore)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user+system CPU time of this process so far, in ns:
// every thread, not the children.
func processCPU(b *testing.B) int64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatal(err)
	}
	return usage.Utime.Nano() + usage.Stime.Nano()
}

// startSubprocessServer runs this test binary again as the login flow's
// server and returns its URL. The child serves until its stdin closes,
// which the cleanup does; it is killed if it does not exit in time.
func startSubprocessServer(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the server subprocess did not report its address: %v", err)
	}
	return "http://" + strings.TrimSpace(line)
}

// serveUntilStdinCloses is the subprocess side: it serves the login flow
// on a loopback port, prints the address, and returns when stdin closes.
func serveUntilStdinCloses() int {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: shopHandler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(listener)
	fmt.Println(listener.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	return 0
}
