// Package collector runs reliabilityd's synthetic probes on their schedule
// and turns their results into metrics and history. One file per probe
// type; every type implements Prober.
package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// ProbeID identifies a probe across reloads and restarts: the scheduler
// derives its phase from it, and metrics carry it as labels.
type ProbeID struct {
	Service string
	Probe   string
}

func (id ProbeID) String() string { return id.Service + "/" + id.Probe }

// Prober runs one probe. It is built once per configuration (regexps
// compiled, transports created) and then run many times.
type Prober interface {
	// Probe runs the probe once. It must return when ctx is done, whatever
	// the target does; ctx carries the probe's timeout. Probe is called
	// from one goroutine at a time for a given Prober (the scheduler never
	// overlaps a probe with itself) but different Probers run concurrently.
	Probe(ctx context.Context) Result
}

// Closer is implemented by probers that hold resources (idle keep-alive
// connections) to release when the probe is removed or replaced.
type Closer interface {
	Close()
}

// ProberDeps are what probers may use besides their configuration.
type ProberDeps struct {
	Logger *slog.Logger
	// Dialer, when set, replaces the default net.Dialer (tests).
	Dialer *net.Dialer
	// HTTPTransports, when set, lets HTTP probers share transports.
	HTTPTransports *HTTPTransports
}

// NewProberFunc builds a Prober from a probe's configuration.
type NewProberFunc func(cfg config.ProbeConfig, deps ProberDeps) (Prober, error)

// ProberTypes returns the constructors by protocol section name, as
// returned by config.ProbeConfig.Type. A fresh map on every call: callers
// may not change what others see.
func ProberTypes() map[string]NewProberFunc {
	return map[string]NewProberFunc{
		"http":        NewHTTPProber,
		"tcp":         NewTCPProber,
		"transaction": NewTransactionProber,
		"dns":         NewDNSProber,
		"grpc":        NewGRPCProber,
		"icmp":        NewICMPProber,
		"tls":         NewTLSProber,
	}
}

// NewProber builds the Prober for cfg with the constructor of its type.
func NewProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	newProber, ok := ProberTypes()[cfg.Type()]
	if !ok {
		return nil, fmt.Errorf("probe %q: unknown probe type %q", cfg.Name, cfg.Type())
	}
	return newProber(cfg, deps)
}

// runProbe times one run of a prober: run goes through the phases and
// returns the first error, setting result.Reason itself when the error's
// reason is not what ClassifyError would say.
func runProbe(ctx context.Context, run func(context.Context, *Result) error) Result {
	result := Result{Start: time.Now()}
	err := run(ctx, &result)
	result.Duration = time.Since(result.Start)
	if err != nil {
		result.Err = err
		if result.Reason == "" {
			result.Reason = ClassifyError(err, ctx.Err())
		}
		return result
	}
	result.Success = true
	return result
}

// Result is what one probe run observed. It is plain data, owned by the
// receiver once returned.
type Result struct {
	Start    time.Time
	Duration time.Duration
	Success  bool
	// Reason is why the run failed: one of the Reason constants, empty on
	// success. Its set is fixed, so it is safe as a label value.
	Reason Reason
	// Err details the failure for logs and the landing page. It never
	// holds secrets. Nil on success.
	Err error
	// Phases holds the duration of each phase the run went through.
	Phases Phases
	// StatusCode is the final HTTP status code (HTTP probes; 0 otherwise).
	StatusCode int
	// TLS describes the TLS connection, nil when none was made.
	TLS *TLSState
	// Measurement is what a capacity source read; nil for probes and for
	// failed samples.
	Measurement *Measurement
	// RecoveryPoint is when the latest good backup a backup source found
	// was taken; zero for probes and for failed checks.
	RecoveryPoint time.Time
	// Events are the good and bad events SLI queries counted, by the end
	// of the range each counts; nil for probes. A failed run may carry the
	// events of the ranges it counted before the failure.
	Events []EventCounts
	// Windows are the figures a window-mode SLI's queries read, one per
	// window that was queried successfully; nil for probes.
	Windows []WindowCounts

	// Steps holds one entry per configured step of a transaction probe,
	// in order, also for steps not reached; nil for other probe types.
	Steps []StepResult
	// DNS is what a dns probe learnt of the response; nil when no
	// response was received and for other probe types.
	DNS *DNSResult
	// Packets is what an icmp probe sent and received; nil for other
	// probe types.
	Packets *PacketResult
	// HealthStatus is the serving status a grpc probe got back
	// ("SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN"); empty when
	// none was received and for other probe types.
	HealthStatus string
}

// StepResult is the outcome of one step of a transaction.
type StepResult struct {
	// Name is the step's configured name, bounded by configuration, so it
	// is safe as a label value.
	Name string
	// Ran is false for the steps after the one that failed.
	Ran     bool
	Success bool
	// Reason is why the step failed (empty when it succeeded or did not
	// run).
	Reason   Reason
	Duration time.Duration
	// StatusCode is the step's final HTTP status code, 0 if none.
	StatusCode int
}

// DNSResult describes a DNS response.
type DNSResult struct {
	// Rcode is the response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN...).
	Rcode int
	// Record counts of the answer, authority and additional sections.
	Answer, Authority, Additional int
}

// PacketResult counts the echo requests of an icmp run and the round trip
// times of the replies (zero when none came back).
type PacketResult struct {
	Sent, Received          int
	RTTMin, RTTMean, RTTMax time.Duration
}

// Measurement is a capacity source's reading: how much of the resource is
// used and, when the source knows it, the limit (0 when it does not).
type Measurement struct {
	Usage, Limit float64
}

