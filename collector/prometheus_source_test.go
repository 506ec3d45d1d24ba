package collector

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reliabilityd/reliabilityd/config"
)

// fakeAPI answers /api/v1/query with a fixed status and body; a body of
// "block" never answers until the request's context ends.
func fakeAPI(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	unblock := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the form consumes the body: only then does the server
		// notice the client hanging up and end the request's context.
		r.ParseForm()
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		if body == "block" {
			select {
			case <-r.Context().Done():
			case <-unblock:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(unblock) }) // runs first
	return srv
}

func vectorBody(values ...string) string {
	samples := make([]string, len(values))
	for i, v := range values {
		samples[i] = `{"metric":{"instance":"i` + string(rune('0'+i)) + `"},"value":[1700000000,"` + v + `"]}`
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

func newTestPromSource(t *testing.T, cfg config.PrometheusSourceConfig) (*PrometheusSource, *PrometheusSourceMetrics) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "main"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = config.Duration(5 * time.Second)
	}
	metrics := NewPrometheusSourceMetrics(prometheus.NewRegistry())
	metrics.SetSources([]config.PrometheusSourceConfig{cfg})
	src, err := NewPrometheusSource(cfg, metrics)
	if err != nil {
		t.Fatal(err)
	}
	return src, metrics
}

func TestPrometheusSourceQuery(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name    string
		status  int
		body    string
		url     string
		timeout time.Duration
		check   valueCheck
		want    float64
		reason  Reason
	}{
		{name: "one sample", status: 200, body: vectorBody("42.5"), want: 42.5},
		{name: "scalar", status: 200, body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}`, want: 7},
		{name: "empty", status: 200, body: vectorBody(), reason: ReasonEmpty},
		{name: "multiple", status: 200, body: vectorBody("1", "2"), reason: ReasonMultiple},
		{name: "NaN", status: 200, body: vectorBody("NaN"), reason: ReasonNaN},
		{name: "+Inf", status: 200, body: vectorBody("+Inf"), reason: ReasonNaN},
		{name: "negative refused", status: 200, body: vectorBody("-1"), check: nonNegative("usage"), reason: ReasonNaN},
		{name: "zero timestamp refused", status: 200, body: vectorBody("0"), check: validUnixSeconds, reason: ReasonNaN},
		{name: "milliseconds refused", status: 200, body: vectorBody("1700000000000000"), check: validUnixSeconds, reason: ReasonNaN},
		{name: "matrix", status: 200, body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, reason: ReasonProtocol},
		{name: "not JSON", status: 200, body: `<html>`, reason: ReasonProtocol},
		{name: "bad query", status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error"}`, reason: ReasonStatus},
		{name: "server error", status: 503, body: `overloaded`, reason: ReasonStatus},
		{name: "query timeout", status: 503, body: `{"status":"error","errorType":"timeout","error":"query timed out"}`, reason: ReasonTimeout},
		{name: "execution error", status: 422, body: `{"status":"error","errorType":"execution","error":"many-to-many"}`, reason: ReasonStatus},
		{name: "slow", body: "block", timeout: 200 * time.Millisecond, reason: ReasonTimeout},
		{name: "down", url: closedURL, reason: ReasonConnect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.PrometheusSourceConfig{URL: tc.url, Timeout: config.Duration(tc.timeout)}
			if cfg.URL == "" {
				cfg.URL = fakeAPI(t, tc.status, tc.body).URL
			}
			src, metrics := newTestPromSource(t, cfg)
			got, err := src.Query(context.Background(), "x", tc.check)
			if tc.reason == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Query = %v, %v; want %v", got, err, tc.want)
				}
			} else {
				var srcErr *SourceError
				if !errors.As(err, &srcErr) || srcErr.Reason != tc.reason {
					t.Fatalf("Query = %v, %v; want a %s SourceError", got, err, tc.reason)
				}
			}
			if n := testutil.ToFloat64(metrics.queries.WithLabelValues("main")); n != 1 {
				t.Errorf("queries = %v, want 1", n)
			}
			wantFailures := 0.0
			if tc.reason != "" {
				wantFailures = 1
				if n := testutil.ToFloat64(metrics.failures.WithLabelValues("main", string(tc.reason))); n != 1 {
					t.Errorf("failures{reason=%q} = %v, want 1", tc.reason, n)
				}
			}
			status := metrics.Status()
			if len(status) != 1 || float64(status[0].Failures) != wantFailures || status[0].LastOK != (tc.reason == "") {
				t.Errorf("Status() = %+v", status)
			}
		})
	}
}

