package collector

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

func TestFilesystemSource(t *testing.T) {
	dir := t.TempDir()
	// Some data, so usage is not 0 even on a fresh tmpfs.
	writeFixture(t, dir, "data", strings.Repeat("x", 64<<10))
	for _, tc := range []struct {
		name   string
		inodes bool
		// want computes usage and limit from statfs(2) the way df does,
		// and unit is what one block (or inode) counts for.
		want func(st *syscall.Statfs_t) (usage, limit, unit float64)
	}{
		{name: "bytes", want: func(st *syscall.Statfs_t) (float64, float64, float64) {
			// df: Used = f_blocks - f_bfree, Avail = f_bavail, Use% =
			// Used / (Used + Avail), all in f_frsize units.
			unit := float64(st.Frsize)
			if unit == 0 {
				unit = float64(st.Bsize)
			}
			used := float64(st.Blocks) - float64(st.Bfree)
			return used * unit, (used + float64(st.Bavail)) * unit, unit
		}},
		{name: "inodes", inodes: true, want: func(st *syscall.Statfs_t) (float64, float64, float64) {
			// df -i: IUsed = f_files - f_ffree of Inodes = f_files.
			return float64(st.Files) - float64(st.Ffree), float64(st.Files), 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewCapacitySource(config.CapacitySource{Filesystem: dir, Inodes: tc.inodes}, 0, CapacityDeps{})
			if err != nil {
				t.Fatal(err)
			}
			// Other processes write to this filesystem meanwhile: the
			// sample must lie between two readings taken around it, give
			// or take a few blocks.
			var before, after syscall.Statfs_t
			if err := syscall.Statfs(dir, &before); err != nil {
				t.Fatal(err)
			}
			m, err := src.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Statfs(dir, &after); err != nil {
				t.Fatal(err)
			}
			usage1, limit1, unit := tc.want(&before)
			usage2, limit2, _ := tc.want(&after)
			if tc.inodes && limit1 == 0 {
				t.Skip("this filesystem has no inode table")
			}
			if !(m.Usage > 0 && m.Limit > 0 && m.Usage <= m.Limit) {
				t.Errorf("got %+v, want 0 < usage <= limit", m)
			}
			const slackUnits = 8
			within := func(got, a, b float64) bool {
				return got >= min(a, b)-slackUnits*unit && got <= max(a, b)+slackUnits*unit
			}
			if !within(m.Usage, usage1, usage2) || !within(m.Limit, limit1, limit2) {
				t.Errorf("got %+v, want usage in [%v, %v] and limit in [%v, %v] (±%d units of %v)",
					m, usage1, usage2, limit1, limit2, slackUnits, unit)
			}
		})
	}
}

func TestFilesystemSourceErrors(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "file", "x")
	for _, tc := range []struct {
		name   string
		path   string
		statfs func(string, *syscall.Statfs_t) error
		want   Reason
	}{
		{name: "missing path", path: filepath.Join(dir, "missing"), want: ReasonNotFound},
		{name: "path under a file", path: filepath.Join(dir, "file", "sub"), want: ReasonNotFound},
		// Root ignores permissions, so EACCES is injected.
		{name: "permission denied", path: dir, want: ReasonPermission,
			statfs: func(string, *syscall.Statfs_t) error { return syscall.EACCES }},
		{name: "other error", path: dir, want: ReasonInternal,
			statfs: func(string, *syscall.Statfs_t) error { return syscall.EIO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewCapacitySource(config.CapacitySource{Filesystem: tc.path}, 0, CapacityDeps{Statfs: tc.statfs})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Sample(context.Background())
			wantSourceError(t, err, tc.want, "statfs", tc.path)
		})
	}
}

