package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProbeUsesFreshConnections(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr string
	}{
		{name: "ok", status: 200},
		{name: "server error", status: 500, wantErr: "status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			conns := make(map[string]bool)
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				conns[r.RemoteAddr] = true
				mu.Unlock()
				w.WriteHeader(tt.status)
			}))
			defer target.Close()
			probe := newProbe(flagConfig{targets: 2, baseURL: target.URL + "/t/", timeout: 5 * time.Second})
			for _, i := range []int{0, 1, 1} {
				err := probe(context.Background(), i)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("probe(%d) = %v, want error containing %q", i, err, tt.wantErr)
				}
			}
			if got := strings.Join(paths, ","); got != "/t/0,/t/1,/t/1" {
				t.Errorf("paths = %s, want /t/0,/t/1,/t/1", got)
			}
			if len(conns) != 3 {
				t.Errorf("%d distinct connections, want 3 (one per probe)", len(conns))
			}
		})
	}
}