// TestPrometheusSourceCredentials: headers, a bearer token or basic auth
// read from files at every query; an unreadable file fails with secret.
func TestPrometheusSourceCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	passwordFile := filepath.Join(dir, "password")
	for _, f := range []struct{ path, content string }{{tokenFile, "t0ken\n"}, {passwordFile, "pw"}} {
		if err := os.WriteFile(f.path, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var gotAuth, gotTenant string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotTenant = r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID")
		w.Write([]byte(vectorBody("1")))
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name     string
		cfg      config.PrometheusSourceConfig
		wantAuth string
		reason   Reason
	}{
		{name: "bearer", cfg: config.PrometheusSourceConfig{BearerTokenFile: tokenFile}, wantAuth: "Bearer t0ken"},
		{name: "basic", cfg: config.PrometheusSourceConfig{BasicAuth: &config.BasicAuth{Username: "u", PasswordFile: passwordFile}},
			wantAuth: "Basic dTpwdw=="},
		{name: "missing token", cfg: config.PrometheusSourceConfig{BearerTokenFile: filepath.Join(dir, "nope")}, reason: ReasonSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotAuth, gotTenant = "", ""
			tc.cfg.URL = srv.URL
			tc.cfg.Headers = map[string]string{"X-Scope-OrgID": "tenant-a"}
			src, _ := newTestPromSource(t, tc.cfg)
			_, err := src.Query(context.Background(), "up", nil)
			if tc.reason != "" {
				var srcErr *SourceError
				if !errors.As(err, &srcErr) || srcErr.Reason != tc.reason {
					t.Fatalf("Query err = %v, want reason %s", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gotAuth != tc.wantAuth || gotTenant != "tenant-a" {
				t.Errorf("Authorization %q, X-Scope-OrgID %q; want %q, tenant-a", gotAuth, gotTenant, tc.wantAuth)
			}
		})
	}
}

// TestPrometheusCapacityAndBackup: the adapters read usage, limit and a
// recovery point, and refuse a recovery point in the future.
func TestPrometheusCapacityAndBackup(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	answers := map[string]string{
		"usage":  vectorBody("300"),
		"limit":  vectorBody("1000"),
		"point":  vectorBody("1799999000.5"),
		"future": vectorBody("1800000600"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Write([]byte(answers[r.Form.Get("query")]))
	}))
	defer srv.Close()
	src, _ := newTestPromSource(t, config.PrometheusSourceConfig{URL: srv.URL})
	deps := CapacityDeps{PrometheusSources: map[string]*PrometheusSource{"main": src}}

	capacity, err := NewCapacitySource(config.CapacitySource{Prometheus: &config.CapacityPrometheus{Source: "main", Usage: "usage", Limit: "limit"}}, 0, deps)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := capacity.Sample(context.Background()); err != nil || m != (Measurement{Usage: 300, Limit: 1000}) {
		t.Errorf("Sample = %+v, %v; want usage 300 of 1000", m, err)
	}
	configured, err := NewCapacitySource(config.CapacitySource{Prometheus: &config.CapacityPrometheus{Source: "main", Usage: "usage"}}, 500, deps)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := configured.Sample(context.Background()); err != nil || m != (Measurement{Usage: 300, Limit: 500}) {
		t.Errorf("Sample with a configured limit = %+v, %v; want usage 300 of 500", m, err)
	}
	if _, err := NewCapacitySource(config.CapacitySource{Prometheus: &config.CapacityPrometheus{Source: "other", Usage: "usage"}}, 500, deps); err == nil {
		t.Error("a resource naming an unknown source was built")
	}

	backupDeps := BackupDeps{Clock: NewFakeClock(now), PrometheusSources: deps.PrometheusSources}
	for _, tc := range []struct {
		query  string
		want   time.Time
		reason Reason
	}{
		{query: "point", want: time.Unix(1_799_999_000, 500_000_000)},
		{query: "future", reason: ReasonAssertion},
		{query: "missing", reason: ReasonProtocol}, // an empty body
	} {
		backup, err := NewBackupSource(config.BackupConfig{Name: "b", Prometheus: &config.BackupPrometheus{Source: "main", Query: tc.query}}, backupDeps)
		if err != nil {
			t.Fatal(err)
		}
		point, err := backup.RecoveryPoint(context.Background())
		var srcErr *SourceError
		switch {
		case tc.reason == "" && (err != nil || !point.Equal(tc.want)):
			t.Errorf("%s: RecoveryPoint = %v, %v; want %v", tc.query, point, err, tc.want)
		case tc.reason != "" && (!errors.As(err, &srcErr) || srcErr.Reason != tc.reason || !point.IsZero()):
			t.Errorf("%s: RecoveryPoint = %v, %v; want a %s failure and no time", tc.query, point, err, tc.reason)
		}
	}
}

// TestPrometheusSourceMetricsSetSources: info follows the configured
// sources, without credentials; a removed source's series go away.
func TestPrometheusSourceMetricsSetSources(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewPrometheusSourceMetrics(reg)
	m.SetSources([]config.PrometheusSourceConfig{{Name: "a", URL: "http://a:9090/prometheus"}, {Name: "b", URL: "http://b:9090"}})
	m.observe("a", time.Now(), time.Millisecond, nil)
	m.SetSources([]config.PrometheusSourceConfig{{Name: "a", URL: "http://a:9090/prometheus"}})
	m.observe("b", time.Now(), time.Millisecond, nil) // a query of b finishing after the reload
	want := `
# HELP prometheus_source_info A configured Prometheus source and its URL (without credentials); always 1.
# TYPE prometheus_source_info gauge
prometheus_source_info{source="a",url="http://a:9090/prometheus"} 1
# HELP prometheus_source_queries_total Queries sent to a Prometheus source.
# TYPE prometheus_source_queries_total counter
prometheus_source_queries_total{source="a"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "prometheus_source_info", "prometheus_source_queries_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.failures); n != len(queryReasons) {
		t.Errorf("%d failure series, want %d (one per reason of source a)", n, len(queryReasons))
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
