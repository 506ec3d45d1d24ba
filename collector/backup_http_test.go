package collector

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// backupPoint is the recovery point the HTTP test servers report:
// 2026-03-01T12:00:00Z, Unix seconds 1772366400 (date -u -d ... +%s).
var backupPoint = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const backupPointUnix = "1772366400"

func newTestHTTPBackupSource(t *testing.T, cfg config.BackupHTTP) BackupSource {
	t.Helper()
	if cfg.BodySizeLimit == 0 {
		cfg.BodySizeLimit = 1 << 20
	}
	src, err := NewBackupSource(config.BackupConfig{Name: "test", HTTP: &cfg}, BackupDeps{Clock: NewFakeClock(backupNow)})
	if err != nil {
		t.Fatalf("NewBackupSource: %v", err)
	}
	return src
}

func checkHTTPBackup(t *testing.T, src BackupSource, timeout time.Duration) (time.Time, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return src.RecoveryPoint(ctx)
}

// jsonBody serves body as JSON.
func jsonBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

// lastModifiedAt serves an empty body last modified at t.
func lastModifiedAt(t time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Last-Modified", t.UTC().Format(http.TimeFormat))
	}
}

func TestHTTPBackupSource(t *testing.T) {
	// A 64-byte JSON document (the padding makes it so), to test the body
	// limit on both sides of it.
	body64 := `{"t":` + backupPointUnix + `}` + strings.Repeat(" ", 64-len(`{"t":`+backupPointUnix+`}`))
	for _, tc := range []struct {
		name       string
		handler    http.HandlerFunc
		jsonField  string
		limit      config.ByteSize
		want       time.Time
		wantReason Reason
		wantErr    []string
	}{
		{name: "Last-Modified", handler: lastModifiedAt(backupPoint), want: backupPoint},
		{name: "Last-Modified missing", handler: func(http.ResponseWriter, *http.Request) {},
			wantReason: ReasonAssertion, wantErr: []string{"no Last-Modified header"}},
		{name: "Last-Modified invalid", handler: func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Last-Modified", "yesterday") },
			wantReason: ReasonAssertion, wantErr: []string{`Last-Modified header "yesterday" is not an HTTP date`}},
		{name: "Last-Modified five minutes ahead", handler: lastModifiedAt(backupNow.Add(5 * time.Minute)), want: backupNow.Add(5 * time.Minute)},
		{name: "Last-Modified in the future", handler: lastModifiedAt(backupNow.Add(5*time.Minute + time.Second)),
			wantReason: ReasonAssertion, wantErr: []string{"Last-Modified header: recovery point is in the future: clock skew or a bad field?"}},
		{name: "status 500", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			wantReason: ReasonStatus, wantErr: []string{"status 500 not in 2xx"}},
		{name: "status 404 despite a time", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Last-Modified", backupPoint.Format(http.TimeFormat))
			w.WriteHeader(http.StatusNotFound)
		}, wantReason: ReasonStatus, wantErr: []string{"status 404"}},

		{name: "RFC 3339", handler: jsonBody(`{"last_success": "2026-03-01T12:00:00Z"}`), jsonField: "last_success", want: backupPoint},
		{name: "RFC 3339 with offset and fraction", handler: jsonBody(`{"last_success": "2026-03-01T13:00:00.5+01:00"}`),
			jsonField: "last_success", want: backupPoint.Add(500 * time.Millisecond)},
		{name: "Unix seconds nested", handler: jsonBody(`{"status": {"backup": {"finished": ` + backupPointUnix + `}, "ok": true}}`),
			jsonField: "status.backup.finished", want: backupPoint},
		{name: "Unix seconds with a fraction", handler: jsonBody(`{"status": {"finished": ` + backupPointUnix + `.25}}`),
			jsonField: "status.finished", want: backupPoint.Add(250 * time.Millisecond)},
		{name: "Unix seconds in exponent form", handler: jsonBody(`{"t": 1.7723664e9}`), jsonField: "t", want: backupPoint},
		{name: "field missing", handler: jsonBody(`{"status": {"backup": {}}}`), jsonField: "status.backup.finished",
			wantReason: ReasonAssertion, wantErr: []string{`json_field "status.backup.finished": "status.backup.finished" not found`}},
		{name: "object missing", handler: jsonBody(`{"status": {}}`), jsonField: "status.backup.finished",
			wantReason: ReasonAssertion, wantErr: []string{`"status.backup" not found`}},
		{name: "path through a string", handler: jsonBody(`{"status": "ok"}`), jsonField: "status.finished",
			wantReason: ReasonAssertion, wantErr: []string{`"status" is the string "ok", not an object`}},
		{name: "body not an object", handler: jsonBody(`[1, 2, 3]`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{"the body is an array of 3 elements, not an object"}},
		{name: "boolean", handler: jsonBody(`{"finished": true}`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{"found the boolean true, want an RFC 3339 string or a number of Unix seconds"}},
		{name: "null", handler: jsonBody(`{"finished": null}`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{"found null, want"}},
		{name: "object", handler: jsonBody(`{"finished": {"a": 1, "b": 2}}`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{"found an object of 2 fields, want"}},
		{name: "string not RFC 3339", handler: jsonBody(`{"finished": "yesterday"}`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{`found the string "yesterday", not an RFC 3339 time`}},
		{name: "milliseconds", handler: jsonBody(`{"finished": ` + backupPointUnix + `000}`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{"found the number " + backupPointUnix + "000, not Unix seconds between 0 and 253402300799 (milliseconds?)"}},
		{name: "negative", handler: jsonBody(`{"finished": -1.5}`), jsonField: "finished",
			wantReason: ReasonAssertion, wantErr: []string{"found the number -1.5, not Unix seconds"}},
		{name: "JSON field in the future", handler: jsonBody(fmt.Sprintf(`{"t": %d}`, backupNow.Add(time.Hour).Unix())), jsonField: "t",
			wantReason: ReasonAssertion, wantErr: []string{`json_field "t": recovery point is in the future`, "is 1h0m0s ahead"}},
		{name: "not JSON", handler: jsonBody(`<html>backup ok</html>`), jsonField: "t",
			wantReason: ReasonAssertion, wantErr: []string{`json_field "t": body is not JSON`}},
		{name: "two JSON values", handler: jsonBody(`{"t": 1} {"t": 2}`), jsonField: "t",
			wantReason: ReasonAssertion, wantErr: []string{"data after the first JSON value"}},
		{name: "body at the limit", handler: jsonBody(body64), jsonField: "t", limit: 64, want: backupPoint},
		{name: "body too large", handler: jsonBody(body64 + " "), jsonField: "t", limit: 64,
			wantReason: ReasonBodyTooLarge, wantErr: []string{"body exceeds body_size_limit of 64 bytes"}},
		// Without json_field the body is not read, so its size is no matter.
		{name: "large body ignored without json_field", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Last-Modified", backupPoint.Format(http.TimeFormat))
			io.WriteString(w, strings.Repeat("x", 1000))
		}, limit: 64, want: backupPoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL, JSONField: tc.jsonField, BodySizeLimit: tc.limit})
			got, err := checkHTTPBackup(t, src, httpTestTimeout)
			assertBackupResult(t, got, err, tc.want, tc.wantReason, tc.wantErr...)
		})
	}
}

func TestHTTPBackupSourceRequest(t *testing.T) {
	const token = "t0ken-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet, r.URL.Path != "/status":
			w.WriteHeader(http.StatusBadRequest)
		case r.Header.Get("X-Tenant") != "shop" || r.Header.Get("User-Agent") != "reliabilityd":
			w.WriteHeader(http.StatusBadRequest)
		case r.Header.Get("Authorization") != "Bearer "+token:
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.Header().Set("Last-Modified", backupPoint.Format(http.TimeFormat))
		}
	}))
	defer srv.Close()
	headers := map[string]string{"x-tenant": "shop"}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name       string
		tokenFile  string
		wantReason Reason
		wantErr    string
	}{
		{name: "bearer token sent", tokenFile: httpSecretFile(t, "token", token+"\n")},
		{name: "no token", wantReason: ReasonStatus, wantErr: "status 401"},
		{name: "wrong token", tokenFile: httpSecretFile(t, "token", "other\n"), wantReason: ReasonStatus, wantErr: "status 401"},
		{name: "token file missing", tokenFile: missing, wantReason: ReasonSecret, wantErr: "reading bearer_token_file"},
		{name: "token file is a directory", tokenFile: t.TempDir(), wantReason: ReasonSecret, wantErr: "reading bearer_token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL + "/status", Headers: headers, BearerTokenFile: tc.tokenFile})
			got, err := checkHTTPBackup(t, src, httpTestTimeout)
			assertBackupResult(t, got, err, backupPoint, tc.wantReason, tc.wantErr)
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("err %q contains the token", err)
			}
		})
	}
}

