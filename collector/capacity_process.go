package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"

	"github.com/reliabilityd/reliabilityd/config"
)

// Process resources.
const (
	resourceOpenFDs     = "open_fds"
	resourceConnections = "connections"
)

// Bounds of what a process source reads.
const (
	// pidFileMaxBytes bounds the read of a pid file: a pid is at most 7
	// digits, so anything longer is not a pid file.
	pidFileMaxBytes = 64
	// tcpCtxCheckLines is how often, in lines, counting sockets checks its
	// context: /proc/<pid>/net/tcp lists every socket of the network
	// namespace, which may be hundreds of thousands.
	tcpCtxCheckLines = 4096
	// tcpStateListen is the st column of a listening socket in
	// /proc/net/tcp (TCP_LISTEN in include/net/tcp_states.h).
	tcpStateListen = 0x0A
)

// processSource reads a resource of one process, found by its pid file at
// every sample (so a restarted process is followed) or, with self, the
// daemon itself.
//
// open_fds: Usage is the number of open file descriptors
// (/proc/<pid>/fd), Limit the process' soft RLIMIT_NOFILE
// (/proc/<pid>/limits, "Max open files"), the limit at which open(2)
// fails with EMFILE.
//
// connections: Usage is the number of the process' TCP sockets in any
// state but LISTEN: the socket inodes its descriptors link to
// ("socket:[N]" in /proc/<pid>/fd) that /proc/<pid>/net/tcp or tcp6 (the
// process' network namespace) lists. Sockets the process closed (TIME_WAIT)
// have no descriptor and do not count. There is no limit of its own: the
// configured one is required.
//
// A missing pid file or process gives ReasonNotFound, one that may not be
// read (another user's process) ReasonPermission, a pid file that does not
// hold a pid ReasonProtocol. A stale pid file naming a pid reused by
// another process cannot be told apart and reads that process.
//
// /proc reads do not block on anything remote, so Sample runs them inline
// and checks ctx between steps. Stateless, so safe for concurrent use.
type processSource struct {
	proc     procfs.FS
	root     string
	pidFile  string // "" for self
	pid      int    // self's pid; 0 with a pid file
	resource string
	// readLimit is false when a configured limit replaces the soft file
	// limit, which is then not read.
	readLimit bool
}

func newProcessSource(cfg *config.ProcessSource, limit float64, procRoot string) (*processSource, error) {
	if cfg == nil {
		return nil, errors.New("process source: missing process section")
	}
	if (cfg.PIDFile == "") == !cfg.Self {
		return nil, errors.New("process source: needs exactly one of pid_file or self")
	}
	switch cfg.Resource {
	case resourceOpenFDs:
	case resourceConnections:
		if limit <= 0 {
			return nil, errors.New("process source: connections have no limit of their own: a limit must be configured")
		}
	default:
		return nil, fmt.Errorf("process source: resource must be %s or %s, got %q", resourceOpenFDs, resourceConnections, cfg.Resource)
	}
	proc, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("process source: procfs at %q: %w", procRoot, err)
	}
	s := &processSource{proc: proc, root: procRoot, pidFile: cfg.PIDFile, resource: cfg.Resource, readLimit: limit <= 0}
	if cfg.Self {
		s.pid = os.Getpid()
	}
	return s, nil
}

// Sample implements CapacitySource.
func (s *processSource) Sample(ctx context.Context) (Measurement, error) {
	if ctx.Err() != nil {
		return Measurement{}, contextError(ctx, "process "+s.resource)
	}
	pid, err := s.resolvePID()
	if err != nil {
		return Measurement{}, err
	}
	proc, err := s.proc.Proc(pid)
	if err != nil {
		return Measurement{}, sourceError(fmt.Errorf("process %d%s: %w", pid, s.from(), err))
	}
	if s.resource == resourceConnections {
		n, err := s.connections(ctx, proc)
		if err != nil {
			return Measurement{}, err
		}
		return Measurement{Usage: float64(n)}, nil
	}
	n, err := proc.FileDescriptorsLen()
	if err != nil {
		return Measurement{}, sourceError(fmt.Errorf("process %d%s: counting open fds: %w", pid, s.from(), err))
	}
	m := Measurement{Usage: float64(n)}
	if s.readLimit {
		if ctx.Err() != nil {
			return Measurement{}, contextError(ctx, fmt.Sprintf("process %d%s", pid, s.from()))
		}
		limits, err := proc.Limits()
		if err != nil {
			return Measurement{}, sourceError(fmt.Errorf("process %d%s: reading limits: %w", pid, s.from(), err))
		}
		// "unlimited" (math.MaxUint64) is no limit to measure against.
		if limits.OpenFiles != math.MaxUint64 {
			m.Limit = float64(limits.OpenFiles)
		}
	}
	return m, nil
}

