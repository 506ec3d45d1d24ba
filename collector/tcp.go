package collector

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// Bounds of what a TCP dialogue reads, so a chatty or hostile peer costs a
// bounded amount of memory and work per run.
const (
	// tcpMaxLineBytes bounds one line, newline included. A longer line
	// fails the run with ReasonProtocol: the peer is not speaking the line
	// protocol we were told to expect, which is a malformed response
	// rather than a failed expectation.
	tcpMaxLineBytes = 64 << 10
	// tcpMaxReadBytes bounds everything read in one run. Reaching it fails
	// the run with ReasonAssertion: every line was well formed, the
	// expected one just did not come within the budget.
	tcpMaxReadBytes = 1 << 20
)

// errReadBudget marks the end of the per-run read budget, so it is not
// mistaken for the peer closing the connection.
var errReadBudget = errors.New("read budget exhausted")

// tcpProber runs a `tcp` probe. Everything derived from the configuration
// is built once in NewTCPProber and only read by Probe.
type tcpProber struct {
	host, port         string
	ipProtocol         string
	ipProtocolFallback bool
	// tlsConfig is nil for plain TCP. Shared by runs, never modified.
	tlsConfig *tls.Config
	steps     []config.QueryResponse
	dialer    *net.Dialer
	// lineReaders recycles the 64 KiB line readers of the dialogue: one per
	// run would be 64 MB/s of garbage at 1,000 runs/s. One pool per
	// prober: no state shared between probers.
	lineReaders sync.Pool
}

// NewTCPProber builds the prober of a `tcp` probe.
func NewTCPProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	if cfg.TCP == nil {
		return nil, fmt.Errorf("probe %q: no tcp section", cfg.Name)
	}
	host, port, err := net.SplitHostPort(cfg.TCP.Address)
	if err != nil {
		return nil, fmt.Errorf("probe %q: address %q: %w", cfg.Name, cfg.TCP.Address, err)
	}
	if host == "" || port == "" {
		return nil, fmt.Errorf("probe %q: address %q: want host:port", cfg.Name, cfg.TCP.Address)
	}
	p := &tcpProber{
		host:               host,
		port:               port,
		ipProtocol:         cfg.TCP.IPProtocol,
		ipProtocolFallback: cfg.TCP.IPProtocolFallback,
		steps:              cfg.TCP.QueryResponse,
		dialer:             deps.Dialer,
	}
	if p.dialer == nil {
		p.dialer = &net.Dialer{}
	}
	if cfg.TCP.TLS {
		p.tlsConfig, err = NewTLSConfig(cfg.TCP.TLSConfig, host)
		if err != nil {
			return nil, fmt.Errorf("probe %q: tls_config: %w", cfg.Name, err)
		}
	}
	return p, nil
}

// Probe implements Prober.
func (p *tcpProber) Probe(ctx context.Context) Result {
	return runProbe(ctx, p.run)
}

// run goes through the phases of one probe. It returns the first error;
// when that error's Reason is not what ClassifyError would say, it sets
// result.Reason itself.
func (p *tcpProber) run(ctx context.Context, result *Result) error {
	conn, err := p.connect(ctx, result)
	if err != nil {
		return err
	}
	// The raw connection is closed, even over TLS: tls.Conn.Close would
	// first send close_notify under its own 5 s write deadline, which could
	// outlast the probe's timeout.
	defer conn.Close()

	// Every read and write below is bound by ctx: by its deadline, and by
	// its cancellation through an already-passed deadline.
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return fmt.Errorf("setting connection deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if p.tlsConfig != nil {
		tlsConn, err := p.handshake(ctx, conn, result)
		if err != nil {
			return err
		}
		conn = tlsConn
	}
	return p.dialogue(conn, result)
}

