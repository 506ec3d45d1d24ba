package collector

import (
	"errors"

	"github.com/reliabilityd/reliabilityd/config"
)

// NewTLSProber builds the prober of a probe. (Skeleton: filled in by its owner.)
func NewTLSProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return nil, errors.New("not implemented")
}
