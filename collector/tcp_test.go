package collector

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// serveTCP runs handle for every connection accepted on a loopback
// listener at addr ("127.0.0.1:0" for any port), over TLS when tlsConfig is
// set, and returns the listener's address. The listener and connections
// are closed, and handlers waited for, when the test ends.
func serveTCP(t *testing.T, addr string, tlsConfig *tls.Config, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 { // more than any test dials
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				// Bounds a handler whatever the prober does.
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if tlsConn, ok := conn.(*tls.Conn); ok && tlsConn.Handshake() != nil {
					return
				}
				handle(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// tcpDrain reads until the prober closes the connection, answering nothing.
func tcpDrain(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }

// tcpSMTPLike greets, answers QUIT with 221 and records what it read.
func tcpSMTPLike(received chan<- string) func(net.Conn) {
	return func(conn net.Conn) {
		if _, err := io.WriteString(conn, "220 ok ESMTP\r\n"); err != nil {
			return
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		received <- line
		if err == nil && line == "QUIT\r\n" {
			_, _ = io.WriteString(conn, "221 bye\r\n")
		}
	}
}

// tcpClosedPort returns a loopback address nothing listens on.
func tcpClosedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func tcpRegexp(t *testing.T, expr string) config.Regexp {
	t.Helper()
	return config.Regexp{Regexp: regexp.MustCompile(expr)}
}

func tcpProbe(probe config.TCPProbe) config.ProbeConfig {
	if probe.IPProtocol == "" && !probe.IPProtocolFallback {
		probe.IPProtocolFallback = config.DefaultTCPProbe.IPProtocolFallback
	}
	return config.ProbeConfig{Name: "smtp", TCP: &probe}
}

func TestTCPProber(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.leaf(t, leafOptions{})
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf.cert}, MinVersion: tls.VersionTLS12}
	selfSigned := &tls.Config{Certificates: []tls.Certificate{selfSignedLeaf(t, leafOptions{}).cert}, MinVersion: tls.VersionTLS12}
	smtpDialogue := func(t *testing.T) []config.QueryResponse {
		return []config.QueryResponse{
			{Expect: tcpRegexp(t, "^220 "), Send: "QUIT\r\n"},
			{Expect: tcpRegexp(t, "^221 ")},
		}
	}

	tests := []struct {
		name string
		// setup starts the peer and returns the probe's configuration and
		// an optional check of the result.
		setup       func(t *testing.T) (config.TCPProbe, func(t *testing.T, r Result))
		timeout     time.Duration // default 5 s
		wantReason  Reason        // empty: the run must succeed
		wantErr     string
		wantPhases  []Phase
		wantNoPhase []Phase
	}{
		{
			name: "connect ok",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				return config.TCPProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpDrain)}, nil
			},
			wantPhases:  []Phase{PhaseResolve, PhaseConnect},
			wantNoPhase: []Phase{PhaseTLS},
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				return config.TCPProbe{Address: tcpClosedPort(t)}, nil
			},
			wantReason: ReasonConnect,
			wantErr:    "connecting to 127.0.0.1:",
			wantPhases: []Phase{PhaseResolve, PhaseConnect},
		},
		{
			name: "tls with self-signed certificate",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				return config.TCPProbe{Address: serveTCP(t, "127.0.0.1:0", selfSigned, tcpDrain), TLS: true}, nil
			},
			wantReason: ReasonTLS,
			wantErr:    "TLS handshake with 127.0.0.1: tls: failed to verify certificate",
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "tls peer that does not speak tls",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				return config.TCPProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpSMTPLike(make(chan string, 1))), TLS: true}, nil
			},
			wantReason: ReasonTLS,
			wantErr:    "TLS handshake with 127.0.0.1",
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "tls with ca reports expiry",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				probe := config.TCPProbe{
					Address:   serveTCP(t, "127.0.0.1:0", serverTLS, tcpDrain),
					TLS:       true,
					TLSConfig: config.TLSConfig{CAFile: ca.certFile},
				}
				return probe, func(t *testing.T, r Result) {
					if r.TLS == nil {
						t.Fatal("Result.TLS = nil, want the TLS state")
					}
					wantEarliest := leaf.x509.NotAfter
					if ca.cert.NotAfter.Before(wantEarliest) {
						wantEarliest = ca.cert.NotAfter
					}
					if !r.TLS.LeafExpiry.Equal(leaf.x509.NotAfter) || !r.TLS.EarliestExpiry.Equal(wantEarliest) {
						t.Errorf("expiry leaf %v earliest %v, want %v and %v", r.TLS.LeafExpiry, r.TLS.EarliestExpiry, leaf.x509.NotAfter, wantEarliest)
					}
					if r.TLS.Version != "TLS 1.3" || r.TLS.CipherSuite == "" {
						t.Errorf("TLS version %q cipher %q, want TLS 1.3 and a suite", r.TLS.Version, r.TLS.CipherSuite)
					}
				}
			},
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "smtp-like dialogue",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				received := make(chan string, 1)
				probe := config.TCPProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpSMTPLike(received)), QueryResponse: smtpDialogue(t)}
				return probe, func(t *testing.T, r Result) {
					if got := <-received; got != "QUIT\r\n" {
						t.Errorf("server read %q, want the send bytes as given, %q", got, "QUIT\r\n")
					}
				}
			},
			wantPhases:  []Phase{PhaseResolve, PhaseConnect},
			wantNoPhase: []Phase{PhaseTLS},
		},
		{
			name: "smtp-like dialogue over tls",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				received := make(chan string, 1)
				probe := config.TCPProbe{
					Address:       serveTCP(t, "127.0.0.1:0", serverTLS, tcpSMTPLike(received)),
					TLS:           true,
					TLSConfig:     config.TLSConfig{CAFile: ca.certFile},
					QueryResponse: smtpDialogue(t),
				}
				return probe, func(t *testing.T, r Result) {
					if got := <-received; got != "QUIT\r\n" {
						t.Errorf("server read %q, want %q", got, "QUIT\r\n")
					}
					if r.TLS == nil {
						t.Error("Result.TLS = nil, want the TLS state")
					}
				}
			},
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "expected line after others",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) {
					_, _ = io.WriteString(conn, "220-hello\r\n220-more\nSSH-2.0-OpenSSH_9.6")
				})
				return config.TCPProbe{Address: addr, QueryResponse: []config.QueryResponse{
					{Expect: tcpRegexp(t, "^220-more$")},
					// The last line, ended by the peer closing, counts.
					{Expect: tcpRegexp(t, "^SSH-2.0-")},
				}}, nil
			},
		},
		{
			name: "expect miss",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) { _, _ = io.WriteString(conn, "554 go away\r\n") })
				return config.TCPProbe{Address: addr, QueryResponse: smtpDialogue(t)}, nil
			},
			wantReason: ReasonAssertion,
			wantErr:    "query_response[0]: expected /^220 / not seen before connection closed",
		},
		{
			name: "peer never answers",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				return config.TCPProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpDrain), QueryResponse: smtpDialogue(t)}, func(t *testing.T, r Result) {
					if r.Duration < 200*time.Millisecond || r.Duration > 2*time.Second {
						t.Errorf("Duration = %v, want about the 200ms timeout", r.Duration)
					}
					if !errors.Is(r.Err, os.ErrDeadlineExceeded) {
						t.Errorf("Err = %v, want one wrapping os.ErrDeadlineExceeded", r.Err)
					}
				}
			},
			timeout:    200 * time.Millisecond,
			wantReason: ReasonTimeout,
			wantErr:    "query_response[0]: expecting /^220 /",
		},
		{
			// Longer than tcpMaxLineBytes: protocol, see tcpMaxLineBytes.
			name: "line longer than the bound",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) {
					_, _ = io.WriteString(conn, "220 "+strings.Repeat("a", tcpMaxLineBytes)+"\r\n")
				})
				return config.TCPProbe{Address: addr, QueryResponse: smtpDialogue(t)}, nil
			},
			wantReason: ReasonProtocol,
			wantErr:    fmt.Sprintf("query_response[0]: expecting /^220 /: line longer than %d bytes", tcpMaxLineBytes),
		},
		{
			// Short lines past tcpMaxReadBytes: assertion, see tcpMaxReadBytes.
			name: "read budget exhausted",
			setup: func(t *testing.T) (config.TCPProbe, func(*testing.T, Result)) {
				addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) {
					line := strings.Repeat("x", 1023) + "\n"
					for range 2 * tcpMaxReadBytes / len(line) { // until the prober hangs up
						if _, err := io.WriteString(conn, line); err != nil {
							return
						}
					}
				})
				return config.TCPProbe{Address: addr, QueryResponse: smtpDialogue(t)}, nil
			},
			wantReason: ReasonAssertion,
			wantErr:    fmt.Sprintf("query_response[0]: expected /^220 / not seen in the first %d bytes read", tcpMaxReadBytes),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe, check := tt.setup(t)
			prober, err := NewTCPProber(tcpProbe(probe), ProberDeps{})
			if err != nil {
				t.Fatalf("NewTCPProber: %v", err)
			}
			r := probeWithin(t, prober, tt.timeout)

			checkTCPResult(t, r, tt.wantReason, tt.wantErr)
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