// TestHTTPBackupSourceTokenRotation checks the token is read at every
// check, not once.
func TestHTTPBackupSourceTokenRotation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer second" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Last-Modified", backupPoint.Format(http.TimeFormat))
	}))
	defer srv.Close()
	tokenFile := httpSecretFile(t, "token", "first\n")
	src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL, BearerTokenFile: tokenFile})
	got, err := checkHTTPBackup(t, src, httpTestTimeout)
	assertBackupResult(t, got, err, time.Time{}, ReasonStatus, "status 401")
	if err := os.WriteFile(tokenFile, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = checkHTTPBackup(t, src, httpTestTimeout)
	assertBackupResult(t, got, err, backupPoint, "")
}

func TestHTTPBackupSourceConnection(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL})
		got, err := checkHTTPBackup(t, src, httpShortTimeout)
		assertBackupResult(t, got, err, time.Time{}, ReasonTimeout)

		// Through the adapter, the run is a failed timeout with no time.
		ctx, cancel := context.WithTimeout(context.Background(), httpShortTimeout)
		defer cancel()
		result := NewBackupProber(src).Probe(ctx)
		if result.Success || result.Reason != ReasonTimeout || !result.RecoveryPoint.IsZero() {
			t.Errorf("Success %v, Reason %q, RecoveryPoint %v; want false, timeout, zero", result.Success, result.Reason, result.RecoveryPoint)
		}
	})

	t.Run("timeout in the body", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"t": `)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		defer srv.Close()
		src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL, JSONField: "t"})
		got, err := checkHTTPBackup(t, src, httpShortTimeout)
		assertBackupResult(t, got, err, time.Time{}, ReasonTimeout, "reading body")
	})

	t.Run("connection refused", func(t *testing.T) {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := listener.Addr().String()
		listener.Close()
		src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: "http://" + addr + "/"})
		got, err := checkHTTPBackup(t, src, httpTestTimeout)
		assertBackupResult(t, got, err, time.Time{}, ReasonConnect)
	})

	t.Run("too many redirects", func(t *testing.T) {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, srv.URL+"/again", http.StatusFound)
		}))
		defer srv.Close()
		src := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL})
		got, err := checkHTTPBackup(t, src, httpTestTimeout)
		assertBackupResult(t, got, err, time.Time{}, ReasonRedirect, "too many redirects (more than 10)")
	})

	t.Run("TLS", func(t *testing.T) {
		ca := newTestCA(t)
		srv := newHTTPSServer(t, httpsServerTLS(ca.leaf(t, leafOptions{}), nil, 0), lastModifiedAt(backupPoint))
		trusted := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL, TLSConfig: config.TLSConfig{CAFile: ca.certFile}})
		got, err := checkHTTPBackup(t, trusted, httpTestTimeout)
		assertBackupResult(t, got, err, backupPoint, "")

		untrusted := newTestHTTPBackupSource(t, config.BackupHTTP{URL: srv.URL})
		got, err = checkHTTPBackup(t, untrusted, httpTestTimeout)
		assertBackupResult(t, got, err, time.Time{}, ReasonTLS)
	})
}
