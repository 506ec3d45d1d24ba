package collector

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/reliabilityd/reliabilityd/config"
)

// grpcConnectTimeout is the connect timeout handed to gRPC. It is longer
// than any probe's timeout (at most its interval, at most a year), so a
// connection attempt only ends with the probe's context, through
// ClientConn.Close, and never through gRPC's default 20 s.
const grpcConnectTimeout = time.Duration(config.MaxProbeInterval)

// grpcProber runs a `grpc` probe: one grpc.health.v1.Health/Check call
// over a connection of its own. Everything derived from the configuration
// is built once in NewGRPCProber and only read by Probe.
type grpcProber struct {
	// address is what gRPC dials (and sends as :authority); the dialer
	// resolves host itself, so it can time resolution and honour
	// ip_protocol.
	address, host, port string
	ipProtocol          string
	ipProtocolFallback  bool
	service             string
	// metadata is sent with every call; nil when none is configured.
	// Read-only: gRPC only reads outgoing metadata.
	metadata metadata.MD
	// tlsCredentials is nil for plaintext (h2c). Safe for concurrent use.
	tlsCredentials credentials.TransportCredentials
	// serverName is the TLS server name, for messages.
	serverName string
	dialer     *net.Dialer
}

// NewGRPCProber builds the prober of a `grpc` probe.
func NewGRPCProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	if cfg.GRPC == nil {
		return nil, fmt.Errorf("probe %q: no grpc section", cfg.Name)
	}
	host, port, err := splitHostPort(cfg.GRPC.Address)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	if err := checkIPProtocol(cfg.GRPC.IPProtocol); err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	p := &grpcProber{
		address:            cfg.GRPC.Address,
		host:               host,
		port:               port,
		ipProtocol:         cfg.GRPC.IPProtocol,
		ipProtocolFallback: cfg.GRPC.IPProtocolFallback,
		service:            cfg.GRPC.Service,
		dialer:             deps.Dialer,
	}
	if p.dialer == nil {
		p.dialer = &net.Dialer{}
	}
	if len(cfg.GRPC.Metadata) > 0 {
		p.metadata = metadata.New(cfg.GRPC.Metadata)
	}
	if cfg.GRPC.TLS {
		tlsConfig, err := NewTLSConfig(cfg.GRPC.TLSConfig, host)
		if err != nil {
			return nil, fmt.Errorf("probe %q: tls_config: %w", cfg.Name, err)
		}
		// NewTLS clones tlsConfig and adds h2 to its ALPN protocols.
		p.tlsCredentials = credentials.NewTLS(tlsConfig)
		p.serverName = tlsConfig.ServerName
	}
	return p, nil
}

// Probe implements Prober.
func (p *grpcProber) Probe(ctx context.Context) Result {
	return runProbe(ctx, p.run)
}

// run makes a fresh connection, calls Check over it and closes it. Every
// run measures its own connection, as the http probe does without
// keep_alive.
func (p *grpcProber) run(ctx context.Context, result *Result) error {
	attempt := &grpcAttempt{prober: p}
	conn, err := grpc.NewClient("passthrough:///"+p.address, p.dialOptions(attempt)...)
	if err != nil {
		result.Reason = ReasonInternal
		return fmt.Errorf("creating gRPC client for %s: %w", p.address, err)
	}
	// Close cancels a dial or handshake still in progress, so nothing of
	// the run outlives ctx for long; it does not wait for them to end.
	defer conn.Close()

	ready := awaitConnection(ctx, conn)
	callCtx := ctx
	if p.metadata != nil {
		callCtx = metadata.NewOutgoingContext(ctx, p.metadata)
	}
	var server peer.Peer
	start := time.Now()
	response, err := healthpb.NewHealthClient(conn).Check(callCtx,
		&healthpb.HealthCheckRequest{Service: p.service}, grpc.WaitForReady(false), grpc.Peer(&server))
	if ready {
		result.Phases.Add(PhaseProcessing, time.Since(start))
	}
	// What the dialer saw until now explains a failed call; a reconnection
	// attempt gRPC might start later is none of this run's business.
	seen := attempt.snapshot()
	for _, phase := range []Phase{PhaseResolve, PhaseConnect, PhaseTLS} {
		if d, ok := seen.phases.Get(phase); ok {
			result.Phases.Add(phase, d)
		}
	}
	if info, ok := server.AuthInfo.(credentials.TLSInfo); ok {
		result.TLS = NewTLSState(&info.State)
	}
	if err != nil {
		return p.callError(ctx, err, ready, &seen, result)
	}
	return p.checkStatus(response.GetStatus(), result)
}

