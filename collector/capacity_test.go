package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/reliabilityd/reliabilityd/config"
)

// sourceFunc is a CapacitySource made of a function.
type sourceFunc func(ctx context.Context) (Measurement, error)

func (f sourceFunc) Sample(ctx context.Context) (Measurement, error) { return f(ctx) }

func TestCapacityProber(t *testing.T) {
	notFound := &SourceError{Reason: ReasonNotFound, Err: fmt.Errorf("statfs %q: %w", "/gone", fs.ErrNotExist)}
	plain := errors.New("something odd")
	noSample := fmt.Errorf("stat: first reading taken: %w", ErrNoSample)
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
		measurement Measurement
		err         error
		wantSuccess bool
		wantReason  Reason
	}{
		{name: "success", measurement: Measurement{Usage: 3, Limit: 10}, wantSuccess: true},
		{name: "success without limit", measurement: Measurement{Usage: 7}, wantSuccess: true},
		{name: "source error", err: notFound, wantReason: ReasonNotFound},
		{name: "wrapped source error", err: fmt.Errorf("outer: %w", &SourceError{Reason: ReasonPermission, Err: fs.ErrPermission}),
			wantReason: ReasonPermission},
		{name: "other error", err: plain, wantReason: ReasonInternal},
		{name: "no sample yet is no failure", err: noSample, wantReason: ""},
		// Whatever the source says, a run past its deadline timed out.
		{name: "deadline passed", ctx: expired, err: notFound, wantReason: ReasonTimeout},
		{name: "deadline passed, plain error", ctx: expired, err: plain, wantReason: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			var got context.Context
			prober := NewCapacityProber(sourceFunc(func(ctx context.Context) (Measurement, error) {
				got = ctx
				if tc.err != nil {
					return Measurement{}, tc.err
				}
				return tc.measurement, nil
			}))
			result := runAdapter(t, prober, ctx, &got, tc.wantSuccess, tc.wantReason)
			if tc.wantSuccess {
				if result.Measurement == nil || *result.Measurement != tc.measurement || result.Err != nil {
					t.Errorf("Measurement %v, Err %v; want %v, nil", result.Measurement, result.Err, tc.measurement)
				}
				return
			}
			if result.Measurement != nil || result.Err != tc.err {
				t.Errorf("Measurement %v, Err %v; want nil, %v", result.Measurement, result.Err, tc.err)
			}
		})
	}
}

func TestSourceError(t *testing.T) {
	inner := fmt.Errorf("statfs %q: %w", "/data", syscall.EACCES)
	var err error = &SourceError{Reason: ReasonPermission, Err: inner}
	if err.Error() != inner.Error() {
		t.Errorf("Error() = %q, want %q", err.Error(), inner.Error())
	}
	if !errors.Is(err, fs.ErrPermission) || errors.Unwrap(err) != inner {
		t.Errorf("%v does not unwrap to %v", err, inner)
	}
}

