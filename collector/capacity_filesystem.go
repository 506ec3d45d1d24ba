package collector

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// filesystemSource reads the space or inodes of the filesystem holding a
// path, as df does.
//
// Bytes: Usage = (Blocks - Bfree) * Frsize, Limit = (Blocks - Bfree +
// Bavail) * Frsize: used space out of the space usable by non-root, which
// is what df's Use% is computed from; the blocks reserved for root count in
// neither, so a filesystem is full at 100% for the services we watch.
// Block counts are in units of the fragment size (statfs(2), f_frsize);
// Bsize is only used when a filesystem leaves Frsize 0, as df does.
//
// Inodes: Usage = Files - Ffree, Limit = Files (df -i). Filesystems with no
// fixed inode table (btrfs, some network filesystems) report Files as 0:
// the limit is then 0, unknown, unless configured.
//
// statfs can block for as long as the kernel waits for a dead network
// mount, and cannot be interrupted. It therefore runs in a goroutine, and
// Sample returns ReasonTimeout when ctx is done, leaving that goroutine to
// end when the kernel returns: a hung call leaks one goroutine. At most one
// call runs per source: while one is stuck, Sample returns ReasonTimeout at
// once instead of piling up goroutines on the same path. (The guard is per
// source: a bytes and an inodes resource on the same path have one each.)
type filesystemSource struct {
	path   string
	inodes bool
	statfs func(path string, st *syscall.Statfs_t) error

	// mu guards inflight: the statfs call running, or stuck since a sample
	// gave up on it; nil when none is.
	mu       sync.Mutex
	inflight *statfsCall
}

// statfsCall is one statfs call. Its goroutine writes stat and err, then
// closes done; they are read only after done is closed.
type statfsCall struct {
	start time.Time
	done  chan struct{}
	stat  syscall.Statfs_t
	err   error
}

func newFilesystemSource(path string, inodes bool, statfs func(string, *syscall.Statfs_t) error) *filesystemSource {
	if statfs == nil {
		statfs = syscall.Statfs
	}
	return &filesystemSource{path: path, inodes: inodes, statfs: statfs}
}

// Sample implements CapacitySource.
func (s *filesystemSource) Sample(ctx context.Context) (Measurement, error) {
	if ctx.Err() != nil {
		return Measurement{}, contextError(ctx, fmt.Sprintf("statfs %q", s.path))
	}
	call, err := s.startCall()
	if err != nil {
		return Measurement{}, err
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		// call stays in s.inflight until it returns: the next samples see
		// it stuck and do not start another.
		return Measurement{}, contextError(ctx, fmt.Sprintf("statfs %q", s.path))
	}
	s.mu.Lock()
	if s.inflight == call {
		s.inflight = nil
	}
	s.mu.Unlock()
	if call.err != nil {
		return Measurement{}, sourceError(fmt.Errorf("statfs %q: %w", s.path, call.err))
	}
	return s.measurement(&call.stat), nil
}

// startCall starts a statfs call in a goroutine, unless one is still
// running: then it fails with ReasonTimeout.
func (s *filesystemSource) startCall() (*statfsCall, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev := s.inflight; prev != nil {
		select {
		case <-prev.done:
			// It returned since the sample that gave up on it; its result
			// is stale, so a new call replaces it.
		default:
			return nil, &SourceError{Reason: ReasonTimeout, Err: fmt.Errorf(
				"statfs %q: an earlier call is still blocked, for %s; not starting another",
				s.path, time.Since(prev.start).Round(time.Millisecond))}
		}
	}
	call := &statfsCall{start: time.Now(), done: make(chan struct{})}
	s.inflight = call
	go func() {
		call.err = s.statfs(s.path, &call.stat)
		close(call.done)
	}()
	return call, nil
}

// measurement computes the figures of a statfs result (see
// filesystemSource). Counts are converted to float64 before multiplying,
// so no size overflows, and free counts above totals (seen on some FUSE
// filesystems) give no usage rather than a wrapped-around one.
func (s *filesystemSource) measurement(st *syscall.Statfs_t) Measurement {
	if s.inodes {
		return Measurement{Usage: float64(saturatingSub(st.Files, st.Ffree)), Limit: float64(st.Files)}
	}
	unit := float64(st.Frsize)
	if unit == 0 {
		unit = float64(st.Bsize)
	}
	used := saturatingSub(st.Blocks, st.Bfree)
	return Measurement{Usage: float64(used) * unit, Limit: float64(used+st.Bavail) * unit}
}

func saturatingSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
