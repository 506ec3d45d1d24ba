package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// tlsProbeServer serves TLS with cert (and optional extra settings) on a
// loopback port and returns its address. The server only completes the
// handshake and waits for the prober to hang up.
func tlsProbeServer(t *testing.T, cert testLeaf, tweak func(*tls.Config)) string {
	t.Helper()
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert.cert}, MinVersion: tls.VersionTLS12}
	if tweak != nil {
		tweak(serverTLS)
	}
	return serveTCP(t, "127.0.0.1:0", serverTLS, tcpDrain)
}

// tlsWantExpiry is the TLS state a run must report: exact expiry times.
type tlsWantExpiry struct {
	leaf, earliest  time.Time
	version, cipher string   // exact when set
	ciphersOneOf    []string // when the suite depends on the hardware
}

func (want tlsWantExpiry) check(t *testing.T, got *TLSState) {
	t.Helper()
	if got == nil {
		t.Fatal("Result.TLS = nil, want the TLS state")
	}
	if !got.LeafExpiry.Equal(want.leaf) || !got.EarliestExpiry.Equal(want.earliest) {
		t.Errorf("expiry leaf %v earliest %v, want %v and %v", got.LeafExpiry, got.EarliestExpiry, want.leaf, want.earliest)
	}
	if want.version != "" && got.Version != want.version {
		t.Errorf("Version = %q, want %q", got.Version, want.version)
	}
	if want.cipher != "" && got.CipherSuite != want.cipher {
		t.Errorf("CipherSuite = %q, want %q", got.CipherSuite, want.cipher)
	}
	if len(want.ciphersOneOf) > 0 && !containsString(want.ciphersOneOf, got.CipherSuite) {
		t.Errorf("CipherSuite = %q, want one of %q", got.CipherSuite, want.ciphersOneOf)
	}
}