func TestClassifyCapacityError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Reason
	}{
		{fmt.Errorf("x: %w", context.DeadlineExceeded), ReasonTimeout},
		{fmt.Errorf("x: %w", context.Canceled), ReasonTimeout},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, ReasonNotFound},
		{&fs.PathError{Op: "statfs", Path: "/f/x", Err: syscall.ENOTDIR}, ReasonNotFound},
		{syscall.ESRCH, ReasonNotFound},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, ReasonPermission},
		{syscall.EPERM, ReasonPermission},
		{&strconv.NumError{Func: "ParseUint", Num: "x", Err: strconv.ErrSyntax}, ReasonProtocol},
		{fmt.Errorf("%w: bad line", procfs.ErrFileParse), ReasonProtocol},
		{syscall.EIO, ReasonInternal},
		{errors.New("other"), ReasonInternal},
	} {
		if got := classifyError(tc.err); got != tc.want {
			t.Errorf("classifyError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestNewCapacitySourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   config.CapacitySource
		limit float64
		deps  CapacityDeps
		want  string
	}{
		{name: "no source", want: "needs one of filesystem, memory, cpu, process or prometheus"},
		{name: "neither pid_file nor self", cfg: config.CapacitySource{Process: &config.ProcessSource{Resource: "open_fds"}},
			want: "exactly one of pid_file or self"},
		{name: "both pid_file and self", cfg: config.CapacitySource{Process: &config.ProcessSource{PIDFile: "/run/x.pid", Self: true, Resource: "open_fds"}},
			want: "exactly one of pid_file or self"},
		{name: "unknown resource", cfg: config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "threads"}},
			want: `got "threads"`},
		{name: "connections without limit", cfg: config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "connections"}},
			want: "a limit must be configured"},
		{name: "no procfs", cfg: config.CapacitySource{Memory: true}, deps: CapacityDeps{ProcRoot: "/nonexistent/proc"},
			want: `procfs at "/nonexistent/proc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewCapacitySource(tc.cfg, tc.limit, tc.deps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCapacitySource() = %v, %v; want an error containing %q", src, err, tc.want)
			}
		})
	}
}

// TestCapacityLimitOverride checks that a configured limit replaces the
// source's, whatever the type, and leaves usage alone.
func TestCapacityLimitOverride(t *testing.T) {
	dir := t.TempDir()
	// Some data, so the filesystem's usage is not 0 even on a fresh tmpfs.
	writeFixture(t, dir, "data", strings.Repeat("x", 64<<10))
	for _, tc := range []struct {
		name string
		cfg  config.CapacitySource
	}{
		{"filesystem", config.CapacitySource{Filesystem: dir}},
		{"inodes", config.CapacitySource{Filesystem: dir, Inodes: true}},
		{"memory", config.CapacitySource{Memory: true}},
		{"open_fds", config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "open_fds"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deps := CapacityDeps{ProcRoot: "testdata/procfs"}
			if tc.cfg.Process != nil {
				deps.ProcRoot = "" // self lives in the real /proc
			}
			src, err := NewCapacitySource(tc.cfg, 12345, deps)
			if err != nil {
				t.Fatal(err)
			}
			m, err := src.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m.Limit != 12345 || m.Usage <= 0 {
				t.Errorf("got %+v, want a positive usage of limit 12345", m)
			}
		})
	}
	// Without the override, connections cannot be built (no limit of
	// their own); with it, their limit is the configured one.
	src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "connections"}}, 77, CapacityDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := src.Sample(context.Background()); err != nil || m.Limit != 77 {
		t.Errorf("connections: %+v, %v; want limit 77", m, err)
	}
}

// copyFixture copies testdata files into root, making directories.
// files maps a path under root to a path under testdata/procfs.
func copyFixture(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for dst, src := range files {
		data, err := os.ReadFile(filepath.Join("testdata/procfs", src))
		if err != nil {
			t.Fatal(err)
		}
		writeFixture(t, root, dst, string(data))
	}
}

// writeFixture writes content to root/rel, making directories.
func writeFixture(t *testing.T, root, rel, content string) {
	t.Helper()
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantSourceError fails unless err is a *SourceError of reason want whose
// message holds every part of contains.
func wantSourceError(t *testing.T, err error, want Reason, contains ...string) {
	t.Helper()
	var srcErr *SourceError
	if !errors.As(err, &srcErr) {
		t.Fatalf("error %v (%T) is not a *SourceError", err, err)
	}
	if srcErr.Reason != want {
		t.Errorf("reason %q, want %q (error: %v)", srcErr.Reason, want, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

// runAdapter runs a source adapter's Probe and checks what every adapter
// must do: hand the source the probe's context (the source stores it in
// *got), time the run within the call, and report success and reason.
func runAdapter(t *testing.T, prober Prober, ctx context.Context, got *context.Context, wantSuccess bool, wantReason Reason) Result {
	t.Helper()
	before := time.Now()
	result := prober.Probe(ctx)
	after := time.Now()
	if *got != ctx {
		t.Error("the source did not get the probe's context")
	}
	if result.Start.Before(before) || result.Start.After(after) || result.Duration < 0 || result.Duration > after.Sub(before) {
		t.Errorf("Start %v, Duration %v: not within the call (%v to %v)", result.Start, result.Duration, before, after)
	}
	if result.Success != wantSuccess || result.Reason != wantReason {
		t.Errorf("Success %v, Reason %q; want %v, %q", result.Success, result.Reason, wantSuccess, wantReason)
	}
	return result
}
