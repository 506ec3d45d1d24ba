package main

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// failureLogger logs probe results: every failure at debug level, and a
// change between success and failure at info level, so the log tells when
// a target broke and recovered without one line per run.
type failureLogger struct {
	logger *slog.Logger
	mu     sync.Mutex
	failed map[collector.ProbeID]bool
}

func newFailureLogger(logger *slog.Logger) *failureLogger {
	return &failureLogger{logger: logger, failed: map[collector.ProbeID]bool{}}
}

// Record implements collector.Recorder.
func (l *failureLogger) Record(id collector.ProbeID, result collector.Result) {
	if !result.Success {
		l.logger.Debug("Probe failed", "service", id.Service, "probe", id.Probe, "reason", result.Reason, "err", result.Err)
	}
	l.mu.Lock()
	wasFailing, known := l.failed[id]
	l.failed[id] = !result.Success
	l.mu.Unlock()
	switch {
	case !result.Success && (!known || !wasFailing):
		l.logger.Info("Probe is failing", "service", id.Service, "probe", id.Probe, "reason", result.Reason, "err", result.Err)
	case result.Success && known && wasFailing:
		l.logger.Info("Probe recovered", "service", id.Service, "probe", id.Probe)
	}
}

// forget drops probes not in keep.
func (l *failureLogger) forget(keep map[collector.ProbeID]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.failed {
		if !keep[id] {
			delete(l.failed, id)
		}
	}
}

// serviceInfoCollector exports reliabilityd_service_info from the
// configuration in force.
type serviceInfoCollector struct {
	current *atomic.Pointer[config.Config]
	desc    *prometheus.Desc
}

func newServiceInfoCollector(current *atomic.Pointer[config.Config]) *serviceInfoCollector {
	return &serviceInfoCollector{
		current: current,
		desc: prometheus.NewDesc("reliabilityd_service_info",
			"A configured service, with its owner and priority.", []string{"service", "owner", "priority"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *serviceInfoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *serviceInfoCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.current.Load()
	if cfg == nil {
		return
	}
	for _, svc := range cfg.Services {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, svc.Name, svc.Owner, svc.Priority)
	}
}