// EventCounts are SLO events counted from a Prometheus source's
// counters over the range [From, At]; At lies just before the range's end.
type EventCounts struct {
	From, At  time.Time
	Good, Bad uint64
}

// WindowCounts are the events a Prometheus source counted over the window
// of length Length that ends at the run's start. They are fractional:
// Prometheus extrapolates increase().
type WindowCounts struct {
	Length      time.Duration
	Good, Total float64
}

// TLSState is what a probe learnt of the TLS connection it made.
type TLSState struct {
	Version     string
	CipherSuite string
	// LeafExpiry is the NotAfter of the server's certificate.
	LeafExpiry time.Time
	// EarliestExpiry is the earliest NotAfter in the verified chain (or in
	// the presented chain when verification is skipped).
	EarliestExpiry time.Time
}

// NewTLSState extracts what reliabilityd reports of a TLS connection.
func NewTLSState(cs *tls.ConnectionState) *TLSState {
	state := &TLSState{
		Version:     tls.VersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite),
	}
	if len(cs.PeerCertificates) > 0 {
		state.LeafExpiry = cs.PeerCertificates[0].NotAfter
	}
	chain := cs.PeerCertificates
	if len(cs.VerifiedChains) > 0 {
		chain = cs.VerifiedChains[0]
	}
	for _, cert := range chain {
		if state.EarliestExpiry.IsZero() || cert.NotAfter.Before(state.EarliestExpiry) {
			state.EarliestExpiry = cert.NotAfter
		}
	}
	return state
}

// Reason is the bounded cause of a failed probe run, exported as the
// `reason` label of probe_failures_total.
type Reason string

// The reasons a probe run can fail for. Every prober uses only these.
const (
	ReasonDNS          Reason = "dns"            // the name did not resolve
	ReasonConnect      Reason = "connect"        // refused, unreachable, reset while connecting
	ReasonTLS          Reason = "tls"            // handshake or certificate verification failed
	ReasonTimeout      Reason = "timeout"        // the probe's timeout ran out
	ReasonStatus       Reason = "status"         // a status not listed as valid: HTTP status code, DNS rcode, gRPC serving status
	ReasonAssertion    Reason = "assertion"      // a body, header or expect regexp check failed
	ReasonBodyTooLarge Reason = "body_too_large" // the body exceeded body_size_limit
	ReasonRedirect     Reason = "redirect"       // too many redirects, or a redirect not followed where one is required
	ReasonProtocol     Reason = "protocol"       // malformed response, connection closed or reset mid-exchange
	ReasonSecret       Reason = "secret"         // a credentials file could not be read
	ReasonNotFound     Reason = "not_found"      // a capacity or backup source finds no path, process or file
	ReasonPermission   Reason = "permission"     // a capacity or backup source may not be read; an ICMP socket may not be opened or a send was refused
	ReasonInternal     Reason = "internal"       // a bug or an unexpected local error
	ReasonPacketLoss   Reason = "packet_loss"    // more ICMP echo requests went unanswered than allowed
	ReasonCertExpiry   Reason = "cert_expiry"    // a certificate expires sooner than the probe allows
	ReasonEmpty        Reason = "empty"          // a Prometheus source query returned no sample
	ReasonMultiple     Reason = "multiple"       // a Prometheus source query returned more than one series
	ReasonNaN          Reason = "nan"            // a Prometheus source query returned NaN, an infinity or a value out of range
)

// Reasons returns every Reason, in a stable order. The slice is shared:
// callers must not modify it.
func Reasons() []Reason { return reasonIndex[:] }

// reasonIndex numbers the reasons: per-probe failure counters are a
// fixed-size array indexed by it. Read-only.
var reasonIndex = [...]Reason{
	ReasonDNS, ReasonConnect, ReasonTLS, ReasonTimeout, ReasonStatus, ReasonAssertion,
	ReasonBodyTooLarge, ReasonRedirect, ReasonProtocol, ReasonSecret, ReasonNotFound, ReasonPermission, ReasonInternal,
	ReasonPacketLoss, ReasonCertExpiry, ReasonEmpty, ReasonMultiple, ReasonNaN,
}

// Phase is a step of a probe run with its own duration.
type Phase uint8

// The phases, in the order a run goes through them.
const (
	PhaseResolve    Phase = iota // name resolution
	PhaseConnect                 // TCP connect
	PhaseTLS                     // TLS handshake
	PhaseProcessing              // request written until the first response byte
	PhaseTransfer                // first response byte until the body is read
	numPhases
)

var phaseNames = [numPhases]string{"resolve", "connect", "tls", "processing", "transfer"}

func (p Phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// AllPhases returns every Phase in order.
func AllPhases() []Phase {
	return []Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing, PhaseTransfer}
}

// Phases records the duration of the phases a run went through. The zero
// value records none. Fixed size, so a Result allocates nothing for it.
type Phases struct {
	durations [numPhases]time.Duration
	set       uint8
}

// Add adds d to phase p (redirects go through the phases several times).
func (p *Phases) Add(phase Phase, d time.Duration) {
	p.durations[phase] += d
	p.set |= 1 << phase
}

// Get returns the duration of phase p and whether the run went through it.
func (p Phases) Get(phase Phase) (time.Duration, bool) {
	return p.durations[phase], p.set&(1<<phase) != 0
}

// ClassifyError maps a network error to the Reason it stands for. ctxErr
// is the probe context's Err(), so a deadline shows as a timeout whatever
// layer noticed it.
func ClassifyError(err error, ctxErr error) Reason {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var opErr *net.OpError
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return ReasonTLS
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert sent by the peer, e.g. "certificate required".
		return ReasonTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return ReasonConnect
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ReasonConnect
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ReasonProtocol
	}
	return ReasonInternal
}
