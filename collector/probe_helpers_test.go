package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// probeWithin runs prober once with timeout, 5 s when zero: long enough
// for any run that should succeed on a loaded CI machine.
func probeWithin(t *testing.T, prober Prober, timeout time.Duration) Result {
	t.Helper()
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return prober.Probe(ctx)
}

// checkProberError checks that newProber refuses cfg with an error
// starting with wantErr.
func checkProberError(t *testing.T, newProber NewProberFunc, cfg config.ProbeConfig, wantErr string) {
	t.Helper()
	prober, err := newProber(cfg, ProberDeps{})
	if err == nil || !strings.HasPrefix(err.Error(), wantErr) {
		t.Fatalf("constructor = %v, %v; want error starting with %q", prober, err, wantErr)
	}
}

// TestReadSecretFile: a credentials file is read whole, trailing line
// breaks dropped, through a symbolic link too; a FIFO, a directory and an
// oversized file are refused rather than blocking or reading without end.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	token := write("token", "s3cret\r\n")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(token, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want, wantErr string
	}{
		{path: token, want: "s3cret"},
		{path: link, want: "s3cret"},
		{path: write("max", strings.Repeat("x", maxSecretBytes)), want: strings.Repeat("x", maxSecretBytes)},
		{path: write("big", strings.Repeat("x", maxSecretBytes+1)), wantErr: fmt.Sprintf("is larger than %d bytes", maxSecretBytes)},
		{path: fifo, wantErr: "is not a regular file"},
		{path: dir, wantErr: "is not a regular file"},
		{path: filepath.Join(dir, "missing"), wantErr: "no such file or directory"},
	}
	for _, tt := range tests {
		got, err := readSecretFile("password_file", tt.path)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "reading password_file: ")):
			t.Errorf("readSecretFile(%s) error = %v, want one containing %q", tt.path, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("readSecretFile(%s) = %.20q, %v; want %.20q", tt.path, got, err, tt.want)
		}
	}
}
