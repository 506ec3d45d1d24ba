package collector

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// backupEntry is a file, directory or symbolic link the file source tests
// lay out under a temporary directory.
type backupEntry struct {
	name  string // slash-separated, relative to the test's directory
	size  int
	mtime time.Time
	dir   bool
	link  string // target of a symbolic link, relative to the link
}

// layOut creates entries under dir. Modification times are set after
// everything is created: creating a file changes its directory's.
func layOut(t *testing.T, dir string, entries []backupEntry) {
	t.Helper()
	for _, e := range entries {
		path := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case e.dir:
			err = os.Mkdir(path, 0o755)
		case e.link != "":
			err = os.Symlink(e.link, path)
		default:
			err = os.WriteFile(path, make([]byte, e.size), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		if e.link == "" && !e.mtime.IsZero() {
			if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(e.name)), e.mtime, e.mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func newTestFileSource(t *testing.T, glob string, minSize config.ByteSize) *fileBackupSource {
	t.Helper()
	src, err := NewBackupSource(config.BackupConfig{Name: "test", File: &config.BackupFile{Glob: glob, MinSize: minSize}},
		BackupDeps{Clock: NewFakeClock(backupNow)})
	if err != nil {
		t.Fatalf("NewBackupSource: %v", err)
	}
	return src.(*fileBackupSource)
}

// assertBackupResult checks a source's answer: the time wanted, or an
// error of reason wantReason mentioning every string of wantErr.
func assertBackupResult(t *testing.T, got time.Time, err error, want time.Time, wantReason Reason, wantErr ...string) {
	t.Helper()
	if wantReason == "" {
		if err != nil || !got.Equal(want) {
			t.Fatalf("RecoveryPoint = %v, %v; want %v", got, err, want)
		}
		return
	}
	var srcErr *SourceError
	if !errors.As(err, &srcErr) {
		t.Fatalf("RecoveryPoint = %v, %v; want a *SourceError of reason %q", got, err, wantReason)
	}
	if srcErr.Reason != wantReason {
		t.Errorf("reason = %q (err %v), want %q", srcErr.Reason, err, wantReason)
	}
	if !got.IsZero() {
		t.Errorf("failed check returned time %v, want zero", got)
	}
	for _, part := range wantErr {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("err = %q, want it to contain %q", err, part)
		}
	}
}

func TestFileBackupSource(t *testing.T) {
	hoursAgo := func(h int) time.Time { return backupNow.Add(-time.Duration(h) * time.Hour) }
	for _, tc := range []struct {
		name       string
		entries    []backupEntry
		glob       string // relative to the test's directory
		minSize    config.ByteSize
		want       time.Time
		wantReason Reason
		wantErr    []string
	}{
		{
			name: "newest wins",
			entries: []backupEntry{
				{name: "db-1.dump", size: 10, mtime: hoursAgo(3)},
				{name: "db-2.dump", size: 10, mtime: hoursAgo(1)},
				{name: "db-3.dump", size: 10, mtime: hoursAgo(2)},
				{name: "other.txt", size: 10, mtime: hoursAgo(0)},
			},
			glob: "db-*.dump", want: hoursAgo(1),
		},
		{
			name: "min_size skips smaller files",
			entries: []backupEntry{
				{name: "a.dump", size: 100, mtime: hoursAgo(3)},
				{name: "b.dump", size: 99, mtime: hoursAgo(1)},
				{name: "c.dump", size: 120, mtime: hoursAgo(2)},
			},
			glob: "*.dump", minSize: 100, want: hoursAgo(2),
		},
		{
			name: "directories ignored",
			entries: []backupEntry{
				{name: "old.dump", size: 1, mtime: hoursAgo(5)},
				{name: "new.dump", dir: true, mtime: hoursAgo(1)},
			},
			glob: "*.dump", want: hoursAgo(5),
		},
		{
			name: "symbolic link followed",
			entries: []backupEntry{
				{name: "store/db-7.dump", size: 10, mtime: hoursAgo(4)},
				{name: "latest.dump", link: "store/db-7.dump"},
			},
			glob: "*.dump", want: hoursAgo(4),
		},
		{
			name: "dangling link skipped",
			entries: []backupEntry{
				{name: "a.dump", size: 10, mtime: hoursAgo(6)},
				{name: "gone.dump", link: "nowhere"},
			},
			glob: "*.dump", want: hoursAgo(6),
		},
		{
			name: "pattern in a directory component",
			entries: []backupEntry{
				{name: "host-a/db.dump", size: 10, mtime: hoursAgo(7)},
				{name: "host-b/db.dump", size: 10, mtime: hoursAgo(3)},
				{name: "host-c/notes.txt", size: 10, mtime: hoursAgo(1)},
				{name: "host-d", size: 10, mtime: hoursAgo(1)}, // a file where the pattern continues below
			},
			glob: "host-*/db.dump", want: hoursAgo(3),
		},
		{
			name:    "plain path",
			entries: []backupEntry{{name: "db.dump", size: 10, mtime: hoursAgo(8)}},
			glob:    "db.dump", want: hoursAgo(8),
		},
		{
			name:    "size equal to min_size is enough",
			entries: []backupEntry{{name: "db.dump", size: 64, mtime: hoursAgo(2)}},
			glob:    "*.dump", minSize: 64, want: hoursAgo(2),
		},
		{
			name:    "five minutes ahead is clock skew",
			entries: []backupEntry{{name: "db.dump", size: 1, mtime: backupNow.Add(5 * time.Minute)}},
			glob:    "*.dump", want: backupNow.Add(5 * time.Minute),
		},
		{
			name: "newest in the future",
			entries: []backupEntry{
				{name: "a.dump", size: 1, mtime: hoursAgo(1)},
				{name: "b.dump", size: 1, mtime: backupNow.Add(5*time.Minute + time.Second)},
			},
			glob: "*.dump", wantReason: ReasonAssertion,
			wantErr: []string{"b.dump", "recovery point is in the future: clock skew or a bad field?", "2026-03-01T13:05:01Z is 5m1s ahead"},
		},
		{
			name:    "no match",
			entries: []backupEntry{{name: "db.txt", size: 10, mtime: hoursAgo(1)}},
			glob:    "*.dump", wantReason: ReasonNotFound, wantErr: []string{`*.dump" matches no regular file`},
		},
		{
			name: "all smaller than min_size",
			entries: []backupEntry{
				{name: "a.dump", size: 10, mtime: hoursAgo(1)},
				{name: "b.dump", size: 1023, mtime: hoursAgo(2)},
				{name: "c.dump", dir: true, mtime: hoursAgo(1)},
			},
			glob: "*.dump", minSize: 1024, wantReason: ReasonNotFound,
			wantErr: []string{"matches no regular file of at least min_size 1024 bytes (2 matched but were smaller); 1 of the 3 entries matched are not regular files"},
		},
		{
			name:    "only directories",
			entries: []backupEntry{{name: "a.dump", dir: true, mtime: hoursAgo(1)}},
			glob:    "*.dump", wantReason: ReasonNotFound, wantErr: []string{"1 of the 1 entries matched are not regular files"},
		},
		{
			name: "directory missing",
			glob: "nowhere/*.dump", wantReason: ReasonNotFound, wantErr: []string{`nowhere/*.dump" matches no regular file`},
		},
		{
			name: "bad pattern",
			glob: "[", wantReason: ReasonInternal, wantErr: []string{"syntax error in pattern"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			layOut(t, dir, tc.entries)
			src := newTestFileSource(t, filepath.Join(dir, tc.glob), tc.minSize)
			got, err := src.RecoveryPoint(context.Background())
			assertBackupResult(t, got, err, tc.want, tc.wantReason, tc.wantErr...)
		})
	}
}

func TestFileBackupSourceMatchLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		entries    []backupEntry
		glob       string
		wantReason Reason
	}{
		{
			name:    "at the limit",
			entries: []backupEntry{{name: "a.dump", size: 1}, {name: "b.dump", size: 1}, {name: "c.dump", size: 1}},
			glob:    "*.dump",
		},
		{
			name:       "over the limit",
			entries:    []backupEntry{{name: "a.dump", size: 1}, {name: "b.dump", size: 1}, {name: "c.dump", size: 1}, {name: "d.dump", size: 1}},
			glob:       "*.dump",
			wantReason: ReasonInternal,
		},
		{
			// Two directories and two files: the directories on the way
			// count as work too.
			name:       "directories count",
			entries:    []backupEntry{{name: "x/a.dump", size: 1}, {name: "y/b.dump", size: 1}},
			glob:       "*/*.dump",
			wantReason: ReasonInternal,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mtime := backupNow.Add(-time.Hour)
			for i := range tc.entries {
				tc.entries[i].mtime = mtime
			}
			layOut(t, dir, tc.entries)
			src := newTestFileSource(t, filepath.Join(dir, tc.glob), 0)
			src.maxMatches = 3
			got, err := src.RecoveryPoint(context.Background())
			assertBackupResult(t, got, err, mtime, tc.wantReason, "matches more than 3 entries")
		})
	}
}

