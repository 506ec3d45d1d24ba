package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
	"github.com/reliabilityd/reliabilityd/slo"
)

// historyStateSection names the probe history's section in the state file.
const historyStateSection = "probe_history"

// daemon holds the long-lived parts of a running reliabilityd and applies
// configurations to them. Configuration is swapped whole: readers load
// current and never see a half-applied one.
type daemon struct {
	flags    *flagConfig
	logger   *slog.Logger
	registry *prometheus.Registry

	store        *slo.Store
	flusher      *slo.Flusher
	scheduler    *collector.Scheduler
	probeMetrics *collector.ProbeMetrics
	engine       *slo.Engine
	capacity     *slo.Capacity
	// sampler runs the capacity sources, as the scheduler runs probes.
	sampler  *collector.Scheduler
	recovery *slo.Recovery
	// backupChecker runs the backup (RPO) sources.
	backupChecker *collector.Scheduler
	// sliQuerier runs the queries of SLIs counted from Prometheus
	// sources, feeding the engine.
	sliQuerier *collector.Scheduler
	// promSources counts the queries of the Prometheus sources that
	// resources and backups read; it outlives configurations.
	promSources *collector.PrometheusSourceMetrics
	history     *collector.History
	failureLog  *failureLogger

	listeners []net.Listener
	selfURL   string

	current atomic.Pointer[config.Config]
	ready   atomic.Bool
	// reloadMu serialises reloads from SIGHUP, /-/reload and the poller.
	reloadMu       sync.Mutex
	reloadRequests chan chan error
	lastChecksum   [sha256.Size]byte

	reloadSuccess          prometheus.Gauge
	reloadSuccessTimestamp prometheus.Gauge
	reloadsTotal           *prometheus.CounterVec
}

func newDaemon(flags *flagConfig, logger *slog.Logger, registry *prometheus.Registry, store *slo.Store) (*daemon, error) {
	d := &daemon{
		flags:          flags,
		logger:         logger,
		registry:       registry,
		store:          store,
		flusher:        slo.NewFlusher(store, flags.flushInterval, logger, registry),
		probeMetrics:   collector.NewProbeMetrics(),
		capacity:       slo.NewCapacity(logger, registry),
		promSources:    collector.NewPrometheusSourceMetrics(registry),
		recovery:       slo.NewRecovery(logger),
		history:        collector.NewHistory(config.DefaultHistoryConfig.Successes, config.DefaultHistoryConfig.Failures),
		failureLog:     newFailureLogger(logger),
		reloadRequests: make(chan chan error),
	}
	factory := promauto.With(registry)
	d.reloadSuccess = factory.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_config_last_reload_successful",
		Help: "Whether the last configuration load or reload succeeded (1) or failed (0).",
	})
	d.reloadSuccessTimestamp = factory.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_config_last_reload_success_timestamp_seconds",
		Help: "When the configuration was last loaded successfully.",
	})
	d.reloadsTotal = factory.NewCounterVec(prometheus.CounterOpts{
		Name: "reliabilityd_config_reloads_total",
		Help: "Configuration loads and reloads by result (success, failure).",
	}, []string{"result"})
	d.reloadsTotal.WithLabelValues("success")
	d.reloadsTotal.WithLabelValues("failure")
	registry.MustRegister(newServiceInfoCollector(&d.current)) // probe metrics are streamed by /metrics itself
	d.engine = slo.NewEngine(slo.EngineOptions{Logger: logger, Registerer: registry,
		AlsoEvaluate: func(now time.Time) {
			d.capacity.Evaluate(now)
			d.recovery.Evaluate(now)
		}})

	d.scheduler = collector.NewScheduler(collector.SchedulerOptions{
		Clock:           collector.RealClock(),
		Recorder:        collector.Recorders{d.probeMetrics, d.engine, d.recovery, d.history, d.failureLog},
		Logger:          logger,
		Registerer:      prometheus.WrapRegistererWith(prometheus.Labels{"scheduler": "probes"}, registry),
		MaxConcurrent:   config.DefaultGlobalConfig.MaxConcurrentProbes,
		Slot:            flags.schedulerSlot,
		ShutdownTimeout: flags.shutdownTimeout,
	})
	d.backupChecker = collector.NewScheduler(collector.SchedulerOptions{
		Clock:           collector.RealClock(),
		Recorder:        collector.RecorderFunc(d.recovery.RecordBackup),
		Logger:          logger,
		Registerer:      prometheus.WrapRegistererWith(prometheus.Labels{"scheduler": "backups"}, registry),
		MaxConcurrent:   capacityConcurrency,
		Slot:            flags.schedulerSlot,
		ShutdownTimeout: flags.shutdownTimeout,
	})
	d.sliQuerier = collector.NewScheduler(collector.SchedulerOptions{
		Clock:           collector.RealClock(),
		Recorder:        d.engine,
		Logger:          logger,
		Registerer:      prometheus.WrapRegistererWith(prometheus.Labels{"scheduler": "slis"}, registry),
		MaxConcurrent:   capacityConcurrency,
		Slot:            flags.schedulerSlot,
		ShutdownTimeout: flags.shutdownTimeout,
	})
	d.sampler = collector.NewScheduler(collector.SchedulerOptions{
		Clock:           collector.RealClock(),
		Recorder:        d.capacity,
		Logger:          logger,
		Registerer:      prometheus.WrapRegistererWith(prometheus.Labels{"scheduler": "capacity"}, registry),
		MaxConcurrent:   capacityConcurrency,
		Slot:            flags.schedulerSlot,
		ShutdownTimeout: flags.shutdownTimeout,
	})

	if flags.web.WebSystemdSocket == nil || !*flags.web.WebSystemdSocket {
		listeners, err := openListeners(*flags.web.WebListenAddresses)
		if err != nil {
			return nil, err
		}
		d.listeners = listeners
	}
	d.selfURL = selfURL(d.listeners)
	return d, nil
}

