package collector

import (
	"context"
	"errors"

	"github.com/reliabilityd/reliabilityd/config"
)

// NewHTTPProber builds the prober of an `http` probe. (placeholder, being written)
func NewHTTPProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return nil, errors.New("not implemented")
}

var _ = context.Background