func TestFileBackupSourceContext(t *testing.T) {
	dir := t.TempDir()
	layOut(t, dir, []backupEntry{{name: "a.dump", size: 1}, {name: "b.dump", size: 1}, {name: "c.dump", size: 1}})

	t.Run("ended before the check", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		src := newTestFileSource(t, filepath.Join(dir, "*.dump"), 0)
		got, err := src.RecoveryPoint(ctx)
		assertBackupResult(t, got, err, time.Time{}, ReasonTimeout, "reading directory", "context deadline exceeded")
	})

	t.Run("ends between stats", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src := newTestFileSource(t, filepath.Join(dir, "*.dump"), 0)
		stats := 0
		src.stat = func(name string) (fs.FileInfo, error) {
			stats++
			cancel()
			return os.Stat(name)
		}
		got, err := src.RecoveryPoint(ctx)
		assertBackupResult(t, got, err, time.Time{}, ReasonTimeout, "stopped after 1 of 3 files", "context canceled")
		if stats != 1 {
			t.Errorf("%d stats, want 1: the check went on after its context ended", stats)
		}
	})
}

// TestFileBackupSourceStatErrors injects stat errors, which root never
// meets on a local filesystem.
func TestFileBackupSourceStatErrors(t *testing.T) {
	good := backupNow.Add(-3 * time.Hour)
	for _, tc := range []struct {
		name       string
		errs       map[string]error // by base name; the others stat fine
		want       time.Time
		wantReason Reason
		wantErr    []string
	}{
		{
			name: "unreadable file skipped when another is good",
			errs: map[string]error{"b.dump": syscall.EACCES},
			want: good,
		},
		{
			name:       "every file unreadable",
			errs:       map[string]error{"a.dump": syscall.EACCES, "b.dump": syscall.EACCES},
			wantReason: ReasonPermission,
			wantErr:    []string{"matches no regular file; could not read: stat", "permission denied"},
		},
		{
			name:       "input/output error",
			errs:       map[string]error{"a.dump": syscall.EIO, "b.dump": syscall.EIO},
			wantReason: ReasonInternal,
			wantErr:    []string{"could not read: stat", "input/output error"},
		},
		{
			// Rotated away between listing and stat: no error to report.
			name:       "every file gone",
			errs:       map[string]error{"a.dump": syscall.ENOENT, "b.dump": syscall.ENOENT},
			wantReason: ReasonNotFound,
			wantErr:    []string{"matches no regular file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			layOut(t, dir, []backupEntry{{name: "a.dump", size: 1, mtime: good}, {name: "b.dump", size: 1, mtime: backupNow.Add(-time.Hour)}})
			src := newTestFileSource(t, filepath.Join(dir, "*.dump"), 0)
			src.stat = func(name string) (fs.FileInfo, error) {
				if err := tc.errs[filepath.Base(name)]; err != nil {
					return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
				}
				return os.Stat(name)
			}
			got, err := src.RecoveryPoint(context.Background())
			assertBackupResult(t, got, err, tc.want, tc.wantReason, tc.wantErr...)
			if tc.wantReason == ReasonNotFound && strings.Contains(err.Error(), "could not read") {
				t.Errorf("err = %q blames a file that only went away", err)
			}
		})
	}
}

