package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/reliabilityd/reliabilityd/config"
)

// grpcTestServer is a gRPC server on a loopback port with the standard
// health service, unless started without it.
type grpcTestServer struct {
	addr   string
	health *health.Server // nil without the health service
	// metadata receives the metadata of each call (buffered; calls beyond
	// its capacity are not recorded).
	metadata chan metadata.MD
}

type grpcServerOptions struct {
	tlsConfig *tls.Config // nil: plaintext
	noHealth  bool
	// check, when set, answers Check instead of the standard health
	// service (which health then is not).
	check func(*healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error)
}

// grpcCheckFunc is a health service whose Check is a function.
type grpcCheckFunc struct {
	healthpb.UnimplementedHealthServer
	check func(*healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error)
}

func (h grpcCheckFunc) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return h.check(req)
}

// serveGRPC starts a gRPC server, stopped when the test ends. Its health
// service reports SERVING for the server as a whole.
func serveGRPC(t *testing.T, opts grpcServerOptions) *grpcTestServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	srv := &grpcTestServer{addr: ln.Addr().String(), metadata: make(chan metadata.MD, 4)}
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		select {
		case srv.metadata <- md:
		default:
		}
		return handler(ctx, req)
	}
	serverOpts := []grpc.ServerOption{grpc.UnaryInterceptor(record)}
	if opts.tlsConfig != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(opts.tlsConfig)))
	}
	server := grpc.NewServer(serverOpts...)
	switch {
	case opts.check != nil:
		healthpb.RegisterHealthServer(server, grpcCheckFunc{check: opts.check})
	case !opts.noHealth:
		srv.health = health.NewServer()
		healthpb.RegisterHealthServer(server, srv.health)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = server.Serve(ln)
	}()
	t.Cleanup(func() {
		server.Stop()
		<-served
	})
	return srv
}

// grpcProbe completes a probe section with the defaults a loaded
// configuration would have.
func grpcProbe(probe config.GRPCProbe) config.ProbeConfig {
	if probe.IPProtocol == "" && !probe.IPProtocolFallback {
		probe.IPProtocolFallback = config.DefaultGRPCProbe.IPProtocolFallback
	}
	return config.ProbeConfig{Name: "api", GRPC: &probe}
}

