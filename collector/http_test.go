package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// httpTestTimeout bounds every probe run of these tests; timeout tests
// use httpShortTimeout so they stay fast.
const (
	httpTestTimeout  = 5 * time.Second
	httpShortTimeout = 200 * time.Millisecond
)

// httpProbeConfig returns a probe of url with the config defaults,
// changed by mutate when set.
func httpProbeConfig(url string, mutate func(*config.HTTPProbe)) config.ProbeConfig {
	probe := config.DefaultHTTPProbe
	probe.URL = url
	if mutate != nil {
		mutate(&probe)
	}
	return config.ProbeConfig{Name: "test", HTTP: &probe}
}

// newTestHTTPProber builds the prober of cfg, failing the test on error,
// and closes it at the end of the test.
func newTestHTTPProber(t testing.TB, cfg config.ProbeConfig) Prober {
	t.Helper()
	prober, err := NewHTTPProber(cfg, ProberDeps{})
	if err != nil {
		t.Fatalf("NewHTTPProber: %v", err)
	}
	t.Cleanup(prober.(Closer).Close)
	return prober
}

func httpProbeOnce(t testing.TB, prober Prober, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return prober.Probe(ctx)
}

func runHTTPProbe(t testing.TB, cfg config.ProbeConfig) Result {
	t.Helper()
	return httpProbeOnce(t, newTestHTTPProber(t, cfg), httpTestTimeout)
}

// assertHTTPResult checks success, reason and, when errPart is set, that the
// error mentions it.
func assertHTTPResult(t *testing.T, result Result, wantReason Reason, errPart string) {
	t.Helper()
	if result.Reason != wantReason {
		t.Fatalf("reason = %q (err %v), want %q", result.Reason, result.Err, wantReason)
	}
	if wantSuccess := wantReason == ""; result.Success != wantSuccess {
		t.Errorf("success = %v, want %v", result.Success, wantSuccess)
	}
	if (result.Err == nil) != (wantReason == "") {
		t.Errorf("err = %v with reason %q", result.Err, wantReason)
	}
	if errPart != "" && (result.Err == nil || !strings.Contains(result.Err.Error(), errPart)) {
		t.Errorf("err = %v, want it to contain %q", result.Err, errPart)
	}
}

func httpRegexp(t testing.TB, expr string) config.Regexp {
	t.Helper()
	return config.Regexp{Regexp: regexp.MustCompile(expr)}
}

func httpSecretFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHTTPProberSuccessPhases(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	result := runHTTPProbe(t, httpProbeConfig(srv.URL, nil))
	assertHTTPResult(t, result, "", "")
	if result.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", result.StatusCode)
	}
	if result.TLS != nil {
		t.Errorf("TLS = %+v for plain http", result.TLS)
	}
	if result.Start.IsZero() || result.Duration <= 0 || result.Duration > httpTestTimeout {
		t.Errorf("start %v, duration %v: not plausible", result.Start, result.Duration)
	}
	assertHTTPPhases(t, result, []Phase{PhaseResolve, PhaseConnect, PhaseProcessing, PhaseTransfer}, []Phase{PhaseTLS})
}

// assertHTTPPhases checks that want phases were recorded, absent ones were
// not, and that together they fit in the run's duration.
func assertHTTPPhases(t *testing.T, result Result, want, absent []Phase) {
	t.Helper()
	for _, phase := range want {
		if d, ok := result.Phases.Get(phase); !ok || d < 0 {
			t.Errorf("phase %s = %v, %v; want a recorded non-negative duration", phase, d, ok)
		}
	}
	for _, phase := range absent {
		if d, ok := result.Phases.Get(phase); ok {
			t.Errorf("phase %s recorded (%v), want absent", phase, d)
		}
	}
	var sum time.Duration
	for _, phase := range AllPhases() {
		d, _ := result.Phases.Get(phase)
		sum += d
	}
	if sum <= 0 || sum > result.Duration {
		t.Errorf("phases add up to %v, want in (0, duration %v]", sum, result.Duration)
	}
}

