// Command pacer drives blackbox_exporter the way Prometheus does: one
// goroutine per target, each sleeping until its own evenly spread phase,
// then a GET of /probe over a kept-alive connection to the exporter. The
// benchmark counts only the exporter's CPU, so the pacer's own cost does
// not matter beyond not starving the exporter.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	targets       int
	interval      time.Duration
	exporterURL   string
	module        string
	targetBaseURL string
	timeout       time.Duration
	maxDuration   time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("pacer", "Paced /probe driver of blackbox_exporter for the probing benchmark (loopback only).")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	var cfg flagConfig
	app.Flag("targets", "Number of targets; target i is <target-base-url><i>.").Default("1000").IntVar(&cfg.targets)
	app.Flag("interval", "Interval of each target.").Default("1s").DurationVar(&cfg.interval)
	app.Flag("exporter-url", "URL of the exporter's probe endpoint, e.g. http://127.0.0.1:9115/probe.").Required().StringVar(&cfg.exporterURL)
	app.Flag("module", "blackbox_exporter module.").Default("http_2xx").StringVar(&cfg.module)
	app.Flag("target-base-url", "URL prefix of the probed targets, e.g. http://127.0.0.1:8080/t/.").Required().StringVar(&cfg.targetBaseURL)
	app.Flag("timeout", "Scrape timeout, sent as Prometheus does.").Default("5s").DurationVar(&cfg.timeout)
	app.Flag("max-duration", "Exit after this long even without a signal.").Default("2h").DurationVar(&cfg.maxDuration)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "pacer: %v\n", err)
		return 2
	}
	for flag, u := range map[string]string{"--exporter-url": cfg.exporterURL, "--target-base-url": cfg.targetBaseURL} {
		if err := pace.CheckLoopback(u); err != nil {
			fmt.Fprintf(stderr, "pacer: %s: %v\n", flag, err)
			return 2
		}
	}
	if cfg.targets <= 0 || cfg.interval <= 0 {
		fmt.Fprintf(stderr, "pacer: --targets and --interval must be positive\n")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxDuration)
	defer cancel()

	var stats pace.Stats
	pace.Run(ctx, cfg.targets, cfg.interval, newScrape(cfg), &stats)
	fmt.Fprintln(stdout, stats.String())
	return 0
}

// probeSucceeded is the line blackbox_exporter writes when the probe
// itself (not just the scrape) succeeded.
const probeSucceeded = "\nprobe_success 1\n"

// newScrape returns the scrape of target i: GET /probe on a kept-alive
// connection to the exporter, as Prometheus keeps its scrape connections.
// It fails when the scrape fails or the exporter reports the probe failed.
func newScrape(cfg flagConfig) pace.ProbeFunc {
	urls := make([]string, cfg.targets)
	for i := range urls {
		q := url.Values{"module": {cfg.module}, "target": {cfg.targetBaseURL + strconv.Itoa(i)}}
		urls[i] = cfg.exporterURL + "?" + q.Encode()
	}
	timeoutHeader := strconv.FormatFloat(cfg.timeout.Seconds(), 'f', -1, 64)
	// No Proxy: the transport must never route loopback traffic elsewhere.
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: 2 * cfg.targets, MaxIdleConnsPerHost: max(1000, cfg.targets)},
		Timeout:   cfg.timeout + time.Second,
	}
	return func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[i], nil)
		if err != nil {
			return fmt.Errorf("target %d: %w", i, err)
		}
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutHeader)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("target %d: %w", i, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("target %d: reading scrape: %w", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("target %d: scrape status %d", i, resp.StatusCode)
		}
		if !bytes.Contains(body, []byte(probeSucceeded)) {
			return fmt.Errorf("target %d: exporter reports the probe failed", i)
		}
		return nil
	}
}
