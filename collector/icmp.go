package collector

import (
	"errors"

	"github.com/reliabilityd/reliabilityd/config"
)

// NewICMPProber builds the prober of a probe. (Skeleton: filled in by its owner.)
func NewICMPProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return nil, errors.New("not implemented")
}