func TestGRPCProber(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.leaf(t, leafOptions{notAfter: time.Now().Add(12 * time.Hour)})
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf.cert}, MinVersion: tls.VersionTLS12}
	otherCA := newTestCA(t)

	tests := []struct {
		name string
		// setup starts the peer and returns the probe's configuration and
		// an optional check of the result.
		setup            func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result))
		timeout          time.Duration // default 5 s
		wantReason       Reason        // empty: the run must succeed
		wantErr          string        // a substring of Err
		wantHealthStatus string
		wantPhases       []Phase
		wantNoPhase      []Phase
		wantTLS          bool
	}{
		{
			name: "serving",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: serveGRPC(t, grpcServerOptions{}).addr}, nil
			},
			wantHealthStatus: "SERVING",
			wantPhases:       []Phase{PhaseResolve, PhaseConnect, PhaseProcessing},
			wantNoPhase:      []Phase{PhaseTLS, PhaseTransfer},
		},
		{
			name: "named service serving",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{})
				srv.health.SetServingStatus("payments.v1.Payments", healthpb.HealthCheckResponse_SERVING)
				return config.GRPCProbe{Address: srv.addr, Service: "payments.v1.Payments"}, nil
			},
			wantHealthStatus: "SERVING",
		},
		{
			name: "not serving",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{})
				srv.health.SetServingStatus("payments.v1.Payments", healthpb.HealthCheckResponse_NOT_SERVING)
				return config.GRPCProbe{Address: srv.addr, Service: "payments.v1.Payments"}, nil
			},
			wantReason:       ReasonStatus,
			wantErr:          `health status NOT_SERVING for service "payments.v1.Payments"`,
			wantHealthStatus: "NOT_SERVING",
			wantPhases:       []Phase{PhaseResolve, PhaseConnect, PhaseProcessing},
		},
		{
			name: "whole server not serving",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{})
				srv.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
				return config.GRPCProbe{Address: srv.addr}, nil
			},
			wantReason:       ReasonStatus,
			wantErr:          `health status NOT_SERVING for the whole server (service "")`,
			wantHealthStatus: "NOT_SERVING",
		},
		{
			name: "status unknown",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{})
				srv.health.SetServingStatus("search", healthpb.HealthCheckResponse_UNKNOWN)
				return config.GRPCProbe{Address: srv.addr, Service: "search"}, nil
			},
			wantReason:       ReasonStatus,
			wantErr:          `health status UNKNOWN for service "search"`,
			wantHealthStatus: "UNKNOWN",
		},
		{
			name: "unknown service",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: serveGRPC(t, grpcServerOptions{}).addr, Service: "nope"}, nil
			},
			wantReason:       ReasonStatus,
			wantErr:          `health status SERVICE_UNKNOWN for service "nope": rpc error: code = NotFound desc = unknown service`,
			wantHealthStatus: "SERVICE_UNKNOWN",
			wantPhases:       []Phase{PhaseProcessing},
		},
		{
			name: "status outside the protocol",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{check: func(*healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
					return &healthpb.HealthCheckResponse{Status: 7}, nil
				}})
				return config.GRPCProbe{Address: srv.addr}, nil
			},
			wantReason:       ReasonStatus,
			wantErr:          `health status 7 (not a grpc.health.v1 serving status) for the whole server (service "")`,
			wantHealthStatus: "UNKNOWN",
		},
		{
			name: "call refused by the server",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{check: func(req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
					return nil, status.Error(codes.Unauthenticated, "no token for "+req.GetService())
				}})
				return config.GRPCProbe{Address: srv.addr, Service: "payments"}, func(t *testing.T, r Result) {
					want := srv.addr + ": rpc error: code = Unauthenticated desc = no token for payments"
					if !strings.HasSuffix(r.Err.Error(), want) {
						t.Errorf("Err = %v, want it to end with %q", r.Err, want)
					}
				}
			},
			wantReason: ReasonStatus,
			wantErr:    `health check of service "payments" on 127.0.0.1:`,
			wantPhases: []Phase{PhaseProcessing},
		},
		{
			name: "metadata reaches the server",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{})
				probe := config.GRPCProbe{Address: srv.addr, Metadata: map[string]string{"x-tenant": "acme", "x-token-bin": "\x00\xff"}}
				return probe, func(t *testing.T, r Result) {
					md := <-srv.metadata
					if got := md.Get("x-tenant"); len(got) != 1 || got[0] != "acme" {
						t.Errorf("x-tenant = %q, want [acme]", got)
					}
					if got := md.Get("x-token-bin"); len(got) != 1 || got[0] != "\x00\xff" {
						t.Errorf("x-token-bin = %q, want the bytes sent", got)
					}
					if got := md.Get("user-agent"); len(got) != 1 || !strings.HasPrefix(got[0], "reliabilityd grpc-go/") {
						t.Errorf("user-agent = %q, want reliabilityd first", got)
					}
					// In plaintext, :authority is the configured address.
					if got := md.Get(":authority"); len(got) != 1 || got[0] != srv.addr {
						t.Errorf(":authority = %q, want [%s]", got, srv.addr)
					}
				}
			},
			wantHealthStatus: "SERVING",
		},
		{
			name: "server down",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: tcpClosedPort(t)}, func(t *testing.T, r Result) {
					if !errors.Is(r.Err, syscall.ECONNREFUSED) {
						t.Errorf("Err = %v, want one wrapping ECONNREFUSED", r.Err)
					}
				}
			},
			wantReason:  ReasonConnect,
			wantErr:     "connecting to 127.0.0.1:",
			wantPhases:  []Phase{PhaseResolve, PhaseConnect},
			wantNoPhase: []Phase{PhaseTLS, PhaseProcessing},
		},
		{
			name: "server that never speaks",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpDrain)}, checkWithinTimeout(300 * time.Millisecond)
			},
			timeout:     300 * time.Millisecond,
			wantReason:  ReasonTimeout,
			wantErr:     "within the timeout: connected, but the server did not complete the HTTP/2 setup",
			wantPhases:  []Phase{PhaseResolve, PhaseConnect},
			wantNoPhase: []Phase{PhaseProcessing},
		},
		{
			name: "server that never answers the TLS handshake",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				probe := config.GRPCProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpDrain), TLS: true, TLSConfig: config.TLSConfig{CAFile: ca.certFile}}
				return probe, checkWithinTimeout(300 * time.Millisecond)
			},
			timeout:     300 * time.Millisecond,
			wantReason:  ReasonTimeout,
			wantErr:     "within the timeout: connected, but the TLS handshake did not complete",
			wantNoPhase: []Phase{PhaseProcessing},
		},
		{
			name: "tls",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				probe := config.GRPCProbe{
					Address:   serveGRPC(t, grpcServerOptions{tlsConfig: serverTLS}).addr,
					TLS:       true,
					TLSConfig: config.TLSConfig{CAFile: ca.certFile},
				}
				return probe, func(t *testing.T, r Result) {
					want := tlsWantExpiry{leaf: leaf.x509.NotAfter, earliest: leaf.x509.NotAfter, version: "TLS 1.3", ciphersOneOf: tls13Suites}
					want.check(t, r.TLS)
				}
			},
			wantHealthStatus: "SERVING",
			wantPhases:       []Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing},
			wantTLS:          true,
		},
		{
			name: "tls not serving keeps the TLS state",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				srv := serveGRPC(t, grpcServerOptions{tlsConfig: serverTLS})
				srv.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
				return config.GRPCProbe{Address: srv.addr, TLS: true, TLSConfig: config.TLSConfig{CAFile: ca.certFile}}, nil
			},
			wantReason:       ReasonStatus,
			wantErr:          `health status NOT_SERVING for the whole server (service "")`,
			wantHealthStatus: "NOT_SERVING",
			wantTLS:          true,
		},
		{
			name: "tls with the wrong CA",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				probe := config.GRPCProbe{
					Address:   serveGRPC(t, grpcServerOptions{tlsConfig: serverTLS}).addr,
					TLS:       true,
					TLSConfig: config.TLSConfig{CAFile: otherCA.certFile},
				}
				return probe, nil
			},
			wantReason:  ReasonTLS,
			wantErr:     "TLS handshake with 127.0.0.1: tls: failed to verify certificate: x509: certificate signed by unknown authority",
			wantPhases:  []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
			wantNoPhase: []Phase{PhaseProcessing},
		},
		{
			name: "tls to a plaintext server",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				probe := config.GRPCProbe{Address: serveGRPC(t, grpcServerOptions{}).addr, TLS: true, TLSConfig: config.TLSConfig{CAFile: ca.certFile}}
				return probe, nil
			},
			wantReason: ReasonTLS,
			wantErr:    "TLS handshake with 127.0.0.1: ",
		},
		{
			name: "plaintext to a tls server",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: serveGRPC(t, grpcServerOptions{tlsConfig: serverTLS}).addr}, nil
			},
			wantReason: ReasonProtocol,
			wantErr:    `health check of the whole server (service "") on 127.0.0.1:`,
		},
		{
			name: "no health service",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: serveGRPC(t, grpcServerOptions{noHealth: true}).addr}, nil
			},
			wantReason: ReasonProtocol,
			wantErr:    "does not serve grpc.health.v1.Health/Check: rpc error: code = Unimplemented",
			wantPhases: []Phase{PhaseProcessing},
		},
		{
			name: "address of the wrong family",
			setup: func(t *testing.T) (config.GRPCProbe, func(*testing.T, Result)) {
				return config.GRPCProbe{Address: "127.0.0.1:50051", IPProtocol: "ip6"}, nil
			},
			wantReason:  ReasonDNS,
			wantErr:     `resolving "127.0.0.1": address 127.0.0.1 is not of family ip6`,
			wantPhases:  []Phase{PhaseResolve},
			wantNoPhase: []Phase{PhaseConnect},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe, check := tt.setup(t)
			prober, err := NewGRPCProber(grpcProbe(probe), ProberDeps{})
			if err != nil {
				t.Fatalf("NewGRPCProber: %v", err)
			}
			r := probeWithin(t, prober, tt.timeout)

			checkTCPResult(t, r, tt.wantReason, tt.wantErr)
			if r.HealthStatus != tt.wantHealthStatus {
				t.Errorf("HealthStatus = %q, want %q", r.HealthStatus, tt.wantHealthStatus)
			}
			if (r.TLS != nil) != tt.wantTLS {
				t.Errorf("Result.TLS = %+v, want set: %v", r.TLS, tt.wantTLS)
			}
			for _, phase := range tt.wantPhases {
				if _, ok := r.Phases.Get(phase); !ok {
					t.Errorf("phase %s not recorded", phase)
				}
			}
			for _, phase := range tt.wantNoPhase {
				if d, ok := r.Phases.Get(phase); ok {
					t.Errorf("phase %s recorded (%v), want none", phase, d)
				}
			}
			if check != nil {
				check(t, r)
			}
		})
	}
}