// connect resolves the host and dials it, recording both phases.
func (p *tcpProber) connect(ctx context.Context, result *Result) (net.Conn, error) {
	resolveStart := time.Now()
	addr, err := resolveIP(ctx, p.dialer.Resolver, p.host, p.ipProtocol, p.ipProtocolFallback)
	result.Phases.Add(PhaseResolve, time.Since(resolveStart))
	if err != nil {
		// Whatever went wrong resolving (a lookup failure or an address
		// of the wrong family) means the name gave no usable address.
		if result.Reason = ClassifyError(err, ctx.Err()); result.Reason == ReasonInternal {
			result.Reason = ReasonDNS
		}
		return nil, fmt.Errorf("resolving %q: %w", p.host, err)
	}

	connectStart := time.Now()
	conn, err := p.dialer.DialContext(ctx, "tcp", net.JoinHostPort(addr.String(), p.port))
	result.Phases.Add(PhaseConnect, time.Since(connectStart))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", net.JoinHostPort(addr.String(), p.port), err)
	}
	return conn, nil
}

// handshake runs the TLS handshake over conn, recording its phase and, on
// success, the TLS state.
func (p *tcpProber) handshake(ctx context.Context, conn net.Conn, result *Result) (net.Conn, error) {
	return handshakeTLS(ctx, conn, p.tlsConfig, result)
}

// dialogue runs the query_response steps in order: each awaits its
// expected line, if any, then sends its bytes, if any.
func (p *tcpProber) dialogue(conn net.Conn, result *Result) error {
	if len(p.steps) == 0 {
		return nil
	}
	budget := &budgetReader{r: conn, left: tcpMaxReadBytes}
	lines, _ := p.lineReaders.Get().(*bufio.Reader)
	if lines == nil {
		lines = bufio.NewReaderSize(budget, tcpMaxLineBytes)
	} else {
		lines.Reset(budget)
	}
	defer func() {
		lines.Reset(nil) // drop the connection before pooling
		p.lineReaders.Put(lines)
	}()
	for i, step := range p.steps {
		if step.Expect.Regexp != nil {
			if err := expectLine(lines, step.Expect, result); err != nil {
				return fmt.Errorf("query_response[%d]: %w", i, err)
			}
		}
		if step.Send != "" {
			if _, err := io.WriteString(conn, step.Send); err != nil {
				return fmt.Errorf("query_response[%d]: sending: %w", i, err)
			}
		}
	}
	return nil
}

// expectLine reads lines until one matches expect. Lines are matched
// without their line ending ("\n" or "\r\n"). A last line the peer ends by
// closing the connection is matched too, but never a partial line cut by
// a timeout or the read budget: it may not be what the peer meant.
func expectLine(lines *bufio.Reader, expect config.Regexp, result *Result) error {
	for {
		line, err := lines.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			result.Reason = ReasonProtocol
			return fmt.Errorf("expecting /%s/: line longer than %d bytes", expect, tcpMaxLineBytes)
		}
		complete := err == nil || (errors.Is(err, io.EOF) && len(line) > 0)
		if complete && expect.Match(trimLineEnding(line)) {
			return nil
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			result.Reason = ReasonAssertion
			return fmt.Errorf("expected /%s/ not seen before connection closed", expect)
		case errors.Is(err, errReadBudget):
			result.Reason = ReasonAssertion
			return fmt.Errorf("expected /%s/ not seen in the first %d bytes read", expect, tcpMaxReadBytes)
		default:
			return fmt.Errorf("expecting /%s/: %w", expect, err)
		}
	}
}

func trimLineEnding(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// budgetReader reads at most left bytes from r, then fails with
// errReadBudget (not io.EOF, which means the peer closed).
type budgetReader struct {
	r    io.Reader
	left int
}

func (b *budgetReader) Read(buf []byte) (int, error) {
	if b.left <= 0 {
		return 0, errReadBudget
	}
	if len(buf) > b.left {
		buf = buf[:b.left]
	}
	n, err := b.r.Read(buf)
	b.left -= n
	return n, err
}