func containsString(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

// tls13Suites are the suites a TLS 1.3 handshake may pick: which one
// depends on AES hardware support, so tests accept any of them.
var tls13Suites = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

func TestTLSProber(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	valid := ca.leaf(t, leafOptions{notAfter: now.Add(12 * time.Hour)})
	outlivesCA := ca.leaf(t, leafOptions{notAfter: ca.cert.NotAfter.Add(24 * time.Hour)})
	expired := ca.leaf(t, leafOptions{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)})
	notYetValid := ca.leaf(t, leafOptions{notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour)})
	wrongHost := ca.leaf(t, leafOptions{hosts: []string{"wrong.example", "127.0.0.2"}})
	shopOnly := ca.leaf(t, leafOptions{hosts: []string{"shop.example"}})
	// Half a minute off the round 2h30m: the rounding of the message holds
	// however long (under 29 s) the test takes to get there.
	expiringSoon := ca.leaf(t, leafOptions{notAfter: now.Add(2*time.Hour + 30*time.Minute)})
	selfSigned := selfSignedLeaf(t, leafOptions{notAfter: now.Add(72 * time.Hour)})
	selfSignedExpired := selfSignedLeaf(t, leafOptions{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-3 * time.Hour)})
	trustCA := config.TLSConfig{CAFile: ca.certFile}
	const verifyFailed = "TLS handshake with 127.0.0.1: tls: failed to verify certificate: x509: "

	tests := []struct {
		name string
		// setup starts the peer and returns the probe's configuration.
		setup      func(t *testing.T) config.TLSProbe
		timeout    time.Duration // default 5 s
		wantReason Reason        // empty: the run must succeed
		wantErr    string        // a substring of Err
		wantTLS    *tlsWantExpiry
		wantPhases []Phase
		check      func(t *testing.T, r Result)
	}{
		{
			name: "valid chain, leaf expires first",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, valid, nil), TLSConfig: trustCA, FailIfExpiresWithin: config.Duration(time.Hour)}
			},
			wantTLS:    &tlsWantExpiry{leaf: valid.x509.NotAfter, earliest: valid.x509.NotAfter, version: "TLS 1.3", ciphersOneOf: tls13Suites},
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "valid chain, CA expires first",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, outlivesCA, nil), TLSConfig: trustCA}
			},
			wantTLS:    &tlsWantExpiry{leaf: outlivesCA.x509.NotAfter, earliest: ca.cert.NotAfter, version: "TLS 1.3"},
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "expired",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, expired, nil), TLSConfig: trustCA}
			},
			wantReason: ReasonTLS,
			wantErr:    verifyFailed + "certificate has expired or is not yet valid: current time ",
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
			check: func(t *testing.T, r Result) {
				if !strings.Contains(r.Err.Error(), "is after "+expired.x509.NotAfter.UTC().Format(time.RFC3339)) {
					t.Errorf("Err = %v, want it to name the NotAfter", r.Err)
				}
			},
		},
		{
			name: "not yet valid",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, notYetValid, nil), TLSConfig: trustCA}
			},
			wantReason: ReasonTLS,
			wantErr:    verifyFailed + "certificate has expired or is not yet valid: current time ",
			check: func(t *testing.T, r Result) {
				if !strings.Contains(r.Err.Error(), "is before "+notYetValid.x509.NotBefore.UTC().Format(time.RFC3339)) {
					t.Errorf("Err = %v, want it to name the NotBefore", r.Err)
				}
			},
		},
		{
			name: "wrong host",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, wrongHost, nil), TLSConfig: trustCA}
			},
			wantReason: ReasonTLS,
			wantErr:    verifyFailed + "certificate is valid for 127.0.0.2, not 127.0.0.1",
		},
		{
			name: "wrong host name",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{
					Address:   tlsProbeServer(t, wrongHost, nil),
					TLSConfig: config.TLSConfig{CAFile: ca.certFile, ServerName: "shop.example"},
				}
			},
			wantReason: ReasonTLS,
			wantErr:    "TLS handshake with shop.example: tls: failed to verify certificate: x509: certificate is valid for wrong.example, not shop.example",
		},
		{
			name: "server_name names the certificate's host",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{
					Address:   tlsProbeServer(t, shopOnly, nil),
					TLSConfig: config.TLSConfig{CAFile: ca.certFile, ServerName: "shop.example"},
				}
			},
			wantTLS: &tlsWantExpiry{leaf: shopOnly.x509.NotAfter, earliest: minTime(shopOnly.x509.NotAfter, ca.cert.NotAfter)},
		},
		{
			name: "self-signed",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, selfSigned, nil), TLSConfig: trustCA}
			},
			wantReason: ReasonTLS,
			wantErr:    verifyFailed + "certificate signed by unknown authority",
		},
		{
			name: "self-signed with insecure_skip_verify",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, selfSigned, nil), TLSConfig: config.TLSConfig{InsecureSkipVerify: true}}
			},
			wantTLS:    &tlsWantExpiry{leaf: selfSigned.x509.NotAfter, earliest: selfSigned.x509.NotAfter},
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "expiring within the threshold",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, expiringSoon, nil), TLSConfig: trustCA, FailIfExpiresWithin: config.Duration(14 * 24 * time.Hour)}
			},
			wantReason: ReasonCertExpiry,
			wantErr: `certificate "CN=127.0.0.1" expires in 2h30m, at ` + expiringSoon.x509.NotAfter.UTC().Format(time.RFC3339) +
				": within fail_if_expires_within (2w)",
			wantTLS:    &tlsWantExpiry{leaf: expiringSoon.x509.NotAfter, earliest: expiringSoon.x509.NotAfter},
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "expired, verification skipped, with a threshold",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{
					Address:             tlsProbeServer(t, selfSignedExpired, nil),
					TLSConfig:           config.TLSConfig{InsecureSkipVerify: true},
					FailIfExpiresWithin: config.Duration(24 * time.Hour),
				}
			},
			wantReason: ReasonCertExpiry,
			wantErr:    `certificate "CN=127.0.0.1" expired 3h ago, at ` + selfSignedExpired.x509.NotAfter.UTC().Format(time.RFC3339) + ": within fail_if_expires_within (1d)",
			wantTLS:    &tlsWantExpiry{leaf: selfSignedExpired.x509.NotAfter, earliest: selfSignedExpired.x509.NotAfter},
		},
		{
			name: "expired, verification skipped, no threshold",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tlsProbeServer(t, selfSignedExpired, nil), TLSConfig: config.TLSConfig{InsecureSkipVerify: true}}
			},
			wantTLS: &tlsWantExpiry{leaf: selfSignedExpired.x509.NotAfter, earliest: selfSignedExpired.x509.NotAfter},
		},
		{
			name: "TLS 1.2 only server",
			setup: func(t *testing.T) config.TLSProbe {
				addr := tlsProbeServer(t, valid, func(c *tls.Config) {
					c.MaxVersion = tls.VersionTLS12
					c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
				})
				return config.TLSProbe{Address: addr, TLSConfig: trustCA}
			},
			wantTLS: &tlsWantExpiry{
				leaf: valid.x509.NotAfter, earliest: valid.x509.NotAfter,
				version: "TLS 1.2", cipher: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
			},
		},
		{
			name: "server older than min_version",
			setup: func(t *testing.T) config.TLSProbe {
				addr := tlsProbeServer(t, valid, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
				return config.TLSProbe{Address: addr, TLSConfig: config.TLSConfig{CAFile: ca.certFile, MinVersion: "TLS13"}}
			},
			wantReason: ReasonTLS,
			wantErr:    "TLS handshake with 127.0.0.1: remote error: tls: protocol version not supported",
		},
		{
			name: "closed port",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: tcpClosedPort(t), TLSConfig: trustCA}
			},
			wantReason: ReasonConnect,
			wantErr:    "connecting to 127.0.0.1:",
			wantPhases: []Phase{PhaseResolve, PhaseConnect},
			check: func(t *testing.T, r Result) {
				if !errors.Is(r.Err, syscall.ECONNREFUSED) {
					t.Errorf("Err = %v, want one wrapping ECONNREFUSED", r.Err)
				}
			},
		},
		{
			name: "peer that never answers the handshake",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: serveTCP(t, "127.0.0.1:0", nil, tcpDrain), TLSConfig: trustCA}
			},
			timeout:    300 * time.Millisecond,
			wantReason: ReasonTimeout,
			wantErr:    "TLS handshake with 127.0.0.1: ",
			wantPhases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS},
		},
		{
			name: "address of the wrong family",
			setup: func(t *testing.T) config.TLSProbe {
				return config.TLSProbe{Address: "127.0.0.1:443", IPProtocol: "ip6"}
			},
			wantReason: ReasonDNS,
			wantErr:    `resolving "127.0.0.1": address 127.0.0.1 is not of family ip6`,
			wantPhases: []Phase{PhaseResolve},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := tt.setup(t)
			if probe.IPProtocol == "" {
				probe.IPProtocolFallback = config.DefaultTLSProbe.IPProtocolFallback
			}
			prober, err := NewTLSProber(config.ProbeConfig{Name: "cert", TLS: &probe}, ProberDeps{})
			if err != nil {
				t.Fatalf("NewTLSProber: %v", err)
			}
			r := probeWithin(t, prober, tt.timeout)

			checkTCPResult(t, r, tt.wantReason, tt.wantErr)
			switch {
			case tt.wantTLS != nil:
				tt.wantTLS.check(t, r.TLS)
			case r.TLS != nil:
				t.Errorf("Result.TLS = %+v, want nil", r.TLS)
			}
			for _, phase := range tt.wantPhases {
				if _, ok := r.Phases.Get(phase); !ok {
					t.Errorf("phase %s not recorded", phase)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// TestTLSProberServerNameFromHost checks the host name of the address is
// the name verified (and sent as SNI) when tls_config sets none.
func TestTLSProberServerNameFromHost(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.leaf(t, leafOptions{hosts: []string{"shop.test"}})
	sni := make(chan string, 1)
	addr := tlsProbeServer(t, leaf, func(c *tls.Config) {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			sni <- hello.ServerName
			return nil, nil
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	resolver := tcpFakeResolver(t, net.ParseIP("127.0.0.1"), net.ParseIP("::1"))
	probe := config.TLSProbe{Address: net.JoinHostPort("shop.test", port), TLSConfig: config.TLSConfig{CAFile: ca.certFile}, IPProtocol: "ip4"}
	prober, err := NewTLSProber(config.ProbeConfig{Name: "cert", TLS: &probe}, ProberDeps{Dialer: &net.Dialer{Resolver: resolver}})
	if err != nil {
		t.Fatalf("NewTLSProber: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r := prober.Probe(ctx)
	checkTCPResult(t, r, "", "")
	if got := <-sni; got != "shop.test" {
		t.Errorf("SNI = %q, want shop.test", got)
	}
}

func TestTLSProberCancel(t *testing.T) {
	// No deadline: only the cancellation can end the handshake, which the
	// peer never answers. The first byte of the ClientHello tells the peer
	// the prober is past connecting and waits in the handshake.
	handshaking := make(chan struct{})
	addr := serveTCP(t, "127.0.0.1:0", nil, func(conn net.Conn) {
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			close(handshaking)
		}
		tcpDrain(conn)
	})
	probe := config.TLSProbe{Address: addr, IPProtocolFallback: true}
	prober, err := NewTLSProber(config.ProbeConfig{Name: "cert", TLS: &probe}, ProberDeps{})
	if err != nil {
		t.Fatalf("NewTLSProber: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		select {
		case <-handshaking:
			cancel()
		case <-ctx.Done():
		}
	}()
	done := make(chan Result, 1)
	go func() { done <- prober.Probe(ctx) }()
	select {
	case r := <-done:
		checkTCPResult(t, r, ReasonTimeout, "TLS handshake with 127.0.0.1: ")
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("Err = %v, want one wrapping context.Canceled", r.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Probe did not return after its context was cancelled")
	}
}

func TestNewTLSProberErrors(t *testing.T) {
	tests := []struct {
		name    string
		probe   *config.TLSProbe
		wantErr string
	}{
		{name: "no tls section", wantErr: `probe "cert": no tls section`},
		{name: "no port", probe: &config.TLSProbe{Address: "shop.example"}, wantErr: `probe "cert": address "shop.example": `},
		{name: "empty host", probe: &config.TLSProbe{Address: ":443"}, wantErr: `probe "cert": address ":443": want host:port`},
		{name: "bad ip_protocol", probe: &config.TLSProbe{Address: "shop.example:443", IPProtocol: "ip5"}, wantErr: `probe "cert": ip_protocol "ip5": want ip4, ip6 or empty`},
		{
			name:    "negative threshold",
			probe:   &config.TLSProbe{Address: "shop.example:443", FailIfExpiresWithin: config.Duration(-time.Hour)},
			wantErr: `probe "cert": fail_if_expires_within must not be negative`,
		},
		{
			name:    "missing ca file",
			probe:   &config.TLSProbe{Address: "shop.example:443", TLSConfig: config.TLSConfig{CAFile: "/nonexistent/ca.pem"}},
			wantErr: `probe "cert": tls_config: reading CA file: open /nonexistent/ca.pem: no such file or directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProberError(t, NewTLSProber, config.ProbeConfig{Name: "cert", TLS: tt.probe}, tt.wantErr)
		})
	}
}

// TestTLSExample builds the probers of examples/probes/tls.yml. (config's
// TestTLSProbeExample checks its values.)
func TestTLSExample(t *testing.T) {
	checkExampleBuilds(t, "../examples/probes/tls.yml", "tls", 3)
}
