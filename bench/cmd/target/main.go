// Command target is the benchmark's HTTP target: it answers every request
// with a small 200 "ok" and counts them, so probes are counted where they
// land rather than trusted from the prober. It also counts the connections
// it accepts, so the benchmark can check that every probe used a fresh one.
// The counts are served on a separate loopback listener so reading them is
// never counted as a probe.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// flagConfig holds the command line.
type flagConfig struct {
	listen      string
	countListen string
	addrFile    string
	maxDuration time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("target", "Counting HTTP target for the probing benchmark (loopback only).")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	var cfg flagConfig
	app.Flag("listen", "Loopback address that serves probes.").Default("127.0.0.1:0").StringVar(&cfg.listen)
	app.Flag("count.listen", "Loopback address that serves GET /count.").Default("127.0.0.1:0").StringVar(&cfg.countListen)
	app.Flag("addr-file", "File to write \"<listen addr> <count addr>\" to once both listen.").StringVar(&cfg.addrFile)
	app.Flag("max-duration", "Exit after this long even without a signal.").Default("2h").DurationVar(&cfg.maxDuration)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "target: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxDuration)
	defer cancel()
	if err := serve(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "target: %v\n", err)
		return 1
	}
	return 0
}

// serve listens on both addresses, announces them and serves until ctx is
// done.
func serve(ctx context.Context, cfg flagConfig, stdout io.Writer) error {
	probeLn, err := listenLoopback(cfg.listen)
	if err != nil {
		return err
	}
	defer probeLn.Close()
	countLn, err := listenLoopback(cfg.countListen)
	if err != nil {
		return err
	}
	defer countLn.Close()

	var counts counters
	probeSrv := &http.Server{
		Handler:           newProbeHandler(&counts.requests),
		ReadHeaderTimeout: 5 * time.Second,
		ConnState:         counts.connState,
	}
	countSrv := &http.Server{Handler: newCountHandler(&counts), ReadHeaderTimeout: 5 * time.Second}
	errs := make(chan error, 2)
	go func() { errs <- probeSrv.Serve(probeLn) }()
	go func() { errs <- countSrv.Serve(countLn) }()

	addrs := probeLn.Addr().String() + " " + countLn.Addr().String()
	if cfg.addrFile != "" {
		if err := writeFileAtomic(cfg.addrFile, addrs+"\n"); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, addrs)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = errors.Join(serveErr, probeSrv.Shutdown(shutdownCtx), countSrv.Shutdown(shutdownCtx))
	fmt.Fprintf(stdout, "served=%d connections=%d\n", counts.requests.Load(), counts.connections.Load())
	return err
}

// counters are the target's counts, updated by the probe server and read
// by the count server concurrently.
type counters struct {
	requests    atomic.Int64
	connections atomic.Int64
}

// connState counts connections as the probe server accepts them.
func (c *counters) connState(_ net.Conn, state http.ConnState) {
	if state == http.StateNew {
		c.connections.Add(1)
	}
}

// newProbeHandler answers every request with 200 "ok" and counts it. The
// count is taken before the response so a probe that got its answer has
// always been counted.
func newProbeHandler(served *atomic.Int64) http.Handler {
	body := []byte("ok\n")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

// newCountHandler serves the number of probe requests served so far on
// GET /count, and of connections accepted on GET /connections.
func newCountHandler(counts *counters) http.Handler {
	mux := http.NewServeMux()
	serveCount := func(n *atomic.Int64) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%d\n", n.Load())
		}
	}
	mux.HandleFunc("GET /count", serveCount(&counts.requests))
	mux.HandleFunc("GET /connections", serveCount(&counts.connections))
	return mux
}

// listenLoopback listens on addr, refusing anything but a loopback IP: the
// benchmark never takes traffic from off the machine.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: not a loopback IP", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	return ln, nil
}

// writeFileAtomic writes content to path through a temporary file and a
// rename, so a reader polling for path never sees it half written.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("address file %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return fmt.Errorf("address file %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("address file %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("address file %q: %w", path, err)
	}
	return nil
}