// dialOptions returns the options of a run's connection: the run's dialer
// and credentials, and none of gRPC's own machinery that would make a run
// depend on earlier ones (service config, retries, proxies).
func (p *grpcProber) dialOptions(attempt *grpcAttempt) []grpc.DialOption {
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if p.tlsCredentials != nil {
		creds = &grpcTimedCredentials{TransportCredentials: p.tlsCredentials, attempt: attempt}
	}
	return []grpc.DialOption{
		grpc.WithContextDialer(attempt.dial),
		grpc.WithTransportCredentials(creds),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(),
		grpc.WithNoProxy(),
		grpc.WithUserAgent(defaultUserAgent),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: grpcConnectTimeout}),
	}
}

// awaitConnection starts connecting and waits until the connection is
// ready, has failed, or ctx is done. It reports whether it became ready,
// so the call's duration is the processing phase alone.
func awaitConnection(ctx context.Context, conn *grpc.ClientConn) bool {
	conn.Connect()
	// Idle, Connecting, then Ready or TransientFailure: a handful of
	// changes at most before the loop returns.
	for range 8 {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		}
		if !conn.WaitForStateChange(ctx, state) {
			return false
		}
	}
	return conn.GetState() == connectivity.Ready
}

// checkStatus judges the serving status of a response.
func (p *grpcProber) checkStatus(serving healthpb.HealthCheckResponse_ServingStatus, result *Result) error {
	name, known := healthpb.HealthCheckResponse_ServingStatus_name[int32(serving)]
	if !known {
		// A status this version of the protocol does not define: the
		// server does not say it serves.
		result.HealthStatus = healthpb.HealthCheckResponse_UNKNOWN.String()
		result.Reason = ReasonStatus
		return fmt.Errorf("health status %d (not a grpc.health.v1 serving status) for %s", serving, p.serviceName())
	}
	result.HealthStatus = name
	if serving != healthpb.HealthCheckResponse_SERVING {
		result.Reason = ReasonStatus
		return fmt.Errorf("health status %s for %s", name, p.serviceName())
	}
	return nil
}

// callError explains a failed Check call and sets its Reason. The status
// gRPC returns for a failed connection only carries the dial or handshake
// error as text: seen holds the error itself.
func (p *grpcProber) callError(ctx context.Context, err error, ready bool, seen *grpcSeen, result *Result) error {
	code := status.Code(err)
	switch {
	case ctx.Err() != nil || code == codes.DeadlineExceeded:
		result.Reason = ReasonTimeout
		return fmt.Errorf("no health check response from %s within the timeout: %s", p.address, seen.stage(ready, p.tlsCredentials != nil))
	case seen.dialErr != nil:
		result.Reason = seen.dialReason
		return seen.dialErr
	case seen.handshakeErr != nil:
		result.Reason = ReasonTLS
		return fmt.Errorf("TLS handshake with %s: %w", p.serverName, seen.handshakeErr)
	case code == codes.NotFound:
		// grpc.health.v1: Check answers NotFound for a service the server
		// does not know, which Watch reports as SERVICE_UNKNOWN.
		result.HealthStatus = healthpb.HealthCheckResponse_SERVICE_UNKNOWN.String()
		result.Reason = ReasonStatus
		return fmt.Errorf("health status SERVICE_UNKNOWN for %s: %w", p.serviceName(), err)
	case code == codes.Unimplemented:
		result.Reason = ReasonProtocol
		return fmt.Errorf("%s does not serve grpc.health.v1.Health/Check: %w", p.address, err)
	case code == codes.Unavailable, code == codes.Internal, code == codes.Unknown, code == codes.DataLoss:
		// The connection was made but broke, or the peer's answer was not
		// gRPC (an HTTP/1 server, a proxy's error page).
		result.Reason = ReasonProtocol
		return fmt.Errorf("health check of %s on %s: %w", p.serviceName(), p.address, err)
	}
	// Any other code is the server's own answer (Unauthenticated,
	// PermissionDenied, ResourceExhausted...): a status, as an HTTP 401
	// or 403 is for the http probe.
	result.Reason = ReasonStatus
	return fmt.Errorf("health check of %s on %s: %w", p.serviceName(), p.address, err)
}

