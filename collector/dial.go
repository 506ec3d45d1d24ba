package collector

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// resolveIP resolves host to one address, preferring the family named by
// ipProtocol ("ip4", "ip6"; "" takes the first address returned) and
// falling back to the other family when fallback is set. An IP literal is
// returned as is, without a lookup. resolver nil means net.DefaultResolver.
func resolveIP(ctx context.Context, resolver *net.Resolver, host, ipProtocol string, fallback bool) (netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		if !familyMatches(addr, ipProtocol) && !fallback {
			return netip.Addr{}, fmt.Errorf("address %s is not of family %s", addr, ipProtocol)
		}
		return addr, nil
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, addr := range addrs {
		if familyMatches(addr, ipProtocol) {
			return addr.Unmap(), nil
		}
	}
	if fallback && len(addrs) > 0 {
		return addrs[0].Unmap(), nil
	}
	return netip.Addr{}, &net.DNSError{Err: "no address of family " + ipProtocol, Name: host, IsNotFound: true}
}

func familyMatches(addr netip.Addr, ipProtocol string) bool {
	switch ipProtocol {
	case "ip4":
		return addr.Unmap().Is4()
	case "ip6":
		return addr.Is6() && !addr.Is4In6()
	}
	return true
}

// handshakeTLS runs the TLS handshake over conn, recording its phase and,
// on success, the TLS state. A peer that closes or resets during the
// handshake, or does not speak TLS at all, failed TLS (not the exchange
// that would have followed); a handshake cut by the probe's deadline timed
// out.
func handshakeTLS(ctx context.Context, conn net.Conn, config *tls.Config, result *Result) (net.Conn, error) {
	tlsConn := tls.Client(conn, config)
	start := time.Now()
	err := tlsConn.HandshakeContext(ctx)
	result.Phases.Add(PhaseTLS, time.Since(start))
	if err != nil {
		result.Reason = ReasonTLS
		if ctxDone(ctx, err) {
			result.Reason = ReasonTimeout
		}
		return nil, fmt.Errorf("TLS handshake with %s: %w", config.ServerName, err)
	}
	state := tlsConn.ConnectionState()
	result.TLS = NewTLSState(&state)
	return tlsConn, nil
}