// checkWithinTimeout checks a run that timed out ended soon after its
// timeout: generously, as a loaded CI machine may be slow.
func checkWithinTimeout(timeout time.Duration) func(*testing.T, Result) {
	return func(t *testing.T, r Result) {
		if r.Duration < timeout || r.Duration > timeout+3*time.Second {
			t.Errorf("Duration = %v, want about the %v timeout", r.Duration, timeout)
		}
	}
}

// TestGRPCProberServerNameFromHost checks the TLS server name defaults to
// the host of the address, resolved by the prober's own dialer.
func TestGRPCProberServerNameFromHost(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.leaf(t, leafOptions{hosts: []string{"api.test"}})
	srv := serveGRPC(t, grpcServerOptions{tlsConfig: &tls.Config{Certificates: []tls.Certificate{leaf.cert}, MinVersion: tls.VersionTLS12}})
	_, port, _ := net.SplitHostPort(srv.addr)
	resolver := tcpFakeResolver(t, net.ParseIP("127.0.0.1"), net.ParseIP("::1"))
	probe := config.GRPCProbe{Address: net.JoinHostPort("api.test", port), TLS: true, TLSConfig: config.TLSConfig{CAFile: ca.certFile}, IPProtocol: "ip4"}
	prober, err := NewGRPCProber(grpcProbe(probe), ProberDeps{Dialer: &net.Dialer{Resolver: resolver}})
	if err != nil {
		t.Fatalf("NewGRPCProber: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r := prober.Probe(ctx)
	checkTCPResult(t, r, "", "")
	if r.HealthStatus != "SERVING" {
		t.Errorf("HealthStatus = %q, want SERVING", r.HealthStatus)
	}
	// Over TLS, gRPC sends the server name as :authority.
	md := <-srv.metadata
	if got := md.Get(":authority"); len(got) != 1 || got[0] != "api.test" {
		t.Errorf(":authority = %q, want [api.test]", got)
	}
}

// TestGRPCProberFreshConnection checks each run dials a connection of its
// own and leaves no goroutine behind once the runs (successful, refused,
// timed out) and the server are done.
func TestGRPCProberFreshConnection(t *testing.T) {
	// Started first: its accept loop lives until the test ends.
	silent := serveTCP(t, "127.0.0.1:0", nil, tcpDrain)
	before := runtime.NumGoroutine()
	func() {
		srv := serveGRPCUntil(t)
		defer srv.stop()
		prober, err := NewGRPCProber(grpcProbe(config.GRPCProbe{Address: srv.addr}), ProberDeps{})
		if err != nil {
			t.Fatalf("NewGRPCProber: %v", err)
		}
		const runs = 3
		for range runs {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			r := prober.Probe(ctx)
			cancel()
			checkTCPResult(t, r, "", "")
		}
		if got := srv.connections(); got != runs {
			t.Errorf("server accepted %d connections for %d runs, want one per run", got, runs)
		}
		refused, err := NewGRPCProber(grpcProbe(config.GRPCProbe{Address: tcpClosedPort(t)}), ProberDeps{})
		if err != nil {
			t.Fatalf("NewGRPCProber: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		checkTCPResult(t, refused.Probe(ctx), ReasonConnect, "connecting to")

		unanswered, err := NewGRPCProber(grpcProbe(config.GRPCProbe{Address: silent}), ProberDeps{})
		if err != nil {
			t.Fatalf("NewGRPCProber: %v", err)
		}
		ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		checkTCPResult(t, unanswered.Probe(ctx), ReasonTimeout, "within the timeout")
	}()
	// gRPC's goroutines end asynchronously after Close: wait, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after the runs:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// grpcCountingServer is a plaintext gRPC health server that counts the
// connections it accepted; stop ends it at once (not at the test's end,
// so goroutines can be counted afterwards).
type grpcCountingServer struct {
	addr        string
	stop        func()
	connections func() int
}

func serveGRPCUntil(t *testing.T) *grpcCountingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	counting := &countingListener{Listener: ln, accepted: make(chan struct{}, 100)}
	server := grpc.NewServer()
	healthpb.RegisterHealthServer(server, health.NewServer())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = server.Serve(counting)
	}()
	return &grpcCountingServer{
		addr:        ln.Addr().String(),
		stop:        func() { server.Stop(); <-served },
		connections: func() int { return len(counting.accepted) },
	}
}

// countingListener records every accepted connection in accepted.
type countingListener struct {
	net.Listener
	accepted chan struct{}
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
	return conn, err
}

func TestGRPCProberCancel(t *testing.T) {
	// No deadline: only the cancellation can end the run. The first byte
	// of the HTTP/2 preface tells the peer the prober is past connecting.
	connected := make(chan struct{})
	addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) {
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			close(connected)
		}
		tcpDrain(conn)
	})
	prober, err := NewGRPCProber(grpcProbe(config.GRPCProbe{Address: addr}), ProberDeps{})
	if err != nil {
		t.Fatalf("NewGRPCProber: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		select {
		case <-connected:
			cancel()
		case <-ctx.Done():
		}
	}()
	done := make(chan Result, 1)
	go func() { done <- prober.Probe(ctx) }()
	select {
	case r := <-done:
		checkTCPResult(t, r, ReasonTimeout, "connected, but the server did not complete the HTTP/2 setup")
	case <-time.After(5 * time.Second):
		t.Fatal("Probe did not return after its context was cancelled")
	}
}

func TestNewGRPCProberErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.ProbeConfig
		wantErr string
	}{
		{name: "no grpc section", cfg: config.ProbeConfig{Name: "api"}, wantErr: `probe "api": no grpc section`},
		{name: "no port", cfg: grpcProbe(config.GRPCProbe{Address: "api.example"}), wantErr: `probe "api": address "api.example": `},
		{name: "empty port", cfg: grpcProbe(config.GRPCProbe{Address: "api.example:"}), wantErr: `probe "api": address "api.example:": want host:port`},
		{name: "bad ip_protocol", cfg: grpcProbe(config.GRPCProbe{Address: "api.example:443", IPProtocol: "ip5"}), wantErr: `probe "api": ip_protocol "ip5": want ip4, ip6 or empty`},
		{
			name:    "missing ca file",
			cfg:     grpcProbe(config.GRPCProbe{Address: "api.example:443", TLS: true, TLSConfig: config.TLSConfig{CAFile: "/nonexistent/ca.pem"}}),
			wantErr: `probe "api": tls_config: reading CA file: open /nonexistent/ca.pem: no such file or directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProberError(t, NewGRPCProber, tt.cfg, tt.wantErr)
		})
	}
}

// TestGRPCProberPlainIgnoresTLSConfig checks tls_config is not read when
// tls is off.
func TestGRPCProberPlainIgnoresTLSConfig(t *testing.T) {
	prober, err := NewGRPCProber(grpcProbe(config.GRPCProbe{Address: "api.example:50051", TLSConfig: config.TLSConfig{CAFile: "/nonexistent"}}), ProberDeps{})
	if err != nil {
		t.Fatalf("NewGRPCProber: %v", err)
	}
	if creds := prober.(*grpcProber).tlsCredentials; creds != nil {
		t.Errorf("TLS credentials %v, want none", creds)
	}
}

// TestGRPCExample builds the probers of examples/probes/grpc.yml: its
// certificate files exist and load. (config's TestGRPCProbeExample checks
// its values.)
func TestGRPCExample(t *testing.T) {
	checkExampleBuilds(t, "../examples/probes/grpc.yml", "grpc", 3)
}

// checkExampleBuilds loads an example configuration and builds the
// prober of each of its probes, which must be wantProbes of type typ.
func checkExampleBuilds(t *testing.T, file, typ string, wantProbes int) {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	for _, service := range cfg.Services {
		for _, probe := range service.Probes {
			if probe.Type() != typ {
				t.Errorf("probe %s is of type %q, want %q", probe.Name, probe.Type(), typ)
			}
			if _, err := NewProber(probe, ProberDeps{}); err != nil {
				t.Errorf("building probe %s: %v", probe.Name, err)
			}
			built++
		}
	}
	if built != wantProbes {
		t.Errorf("%d probes built, want %d", built, wantProbes)
	}
}