// serviceName names the service checked, for messages.
func (p *grpcProber) serviceName() string {
	if p.service == "" {
		return `the whole server (service "")`
	}
	return "service " + strconv.Quote(p.service)
}

// grpcAttempt records what the dialer and the TLS credentials of one run
// saw. gRPC calls them from its own goroutines, hence the lock.
type grpcAttempt struct {
	prober *grpcProber
	mu     sync.Mutex
	seen   grpcSeen
}

// grpcSeen is what a run's connection attempts went through.
type grpcSeen struct {
	phases                    Phases
	resolved, dialed, tlsDone bool
	// dialErr is the first failed resolution or dial, with its Reason.
	dialErr    error
	dialReason Reason
	// handshakeErr is the first failed TLS handshake.
	handshakeErr error
}

// stage says how far the connection got, for a timeout's message.
func (s *grpcSeen) stage(ready, overTLS bool) string {
	switch {
	case ready:
		return "the connection was ready, the call got no answer"
	case s.tlsDone || (s.dialed && !overTLS):
		return "connected, but the server did not complete the HTTP/2 setup"
	case s.dialed:
		return "connected, but the TLS handshake did not complete"
	case s.resolved:
		return "resolved, but the TCP connection did not complete"
	}
	return "the name did not resolve"
}

func (a *grpcAttempt) snapshot() grpcSeen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen
}

// dial is the run's gRPC dialer: the tcp probe's resolve and connect
// steps through the prober's net.Dialer, timed. gRPC passes the
// address it was given, the prober's own.
func (a *grpcAttempt) dial(ctx context.Context, _ string) (net.Conn, error) {
	p := a.prober
	var phases Phases
	conn, reason, err := dialHost(ctx, p.dialer, p.host, p.port, p.ipProtocol, p.ipProtocolFallback, &phases)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, phase := range []Phase{PhaseResolve, PhaseConnect} {
		if d, ok := phases.Get(phase); ok {
			a.seen.phases.Add(phase, d)
		}
	}
	_, reachedConnect := phases.Get(PhaseConnect)
	a.seen.resolved = a.seen.resolved || reachedConnect
	a.seen.dialed = a.seen.dialed || err == nil
	if err != nil && a.seen.dialErr == nil {
		a.seen.dialErr, a.seen.dialReason = err, reason
	}
	return conn, err
}

func (a *grpcAttempt) handshook(d time.Duration, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen.phases.Add(PhaseTLS, d)
	a.seen.tlsDone = a.seen.tlsDone || err == nil
	if err != nil && a.seen.handshakeErr == nil {
		a.seen.handshakeErr = err
	}
}

// grpcTimedCredentials are TLS credentials that time the handshake and
// keep its error for the run.
type grpcTimedCredentials struct {
	credentials.TransportCredentials
	attempt *grpcAttempt
}

// ClientHandshake implements credentials.TransportCredentials.
func (c *grpcTimedCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	start := time.Now()
	tlsConn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	c.attempt.handshook(time.Since(start), err)
	return tlsConn, info, err
}

// Clone implements credentials.TransportCredentials, keeping the timing.
func (c *grpcTimedCredentials) Clone() credentials.TransportCredentials {
	return &grpcTimedCredentials{TransportCredentials: c.TransportCredentials.Clone(), attempt: c.attempt}
}

var _ credentials.TransportCredentials = (*grpcTimedCredentials)(nil)