// selfURL is the URL the built-in configuration probes: the first
// listener, with a wildcard host replaced by loopback.
func selfURL(listeners []net.Listener) string {
	if len(listeners) == 0 {
		return "http://127.0.0.1" + defaultListenAddress
	}
	addr, ok := listeners[0].Addr().(*net.TCPAddr)
	if !ok {
		return "http://" + listeners[0].Addr().String()
	}
	host := addr.IP
	if host == nil || host.IsUnspecified() {
		// A wildcard listener ("", 0.0.0.0, or [::], which Go makes
		// dual-stack) answers on IPv4 loopback.
		host = net.IPv4(127, 0, 0, 1)
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host.String(), fmt.Sprint(addr.Port))}).String()
}

// start restores the durable state and applies the first configuration.
// A bad first configuration is fatal: there is no good one to keep.
func (d *daemon) start() error {
	sections, err := d.store.Load()
	if err != nil {
		return fmt.Errorf("loading state: %w", err)
	}
	d.flusher.Seed(sections)
	if data, ok := sections[historyStateSection]; ok {
		if err := d.history.UnmarshalState(data); err != nil {
			// The section is still carried over by the flusher until the
			// history overwrites it; say so rather than drop it silently.
			d.logger.Warn("Ignoring unreadable probe history in the state file", "err", err)
		}
	}
	if data, ok := sections[slo.SLOStateSection]; ok {
		if err := d.engine.UnmarshalState(data); err != nil {
			d.keepUnreadableState(err)
		}
	}
	if data, ok := sections[slo.CapacityStateSection]; ok {
		if err := d.capacity.UnmarshalState(data); err != nil {
			d.keepUnreadableState(err)
		}
	}
	if data, ok := sections[slo.RecoveryStateSection]; ok {
		if err := d.recovery.UnmarshalState(data); err != nil {
			d.keepUnreadableState(err)
		}
	}
	d.flusher.SetSources(map[string]slo.Snapshotter{historyStateSection: d.history, slo.SLOStateSection: d.engine,
		slo.CapacityStateSection: d.capacity, slo.RecoveryStateSection: d.recovery})
	return d.reload()
}

