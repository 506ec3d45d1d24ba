// Command reliabilityd runs synthetic probes on its own schedule and
// exports their results, and the reliability figures derived from them,
// as Prometheus metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
	// The time zone database, embedded (about 450 KB): calendar windows,
	// maintenance windows and hours of operation name zones, and minimal
	// containers have no /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/alecthomas/kingpin/v2"
	oklogrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
	"github.com/reliabilityd/reliabilityd/slo"
)

// defaultListenAddress is reliabilityd's port. The Prometheus default port
// allocations list has no free port left in 9100-9999; docs/flags.md says
// why this one.
const defaultListenAddress = ":10089"

func main() {
	stampVersion()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stampVersion fills the version information a release build stamps with
// -ldflags -X (as promu does) from what the Go toolchain recorded, so a
// plain `go build` or `go run` still reports something in --version and
// reliabilityd_build_info rather than empty labels.
func stampVersion() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if version.Version == "" {
		version.Version = info.Main.Version
	}
	for _, setting := range info.Settings {
		switch {
		case setting.Key == "vcs.revision" && version.Revision == "unknown":
			version.Revision = setting.Value
		case setting.Key == "vcs.time" && version.BuildDate == "":
			version.BuildDate = setting.Value
		}
	}
}

// flagConfig holds every command-line flag.
type flagConfig struct {
	configFile           string
	configCheck          bool
	configReloadInterval time.Duration
	storagePath          string
	flushInterval        time.Duration
	schedulerSlot        time.Duration
	shutdownTimeout      time.Duration
	maxRequests          int
	enablePprof          bool
	gogc                 int
	web                  *web.FlagConfig
	promslog             promslog.Config
	// command is the subcommand given: "run" (the default) or "drill record".
	command string
	drill   drillFlags
}

// exitCode carries kingpin's requested exit through a panic, so that
// --help and --version return from run instead of exiting the process.
type exitCode int

func parseFlags(args []string, stdout, stderr io.Writer) (cfg *flagConfig, code int, done bool) {
	cfg = &flagConfig{}
	app := kingpin.New("reliabilityd", "Synthetic probes, SLOs, capacity and recovery figures for Prometheus.")
	app.Version(version.Print("reliabilityd"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(func(code int) { panic(exitCode(code)) })

	app.Flag("config.file", "Configuration file. Empty: a built-in configuration that probes the daemon's own endpoints.").
		Default("").StringVar(&cfg.configFile)
	app.Flag("config.check", "Validate the configuration, print every error, and exit (0 when valid).").
		BoolVar(&cfg.configCheck)
	app.Flag("config.reload-interval", "Reload the configuration file when its checksum changes, checked at this interval. 0 disables.").
		Default("0s").DurationVar(&cfg.configReloadInterval)
	app.Flag("storage.path", "Directory of the durable state.").Default("data/").StringVar(&cfg.storagePath)
	app.Flag("storage.flush-interval", "How often the durable state is written to disk; it is also written at shutdown.").
		Default("15s").DurationVar(&cfg.flushInterval)
	app.Flag("scheduler.slot", "Granularity of probe start phases: probes due in the same slot start together, which saves wakeups.").
		Default("50ms").DurationVar(&cfg.schedulerSlot)
	app.Flag("scheduler.shutdown-timeout", "How long shutdown waits for probe runs in flight before cancelling them.").
		Default("10s").DurationVar(&cfg.shutdownTimeout)
	app.Flag("web.max-requests", "Maximum number of concurrent /metrics scrapes. 0 means no limit.").
		Default("40").IntVar(&cfg.maxRequests)
	app.Flag("web.enable-pprof", "Serve Go profiling endpoints under /debug/pprof/.").BoolVar(&cfg.enablePprof)
	app.Flag("runtime.gogc", "Go garbage collector target percentage, as Prometheus's runtime.gogc. The GOGC environment variable, when set, takes precedence.").
		Default("75").IntVar(&cfg.gogc)
	cfg.web = kingpinflag.AddFlags(app, defaultListenAddress)
	promslogflag.AddFlags(app, &cfg.promslog)
	app.Command("run", "Run the daemon (the default command).").Default()
	addDrillCommand(app, &cfg.drill)

	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code, done = int(c), true
		}
	}()
	command, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "reliabilityd: %v\n", err)
		return nil, 2, true
	}
	cfg.command = command
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "reliabilityd: %v\n", err)
		return nil, 2, true
	}
	return cfg, 0, false
}

