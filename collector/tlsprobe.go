package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/common/model"

	"github.com/reliabilityd/reliabilityd/config"
)

// tlsProber runs a `tls` probe: resolve, connect, handshake, then check
// the expiry of the chain. Everything derived from the configuration is
// built once in NewTLSProber and only read by Probe.
type tlsProber struct {
	host, port         string
	ipProtocol         string
	ipProtocolFallback bool
	// tlsConfig verifies the chain and the host name (ServerName defaults
	// to the host) unless insecure_skip_verify. Shared by runs, never
	// modified.
	tlsConfig *tls.Config
	// expiresWithin is fail_if_expires_within; 0 sets no threshold.
	expiresWithin time.Duration
	dialer        *net.Dialer
}

// NewTLSProber builds the prober of a `tls` probe.
func NewTLSProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	if cfg.TLS == nil {
		return nil, fmt.Errorf("probe %q: no tls section", cfg.Name)
	}
	host, port, err := splitHostPort(cfg.TLS.Address)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	if err := checkIPProtocol(cfg.TLS.IPProtocol); err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	if cfg.TLS.FailIfExpiresWithin < 0 {
		return nil, fmt.Errorf("probe %q: fail_if_expires_within must not be negative", cfg.Name)
	}
	tlsConfig, err := NewTLSConfig(cfg.TLS.TLSConfig, host)
	if err != nil {
		return nil, fmt.Errorf("probe %q: tls_config: %w", cfg.Name, err)
	}
	p := &tlsProber{
		host:               host,
		port:               port,
		ipProtocol:         cfg.TLS.IPProtocol,
		ipProtocolFallback: cfg.TLS.IPProtocolFallback,
		tlsConfig:          tlsConfig,
		expiresWithin:      cfg.TLS.FailIfExpiresWithin.Duration(),
		dialer:             deps.Dialer,
	}
	if p.dialer == nil {
		p.dialer = &net.Dialer{}
	}
	return p, nil
}

// Probe implements Prober.
func (p *tlsProber) Probe(ctx context.Context) Result {
	return runProbe(ctx, p.run)
}

// run goes through the phases of one probe and returns the first error,
// setting result.Reason when ClassifyError would not say it.
func (p *tlsProber) run(ctx context.Context, result *Result) error {
	conn, reason, err := dialHost(ctx, p.dialer, p.host, p.port, p.ipProtocol, p.ipProtocolFallback, &result.Phases)
	if err != nil {
		result.Reason = reason
		return err
	}
	// The raw connection is closed, not the TLS one: tls.Conn.Close would
	// first send close_notify under its own 5 s write deadline, which could
	// outlast the probe's timeout.
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return fmt.Errorf("setting connection deadline: %w", err)
		}
	}

	tlsConn, err := handshakeTLS(ctx, conn, p.tlsConfig, result)
	if err != nil {
		return err
	}
	state := tlsConn.(*tls.Conn).ConnectionState()
	return p.checkExpiry(&state, time.Now(), result)
}

// checkExpiry fails the run when the earliest expiring certificate of the
// chain (the one NewTLSState reports) expires within the threshold.
func (p *tlsProber) checkExpiry(state *tls.ConnectionState, now time.Time, result *Result) error {
	cert := earliestExpiring(state)
	if p.expiresWithin <= 0 || cert == nil {
		return nil
	}
	left := cert.NotAfter.Sub(now)
	if left >= p.expiresWithin {
		return nil
	}
	result.Reason = ReasonCertExpiry
	when := "expires in " + roundedDuration(left)
	if left < 0 {
		when = "expired " + roundedDuration(-left) + " ago"
	}
	return fmt.Errorf("certificate %s %s, at %s: within fail_if_expires_within (%s)",
		describeCertificate(cert), when, cert.NotAfter.UTC().Format(time.RFC3339), model.Duration(p.expiresWithin))
}

// earliestExpiring returns the certificate of the verified chain (the
// presented one when verification is skipped) that expires first, nil
// when there is none. Same chain as NewTLSState's EarliestExpiry.
func earliestExpiring(state *tls.ConnectionState) *x509.Certificate {
	chain := state.PeerCertificates
	if len(state.VerifiedChains) > 0 {
		chain = state.VerifiedChains[0]
	}
	var earliest *x509.Certificate
	for _, cert := range chain {
		if earliest == nil || cert.NotAfter.Before(earliest.NotAfter) {
			earliest = cert
		}
	}
	return earliest
}

// describeCertificate names a certificate for an error message: its
// subject, or its serial number when the subject is empty.
func describeCertificate(cert *x509.Certificate) string {
	if subject := cert.Subject.String(); subject != "" {
		return fmt.Sprintf("%q", subject)
	}
	return "with serial number " + cert.SerialNumber.String()
}

// roundedDuration writes d to the minute (to the second below a minute)
// in Prometheus notation, "13d23h59m" rather than "335h59m0s".
func roundedDuration(d time.Duration) string {
	if d >= time.Minute {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	return model.Duration(d).String()
}

// splitHostPort splits a host:port address, requiring both parts.
func splitHostPort(address string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(address)
	if err != nil {
		return "", "", fmt.Errorf("address %q: %w", address, err)
	}
	if host == "" || port == "" {
		return "", "", fmt.Errorf("address %q: want host:port", address)
	}
	return host, port, nil
}

// dialHost resolves host and connects to its port, adding the resolve and
// connect phases to phases. On failure it returns the Reason: dns for any
// resolution failure (a lookup error or no address of the family), the
// classified dial error otherwise; timeout when ctx ended either way.
// The resolve and connect steps are the tcp probe's.
func dialHost(ctx context.Context, dialer *net.Dialer, host, port, ipProtocol string, fallback bool, phases *Phases) (net.Conn, Reason, error) {
	resolveStart := time.Now()
	addr, err := resolveIP(ctx, dialer.Resolver, host, ipProtocol, fallback)
	phases.Add(PhaseResolve, time.Since(resolveStart))
	if err != nil {
		reason := ReasonDNS
		if ctxDone(ctx, err) {
			reason = ReasonTimeout
		}
		return nil, reason, fmt.Errorf("resolving %q: %w", host, err)
	}
	target := net.JoinHostPort(addr.String(), port)
	connectStart := time.Now()
	conn, err := dialer.DialContext(ctx, "tcp", target)
	phases.Add(PhaseConnect, time.Since(connectStart))
	if err != nil {
		reason := ClassifyError(err, ctx.Err())
		if ctxDone(ctx, err) {
			reason = ReasonTimeout
		}
		return nil, reason, fmt.Errorf("connecting to %s: %w", target, err)
	}
	return conn, "", nil
}

// ctxDone reports whether err is down to the probe's context ending,
// whether by its deadline or by cancellation (a reload removing the
// probe): the run ran out of time, whatever step it was in.
func ctxDone(ctx context.Context, err error) bool {
	return ctx.Err() != nil || ClassifyError(err, nil) == ReasonTimeout
}