// TestFileBackupSourcePermissions uses real permissions; root reads
// anything, so each case is skipped when it can read what it should not.
func TestFileBackupSourcePermissions(t *testing.T) {
	mtime := backupNow.Add(-2 * time.Hour)
	for _, tc := range []struct {
		name string
		// mode is given to the directory "locked".
		mode       fs.FileMode
		glob       string
		want       time.Time
		wantReason Reason
		wantErr    []string
	}{
		{name: "directory unreadable", mode: 0, glob: "locked/*.dump",
			wantReason: ReasonPermission, wantErr: []string{"could not read: open", "permission denied"}},
		{name: "directory listable, files not reachable", mode: 0o444, glob: "locked/*.dump",
			wantReason: ReasonPermission, wantErr: []string{"could not read: stat", "permission denied"}},
		// A root-only directory among those a pattern matches, such as
		// lost+found, is skipped when another holds a good backup.
		{name: "unreadable directory among others", mode: 0, glob: "*/*.dump", want: mtime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			layOut(t, dir, []backupEntry{
				{name: "locked/db.dump", size: 1, mtime: mtime.Add(time.Hour)},
				{name: "open/db.dump", size: 1, mtime: mtime},
			})
			locked := filepath.Join(dir, "locked")
			if err := os.Chmod(locked, tc.mode); err != nil {
				t.Fatal(err)
			}
			// Restore access so t.TempDir can remove it.
			t.Cleanup(func() { os.Chmod(locked, 0o755) })
			if _, err := os.Stat(filepath.Join(locked, "db.dump")); err == nil {
				t.Skipf("%s can be read despite mode %v (running as uid %d): no permission error to observe", locked, tc.mode, os.Geteuid())
			}
			src := newTestFileSource(t, filepath.Join(dir, tc.glob), 0)
			got, err := src.RecoveryPoint(context.Background())
			assertBackupResult(t, got, err, tc.want, tc.wantReason, tc.wantErr...)
		})
	}
}