func checkTCPResult(t *testing.T, r Result, wantReason Reason, wantErr string) {
	t.Helper()
	if r.Start.IsZero() || r.Duration <= 0 {
		t.Errorf("Start %v Duration %v, want both set", r.Start, r.Duration)
	}
	if wantReason == "" {
		if !r.Success || r.Reason != "" || r.Err != nil {
			t.Fatalf("Success %v Reason %q Err %v, want success", r.Success, r.Reason, r.Err)
		}
		return
	}
	if r.Success || r.Reason != wantReason {
		t.Fatalf("Success %v Reason %q Err %v, want failure with reason %q", r.Success, r.Reason, r.Err, wantReason)
	}
	if r.Err == nil || !strings.Contains(r.Err.Error(), wantErr) {
		t.Errorf("Err = %v, want one containing %q", r.Err, wantErr)
	}
}

func TestTCPProberCancel(t *testing.T) {
	// The prober's first send tells the peer it is past connecting and
	// about to wait for the reply, so the cancellation hits the read.
	waiting := make(chan struct{})
	addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) {
		if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
			close(waiting)
		}
		tcpDrain(conn)
	})
	prober, err := NewTCPProber(tcpProbe(config.TCPProbe{
		Address:       addr,
		QueryResponse: []config.QueryResponse{{Send: "HELO\n"}, {Expect: tcpRegexp(t, "^220")}},
	}), ProberDeps{})
	if err != nil {
		t.Fatalf("NewTCPProber: %v", err)
	}
	// No deadline: only the cancellation can end the read.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		select {
		case <-waiting:
			cancel()
		case <-ctx.Done(): // the probe failed early; the test reports it
		}
	}()
	done := make(chan Result, 1)
	go func() { done <- prober.Probe(ctx) }()
	select {
	case r := <-done:
		checkTCPResult(t, r, ReasonTimeout, "query_response[1]: expecting /^220/")
	case <-time.After(5 * time.Second):
		t.Fatal("Probe did not return after its context was cancelled")
	}
}