// TestFilesystemSourceHungStatfs checks that a statfs blocked as on a dead
// network mount neither blocks Sample past its context nor gets a second
// call started while it is stuck.
func TestFilesystemSourceHungStatfs(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	hang := func(_ string, st *syscall.Statfs_t) error {
		if calls.Add(1) == 1 {
			<-release // the first call hangs until released
		}
		st.Blocks, st.Bfree, st.Bavail, st.Frsize = 100, 40, 30, 4096
		return nil
	}
	src, err := NewCapacitySource(config.CapacitySource{Filesystem: "/mnt/dead"}, 0, CapacityDeps{Statfs: hang})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release) // do not leak the goroutine past the test
		}
	})

	// The first call hangs: Sample returns at the deadline. The
	// deadline is short, but nothing races it: the call never returns
	// before the release.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = src.Sample(ctx)
	wantSourceError(t, err, ReasonTimeout, `statfs "/mnt/dead"`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}

	// While it is stuck, a sample with no deadline at all returns at once
	// without calling statfs again. Were it to wait, it would wait until
	// the release: the select turns that into a failure, not a hang.
	done := make(chan error, 1)
	go func() {
		_, err := src.Sample(context.Background())
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Sample blocked behind the stuck statfs")
	}
	wantSourceError(t, err, ReasonTimeout, "still blocked", "not starting another")
	if n := calls.Load(); n != 1 {
		t.Errorf("statfs called %d times while stuck, want 1", n)
	}

	// Once the stuck call returns, the next sample makes a fresh call and
	// ignores the stale result. Waiting for the goroutine to end makes
	// this deterministic.
	close(release)
	fsSrc := src.(*filesystemSource)
	fsSrc.mu.Lock()
	stuck := fsSrc.inflight
	fsSrc.mu.Unlock()
	<-stuck.done
	m, err := src.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// (100 - 40) blocks used, (100 - 40 + 30) usable, of 4096 bytes.
	if want := (Measurement{Usage: 60 * 4096, Limit: 90 * 4096}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("statfs called %d times, want 2", n)
	}
	fsSrc.mu.Lock()
	defer fsSrc.mu.Unlock()
	if fsSrc.inflight != nil {
		t.Error("a completed call is still recorded as in flight")
	}
}

func TestFilesystemSourceContextDone(t *testing.T) {
	var calls atomic.Int32
	src, err := NewCapacitySource(config.CapacitySource{Filesystem: "/"}, 0, CapacityDeps{
		Statfs: func(string, *syscall.Statfs_t) error { calls.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = src.Sample(ctx)
	wantSourceError(t, err, ReasonTimeout)
	if calls.Load() != 0 {
		t.Error("statfs called with a context already done")
	}
}

func TestFilesystemMeasurement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inodes bool
		st     syscall.Statfs_t
		want   Measurement
	}{
		// 1000 blocks, 300 free of which 250 usable by non-root: 700 used
		// of 950, in 1 KiB fragments; Bsize (the I/O size) is ignored.
		{name: "fragment size", st: syscall.Statfs_t{Blocks: 1000, Bfree: 300, Bavail: 250, Bsize: 65536, Frsize: 1024},
			want: Measurement{Usage: 700 * 1024, Limit: 950 * 1024}},
		{name: "no fragment size", st: syscall.Statfs_t{Blocks: 1000, Bfree: 300, Bavail: 250, Bsize: 4096},
			want: Measurement{Usage: 700 * 4096, Limit: 950 * 4096}},
		// 2^50 blocks of 2^20 bytes overflow uint64 bytes: computed in
		// float64.
		{name: "huge", st: syscall.Statfs_t{Blocks: 1 << 50, Bfree: 0, Bavail: 0, Frsize: 1 << 20},
			want: Measurement{Usage: 1 << 70, Limit: 1 << 70}},
		{name: "free above total", st: syscall.Statfs_t{Blocks: 10, Bfree: 20, Bavail: 20, Frsize: 512},
			want: Measurement{Usage: 0, Limit: 20 * 512}},
		{name: "inodes", inodes: true, st: syscall.Statfs_t{Files: 5000, Ffree: 1200},
			want: Measurement{Usage: 3800, Limit: 5000}},
		{name: "no inode table", inodes: true, st: syscall.Statfs_t{Files: 0, Ffree: 0},
			want: Measurement{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &filesystemSource{inodes: tc.inodes}
			if got := s.measurement(&tc.st); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