// keepUnreadableState handles a section (SLOs, capacity) that passed the
// file's checksum but cannot be read (written by a newer version, say):
// its owner starts empty, so the state file is copied aside first, because
// the next flush overwrites the section.
func (d *daemon) keepUnreadableState(err error) {
	copyPath, copyErr := d.store.PreserveCopy()
	if copyErr != nil {
		d.logger.Error("A state section is unreadable and could not be copied aside; its owner starts empty",
			"file", d.store.Path(), "err", err, "copy_err", copyErr)
		return
	}
	d.logger.Error("A state section is unreadable; its owner starts empty. The state file was copied aside",
		"file", d.store.Path(), "copy", copyPath, "err", err)
}

// reload loads the configuration and applies it. Nothing is changed unless
// every part of the new configuration could be built.
func (d *daemon) reload() (err error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	defer func() {
		if err != nil {
			d.reloadSuccess.Set(0)
			d.reloadsTotal.WithLabelValues("failure").Inc()
			return
		}
		d.reloadSuccess.Set(1)
		d.reloadSuccessTimestamp.SetToCurrentTime()
		d.reloadsTotal.WithLabelValues("success").Inc()
	}()

	cfg, checksum, err := d.loadConfig()
	if err != nil {
		return err
	}
	probes, err := buildProbes(cfg, collector.ProberDeps{Logger: d.logger, HTTPTransports: collector.NewHTTPTransports()})
	if err != nil {
		return err
	}
	promSources, err := buildPrometheusSources(cfg, d.promSources)
	var samplers []collector.ScheduledProbe
	if err == nil {
		samplers, err = buildSamplers(cfg, collector.CapacityDeps{PrometheusSources: promSources})
	}
	if err == nil {
		var backups []collector.ScheduledProbe
		backups, err = buildBackupCheckers(cfg, collector.BackupDeps{PrometheusSources: promSources})
		samplers = append(samplers, backups...)
	}
	var sliQueriers []collector.ScheduledProbe
	if err == nil {
		sliQueriers, err = buildSLIQueriers(cfg, promSources, d.engine.Coverage)
	}
	if err != nil {
		for _, b := range probes {
			if closer, ok := b.scheduled.Prober.(collector.Closer); ok {
				closer.Close()
			}
		}
		return err
	}
	d.apply(cfg, probes, samplers)
	d.sliQuerier.Apply(sliQueriers, capacityConcurrency)
	d.lastChecksum = checksum
	// Parsing and building a large configuration leaves tens of megabytes
	// of garbage; give it back now rather than carry it in the RSS until
	// the scavenger gets to it. Reloads are rare, so the forced GC is cheap.
	debug.FreeOSMemory()
	d.logger.Info("Configuration applied", "file", cfg.Filename, "services", len(cfg.Services), "probes", len(probes))
	return nil
}

// loadConfig reads --config.file, or builds the built-in configuration.
func (d *daemon) loadConfig() (*config.Config, [sha256.Size]byte, error) {
	if d.flags.configFile == "" {
		return config.Default(d.selfURL), [sha256.Size]byte{}, nil
	}
	data, err := os.ReadFile(d.flags.configFile)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("reading configuration: %w", err)
	}
	cfg, err := config.Parse(data, d.flags.configFile)
	return cfg, sha256.Sum256(data), err
}

// builtProbe is a probe built from the configuration, ready to schedule.
type builtProbe struct {
	scheduled collector.ScheduledProbe
	info      collector.ProbeInfo
}

// buildProbes builds a prober for every probe of cfg. On any error it
// closes what it built and reports every probe that failed.
func buildProbes(cfg *config.Config, deps collector.ProberDeps) ([]builtProbe, error) {
	var built []builtProbe
	var errs []error
	for _, svc := range cfg.Services {
		for i := range svc.Probes {
			probeCfg := &svc.Probes[i]
			prober, err := collector.NewProber(*probeCfg, deps)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: service %q, probe %q: %w", cfgName(cfg), svc.Name, probeCfg.Name, err))
				continue
			}
			info := collector.ProbeInfoFromConfig(svc.Name, probeCfg)
			built = append(built, builtProbe{info: info, scheduled: collector.ScheduledProbe{
				ID:         info.ID,
				Interval:   probeCfg.Interval.Duration(),
				Timeout:    probeCfg.Timeout.Duration(),
				ConfigHash: probeCfg.Hash(),
				Prober:     prober,
			}})
		}
	}
	if len(errs) > 0 {
		for _, b := range built {
			if closer, ok := b.scheduled.Prober.(collector.Closer); ok {
				closer.Close()
			}
		}
		return nil, errors.Join(errs...)
	}
	return built, nil
}