// validate checks what kingpin's types cannot.
func (cfg *flagConfig) validate() error {
	switch {
	case cfg.flushInterval <= 0:
		return fmt.Errorf("--storage.flush-interval must be positive, got %s", cfg.flushInterval)
	case cfg.schedulerSlot <= 0:
		return fmt.Errorf("--scheduler.slot must be positive, got %s", cfg.schedulerSlot)
	case cfg.shutdownTimeout < 0:
		return fmt.Errorf("--scheduler.shutdown-timeout must not be negative, got %s", cfg.shutdownTimeout)
	case cfg.configReloadInterval < 0:
		return fmt.Errorf("--config.reload-interval must not be negative, got %s", cfg.configReloadInterval)
	case cfg.maxRequests < 0:
		return fmt.Errorf("--web.max-requests must not be negative, got %d", cfg.maxRequests)
	}
	return nil
}

// run is main without os.Exit, so tests can call it.
func run(args []string, stdout, stderr io.Writer) int {
	flags, code, done := parseFlags(args, stdout, stderr)
	if done {
		return code
	}
	if flags.command == drillRecordCommand {
		return recordDrillCommand(&flags.drill, stdout, stderr)
	}
	flags.promslog.Writer = stderr
	logger := promslog.New(&flags.promslog)
	if _, set := os.LookupEnv("GOGC"); !set {
		// Like Prometheus (runtime.gogc, default 75): a little more GC CPU
		// for a heap that stays closer to what is live.
		debug.SetGCPercent(flags.gogc)
	}

	if file := *flags.web.WebConfigFile; file != "" {
		// Found now, not at the first request or after the state loaded.
		if err := web.Validate(file); err != nil {
			fmt.Fprintf(stderr, "reliabilityd: --web.config.file %s: %v\n", file, err)
			return 1
		}
	}
	if flags.configCheck {
		return checkConfig(flags.configFile, stdout, stderr)
	}
	logger.Info("Starting reliabilityd", "version", version.Info(), "build_context", version.BuildContext())

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		versioncollector.NewCollector("reliabilityd"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	store, err := slo.OpenStore(flags.storagePath, logger, registry)
	if err != nil {
		logger.Error("Cannot open the state directory", "path", flags.storagePath, "err", err)
		return 1
	}
	defer store.Close()

	d, err := newDaemon(flags, logger, registry, store)
	if err != nil {
		logger.Error("Cannot start", "err", err)
		return 1
	}
	if err := d.start(); err != nil {
		logger.Error("Cannot load the configuration", "file", flags.configFile, "err", err)
		d.closeListeners()
		return 1
	}
	if err := d.serve(); err != nil {
		logger.Error("Stopped with an error", "err", err)
		return 1
	}
	logger.Info("Stopped")
	return 0
}

// checkConfig implements --config.check.
func checkConfig(filename string, stdout, stderr io.Writer) int {
	if filename == "" {
		fmt.Fprintln(stderr, "reliabilityd: --config.check needs --config.file")
		return 2
	}
	cfg, err := config.Load(filename)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := buildProbes(cfg, collector.ProberDeps{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The sources' metrics go to a registry nobody reads: a check sends
	// no query.
	promSources, err := buildPrometheusSources(cfg, collector.NewPrometheusSourceMetrics(prometheus.NewRegistry()))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := buildSamplers(cfg, collector.CapacityDeps{PrometheusSources: promSources}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := buildSLIQueriers(cfg, promSources, nil); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := buildBackupCheckers(cfg, collector.BackupDeps{PrometheusSources: promSources}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	probes, slos, resources := 0, 0, 0
	for _, svc := range cfg.Services {
		probes += len(svc.Probes)
		slos += len(svc.SLOs)
		resources += len(svc.Capacity)
	}
	fmt.Fprintf(stdout, "%s: OK (%d services, %d probes, %d SLOs, %d capacity resources)\n",
		filename, len(cfg.Services), probes, slos, resources)
	return 0
}

// serve runs the daemon's actors until a signal or a fatal error, then
// writes the final state.
func (d *daemon) serve() error {
	var g oklogrun.Group
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	g.Add(oklogrun.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	d.addHTTPServer(&g)

	schedulerCtx, stopScheduler := context.WithCancel(ctx)
	g.Add(func() error { return d.scheduler.Run(schedulerCtx) }, func(error) { stopScheduler() })

	samplerCtx, stopSampler := context.WithCancel(ctx)
	g.Add(func() error { return d.sampler.Run(samplerCtx) }, func(error) { stopSampler() })
	sliCtx, stopSLIs := context.WithCancel(ctx)
	g.Add(func() error { return d.sliQuerier.Run(sliCtx) }, func(error) { stopSLIs() })
	backupCtx, stopBackups := context.WithCancel(ctx)
	g.Add(func() error { return d.backupChecker.Run(backupCtx) }, func(error) { stopBackups() })

	evaluatorCtx, stopEvaluator := context.WithCancel(ctx)
	g.Add(func() error { return d.engine.Run(evaluatorCtx) }, func(error) { stopEvaluator() })

	flusherCtx, stopFlusher := context.WithCancel(ctx)
	g.Add(func() error { return d.flusher.Run(flusherCtx) }, func(error) { stopFlusher() })

	reloaderCtx, stopReloader := context.WithCancel(ctx)
	g.Add(func() error { return d.reloadLoop(reloaderCtx) }, func(error) { stopReloader() })

	d.ready.Store(true)
	err := g.Run()
	var signalErr oklogrun.SignalError
	if errors.As(err, &signalErr) {
		d.logger.Info("Received a signal, shutting down", "signal", signalErr.Signal)
		err = nil
	}
	// Every actor has returned, so no probe run records anything any more:
	// this flush holds everything.
	if flushErr := d.flusher.Flush(); flushErr != nil {
		d.logger.Error("Final state flush failed", "err", flushErr)
		err = errors.Join(err, flushErr)
	}
	return err
}

// addHTTPServer adds the web server actor: one server on every listen
// address (or the systemd socket), TLS and basic auth from --web.config.file.
func (d *daemon) addHTTPServer(g *oklogrun.Group) {
	server := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	listeners, listenErr := d.listen()
	g.Add(func() error {
		if listenErr != nil {
			return listenErr
		}
		if listeners == nil {
			return web.ListenAndServe(server, d.flags.web, d.logger)
		}
		errs := make(chan error, len(listeners))
		for _, l := range listeners {
			go func(l net.Listener) { errs <- web.Serve(l, server, d.flags.web, d.logger) }(l)
		}
		err := <-errs
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := server.Shutdown(ctx); err != nil {
			d.logger.Warn("HTTP server shutdown", "err", err)
		}
	})
}

// listen opens the listen addresses up front, so the daemon knows its own
// address (for the built-in configuration) and ":0" works in tests. With
// systemd socket activation it returns nil: exporter-toolkit takes over.
func (d *daemon) listen() ([]net.Listener, error) {
	if d.flags.web.WebSystemdSocket != nil && *d.flags.web.WebSystemdSocket {
		return nil, nil
	}
	return d.listeners, nil
}

// closeListeners closes the listeners of a daemon that never served.
func (d *daemon) closeListeners() {
	for _, l := range d.listeners {
		l.Close()
	}
}

// openListeners listens on every --web.listen-address.
func openListeners(addresses []string) ([]net.Listener, error) {
	var listeners []net.Listener
	for _, address := range addresses {
		l, err := net.Listen("tcp", address)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			return nil, fmt.Errorf("listening on %s: %w", address, err)
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}

// sighup returns a channel of SIGHUPs, and a function that stops them.
func sighup() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}