// tcpFakeResolver serves DNS over a pipe for a net.Resolver's Dial: every A
// query is answered with v4 and every AAAA query with v6, whatever the
// name. No packet leaves the process.
func tcpFakeResolver(t *testing.T, v4, v6 net.IP) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			client, server := net.Pipe()
			go tcpServeDNSPipe(t, server, v4.To4(), v6.To16())
			return client, nil
		},
	}
}

// tcpServeDNSPipe answers length-prefixed (TCP-style: a pipe is no
// PacketConn) DNS queries until the resolver closes the pipe.
func tcpServeDNSPipe(t *testing.T, conn net.Conn, v4, v6 net.IP) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	for range 4 {
		var size uint16
		if binary.Read(conn, binary.BigEndian, &size) != nil {
			return
		}
		query := make([]byte, size)
		if _, err := io.ReadFull(conn, query); err != nil {
			return
		}
		reply, err := tcpDNSReply(query, v4, v6)
		if err != nil {
			t.Errorf("fake DNS: %v", err)
			return
		}
		if binary.Write(conn, binary.BigEndian, uint16(len(reply))) != nil {
			return
		}
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}

// tcpDNSReply builds the answer to a single-question query (RFC 1035 4.1).
func tcpDNSReply(query []byte, v4, v6 net.IP) ([]byte, error) {
	const headerLen = 12
	end := headerLen
	for end < len(query) && query[end] != 0 {
		end += 1 + int(query[end])
	}
	end += 5 // root label, QTYPE, QCLASS
	if end > len(query) {
		return nil, fmt.Errorf("short query of %d bytes", len(query))
	}
	qtype := binary.BigEndian.Uint16(query[end-4:])
	var rdata net.IP
	switch qtype {
	case 1:
		rdata = v4
	case 28:
		rdata = v6
	}
	reply := append([]byte{}, query[:2]...)       // ID
	reply = append(reply, 0x81, 0x80, 0, 1, 0, 0) // response, RD, RA; one question
	reply = append(reply, 0, 0, 0, 0)             // no authority, no additional
	reply = append(reply, query[headerLen:end]...)
	if rdata != nil {
		reply[7] = 1                           // one answer
		reply = append(reply, 0xc0, headerLen) // name: pointer to the question's
		reply = binary.BigEndian.AppendUint16(reply, qtype)
		reply = append(reply, 0, 1, 0, 0, 0, 60) // class IN, TTL 60
		reply = binary.BigEndian.AppendUint16(reply, uint16(len(rdata)))
		reply = append(reply, rdata...)
	}
	return reply, nil
}

