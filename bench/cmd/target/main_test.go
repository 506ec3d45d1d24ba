package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeCountsProbesNotCountReads(t *testing.T) {
	tests := []struct {
		name      string
		paths     []string
		keepAlive bool
		counts    int // GET /count calls, never counted
		want      string
		wantConns string
	}{
		{name: "no probes", counts: 2, want: "0", wantConns: "0"},
		{name: "any path is a probe", paths: []string{"/t/0", "/t/999", "/", "/count"}, counts: 3, want: "4", wantConns: "4"},
		{name: "kept-alive probes share a connection", paths: []string{"/t/0", "/t/1", "/t/2"}, keepAlive: true, counts: 1, want: "3", wantConns: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrFile := filepath.Join(t.TempDir(), "addr")
			ctx, cancel := context.WithCancel(t.Context())
			out, outW := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- serve(ctx, flagConfig{listen: "127.0.0.1:0", countListen: "127.0.0.1:0", addrFile: addrFile}, outW)
				outW.Close()
			}()
			lines := bufio.NewScanner(out)
			if !lines.Scan() {
				t.Fatalf("serve announced no addresses: %v", lines.Err())
			}
			addrs := strings.Fields(lines.Text())
			if len(addrs) != 2 {
				t.Fatalf("announced %q, want two addresses", lines.Text())
			}
			fileAddrs, err := os.ReadFile(addrFile)
			if err != nil || strings.TrimSpace(string(fileAddrs)) != lines.Text() {
				t.Errorf("address file = %q (%v), want %q", fileAddrs, err, lines.Text())
			}

			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: !tt.keepAlive}}
			defer client.CloseIdleConnections()
			for _, p := range tt.paths {
				if body := get(t, client, "http://"+addrs[0]+p); body != "ok\n" {
					t.Errorf("GET %s body = %q, want %q", p, body, "ok\n")
				}
			}
			var got string
			for range tt.counts {
				got = strings.TrimSpace(get(t, client, "http://"+addrs[1]+"/count"))
			}
			if got != tt.want {
				t.Errorf("/count = %q, want %q", got, tt.want)
			}
			if conns := strings.TrimSpace(get(t, client, "http://"+addrs[1]+"/connections")); conns != tt.wantConns {
				t.Errorf("/connections = %q, want %q", conns, tt.wantConns)
			}

			cancel()
			wantLast := "served=" + tt.want + " connections=" + tt.wantConns
			if !lines.Scan() || lines.Text() != wantLast {
				t.Errorf("final line = %q, want %q", lines.Text(), wantLast)
			}
			io.Copy(io.Discard, out)
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
		})
	}
}

func TestListenLoopbackRefusesOtherAddresses(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr bool
	}{
		{addr: "127.0.0.1:0"},
		{addr: "0.0.0.0:0", wantErr: true},
		{addr: ":0", wantErr: true},
		{addr: "localhost", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ln, err := listenLoopback(tt.addr)
			if ln != nil {
				ln.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("listenLoopback(%q) = %v, want error: %v", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}
