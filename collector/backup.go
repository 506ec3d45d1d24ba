package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// maxClockSkew is how far in the future a recovery point may lie before it
// is refused: clocks of backup hosts drift a little, but a backup taken an
// hour from now is a wrong clock or a wrong field, and taking it for a
// fresh backup would hide a breached RPO.
const maxClockSkew = 5 * time.Minute

// BackupSource finds when the latest good recovery point of a backup was
// taken.
//
// RecoveryPoint must return when ctx is done. A source is built once per
// configuration and checked many times; the scheduler never overlaps a
// source with itself, but every source is safe for concurrent use anyway.
type BackupSource interface {
	// RecoveryPoint returns the time the latest good backup was taken. A
	// failed check returns a *SourceError and no time: a source that
	// cannot tell never reports a fresh backup.
	RecoveryPoint(ctx context.Context) (time.Time, error)
}

// BackupDeps are what backup sources may use besides their configuration.
// The zero value uses the system clock.
type BackupDeps struct {
	// Clock is what recovery points are checked against: one more than
	// maxClockSkew ahead of Clock.Now is refused. Nil means RealClock.
	Clock Clock
	// PrometheusSources are the configured Prometheus sources by name,
	// for backups of type prometheus.
	PrometheusSources map[string]*PrometheusSource
}

// NewBackupSource builds the source cfg describes; cfg must have its
// defaults applied (http.body_size_limit). Files, URLs and credentials
// files are looked up at every check, not here; the TLS configuration's
// CA and client certificate files are read here, once.
//
// Reasons of a failed check, as *SourceError:
//   - file: ReasonNotFound (no regular file of at least min_size matches
//     the glob), ReasonPermission (none found, and some directory or file
//     could not be read for lack of permission), ReasonTimeout (ctx ended),
//     ReasonInternal (the glob matches more than 100,000 entries, or
//     another error).
//   - http: ReasonSecret (the bearer token file cannot be read),
//     ReasonStatus (not 2xx), ReasonBodyTooLarge (json_field set and the
//     body exceeds body_size_limit), ReasonAssertion (the field or the
//     Last-Modified header is missing or holds no time), and connection
//     failures classified as the HTTP prober does: ReasonDNS,
//     ReasonConnect, ReasonTLS, ReasonTimeout, ReasonRedirect,
//     ReasonProtocol, ReasonInternal.
//   - prometheus: the reasons of PrometheusSource.Query; ReasonNaN also
//     when the value is 0 or no Unix time in seconds.
//   - all: ReasonAssertion when the recovery point is more than 5 minutes
//     in the future.
func NewBackupSource(cfg config.BackupConfig, deps BackupDeps) (BackupSource, error) {
	clock := deps.Clock
	if clock == nil {
		clock = RealClock()
	}
	switch cfg.Type() {
	case "file":
		return newFileBackupSource(cfg.File, clock), nil
	case "http":
		src, err := newHTTPBackupSource(cfg.HTTP, clock)
		if err != nil {
			return nil, fmt.Errorf("backup %q: %w", cfg.Name, err)
		}
		return src, nil
	case "prometheus":
		promSource := deps.PrometheusSources[cfg.Prometheus.Source]
		if promSource == nil {
			return nil, fmt.Errorf("backup %q: prometheus source %q is not configured", cfg.Name, cfg.Prometheus.Source)
		}
		if cfg.Prometheus.Query == "" {
			return nil, fmt.Errorf("backup %q: prometheus: query must be set", cfg.Name)
		}
		return &prometheusBackupSource{src: promSource, query: cfg.Prometheus.Query, clock: clock}, nil
	}
	return nil, fmt.Errorf("backup %q: needs one of file, http or prometheus", cfg.Name)
}

// checkNotFuture refuses a recovery point more than maxClockSkew ahead of
// now. what names where the time came from, for the error.
func checkNotFuture(point, now time.Time, what string) error {
	if ahead := point.Sub(now); ahead > maxClockSkew {
		return &SourceError{Reason: ReasonAssertion, Err: fmt.Errorf(
			"%s: recovery point is in the future: clock skew or a bad field? (%s is %s ahead of now)",
			what, point.UTC().Format(time.RFC3339Nano), ahead.Round(time.Second))}
	}
	return nil
}

// backupProber adapts a BackupSource to the scheduler.
type backupProber struct {
	src BackupSource
}

// NewBackupProber adapts src to the probe scheduler, which runs it like a
// probe, with the backup's timeout as ctx deadline.
//
// A successful check gives a successful Result whose RecoveryPoint is the
// time found. A failed one gives the SourceError's Reason (ReasonInternal
// for any other error, and for a source that returns no error and no
// time) and the error, except that a run whose ctx deadline passed is
// always ReasonTimeout. A failed Result's RecoveryPoint is zero: a check
// that failed never counts as a fresh backup.
func NewBackupProber(src BackupSource) Prober {
	return backupProber{src: src}
}

// Probe implements Prober.
func (p backupProber) Probe(ctx context.Context) Result {
	result := Result{Start: time.Now()}
	point, err := p.src.RecoveryPoint(ctx)
	result.Duration = time.Since(result.Start)
	if err == nil && point.IsZero() {
		err = errors.New("backup source returned no recovery point and no error")
	}
	if err == nil {
		result.Success = true
		result.RecoveryPoint = point
		return result
	}
	result.Reason, result.Err = sourceFailure(ctx, err), err
	return result
}
