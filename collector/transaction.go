package collector

import (
	"errors"

	"github.com/reliabilityd/reliabilityd/config"
)

// NewTransactionProber builds the prober of a probe. (Skeleton: filled in by its owner.)
func NewTransactionProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return nil, errors.New("not implemented")
}
