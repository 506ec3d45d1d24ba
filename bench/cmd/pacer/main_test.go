package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestScrape(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{name: "probe succeeded", status: 200, body: "# TYPE probe_success gauge\nprobe_success 1\n"},
		{name: "probe failed", status: 200, body: "# TYPE probe_success gauge\nprobe_success 0\n", wantErr: "exporter reports the probe failed"},
		{name: "scrape failed", status: 400, body: "unknown module", wantErr: "scrape status 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotQuery, gotTimeout string
			exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotQuery = r.URL.RawQuery
				gotTimeout = r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer exporter.Close()
			scrape := newScrape(flagConfig{
				targets: 3, exporterURL: exporter.URL + "/probe", module: "http_2xx",
				targetBaseURL: "http://127.0.0.1:8080/t/", timeout: 5 * time.Second,
			})
			err := scrape(context.Background(), 2)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("scrape = %v, want error containing %q", err, tt.wantErr)
			}
			if want := "module=http_2xx&target=http%3A%2F%2F127.0.0.1%3A8080%2Ft%2F2"; gotQuery != want {
				t.Errorf("query = %q, want %q", gotQuery, want)
			}
			if gotTimeout != "5" {
				t.Errorf("scrape timeout header = %q, want %q", gotTimeout, "5")
			}
		})
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "exporter off loopback", args: []string{"--exporter-url=http://192.0.2.1:9115/probe", "--target-base-url=http://127.0.0.1:1/t/"}},
		{name: "target off loopback", args: []string{"--exporter-url=http://127.0.0.1:9115/probe", "--target-base-url=http://example.com/t/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("run = %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "not a loopback address") {
				t.Errorf("stderr = %q, want a loopback refusal", stderr.String())
			}
		})
	}
}
