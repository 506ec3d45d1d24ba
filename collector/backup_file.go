package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

const (
	// maxBackupGlobMatches bounds the entries a glob may match: a pattern
	// that matches more is a mistake (a whole tree instead of the dumps),
	// and statting them all at every check would be I/O nobody asked for.
	maxBackupGlobMatches = 100_000
	// readDirBatch is how many names are read from a directory at once:
	// a huge directory costs neither unbounded memory nor a check past
	// its context.
	readDirBatch = 1024
)

// fileBackupSource finds the recovery point as the newest modification
// time among the regular files matching a glob (symbolic links followed),
// ignoring files smaller than minSize: a truncated dump is not a good
// backup.
//
// The glob has filepath.Match syntax and matches as filepath.Glob does,
// but reads directories itself: filepath.Glob silently skips a directory
// it may not read, which would turn a permission problem into "no backup
// found" with no clue why. Unreadable entries are still skipped (a
// pattern such as /mnt/backups/*/db.dump must not fail on a root-only
// lost+found), but when no good file is found, the first error met
// decides the reason.
type fileBackupSource struct {
	glob    string
	minSize int64
	clock   Clock
	// maxMatches is maxBackupGlobMatches; tests lower it.
	maxMatches int
	// stat is os.Stat; tests replace it to inject errors that root, who
	// may read anything, never meets.
	stat func(name string) (fs.FileInfo, error)
}

func newFileBackupSource(cfg *config.BackupFile, clock Clock) *fileBackupSource {
	return &fileBackupSource{
		glob:       cfg.Glob,
		minSize:    int64(cfg.MinSize),
		clock:      clock,
		maxMatches: maxBackupGlobMatches,
		stat:       os.Stat,
	}
}

// RecoveryPoint implements BackupSource.
func (s *fileBackupSource) RecoveryPoint(ctx context.Context) (time.Time, error) {
	g := globber{ctx: ctx, glob: s.glob, limit: s.maxMatches}
	matches, err := g.expand(s.glob)
	if err != nil {
		return time.Time{}, err
	}
	var (
		newest      time.Time
		newestPath  string
		tooSmall    int
		notRegular  int
		statChecked int
	)
	for _, path := range matches {
		if ctx.Err() != nil {
			return time.Time{}, contextError(ctx, fmt.Sprintf("glob %q: stopped after %d of %d files", s.glob, statChecked, len(matches)))
		}
		statChecked++
		info, err := s.stat(path)
		switch {
		case err != nil:
			g.note(err)
		case !info.Mode().IsRegular():
			notRegular++
		case info.Size() < s.minSize:
			tooSmall++
		case newestPath == "" || info.ModTime().After(newest):
			newest, newestPath = info.ModTime(), path
		}
	}
	if newestPath == "" {
		return time.Time{}, s.noneFound(len(matches), tooSmall, notRegular, g.firstErr)
	}
	if err := checkNotFuture(newest, s.clock.Now(), fmt.Sprintf("file %q", newestPath)); err != nil {
		return time.Time{}, err
	}
	return newest, nil
}

// noneFound is the error of a check that found no good file: it says what
// the glob matched, so a wrong pattern, a min_size too large and a
// permission problem each show.
func (s *fileBackupSource) noneFound(matched, tooSmall, notRegular int, firstErr error) error {
	var msg strings.Builder
	fmt.Fprintf(&msg, "glob %q matches no regular file", s.glob)
	if s.minSize > 0 {
		fmt.Fprintf(&msg, " of at least min_size %d bytes (%d matched but were smaller)", s.minSize, tooSmall)
	}
	if notRegular > 0 {
		fmt.Fprintf(&msg, "; %d of the %d entries matched are not regular files", notRegular, matched)
	}
	if firstErr != nil {
		return &SourceError{Reason: classifyError(firstErr), Err: fmt.Errorf("%s; could not read: %w", msg.String(), firstErr)}
	}
	return &SourceError{Reason: ReasonNotFound, Err: errors.New(msg.String())}
}