func cfgName(cfg *config.Config) string {
	if cfg.Filename == "" {
		return "built-in configuration"
	}
	return cfg.Filename
}

// buildPrometheusSources builds a client for every Prometheus source of
// cfg, by name.
func buildPrometheusSources(cfg *config.Config, metrics *collector.PrometheusSourceMetrics) (map[string]*collector.PrometheusSource, error) {
	sources := make(map[string]*collector.PrometheusSource, len(cfg.PrometheusSources))
	var errs []error
	for _, sourceCfg := range cfg.PrometheusSources {
		source, err := collector.NewPrometheusSource(sourceCfg, metrics)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cfgName(cfg), err))
			continue
		}
		sources[sourceCfg.Name] = source
	}
	return sources, errors.Join(errs...)
}

// maxCalendarPeriod is the longest calendar period (a quarter): the
// backfill bound of a calendar SLO.
const maxCalendarPeriod = 92 * 24 * time.Hour

// buildSLIQueriers builds the queriers of the SLOs whose events come
// from a Prometheus source, run every evaluation interval: the SLO's
// SLIQueryProbe takes the probe's place in its ID. coverage tells a new
// events-mode querier what its SLO's recorded events cover, so it
// backfills what they miss.
func buildSLIQueriers(cfg *config.Config, sources map[string]*collector.PrometheusSource,
	coverage func(service, slo string) collector.SLICoverage) ([]collector.ScheduledProbe, error) {
	var queriers []collector.ScheduledProbe
	var errs []error
	interval := cfg.Global.EvaluationInterval.Duration()
	for _, svc := range cfg.Services {
		for i := range svc.SLOs {
			s := &svc.SLOs[i]
			p := s.SLI.Prometheus
			if p == nil {
				continue
			}
			source := sources[p.Source]
			sourceCfg := prometheusSourceConfig(cfg, p.Source)
			if source == nil || sourceCfg == nil {
				errs = append(errs, fmt.Errorf("%s: service %q, SLO %q: prometheus source %q is not configured", cfgName(cfg), svc.Name, s.Name, p.Source))
				continue
			}
			// The window is hashed too: a longer one needs a new events
			// querier to backfill what it adds, and a window-mode querier
			// queries other ranges.
			hash := fnv.New64a()
			data, _ := json.Marshal(struct {
				SLI      *config.SLIPrometheus
				Source   *config.PrometheusSourceConfig
				Interval time.Duration
				Window   config.Duration
				Calendar string
				TimeZone config.Location
			}{p, sourceCfg, interval, s.Window, s.Calendar, s.TimeZone})
			hash.Write(data)
			// A window-mode run waits for several rounds of queries, each
			// bounded by the source's timeout: the run gets the interval.
			prober, timeout := collector.Prober(nil), interval
			if p.Mode == config.SLIModeWindow {
				prober = collector.NewPrometheusSLIWindowProber(source, *p,
					collector.SLIWindowProberOptions{Windows: slo.QueryWindows(s), Clock: collector.RealClock()})
			} else {
				prober = collector.NewPrometheusSLIProber(source, *p, sliProberOptions(svc.Name, s, interval, coverage))
				timeout = min(interval, sourceCfg.Timeout.Duration())
			}
			queriers = append(queriers, collector.ScheduledProbe{
				ID:         collector.ProbeID{Service: svc.Name, Probe: collector.SLIQueryProbe(s.Name)},
				Interval:   interval,
				Timeout:    timeout,
				ConfigHash: hash.Sum64(),
				Prober:     prober,
			})
		}
	}
	return queriers, errors.Join(errs...)
}