func TestHTTPProberStatus(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("/unavailable", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name       string
		path       string
		valid      []int
		noFollow   bool
		wantReason Reason
		wantErr    string
		wantStatus int
	}{
		{name: "2xx by default", path: "/ok", wantStatus: 200},
		{name: "503 not 2xx", path: "/unavailable", wantReason: ReasonStatus, wantErr: "status 503 not in 2xx", wantStatus: 503},
		{name: "503 not listed", path: "/unavailable", valid: []int{200}, wantReason: ReasonStatus, wantErr: "status 503 not in [200]", wantStatus: 503},
		{name: "503 listed", path: "/unavailable", valid: []int{200, 503}, wantStatus: 503},
		{name: "200 not listed", path: "/ok", valid: []int{204}, wantReason: ReasonStatus, wantErr: "status 200 not in [204]", wantStatus: 200},
		{name: "302 not followed and listed", path: "/redirect", valid: []int{302}, noFollow: true, wantStatus: 302},
		{name: "302 not followed is not 2xx", path: "/redirect", noFollow: true, wantReason: ReasonStatus, wantErr: "status 302", wantStatus: 302},
		{name: "302 followed to 200", path: "/redirect", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := runHTTPProbe(t, httpProbeConfig(srv.URL+tt.path, func(c *config.HTTPProbe) {
				c.ValidStatusCodes = tt.valid
				c.FollowRedirects = !tt.noFollow
			}))
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if result.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", result.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestHTTPProberBodyRegexps(t *testing.T) {
	const body = "private-token-123 status: healthy"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	}))
	defer srv.Close()

	tests := []struct {
		name       string
		matches    []string
		notMatches []string
		wantReason Reason
		wantErr    string
	}{
		{name: "fail_if_matches hit", matches: []string{"unhealthy", "status: heal"}, wantReason: ReasonAssertion, wantErr: `fail_if_body_matches_regexp "status: heal"`},
		{name: "fail_if_matches miss", matches: []string{"unhealthy"}},
		{name: "fail_if_not_matches hit", notMatches: []string{"healthy$"}},
		{name: "fail_if_not_matches miss", notMatches: []string{"healthy$", "^ready"}, wantReason: ReasonAssertion, wantErr: `fail_if_body_not_matches_regexp "^ready"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := runHTTPProbe(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
				for _, expr := range tt.matches {
					c.FailIfBodyMatches = append(c.FailIfBodyMatches, httpRegexp(t, expr))
				}
				for _, expr := range tt.notMatches {
					c.FailIfBodyNotMatches = append(c.FailIfBodyNotMatches, httpRegexp(t, expr))
				}
			}))
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if result.Err != nil && strings.Contains(result.Err.Error(), "private-token") {
				t.Errorf("err %q leaks the body", result.Err)
			}
		})
	}
}

func TestHTTPProberHeaderChecks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("X-Version", "v1.2")
		w.Header().Add("X-Version", "v2.0")
	}))
	defer srv.Close()

	tests := []struct {
		name       string
		matches    []config.HeaderMatch
		notMatches []config.HeaderMatch
		wantReason Reason
		wantErr    string
	}{
		{name: "matches hit on second value", matches: []config.HeaderMatch{{Header: "x-version", Regexp: httpRegexp(t, `^v2`)}},
			wantReason: ReasonAssertion, wantErr: `fail_if_header_matches: header "X-Version" matches "^v2"`},
		{name: "matches miss", matches: []config.HeaderMatch{{Header: "X-Version", Regexp: httpRegexp(t, `^v3`)}}},
		{name: "not matches hit", notMatches: []config.HeaderMatch{{Header: "X-Version", Regexp: httpRegexp(t, `^v1\.`)}}},
		{name: "not matches miss", notMatches: []config.HeaderMatch{{Header: "X-Version", Regexp: httpRegexp(t, `^v3`)}},
			wantReason: ReasonAssertion, wantErr: `header "X-Version" does not match "^v3"`},
		{name: "missing header fails", notMatches: []config.HeaderMatch{{Header: "X-Missing", Regexp: httpRegexp(t, `.`)}},
			wantReason: ReasonAssertion, wantErr: `header "X-Missing" missing`},
		{name: "missing header fails matches too", matches: []config.HeaderMatch{{Header: "X-Missing", Regexp: httpRegexp(t, `.`)}},
			wantReason: ReasonAssertion, wantErr: `fail_if_header_matches: header "X-Missing" missing`},
		{name: "missing header allowed", notMatches: []config.HeaderMatch{{Header: "X-Missing", Regexp: httpRegexp(t, `.`), AllowMissing: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := runHTTPProbe(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
				c.FailIfHeaderMatches = tt.matches
				c.FailIfHeaderNotMatches = tt.notMatches
			}))
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
		})
	}
}

func TestHTTPProberRedirects(t *testing.T) {
	var requests atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	// /chain/N redirects N times before answering 200.
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/chain/%d", n-1), http.StatusMovedPermanently)
			return
		}
		io.WriteString(w, "done")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name         string
		path         string
		maxRedirects int
		wantReason   Reason
		wantRequests int32
		wantStatus   int
	}{
		{name: "followed", path: "/chain/1", maxRedirects: 10, wantRequests: 2, wantStatus: 200},
		{name: "exactly max", path: "/chain/3", maxRedirects: 3, wantRequests: 4, wantStatus: 200},
		{name: "over max", path: "/chain/3", maxRedirects: 2, wantReason: ReasonRedirect, wantRequests: 3, wantStatus: 301},
		{name: "none allowed", path: "/chain/1", maxRedirects: 0, wantReason: ReasonRedirect, wantRequests: 1, wantStatus: 301},
		{name: "loop", path: "/loop", maxRedirects: 10, wantReason: ReasonRedirect, wantRequests: 11, wantStatus: 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			result := runHTTPProbe(t, httpProbeConfig(srv.URL+tt.path, func(c *config.HTTPProbe) {
				c.MaxRedirects = tt.maxRedirects
			}))
			wantErr := ""
			if tt.wantReason != "" {
				wantErr = fmt.Sprintf("too many redirects (max_redirects %d)", tt.maxRedirects)
			}
			assertHTTPResult(t, result, tt.wantReason, wantErr)
			if got := requests.Load(); got != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d", got, tt.wantRequests)
			}
			if result.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", result.StatusCode, tt.wantStatus)
			}
			if result.Reason == "" {
				// Every hop goes through connect and processing; the
				// phases add up and still fit in the run.
				assertHTTPPhases(t, result, []Phase{PhaseConnect, PhaseProcessing, PhaseTransfer}, nil)
			}
		})
	}
}

func TestHTTPProberTimeouts(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantPhases []Phase
	}{
		{
			name: "slow headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			wantPhases: []Phase{PhaseConnect, PhaseProcessing},
		},
		{
			name: "slow body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first part of the body")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			wantPhases: []Phase{PhaseConnect, PhaseProcessing, PhaseTransfer},
		},
	}
	for _, tt := range tests {
		for _, regexps := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/buffered=%v", tt.name, regexps), func(t *testing.T) {
				srv := httptest.NewServer(tt.handler)
				defer srv.Close()
				prober := newTestHTTPProber(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
					if regexps {
						c.FailIfBodyNotMatches = []config.Regexp{httpRegexp(t, "body")}
					}
				}))
				result := httpProbeOnce(t, prober, httpShortTimeout)
				assertHTTPResult(t, result, ReasonTimeout, "")
				if result.Duration < httpShortTimeout/2 || result.Duration > 10*httpShortTimeout {
					t.Errorf("duration = %v, want about %v", result.Duration, httpShortTimeout)
				}
				assertHTTPPhases(t, result, tt.wantPhases, nil)
			})
		}
	}
}

func TestHTTPProberBodySizeLimit(t *testing.T) {
	const limit = 100
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("size"), &n)
		if r.URL.Query().Has("chunked") {
			w.(http.Flusher).Flush() // no Content-Length: the limit must hold on a stream
		}
		io.WriteString(w, strings.Repeat("x", n))
	}))
	defer srv.Close()

	tests := []struct {
		size       int
		chunked    bool
		regexps    bool
		wantReason Reason
	}{
		{size: limit},
		{size: limit + 1, wantReason: ReasonBodyTooLarge},
		{size: 10 * limit, wantReason: ReasonBodyTooLarge},
		{size: limit, chunked: true},
		{size: limit + 1, chunked: true, wantReason: ReasonBodyTooLarge},
		{size: limit, regexps: true},
		{size: limit + 1, regexps: true, wantReason: ReasonBodyTooLarge},
		{size: 10 * limit, chunked: true, regexps: true, wantReason: ReasonBodyTooLarge},
		{size: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("size=%d/chunked=%v/regexps=%v", tt.size, tt.chunked, tt.regexps), func(t *testing.T) {
			url := fmt.Sprintf("%s/?size=%d", srv.URL, tt.size)
			if tt.chunked {
				url += "&chunked"
			}
			result := runHTTPProbe(t, httpProbeConfig(url, func(c *config.HTTPProbe) {
				c.BodySizeLimit = limit
				if tt.regexps {
					c.FailIfBodyMatches = []config.Regexp{httpRegexp(t, "y")}
				}
			}))
			wantErr := ""
			if tt.wantReason != "" {
				wantErr = "body exceeds body_size_limit of 100 bytes"
			}
			assertHTTPResult(t, result, tt.wantReason, wantErr)
		})
	}
}

func TestHTTPProberConnectionErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := listener.Addr().String()
		listener.Close()
		result := runHTTPProbe(t, httpProbeConfig("http://"+addr+"/", nil))
		assertHTTPResult(t, result, ReasonConnect, "connection refused")
		assertHTTPPhases(t, result, []Phase{PhaseResolve, PhaseConnect}, []Phase{PhaseProcessing, PhaseTransfer})
	})
	t.Run("reset", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			// Linger 0 makes Close send a RST instead of a FIN.
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}))
		defer srv.Close()
		result := runHTTPProbe(t, httpProbeConfig(srv.URL, nil))
		assertHTTPResult(t, result, ReasonProtocol, "")
	})
	t.Run("closed without answer", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
		}))
		defer srv.Close()
		result := runHTTPProbe(t, httpProbeConfig(srv.URL, nil))
		assertHTTPResult(t, result, ReasonProtocol, "")
	})
	t.Run("malformed response", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 2OO OK\r\n\r\n")
			buf.Flush()
		}))
		defer srv.Close()
		result := runHTTPProbe(t, httpProbeConfig(srv.URL, nil))
		if result.Success || result.Reason == "" {
			t.Fatalf("malformed response: success=%v reason=%q", result.Success, result.Reason)
		}
	})
}

// newHTTPSServer starts an HTTPS server with tlsConfig; handler nil
// answers 200 "secure".
func newHTTPSServer(t *testing.T, tlsConfig *tls.Config, handler http.Handler) *httptest.Server {
	t.Helper()
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secure") })
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = tlsConfig
	// The server logs every failed handshake; these tests cause them.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// httpsServerTLS presents leaf and, with clientCA set, requires client
// certificates signed by it.
func httpsServerTLS(leaf testLeaf, clientCA *testCA, maxVersion uint16) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.cert}, MaxVersion: maxVersion}
	if clientCA != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = clientCA.pool()
	}
	return cfg
}

func TestHTTPProberTLS(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	valid := ca.leaf(t, leafOptions{})
	tests := []struct {
		name       string
		leaf       testLeaf
		tlsConfig  config.TLSConfig
		headers    map[string]string
		wantReason Reason
		wantErr    string
	}{
		{name: "self-signed", leaf: selfSignedLeaf(t, leafOptions{}), wantReason: ReasonTLS, wantErr: "certificate"},
		{name: "unknown CA", leaf: valid, wantReason: ReasonTLS, wantErr: "unknown authority"},
		{name: "expired", leaf: ca.leaf(t, leafOptions{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)}),
			tlsConfig: config.TLSConfig{CAFile: ca.certFile}, wantReason: ReasonTLS, wantErr: "expired"},
		{name: "not yet valid", leaf: ca.leaf(t, leafOptions{notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour)}),
			tlsConfig: config.TLSConfig{CAFile: ca.certFile}, wantReason: ReasonTLS, wantErr: "not yet valid"},
		{name: "wrong host", leaf: ca.leaf(t, leafOptions{hosts: []string{"wrong.example"}}),
			tlsConfig: config.TLSConfig{CAFile: ca.certFile}, wantReason: ReasonTLS, wantErr: "127.0.0.1"},
		{name: "wrong host, server_name matches", leaf: ca.leaf(t, leafOptions{hosts: []string{"wrong.example"}}),
			tlsConfig: config.TLSConfig{CAFile: ca.certFile, ServerName: "wrong.example"}},
		{name: "wrong host, Host header matches", leaf: ca.leaf(t, leafOptions{hosts: []string{"shop.example"}}),
			tlsConfig: config.TLSConfig{CAFile: ca.certFile}, headers: map[string]string{"Host": "shop.example:443"}},
		{name: "CA configured", leaf: valid, tlsConfig: config.TLSConfig{CAFile: ca.certFile}},
		{name: "insecure_skip_verify", leaf: selfSignedLeaf(t, leafOptions{}), tlsConfig: config.TLSConfig{InsecureSkipVerify: true}},
		{name: "min_version TLS13", leaf: valid, tlsConfig: config.TLSConfig{CAFile: ca.certFile, MinVersion: "TLS13"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHTTPSServer(t, httpsServerTLS(tt.leaf, nil, 0), nil)
			result := runHTTPProbe(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
				c.TLSConfig = tt.tlsConfig
				c.Headers = tt.headers
				c.FailIfNotTLS = true
			}))
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if tt.wantReason != "" {
				return
			}
			if result.TLS == nil {
				t.Fatal("TLS = nil on an https probe")
			}
			if !result.TLS.LeafExpiry.Equal(tt.leaf.x509.NotAfter) {
				t.Errorf("leaf expiry = %v, want %v", result.TLS.LeafExpiry, tt.leaf.x509.NotAfter)
			}
			if result.TLS.Version == "" || result.TLS.EarliestExpiry.IsZero() {
				t.Errorf("TLS state incomplete: %+v", result.TLS)
			}
			assertHTTPPhases(t, result, []Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing, PhaseTransfer}, nil)
		})
	}
}

// TestHTTPProberHTTP2: a fresh-connection probe speaks HTTP/1.1 even to an
// HTTP/2 server (HTTP/2's pool would hand one run's connection to
// another); a keep-alive probe uses HTTP/2 and reuses its connection.
func TestHTTPProberHTTP2(t *testing.T) {
	for _, tc := range []struct {
		keepAlive            bool
		wantHTTP2, wantConns int32
	}{
		{keepAlive: false, wantHTTP2: 0, wantConns: 2},
		{keepAlive: true, wantHTTP2: 2, wantConns: 1},
	} {
		t.Run(fmt.Sprintf("keep_alive=%v", tc.keepAlive), func(t *testing.T) {
			ca := newTestCA(t)
			var conns, http2Requests atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ProtoMajor == 2 {
					http2Requests.Add(1)
				}
				io.WriteString(w, "h2")
			}))
			srv.EnableHTTP2 = true
			srv.TLS = httpsServerTLS(ca.leaf(t, leafOptions{}), nil, 0)
			srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
				if state == http.StateNew {
					conns.Add(1)
				}
			}
			srv.StartTLS()
			defer srv.Close()

			prober := newTestHTTPProber(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
				c.TLSConfig.CAFile = ca.certFile
				c.FailIfBodyNotMatches = []config.Regexp{httpRegexp(t, "^h2$")}
				c.KeepAlive = tc.keepAlive
			}))
			first := httpProbeOnce(t, prober, httpTestTimeout)
			assertHTTPResult(t, first, "", "")
			assertHTTPPhases(t, first, []Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing, PhaseTransfer}, nil)
			second := httpProbeOnce(t, prober, httpTestTimeout)
			assertHTTPResult(t, second, "", "")
			if _, dialled := second.Phases.Get(PhaseConnect); dialled == tc.keepAlive {
				t.Errorf("second run dialled: %v, want %v", dialled, !tc.keepAlive)
			}
			if got := http2Requests.Load(); got != tc.wantHTTP2 {
				t.Errorf("server saw %d HTTP/2 requests, want %d", got, tc.wantHTTP2)
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("server accepted %d connections, want %d", got, tc.wantConns)
			}
		})
	}
}

func TestHTTPProberFailIfNotTLS(t *testing.T) {
	ca := newTestCA(t)
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	secure := newHTTPSServer(t, httpsServerTLS(ca.leaf(t, leafOptions{}), nil, 0), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/downgrade" {
			http.Redirect(w, r, plain.URL, http.StatusFound)
		}
	}))

	tests := []struct {
		name       string
		url        string
		wantReason Reason
	}{
		{name: "plain http", url: plain.URL, wantReason: ReasonAssertion},
		{name: "https", url: secure.URL},
		{name: "https redirecting to http", url: secure.URL + "/downgrade", wantReason: ReasonAssertion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := runHTTPProbe(t, httpProbeConfig(tt.url, func(c *config.HTTPProbe) {
				c.FailIfNotTLS = true
				c.TLSConfig.CAFile = ca.certFile
			}))
			wantErr := ""
			if tt.wantReason != "" {
				wantErr = "fail_if_not_tls"
			}
			assertHTTPResult(t, result, tt.wantReason, wantErr)
			if (result.TLS != nil) != (tt.wantReason == "") {
				t.Errorf("TLS = %+v, want it set only when the final response came over TLS", result.TLS)
			}
		})
	}
}

func TestHTTPProberClientCertificate(t *testing.T) {
	serverCA, clientCA, strangerCA := newTestCA(t), newTestCA(t), newTestCA(t)
	serverLeaf := serverCA.leaf(t, leafOptions{})
	client := clientCA.leaf(t, leafOptions{client: true})
	stranger := strangerCA.leaf(t, leafOptions{client: true})

	tests := []struct {
		name       string
		tlsConfig  config.TLSConfig
		wantReason Reason
	}{
		{name: "without certificate", tlsConfig: config.TLSConfig{CAFile: serverCA.certFile}, wantReason: ReasonTLS},
		{name: "certificate of another CA", tlsConfig: config.TLSConfig{CAFile: serverCA.certFile, CertFile: stranger.certFile, KeyFile: stranger.keyFile}, wantReason: ReasonTLS},
		{name: "with certificate", tlsConfig: config.TLSConfig{CAFile: serverCA.certFile, CertFile: client.certFile, KeyFile: client.keyFile}},
	}
	// TLS 1.2 rejects a client inside the handshake; TLS 1.3 only after
	// the client finished it, on the first read.
	for _, maxVersion := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		srv := newHTTPSServer(t, httpsServerTLS(serverLeaf, clientCA, maxVersion), nil)
		for _, tt := range tests {
			t.Run(tt.name+"/"+tls.VersionName(maxVersion), func(t *testing.T) {
				result := runHTTPProbe(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) { c.TLSConfig = tt.tlsConfig }))
				assertHTTPResult(t, result, tt.wantReason, "")
				if tt.wantReason == "" && result.TLS.Version != tls.VersionName(maxVersion) {
					t.Errorf("TLS version = %s, want %s", result.TLS.Version, tls.VersionName(maxVersion))
				}
			})
		}
	}
}

func TestHTTPProberCredentials(t *testing.T) {
	const user, password, token = "prober", "s3cret-pass", "t0ken-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPassword, basic := r.BasicAuth()
		switch {
		case basic && gotUser == user && gotPassword == password:
		case r.Header.Get("Authorization") == "Bearer "+token:
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()

	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name       string
		basicAuth  *config.BasicAuth
		tokenFile  string
		wantReason Reason
		wantErr    string
	}{
		{name: "basic auth", basicAuth: &config.BasicAuth{Username: user, PasswordFile: httpSecretFile(t, "password", password+"\n")}},
		{name: "basic auth CRLF", basicAuth: &config.BasicAuth{Username: user, PasswordFile: httpSecretFile(t, "password", password+"\r\n")}},
		{name: "wrong password", basicAuth: &config.BasicAuth{Username: user, PasswordFile: httpSecretFile(t, "password", "wrong")},
			wantReason: ReasonStatus, wantErr: "status 401"},
		{name: "bearer token", tokenFile: httpSecretFile(t, "token", token+"\n")},
		{name: "no credentials", wantReason: ReasonStatus, wantErr: "status 401"},
		{name: "missing password file", basicAuth: &config.BasicAuth{Username: user, PasswordFile: missing},
			wantReason: ReasonSecret, wantErr: "password_file"},
		{name: "missing token file", tokenFile: missing, wantReason: ReasonSecret, wantErr: "bearer_token_file"},
		{name: "password file is a directory", basicAuth: &config.BasicAuth{Username: user, PasswordFile: t.TempDir()},
			wantReason: ReasonSecret, wantErr: "password_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := runHTTPProbe(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
				c.BasicAuth = tt.basicAuth
				c.BearerTokenFile = tt.tokenFile
			}))
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if result.Err != nil {
				for _, secret := range []string{password, token} {
					if strings.Contains(result.Err.Error(), secret) {
						t.Errorf("err %q contains a secret", result.Err)
					}
				}
			}
		})
	}
}

func TestHTTPProberSecretRotation(t *testing.T) {
	var current atomic.Value
	current.Store("first")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, password, _ := r.BasicAuth(); password != current.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	passwordFile := httpSecretFile(t, "password", "first\n")
	prober := newTestHTTPProber(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
		c.BasicAuth = &config.BasicAuth{Username: "u", PasswordFile: passwordFile}
	}))

	steps := []struct {
		serverWants, fileHolds string
		wantReason             Reason
	}{
		{serverWants: "first", fileHolds: "first\n"},
		{serverWants: "second", fileHolds: "first\n", wantReason: ReasonStatus},
		{serverWants: "second", fileHolds: "second\n"},
	}
	for i, step := range steps {
		current.Store(step.serverWants)
		if err := os.WriteFile(passwordFile, []byte(step.fileHolds), 0o600); err != nil {
			t.Fatal(err)
		}
		result := httpProbeOnce(t, prober, httpTestTimeout)
		if result.Reason != step.wantReason {
			t.Errorf("step %d: reason = %q (err %v), want %q", i, result.Reason, result.Err, step.wantReason)
		}
	}
}

func TestHTTPProberIPProtocol(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		host       string
		ipProtocol string
		fallback   bool
		wantReason Reason
	}{
		{name: "ip4 literal", host: "127.0.0.1", ipProtocol: "ip4"},
		{name: "ip4 localhost", host: "localhost", ipProtocol: "ip4"},
		{name: "ip6 wanted, ip4 literal, fallback", host: "127.0.0.1", ipProtocol: "ip6", fallback: true},
		{name: "ip6 wanted, ip4 literal, no fallback", host: "127.0.0.1", ipProtocol: "ip6", wantReason: ReasonDNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result := runHTTPProbe(t, httpProbeConfig("http://"+net.JoinHostPort(tt.host, port)+"/", func(c *config.HTTPProbe) {
				c.IPProtocol = tt.ipProtocol
				c.IPProtocolFallback = tt.fallback
			}))
			assertHTTPResult(t, result, tt.wantReason, "")
			if _, ok := result.Phases.Get(PhaseResolve); !ok {
				t.Error("resolve phase not recorded")
			}
		})
	}
}

// httpSeenRequest is what a test server received.
type httpSeenRequest struct {
	method, host, body, userAgent, custom, contentType string
}

func TestHTTPProberRequestDelivered(t *testing.T) {
	seen := make(chan httpSeenRequest, 10)
	mux := http.NewServeMux()
	record := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen <- httpSeenRequest{
			method: r.Method, host: r.Host, body: string(body), userAgent: r.Header.Get("User-Agent"),
			custom: r.Header.Get("X-Custom"), contentType: r.Header.Get("Content-Type"),
		}
	}
	mux.HandleFunc("/", record)
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusTemporaryRedirect)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvHost := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name    string
		path    string
		method  string
		body    string
		headers map[string]string
		want    httpSeenRequest
	}{
		{name: "defaults", want: httpSeenRequest{method: "GET", host: srvHost, userAgent: "reliabilityd"}},
		{name: "post with body and headers", method: "POST", body: `{"ping":true}`,
			headers: map[string]string{"host": "shop.example", "X-Custom": "42", "Content-Type": "application/json", "User-Agent": "custom-agent"},
			want:    httpSeenRequest{method: "POST", host: "shop.example", body: `{"ping":true}`, userAgent: "custom-agent", custom: "42", contentType: "application/json"}},
		{name: "body resent on 307", path: "/moved", method: "PUT", body: "payload",
			want: httpSeenRequest{method: "PUT", host: srvHost, body: "payload", userAgent: "reliabilityd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prober := newTestHTTPProber(t, httpProbeConfig(srv.URL+tt.path, func(c *config.HTTPProbe) {
				if tt.method != "" {
					c.Method = tt.method
				}
				c.Body = tt.body
				c.Headers = tt.headers
			}))
			// Twice: the second run must send the same body again.
			for run := range 2 {
				result := httpProbeOnce(t, prober, httpTestTimeout)
				assertHTTPResult(t, result, "", "")
				select {
				case got := <-seen:
					if got != tt.want {
						t.Errorf("run %d: server saw %+v, want %+v", run, got, tt.want)
					}
				default:
					t.Fatalf("run %d: server saw no request", run)
				}
			}
		})
	}
}

func TestHTTPProberKeepAlive(t *testing.T) {
	tests := []struct {
		keepAlive bool
		wantConns int32
	}{
		{keepAlive: false, wantConns: 3},
		{keepAlive: true, wantConns: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("keep_alive=%v", tt.keepAlive), func(t *testing.T) {
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "ok")
			}))
			srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
				if state == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			prober := newTestHTTPProber(t, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) { c.KeepAlive = tt.keepAlive }))
			for range 3 {
				assertHTTPResult(t, httpProbeOnce(t, prober, httpTestTimeout), "", "")
			}
			if got := conns.Load(); got != tt.wantConns {
				t.Errorf("server accepted %d connections over 3 runs, want %d", got, tt.wantConns)
			}
		})
	}
}

func TestNewHTTPProberErrors(t *testing.T) {
	missingFile := filepath.Join(t.TempDir(), "missing-ca.pem")
	tests := []struct {
		name    string
		cfg     config.ProbeConfig
		wantErr string
	}{
		{name: "no http section", cfg: config.ProbeConfig{Name: "test"}, wantErr: `probe "test": no http section`},
		{name: "bad scheme", cfg: httpProbeConfig("ftp://example.test/", nil), wantErr: "scheme must be http or https"},
		{name: "no host", cfg: httpProbeConfig("http:///path", nil), wantErr: "no host"},
		{name: "unparsable", cfg: httpProbeConfig("http://[::1", nil), wantErr: "url:"},
		{name: "CA file missing", cfg: httpProbeConfig("https://example.test/", func(c *config.HTTPProbe) {
			c.TLSConfig.CAFile = missingFile
		}), wantErr: missingFile},
		{name: "client cert missing", cfg: httpProbeConfig("https://example.test/", func(c *config.HTTPProbe) {
			c.TLSConfig.CertFile, c.TLSConfig.KeyFile = missingFile, missingFile
		}), wantErr: missingFile},
		{name: "bad ip_protocol", cfg: httpProbeConfig("http://example.test/", func(c *config.HTTPProbe) {
			c.IPProtocol = "ipx"
		}), wantErr: `ip_protocol "ipx"`},
		{name: "two kinds of credentials", cfg: httpProbeConfig("http://example.test/", func(c *config.HTTPProbe) {
			c.BasicAuth = &config.BasicAuth{Username: "u", PasswordFile: "p"}
			c.BearerTokenFile = "t"
		}), wantErr: "mutually exclusive"},
		{name: "empty regexp", cfg: httpProbeConfig("http://example.test/", func(c *config.HTTPProbe) {
			c.FailIfBodyMatches = []config.Regexp{{}}
		}), wantErr: "fail_if_body_matches_regexp[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prober, err := NewHTTPProber(tt.cfg, ProberDeps{})
			if err == nil {
				t.Fatalf("NewHTTPProber = %v, want an error", prober)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestClassifyHTTPError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		ctxErr error
		want   Reason
	}{
		{name: "redirects", err: fmt.Errorf("get: %w", &redirectError{msg: "too many redirects"}), want: ReasonRedirect},
		{name: "malformed response", err: errors.New(`malformed HTTP status code "x"`), want: ReasonProtocol},
		{name: "remote alert", err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, want: ReasonTLS},
		{name: "deadline wins", err: &net.OpError{Op: "remote error", Err: errors.New("x")}, ctxErr: context.DeadlineExceeded, want: ReasonTimeout},
		{name: "refused", err: &net.OpError{Op: "dial", Err: errors.New("refused")}, want: ReasonConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyHTTPError(tt.err, tt.ctxErr); got != tt.want {
				t.Errorf("classifyHTTPError = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkHTTPProber(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	for _, regexps := range []bool{false, true} {
		b.Run(fmt.Sprintf("body_regexps=%v", regexps), func(b *testing.B) {
			prober := newTestHTTPProber(b, httpProbeConfig(srv.URL, func(c *config.HTTPProbe) {
				if regexps {
					c.FailIfBodyNotMatches = []config.Regexp{httpRegexp(b, "ok")}
				}
			}))
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), httpTestTimeout)
				result := prober.Probe(ctx)
				cancel()
				if !result.Success {
					b.Fatalf("probe failed: %v", result.Err)
				}
			}
		})
	}
}

// TestHTTPTransportsShared: probes set up alike share one transport and
// still each measure with their own settings; keep-alive probes and other
// TLS settings get their own.
func TestHTTPTransportsShared(t *testing.T) {
	var requests atomic.Int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer server.Close()
	transports := NewHTTPTransports()
	build := func(path string, mutate func(*config.HTTPProbe)) *httpProber {
		t.Helper()
		probe := config.DefaultHTTPProbe
		probe.URL = server.URL + path
		if mutate != nil {
			mutate(&probe)
		}
		p, err := NewHTTPProber(config.ProbeConfig{Name: "p", HTTP: &probe}, ProberDeps{HTTPTransports: transports})
		if err != nil {
			t.Fatal(err)
		}
		return p.(*httpProber)
	}
	good, bad := build("/good", nil), build("/bad", func(p *config.HTTPProbe) { p.IPProtocol = "ip4"; p.IPProtocolFallback = false })
	keepAlive := build("/good", func(p *config.HTTPProbe) { p.KeepAlive = true })
	otherTLS := build("/good", func(p *config.HTTPProbe) { p.TLSConfig.ServerName = "other" })
	if good.transport != bad.transport {
		t.Error("probes set up alike do not share a transport")
	}
	if keepAlive.transport == good.transport || otherTLS.transport == good.transport {
		t.Error("a keep-alive probe or one with other TLS settings shares the common transport")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r := good.Probe(ctx); !r.Success {
		t.Errorf("good probe failed: %v", r.Err)
	}
	if r := bad.Probe(ctx); r.Success || r.Reason != ReasonStatus {
		t.Errorf("bad probe = %+v, want a status failure", r)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

// TestHTTPProberNothingOutlivesTheDeadline: against a TLS "tarpit" that
// accepts connections and never answers the handshake, every run fails
// as a timeout and its connection is closed by its deadline: net/http
// dials with a context stripped of the request's deadline, so without
// the run's own deadline the dial and handshake would linger.
func TestHTTPProberNothingOutlivesTheDeadline(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	var open atomic.Int32
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() {
				io.Copy(io.Discard, conn) // returns when the client closes
				conn.Close()
				open.Add(-1)
			}()
		}
	}()
	prober := newTestHTTPProber(t, httpProbeConfig("https://"+listener.Addr().String()+"/", nil))
	const runs = 5
	for range runs {
		result := httpProbeOnce(t, prober, 100*time.Millisecond)
		assertHTTPResult(t, result, ReasonTimeout, "")
	}
	deadline := time.Now().Add(3 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d of %d connections still open 3s after their runs timed out", n, runs)
	}
}

func TestHTTPProberReasons(t *testing.T) {
	redirectFTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://files.example/x", http.StatusFound)
	}))
	defer redirectFTP.Close()
	malformed := rawServer(t, "HTTP/1.1 abc OK\r\n\r\n")
	tlsClose := rawServer(t, "") // closes at once: the handshake reads EOF
	for _, tc := range []struct {
		name, url  string
		wantReason Reason
	}{
		{"redirect to ftp", redirectFTP.URL, ReasonRedirect},
		{"malformed status line", "http://" + malformed, ReasonProtocol},
		{"peer closes during the TLS handshake", "https://" + tlsClose, ReasonTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			result := httpProbeOnce(t, newTestHTTPProber(t, httpProbeConfig(tc.url, nil)), httpTestTimeout)
			assertHTTPResult(t, result, tc.wantReason, "")
		})
	}
}

// rawServer answers every connection with reply, then closes it, and
// returns its address.
func rawServer(t *testing.T, reply string) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			if reply != "" {
				conn.SetReadDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 4096)
				conn.Read(buf) // the request
				io.WriteString(conn, reply)
			}
			conn.Close()
		}
	}()
	return listener.Addr().String()
}