// globber expands one glob, counting the entries it matches and keeping
// the first error worth reporting.
type globber struct {
	ctx   context.Context
	glob  string // the whole pattern, for errors
	limit int
	// matched counts entries matched at every level of the pattern
	// (directories on the way included): the work done, bounded by limit.
	matched  int
	firstErr error
}

// note keeps err unless an earlier error was kept, or it only says that
// an entry went away (a backup rotated between listing and stat) or is no
// directory (a file matched where the pattern continues below).
func (g *globber) note(err error) {
	if g.firstErr == nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		g.firstErr = err
	}
}

// expand returns the paths matching pattern, as filepath.Glob does (same
// recursion over the directory part, same matching of names), for a
// Unix-like system: `\` escapes.
func (g *globber) expand(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, &SourceError{Reason: ReasonInternal, Err: fmt.Errorf("glob %q: %w", pattern, err)}
	}
	return g.expandDir(pattern)
}

func (g *globber) expandDir(pattern string) ([]string, error) {
	if !hasGlobMeta(pattern) {
		if _, err := os.Lstat(pattern); err != nil {
			g.note(err)
			return nil, nil
		}
		return g.add(nil, pattern)
	}
	dir, file := filepath.Split(pattern)
	dir = cleanGlobDir(dir)
	if !hasGlobMeta(dir) {
		return g.readDir(dir, file, nil)
	}
	if dir == pattern {
		// filepath.Glob's guard against endless recursion (Go issue 15879).
		return nil, &SourceError{Reason: ReasonInternal, Err: fmt.Errorf("glob %q: %w", pattern, filepath.ErrBadPattern)}
	}
	dirs, err := g.expandDir(dir)
	if err != nil {
		return nil, err
	}
	var matches []string
	for _, d := range dirs {
		if matches, err = g.readDir(d, file, matches); err != nil {
			return nil, err
		}
	}
	return matches, nil
}

// readDir appends the entries of dir whose names match pattern to matches.
// It reads the directory in batches, checking the context between them.
func (g *globber) readDir(dir, pattern string, matches []string) ([]string, error) {
	if g.ctx.Err() != nil {
		return nil, contextError(g.ctx, fmt.Sprintf("glob %q: reading directory %q", g.glob, dir))
	}
	d, err := os.Open(dir)
	if err != nil {
		g.note(err)
		return matches, nil
	}
	defer d.Close()
	for {
		names, readErr := d.Readdirnames(readDirBatch)
		for _, name := range names {
			ok, err := filepath.Match(pattern, name)
			if err != nil {
				return nil, &SourceError{Reason: ReasonInternal, Err: fmt.Errorf("glob pattern %q: %w", pattern, err)}
			}
			if ok {
				if matches, err = g.add(matches, filepath.Join(dir, name)); err != nil {
					return nil, err
				}
			}
		}
		if readErr == io.EOF {
			return matches, nil
		}
		if readErr != nil {
			g.note(readErr)
			return matches, nil
		}
		if g.ctx.Err() != nil {
			return nil, contextError(g.ctx, fmt.Sprintf("glob %q: reading directory %q", g.glob, dir))
		}
	}
}

// add appends path to matches, unless that takes the glob past its limit.
func (g *globber) add(matches []string, path string) ([]string, error) {
	g.matched++
	if g.matched > g.limit {
		return nil, &SourceError{Reason: ReasonInternal, Err: fmt.Errorf(
			"glob %q matches more than %d entries: make it match the backups only", g.glob, g.limit)}
	}
	return append(matches, path), nil
}

// hasGlobMeta reports whether path holds any of the characters special to
// filepath.Match on Unix.
func hasGlobMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// cleanGlobDir strips the separator filepath.Split leaves at the end of a
// directory, as filepath.Glob does.
func cleanGlobDir(dir string) string {
	switch dir {
	case "":
		return "."
	case string(filepath.Separator):
		return dir
	}
	return dir[:len(dir)-1]
}