func sliProberOptions(service string, s *config.SLOConfig, interval time.Duration,
	coverage func(service, slo string) collector.SLICoverage) collector.SLIProberOptions {
	opts := collector.SLIProberOptions{Interval: interval, Window: s.Window.Duration(), Clock: collector.RealClock()}
	if s.Calendar != "" {
		opts.Window = maxCalendarPeriod
	}
	if coverage != nil {
		name := s.Name
		opts.Resume = func() collector.SLICoverage { return coverage(service, name) }
	}
	return opts
}

// prometheusSourceConfig returns the configuration of the Prometheus
// source named name, for the hash of what queries it: a changed source
// must rebuild its users, which a reload otherwise keeps.
func prometheusSourceConfig(cfg *config.Config, name string) *config.PrometheusSourceConfig {
	for i := range cfg.PrometheusSources {
		if cfg.PrometheusSources[i].Name == name {
			return &cfg.PrometheusSources[i]
		}
	}
	return nil
}

// capacityConcurrency caps capacity samples in flight: sources read local
// files and syscalls, so a few at once suffice.
const capacityConcurrency = 16

// buildSamplers builds a source for every capacity resource of cfg,
// scheduled like a probe: the resource's name takes the probe's place in
// its ID.
func buildSamplers(cfg *config.Config, deps collector.CapacityDeps) ([]collector.ScheduledProbe, error) {
	var samplers []collector.ScheduledProbe
	var errs []error
	for _, svc := range cfg.Services {
		for i := range svc.Capacity {
			resource := &svc.Capacity[i]
			source, err := collector.NewCapacitySource(resource.Source, float64(resource.Limit), deps)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: service %q, capacity %q: %w", cfgName(cfg), svc.Name, resource.Name, err))
				continue
			}
			samplers = append(samplers, collector.ScheduledProbe{
				ID:         collector.ProbeID{Service: svc.Name, Probe: resource.Name},
				Interval:   resource.Interval.Duration(),
				Timeout:    resource.Timeout.Duration(),
				ConfigHash: capacityHash(cfg, resource),
				Prober:     collector.NewCapacityProber(source),
			})
		}
	}
	return samplers, errors.Join(errs...)
}

// backupProber marks the probers of backup checks among the samplers, so
// apply hands them to the backup scheduler.
type backupProber struct{ collector.Prober }

// buildBackupCheckers builds a checker for every backup of cfg, scheduled
// like a probe: the backup's name takes the probe's place in its ID.
func buildBackupCheckers(cfg *config.Config, deps collector.BackupDeps) ([]collector.ScheduledProbe, error) {
	var checkers []collector.ScheduledProbe
	var errs []error
	for _, svc := range cfg.Services {
		if svc.Recovery == nil {
			continue
		}
		for i := range svc.Recovery.Backups {
			backup := &svc.Recovery.Backups[i]
			source, err := collector.NewBackupSource(*backup, deps)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: service %q, backup %q: %w", cfgName(cfg), svc.Name, backup.Name, err))
				continue
			}
			checkers = append(checkers, collector.ScheduledProbe{
				ID:         collector.ProbeID{Service: svc.Name, Probe: backup.Name},
				Interval:   backup.Interval.Duration(),
				Timeout:    backup.Timeout.Duration(),
				ConfigHash: backupHash(cfg, backup),
				Prober:     backupProber{collector.NewBackupProber(source)},
			})
		}
	}
	return checkers, errors.Join(errs...)
}

// backupHash identifies a backup's check configuration.
func backupHash(cfg *config.Config, b *config.BackupConfig) uint64 {
	var source *config.PrometheusSourceConfig
	if b.Prometheus != nil {
		source = prometheusSourceConfig(cfg, b.Prometheus.Source)
	}
	data, err := json.Marshal(struct {
		Backup *config.BackupConfig
		Source *config.PrometheusSourceConfig
	}{b, source})
	if err != nil {
		data = []byte(fmt.Sprintf("%p", b))
	}
	h := fnv.New64a()
	h.Write(data)
	return h.Sum64()
}

