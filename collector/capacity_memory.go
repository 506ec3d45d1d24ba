package collector

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/prometheus/procfs"
)

// memorySource reads host memory from <proc>/meminfo: Usage = MemTotal -
// MemAvailable, Limit = MemTotal, in bytes. MemAvailable is the kernel's
// estimate of what could be allocated without swapping (free memory plus
// reclaimable page cache and slab), so page cache does not count as used:
// a host at 100% has no memory left to give. Kernels older than 3.14 have
// no MemAvailable: their samples fail with ReasonProtocol.
//
// Reading meminfo does not block on anything remote, so Sample runs it
// inline and checks ctx only before starting. Stateless, so safe for
// concurrent use.
type memorySource struct {
	proc procfs.FS
	root string
}

// Sample implements CapacitySource.
func (s *memorySource) Sample(ctx context.Context) (Measurement, error) {
	file := filepath.Join(s.root, "meminfo")
	if ctx.Err() != nil {
		return Measurement{}, contextError(ctx, "reading "+file)
	}
	info, err := s.proc.Meminfo()
	if err != nil {
		return Measurement{}, sourceError(fmt.Errorf("reading %s: %w", file, err))
	}
	// procfs fills the *Bytes fields from the kB ones (times 1024).
	if info.MemTotalBytes == nil || info.MemAvailableBytes == nil {
		return Measurement{}, &SourceError{Reason: ReasonProtocol,
			Err: fmt.Errorf("reading %s: no MemTotal or MemAvailable line", file)}
	}
	total, available := *info.MemTotalBytes, *info.MemAvailableBytes
	if total == 0 || available > total {
		return Measurement{}, &SourceError{Reason: ReasonProtocol,
			Err: fmt.Errorf("reading %s: MemAvailable %d bytes out of a MemTotal of %d bytes", file, available, total)}
	}
	return Measurement{Usage: float64(total - available), Limit: float64(total)}, nil
}
