package collector

import (
	"errors"

	"github.com/reliabilityd/reliabilityd/config"
)

// NewGRPCProber builds the prober of a probe. (Skeleton: filled in by its owner.)
func NewGRPCProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return nil, errors.New("not implemented")
}