// capacityHash identifies a resource's sampling configuration, so a reload
// that changes nothing about its source keeps its schedule.
func capacityHash(cfg *config.Config, c *config.CapacityConfig) uint64 {
	var promSource *config.PrometheusSourceConfig
	if c.Source.Prometheus != nil {
		promSource = prometheusSourceConfig(cfg, c.Source.Prometheus.Source)
	}
	data, err := json.Marshal(struct {
		Source     config.CapacitySource
		Limit      config.Quantity
		Interval   config.Duration
		Timeout    config.Duration
		PromSource *config.PrometheusSourceConfig
	}{c.Source, c.Limit, c.Interval, c.Timeout, promSource})
	if err != nil {
		data = []byte(fmt.Sprintf("%p", c))
	}
	h := fnv.New64a()
	h.Write(data)
	return h.Sum64()
}

// apply swaps the running configuration for cfg. Probes whose
// configuration did not change keep their phase, counters and history.
func (d *daemon) apply(cfg *config.Config, probes []builtProbe, samplers []collector.ScheduledProbe) {
	scheduled := make([]collector.ScheduledProbe, len(probes))
	infos := make([]collector.ProbeInfo, len(probes))
	kept := make(map[collector.ProbeID]bool, len(probes))
	for i, p := range probes {
		scheduled[i] = p.scheduled
		infos[i] = p.info
		kept[p.info.ID] = true
	}
	// Metrics first: a run of a new probe must find its state.
	d.probeMetrics.SetProbes(infos)
	d.history.Resize(cfg.Global.History.Successes, cfg.Global.History.Failures)
	d.history.Forget(func(id collector.ProbeID) bool { return kept[id] })
	d.failureLog.forget(kept)
	d.engine.Apply(slo.NewPlan(cfg), cfg.Global.EvaluationInterval.Duration())
	d.promSources.SetSources(cfg.PrometheusSources)
	d.capacity.Apply(slo.CapacityPlan(cfg), time.Now())
	d.recovery.Apply(slo.RecoveryPlan(cfg), time.Now())
	d.scheduler.Apply(scheduled, cfg.Global.MaxConcurrentProbes)
	var capacitySamplers, backupCheckers []collector.ScheduledProbe
	for _, s := range samplers {
		if _, isBackup := s.Prober.(backupProber); isBackup {
			backupCheckers = append(backupCheckers, s)
		} else {
			capacitySamplers = append(capacitySamplers, s)
		}
	}
	d.sampler.Apply(capacitySamplers, capacityConcurrency)
	d.backupChecker.Apply(backupCheckers, capacityConcurrency)
	d.current.Store(cfg)
}

// reloadLoop is the reloader actor: SIGHUP, POST /-/reload and the
// optional checksum poll all end in reload.
func (d *daemon) reloadLoop(ctx context.Context) error {
	hup, stop := sighup()
	defer stop()
	var poll <-chan time.Time
	if d.flags.configReloadInterval > 0 && d.flags.configFile != "" {
		ticker := time.NewTicker(d.flags.configReloadInterval)
		defer ticker.Stop()
		poll = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			d.logReload("SIGHUP", d.reload())
		case reply := <-d.reloadRequests:
			err := d.reload()
			d.logReload("/-/reload", err)
			reply <- err
		case <-poll:
			if d.configChanged() {
				d.logReload("checksum change", d.reload())
			}
		}
	}
}

func (d *daemon) logReload(trigger string, err error) {
	if err != nil {
		d.logger.Error("Configuration reload failed; the previous configuration stays in force", "trigger", trigger, "err", err)
		return
	}
	d.logger.Info("Configuration reloaded", "trigger", trigger)
}

// configChanged tells whether the configuration file differs from the one
// last applied.
func (d *daemon) configChanged() bool {
	data, err := os.ReadFile(d.flags.configFile)
	if err != nil {
		return true // let reload report the error
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	return sha256.Sum256(data) != d.lastChecksum
}

// requestReload asks the reloader for a reload and waits for its result.
func (d *daemon) requestReload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case d.reloadRequests <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
