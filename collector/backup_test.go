package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// backupSourceFunc is a BackupSource made of a function.
type backupSourceFunc func(ctx context.Context) (time.Time, error)

func (f backupSourceFunc) RecoveryPoint(ctx context.Context) (time.Time, error) { return f(ctx) }

// backupNow is the time of the fake clocks of the backup tests; recovery
// points are set relative to it.
var backupNow = time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)

func TestBackupProber(t *testing.T) {
	point := backupNow.Add(-90 * time.Minute)
	notFound := &SourceError{Reason: ReasonNotFound, Err: errors.New(`glob "/b/*.dump" matches no regular file`)}
	plain := errors.New("something odd")
	expired := func(t *testing.T) context.Context {
		// A deadline already passed: Done is closed and Err is
		// DeadlineExceeded without waiting.
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name        string
		ctx         func(t *testing.T) context.Context
		point       time.Time
		err         error
		wantSuccess bool
		wantReason  Reason
	}{
		{name: "success", point: point, wantSuccess: true},
		{name: "source error", err: notFound, wantReason: ReasonNotFound},
		// A source that returns a time with its error still failed: the
		// time must not leak into the result as a fresh backup.
		{name: "source error with a time", point: point, err: notFound, wantReason: ReasonNotFound},
		{name: "wrapped source error", err: fmt.Errorf("outer: %w", &SourceError{Reason: ReasonSecret, Err: fs.ErrPermission}),
			wantReason: ReasonSecret},
		{name: "other error", err: plain, wantReason: ReasonInternal},
		{name: "no time and no error", wantReason: ReasonInternal},
		{name: "deadline passed", ctx: expired, err: notFound, wantReason: ReasonTimeout},
		{name: "deadline passed, plain error", ctx: expired, err: plain, wantReason: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			var got context.Context
			prober := NewBackupProber(backupSourceFunc(func(ctx context.Context) (time.Time, error) {
				got = ctx
				return tc.point, tc.err
			}))
			result := runAdapter(t, prober, ctx, &got, tc.wantSuccess, tc.wantReason)
			if tc.wantSuccess {
				if !result.RecoveryPoint.Equal(tc.point) || result.Err != nil {
					t.Errorf("RecoveryPoint %v, Err %v; want %v, nil", result.RecoveryPoint, result.Err, tc.point)
				}
				return
			}
			if !result.RecoveryPoint.IsZero() {
				t.Errorf("failed check has RecoveryPoint %v, want zero", result.RecoveryPoint)
			}
			if result.Err == nil || (tc.err != nil && !errors.Is(result.Err, tc.err)) {
				t.Errorf("Err = %v, want %v", result.Err, tc.err)
			}
		})
	}
}

// TestBackupProberFileSource runs the whole chain: configuration, source,
// adapter.
func TestBackupProberFileSource(t *testing.T) {
	dir := t.TempDir()
	mtime := backupNow.Add(-2 * time.Hour)
	path := filepath.Join(dir, "db.dump")
	if err := os.WriteFile(path, []byte("dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	src, err := NewBackupSource(config.BackupConfig{Name: "db", File: &config.BackupFile{Glob: filepath.Join(dir, "*.dump")}},
		BackupDeps{Clock: NewFakeClock(backupNow)})
	if err != nil {
		t.Fatal(err)
	}
	result := NewBackupProber(src).Probe(context.Background())
	if !result.Success || !result.RecoveryPoint.Equal(mtime) {
		t.Errorf("Success %v, RecoveryPoint %v (err %v); want true, %v", result.Success, result.RecoveryPoint, result.Err, mtime)
	}
}

func TestNewBackupSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     config.BackupConfig
		wantErr string
	}{
		{name: "no source", cfg: config.BackupConfig{Name: "db"}, wantErr: `backup "db": needs one of file, http or prometheus`},
		{name: "bad scheme", cfg: config.BackupConfig{Name: "db", HTTP: &config.BackupHTTP{URL: "ftp://x/", BodySizeLimit: 1}},
			wantErr: `backup "db": url "ftp://x/": scheme must be http or https`},
		{name: "no body limit", cfg: config.BackupConfig{Name: "db", HTTP: &config.BackupHTTP{URL: "http://x/"}},
			wantErr: `backup "db": body_size_limit must be greater than 0, got 0`},
		{name: "empty json name", cfg: config.BackupConfig{Name: "db", HTTP: &config.BackupHTTP{URL: "http://x/", BodySizeLimit: 1, JSONField: "a..b"}},
			wantErr: `backup "db": json_field "a..b": empty name in the path`},
		{name: "missing CA file", cfg: config.BackupConfig{Name: "db", HTTP: &config.BackupHTTP{URL: "https://x/", BodySizeLimit: 1,
			TLSConfig: config.TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}}},
			wantErr: `backup "db": tls_config: reading CA file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewBackupSource(tc.cfg, BackupDeps{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("NewBackupSource = %v, %v; want error starting with %q", src, err, tc.wantErr)
			}
		})
	}
}

func TestCheckNotFuture(t *testing.T) {
	for _, tc := range []struct {
		ahead   time.Duration
		wantErr bool
	}{
		{ahead: -24 * time.Hour},
		{ahead: 0},
		{ahead: 5 * time.Minute},
		{ahead: 5*time.Minute + time.Nanosecond, wantErr: true},
		{ahead: 365 * 24 * time.Hour, wantErr: true},
	} {
		t.Run(tc.ahead.String(), func(t *testing.T) {
			err := checkNotFuture(backupNow.Add(tc.ahead), backupNow, "test")
			if !tc.wantErr {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				return
			}
			var srcErr *SourceError
			if !errors.As(err, &srcErr) || srcErr.Reason != ReasonAssertion ||
				!strings.Contains(err.Error(), "test: recovery point is in the future: clock skew or a bad field?") {
				t.Errorf("err = %v, want a ReasonAssertion error about the future", err)
			}
		})
	}
}
