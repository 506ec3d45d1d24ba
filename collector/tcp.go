package collector

import (
	"context"
	"errors"

	"github.com/reliabilityd/reliabilityd/config"
)

// NewTCPProber builds the prober of an `tcp` probe. (placeholder, being written)
func NewTCPProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return nil, errors.New("not implemented")
}

var _ = context.Background