// tcpServeBothFamilies listens on the same port of 127.0.0.1 and ::1; each
// peer writes the address it was reached on. It returns the port.
func tcpServeBothFamilies(t *testing.T) string {
	t.Helper()
	sayLocalIP := func(conn net.Conn) {
		host, _, _ := net.SplitHostPort(conn.LocalAddr().String())
		_, _ = io.WriteString(conn, host+"\n")
	}
	for range 20 { // the port free on 127.0.0.1 may be taken on ::1
		_, port, _ := net.SplitHostPort(serveTCP(t, "127.0.0.1:0", nil, sayLocalIP))
		ln, err := net.Listen("tcp", net.JoinHostPort("::1", port))
		if err != nil {
			continue
		}
		ln.Close()
		serveTCP(t, net.JoinHostPort("::1", port), nil, sayLocalIP)
		return port
	}
	t.Skip("no port free on both 127.0.0.1 and ::1")
	return ""
}

func TestTCPProberIPProtocol(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	port := tcpServeBothFamilies(t)
	resolver := tcpFakeResolver(t, net.ParseIP("127.0.0.1"), net.ParseIP("::1"))

	tests := []struct {
		name       string
		host       string
		ipProtocol string
		fallback   bool
		wantPeer   string // the address the peer says it was reached on
		wantReason Reason
		wantErr    string
	}{
		{name: "name prefers ip4", host: "dual.test", ipProtocol: "ip4", wantPeer: "127.0.0.1"},
		{name: "name prefers ip6", host: "dual.test", ipProtocol: "ip6", wantPeer: "::1"},
		{name: "ip4 literal with ip6 preference and fallback", host: "127.0.0.1", ipProtocol: "ip6", fallback: true, wantPeer: "127.0.0.1"},
		{
			name: "ip4 literal with ip6 preference, no fallback", host: "127.0.0.1", ipProtocol: "ip6",
			wantReason: ReasonDNS, wantErr: `resolving "127.0.0.1": address 127.0.0.1 is not of family ip6`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := config.TCPProbe{
				Address:            net.JoinHostPort(tt.host, port),
				IPProtocol:         tt.ipProtocol,
				IPProtocolFallback: tt.fallback,
			}
			if tt.wantPeer != "" {
				probe.QueryResponse = []config.QueryResponse{{Expect: tcpRegexp(t, "^"+regexp.QuoteMeta(tt.wantPeer)+"$")}}
			}
			prober, err := NewTCPProber(config.ProbeConfig{Name: "dual", TCP: &probe}, ProberDeps{Dialer: &net.Dialer{Resolver: resolver}})
			if err != nil {
				t.Fatalf("NewTCPProber: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			r := prober.Probe(ctx)
			checkTCPResult(t, r, tt.wantReason, tt.wantErr)
			if _, ok := r.Phases.Get(PhaseResolve); !ok {
				t.Error("resolve phase not recorded")
			}
		})
	}
}

func TestNewTCPProberErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.ProbeConfig
		wantErr string
	}{
		{name: "no tcp section", cfg: config.ProbeConfig{Name: "smtp"}, wantErr: `probe "smtp": no tcp section`},
		{name: "no port", cfg: tcpProbe(config.TCPProbe{Address: "mail.example"}), wantErr: `probe "smtp": address "mail.example": `},
		{name: "empty host", cfg: tcpProbe(config.TCPProbe{Address: ":25"}), wantErr: `probe "smtp": address ":25": want host:port`},
		{name: "empty port", cfg: tcpProbe(config.TCPProbe{Address: "mail.example:"}), wantErr: `probe "smtp": address "mail.example:": want host:port`},
		{
			name:    "bad tls version",
			cfg:     tcpProbe(config.TCPProbe{Address: "mail.example:465", TLS: true, TLSConfig: config.TLSConfig{MinVersion: "TLS14"}}),
			wantErr: `probe "smtp": tls_config: unknown TLS version "TLS14"`,
		},
		{
			name:    "missing ca file",
			cfg:     tcpProbe(config.TCPProbe{Address: "mail.example:465", TLS: true, TLSConfig: config.TLSConfig{CAFile: t.TempDir() + "/none.pem"}}),
			wantErr: `probe "smtp": tls_config: reading CA file: `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProberError(t, NewTCPProber, tt.cfg, tt.wantErr)
		})
	}
}

