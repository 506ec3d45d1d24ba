// Command naiveloop is the benchmark's naive floor: a bare net/http prober
// with one goroutine per target, each sleeping until its own evenly spread
// phase, then making a GET on a fresh connection. It is what a probing
// daemon costs without any care for wake-ups, so reliabilityd must beat it.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/reliabilityd/reliabilityd/bench/internal/pace"
)

// flagConfig holds the command line.
type flagConfig struct {
	targets     int
	interval    time.Duration
	baseURL     string
	timeout     time.Duration
	maxDuration time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("naiveloop", "Naive paced net/http prober for the probing benchmark (loopback only).")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	var cfg flagConfig
	app.Flag("targets", "Number of targets; target i is <base-url><i>.").Default("1000").IntVar(&cfg.targets)
	app.Flag("interval", "Interval of each target.").Default("1s").DurationVar(&cfg.interval)
	app.Flag("base-url", "URL prefix of the targets, e.g. http://127.0.0.1:8080/t/.").Required().StringVar(&cfg.baseURL)
	app.Flag("timeout", "Timeout of one probe.").Default("5s").DurationVar(&cfg.timeout)
	app.Flag("max-duration", "Exit after this long even without a signal.").Default("2h").DurationVar(&cfg.maxDuration)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "naiveloop: %v\n", err)
		return 2
	}
	if err := pace.CheckLoopback(cfg.baseURL); err != nil {
		fmt.Fprintf(stderr, "naiveloop: --base-url: %v\n", err)
		return 2
	}
	if cfg.targets <= 0 || cfg.interval <= 0 {
		fmt.Fprintf(stderr, "naiveloop: --targets and --interval must be positive\n")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxDuration)
	defer cancel()

	var stats pace.Stats
	pace.Run(ctx, cfg.targets, cfg.interval, newProbe(cfg), &stats)
	fmt.Fprintln(stdout, stats.String())
	return 0
}

// newProbe returns the probe of target i: a GET on a fresh connection
// (keep-alives off on one shared transport), body read and discarded.
func newProbe(cfg flagConfig) pace.ProbeFunc {
	urls := make([]string, cfg.targets)
	for i := range urls {
		urls[i] = cfg.baseURL + strconv.Itoa(i)
	}
	// No Proxy: the transport must never route loopback traffic elsewhere.
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   cfg.timeout,
	}
	return func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[i], nil)
		if err != nil {
			return fmt.Errorf("target %d: %w", i, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("target %d: %w", i, err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return fmt.Errorf("target %d: reading body: %w", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("target %d: status %d", i, resp.StatusCode)
		}
		return nil
	}
}
