package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/reliabilityd/reliabilityd/config"
)

// CapacitySource reads one capacity resource: how much of it is used and,
// when the source knows it, out of which limit.
//
// Sample must return when ctx is done. A source is built once per
// configuration and sampled many times; the scheduler never overlaps a
// source with itself, but every source is safe for concurrent use anyway.
type CapacitySource interface {
	// Sample reads the resource once. A failed sample returns a
	// *SourceError, or an error wrapping ErrNoSample when the source has
	// nothing to report yet.
	Sample(ctx context.Context) (Measurement, error)
}

// ErrNoSample is wrapped by the error of a sample that has nothing to
// report yet, not a failure: the CPU source needs two readings to compute a
// rate, so its first sample (and the first after its counters went
// backwards) only takes a reading. Callers check it with errors.Is and
// neither record usage nor count a failure.
var ErrNoSample = errors.New("no sample yet")

// SourceError is a failed sample: a bounded Reason, safe as a label value,
// and the error that details it.
//
// Reasons: ReasonNotFound (the path, file or process does not exist),
// ReasonPermission (it may not be read), ReasonTimeout (the sample's
// context ended first, or a filesystem's statfs is still blocked since an
// earlier sample), ReasonProtocol (/proc or a pid file held something that
// does not parse), ReasonInternal (anything else).
type SourceError struct {
	Reason Reason
	Err    error
}

func (e *SourceError) Error() string { return e.Err.Error() }

// Unwrap returns the detailed error.
func (e *SourceError) Unwrap() error { return e.Err }

// CapacityDeps are what capacity sources may use besides their
// configuration. The zero value reads the live system.
type CapacityDeps struct {
	// ProcRoot is where procfs is mounted; "" means "/proc". Tests point
	// it at fixtures.
	ProcRoot string
	// Statfs, when set, replaces syscall.Statfs (tests inject one that
	// blocks, as on a dead network mount).
	Statfs func(path string, st *syscall.Statfs_t) error
	// PrometheusSources are the configured Prometheus sources by name,
	// for resources of type prometheus.
	PrometheusSources map[string]*PrometheusSource
}

// NewCapacitySource builds the source cfg describes. limit, when greater
// than 0, is the resource's configured limit: it replaces whatever limit
// the source reads, for every type of source. Connections of a process
// have no limit of their own, so they require one.
//
// The procfs mount point must exist when the source is built; everything
// else (paths, pid files, processes) is looked up at every sample. A
// prometheus resource's source must be in deps.PrometheusSources; with a
// configured limit, its limit query is still run (and must succeed) but
// the configured limit wins.
func NewCapacitySource(cfg config.CapacitySource, limit float64, deps CapacityDeps) (CapacitySource, error) {
	procRoot := deps.ProcRoot
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	var src CapacitySource
	switch cfg.Type() {
	case "filesystem":
		src = newFilesystemSource(cfg.Filesystem, cfg.Inodes, deps.Statfs)
	case "memory", "cpu":
		proc, err := procfs.NewFS(procRoot)
		if err != nil {
			return nil, fmt.Errorf("%s source: procfs at %q: %w", cfg.Type(), procRoot, err)
		}
		if cfg.Memory {
			src = &memorySource{proc: proc, root: procRoot}
		} else {
			src = &cpuSource{proc: proc, root: procRoot}
		}
	case "process":
		var err error
		if src, err = newProcessSource(cfg.Process, limit, procRoot); err != nil {
			return nil, err
		}
	case "prometheus":
		p := cfg.Prometheus
		promSource := deps.PrometheusSources[p.Source]
		if promSource == nil {
			return nil, fmt.Errorf("prometheus source %q is not configured", p.Source)
		}
		if p.Usage == "" || (p.Limit == "" && limit <= 0) {
			return nil, errors.New("prometheus source: needs a usage query, and a limit query or a configured limit")
		}
		src = &prometheusCapacitySource{src: promSource, usage: p.Usage, limit: p.Limit}
	default:
		return nil, errors.New("capacity source: needs one of filesystem, memory, cpu, process or prometheus")
	}
	if limit > 0 {
		return limitOverride{src: src, limit: limit}, nil
	}
	return src, nil
}

// limitOverride replaces the limit a source reads by the configured one.
type limitOverride struct {
	src   CapacitySource
	limit float64
}

// Sample implements CapacitySource.
func (o limitOverride) Sample(ctx context.Context) (Measurement, error) {
	m, err := o.src.Sample(ctx)
	if err != nil {
		return Measurement{}, err
	}
	m.Limit = o.limit
	return m, nil
}

// sourceError wraps err in a *SourceError with the reason classifyError
// gives it.
func sourceError(err error) error {
	return &SourceError{Reason: classifyError(err), Err: err}
}

// classifyError maps an error of reading a capacity resource to its Reason.
func classifyError(err error) Reason {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ReasonTimeout
	// ENOTDIR: a component of the path is not a directory, so the path
	// does not exist either. ESRCH: the process went away mid-read.
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ESRCH):
		return ReasonNotFound
	case errors.Is(err, fs.ErrPermission): // EACCES, EPERM
		return ReasonPermission
	case errors.Is(err, procfs.ErrFileParse), errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange):
		return ReasonProtocol
	}
	return ReasonInternal
}

// contextError is the error of a sample whose context ended before it
// started or finished.
func contextError(ctx context.Context, what string) error {
	return &SourceError{Reason: ReasonTimeout, Err: fmt.Errorf("%s: %w", what, context.Cause(ctx))}
}

// capacityProber adapts a CapacitySource to the scheduler.
type capacityProber struct {
	src CapacitySource
}

// NewCapacityProber adapts src to the probe scheduler, which runs it like
// a probe, with the resource's timeout as ctx deadline.
//
// A successful sample gives a successful Result whose Measurement holds
// the reading. A failed one gives the SourceError's Reason (ReasonInternal
// for any other error) and the error, except that a run whose ctx deadline
// passed is always ReasonTimeout. A sample with nothing to report yet
// (ErrNoSample) gives an unsuccessful Result with that error and no
// Reason: it is not a failure, and consumers must check
// errors.Is(result.Err, ErrNoSample) before counting one.
func NewCapacityProber(src CapacitySource) Prober {
	return capacityProber{src: src}
}

// Probe implements Prober.
func (p capacityProber) Probe(ctx context.Context) Result {
	result := Result{Start: time.Now()}
	m, err := p.src.Sample(ctx)
	result.Duration = time.Since(result.Start)
	switch {
	case err == nil:
		result.Success = true
		result.Measurement = &m
		return result
	case !errors.Is(err, ErrNoSample): // nothing yet is not a failure
		result.Reason = sourceFailure(ctx, err)
	}
	result.Err = err
	return result
}

// sourceFailure is the reason of a failed capacity sample or backup
// check: ReasonTimeout once the run's deadline passed, whatever the source
// said; else the SourceError's reason; else ReasonInternal.
func sourceFailure(ctx context.Context, err error) Reason {
	var srcErr *SourceError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &srcErr):
		return srcErr.Reason
	}
	return ReasonInternal
}