// from names where the pid came from, for errors.
func (s *processSource) from() string {
	if s.pidFile == "" {
		return " (self)"
	}
	return fmt.Sprintf(" (from pid file %q)", s.pidFile)
}

// resolvePID returns the pid to read: self's, or the one the pid file
// holds now.
func (s *processSource) resolvePID() (int, error) {
	if s.pidFile == "" {
		return s.pid, nil
	}
	f, err := os.Open(s.pidFile)
	if err != nil {
		return 0, sourceError(fmt.Errorf("pid file: %w", err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, pidFileMaxBytes+1))
	if err != nil {
		return 0, sourceError(fmt.Errorf("pid file %q: %w", s.pidFile, err))
	}
	if len(data) > pidFileMaxBytes {
		return 0, &SourceError{Reason: ReasonProtocol,
			Err: fmt.Errorf("pid file %q: longer than %d bytes, not a pid file", s.pidFile, pidFileMaxBytes)}
	}
	text := strings.TrimSpace(string(data))
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		return 0, &SourceError{Reason: ReasonProtocol,
			Err: fmt.Errorf("pid file %q: %q is not a process id (want a positive integer alone)", s.pidFile, text)}
	}
	return pid, nil
}

// connections counts the TCP sockets of proc that are not listening (see
// processSource).
func (s *processSource) connections(ctx context.Context, proc procfs.Proc) (int, error) {
	targets, err := proc.FileDescriptorTargets()
	if err != nil {
		return 0, sourceError(fmt.Errorf("process %d%s: reading fds: %w", proc.PID, s.from(), err))
	}
	// Several descriptors may share a socket (dup, fork): a set counts it
	// once.
	inodes := make(map[uint64]struct{})
	for _, target := range targets {
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(inode, "]"), 10, 64); err == nil {
				inodes[n] = struct{}{}
			}
		}
	}
	if len(inodes) == 0 {
		return 0, nil
	}
	count := 0
	for _, name := range []string{"tcp", "tcp6"} {
		file := filepath.Join(s.root, strconv.Itoa(proc.PID), "net", name)
		n, err := countTCPSockets(ctx, file, inodes)
		if errors.Is(err, fs.ErrNotExist) && name == "tcp6" {
			continue // IPv6 is disabled: no tcp6 sockets either
		}
		if err != nil {
			return 0, sourceError(fmt.Errorf("process %d%s: %w", proc.PID, s.from(), err))
		}
		count += n
	}
	return count, nil
}

// countTCPSockets counts the sockets of a /proc/<pid>/net/tcp{,6} file
// whose inode is in inodes and whose state is not LISTEN. It streams the
// file, as it lists the whole network namespace, and only parses the
// columns it needs: st (4th, hex) and inode (10th, decimal). Counted
// inodes are removed from inodes, so none counts twice.
func countTCPSockets(ctx context.Context, file string, inodes map[uint64]struct{}) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	count := 0
	for n := 0; lines.Scan(); n++ {
		if n == 0 {
			continue // the header: "sl local_address rem_address st ..."
		}
		if n%tcpCtxCheckLines == 0 && ctx.Err() != nil {
			return 0, fmt.Errorf("reading %s: %w", file, context.Cause(ctx))
		}
		fields := strings.Fields(lines.Text())
		if len(fields) < 10 {
			return 0, fmt.Errorf("reading %s: line %d: %w: %d fields, want at least 10", file, n+1, procfs.ErrFileParse, len(fields))
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading %s: line %d: inode: %w", file, n+1, err)
		}
		if _, ok := inodes[inode]; !ok {
			continue
		}
		state, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return 0, fmt.Errorf("reading %s: line %d: state: %w", file, n+1, err)
		}
		if state != tcpStateListen {
			count++
		}
		delete(inodes, inode)
	}
	if err := lines.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", file, err)
	}
	return count, nil
}