// TestTCPProberTLSServerName checks tls_config is not read (no CA file
// loaded) when tls is off, and that the TLS server name defaults to the
// host of the address.
func TestTCPProberTLSServerName(t *testing.T) {
	tests := []struct {
		name       string
		probe      config.TCPProbe
		wantTLS    bool
		wantServer string
	}{
		{name: "plain", probe: config.TCPProbe{Address: "mail.example:25", TLSConfig: config.TLSConfig{CAFile: "/nonexistent"}}},
		{name: "host as server name", probe: config.TCPProbe{Address: "mail.example:465", TLS: true}, wantTLS: true, wantServer: "mail.example"},
		{
			name:    "explicit server name",
			probe:   config.TCPProbe{Address: "192.0.2.1:465", TLS: true, TLSConfig: config.TLSConfig{ServerName: "mail.example"}},
			wantTLS: true, wantServer: "mail.example",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prober, err := NewTCPProber(tcpProbe(tt.probe), ProberDeps{})
			if err != nil {
				t.Fatalf("NewTCPProber: %v", err)
			}
			tlsConfig := prober.(*tcpProber).tlsConfig
			if (tlsConfig != nil) != tt.wantTLS {
				t.Fatalf("tls config set = %v, want %v", tlsConfig != nil, tt.wantTLS)
			}
			if tt.wantTLS && tlsConfig.ServerName != tt.wantServer {
				t.Errorf("ServerName = %q, want %q", tlsConfig.ServerName, tt.wantServer)
			}
		})
	}
}
