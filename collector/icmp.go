package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpSocketKind is the kind of socket ICMP echo goes through.
type icmpSocketKind uint8

const (
	// icmpDatagram is the unprivileged "ping" socket (SOCK_DGRAM,
	// IPPROTO_ICMP): allowed to the groups in net.ipv4.ping_group_range.
	// The kernel picks the echo identifier and hands the socket only the
	// replies that carry it.
	icmpDatagram icmpSocketKind = iota
	// icmpRaw is the raw socket (SOCK_RAW): needs CAP_NET_RAW, and
	// receives every ICMP packet of the host.
	icmpRaw
)

func (k icmpSocketKind) String() string {
	if k == icmpRaw {
		return config.ICMPSocketRaw
	}
	return config.ICMPSocketDatagram
}

// network returns the network name of icmp.ListenPacket.
func (k icmpSocketKind) network(ipv6 bool) string {
	switch {
	case k == icmpDatagram && ipv6:
		return "udp6"
	case k == icmpDatagram:
		return "udp4"
	case ipv6:
		return "ip6:ipv6-icmp"
	}
	return "ip4:icmp"
}

// destination returns addr as the address type the socket kind writes to.
func (k icmpSocketKind) destination(addr netip.Addr) net.Addr {
	if k == icmpDatagram {
		return &net.UDPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
	}
	return &net.IPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
}

// openICMPSocketFunc opens an ICMP socket of kind for IPv4 or IPv6 with
// the given TTL or hop limit (0: the system's). Probers take it as a
// parameter so tests can run without privileges.
type openICMPSocketFunc func(kind icmpSocketKind, ipv6 bool, ttl int) (net.PacketConn, error)

// openICMPSocket opens a real ICMP socket, bound to any local address.
func openICMPSocket(kind icmpSocketKind, ipv6 bool, ttl int) (net.PacketConn, error) {
	address := "0.0.0.0"
	if ipv6 {
		address = "::"
	}
	conn, err := icmp.ListenPacket(kind.network(ipv6), address)
	if err != nil {
		return nil, err
	}
	if err := configureICMPSocket(conn, kind, ipv6, ttl); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// configureICMPSocket sets the TTL or hop limit and, on raw sockets, a
// filter that keeps out the echo requests (on loopback, our own) and the
// other messages a run never reads.
func configureICMPSocket(conn *icmp.PacketConn, kind icmpSocketKind, isIPv6 bool, ttl int) error {
	if isIPv6 {
		p := conn.IPv6PacketConn()
		if ttl > 0 {
			if err := p.SetHopLimit(ttl); err != nil {
				return fmt.Errorf("setting hop limit %d: %w", ttl, err)
			}
		}
		if kind == icmpRaw {
			var filter ipv6.ICMPFilter
			filter.SetAll(true)
			for _, typ := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable,
				ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded, ipv6.ICMPTypeParameterProblem} {
				filter.Accept(typ)
			}
			// Only a saving: the run filters what it reads anyway, so a
			// system without ICMPv6 filters is no error.
			_ = p.SetICMPFilter(&filter)
		}
		return nil
	}
	p := conn.IPv4PacketConn()
	if ttl > 0 {
		if err := p.SetTTL(ttl); err != nil {
			return fmt.Errorf("setting TTL %d: %w", ttl, err)
		}
	}
	if kind == icmpRaw {
		var filter ipv4.ICMPFilter
		filter.SetAll(true)
		for _, typ := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable,
			ipv4.ICMPTypeTimeExceeded, ipv4.ICMPTypeParameterProblem} {
			filter.Accept(typ)
		}
		_ = p.SetICMPFilter(&filter) // as above: Linux only
	}
	return nil
}

// icmpSocket is the socket kind a prober uses for one address family,
// chosen when the prober is built, or why there is none.
type icmpSocket struct {
	kind icmpSocketKind
	err  error
}

// icmpProber runs an `icmp` probe. Everything derived from the
// configuration is built once in NewICMPProber and only read by Probe.
type icmpProber struct {
	host               string
	ipProtocol         string
	ipProtocolFallback bool
	resolver           *net.Resolver

	packets     int
	interval    time.Duration
	payloadSize int
	maxLoss     float64
	ttl         int
	// id is the echo identifier on raw sockets, random per prober so
	// that two probers rarely share one (the payload marker tells them
	// apart when they do).
	id uint16

	// sockets holds the socket kind for IPv4 (0) and IPv6 (1), see
	// families.
	sockets [2]icmpSocket
	open    openICMPSocketFunc
}

// NewICMPProber builds the prober of an `icmp` probe. It opens and closes
// a socket of each kind it may use, so that a daemon allowed neither
// kind fails at load (and at --config.check) rather than at every run.
func NewICMPProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	return newICMPProber(cfg, deps, openICMPSocket)
}

func newICMPProber(cfg config.ProbeConfig, deps ProberDeps, open openICMPSocketFunc) (*icmpProber, error) {
	c := cfg.ICMP
	if c == nil {
		return nil, fmt.Errorf("probe %q: no icmp section", cfg.Name)
	}
	if c.Packets < 1 || c.PacketInterval <= 0 || c.PayloadSize < 0 {
		return nil, fmt.Errorf("probe %q: icmp needs packets >= 1, packet_interval > 0 and payload_size >= 0", cfg.Name)
	}
	p := &icmpProber{
		host:               c.Host,
		ipProtocol:         c.IPProtocol,
		ipProtocolFallback: c.IPProtocolFallback,
		packets:            c.Packets,
		interval:           c.PacketInterval.Duration(),
		payloadSize:        c.PayloadSize,
		maxLoss:            c.MaxLossRatio,
		ttl:                c.TTL,
		id:                 uint16(rand.Uint32()),
		open:               open,
	}
	if deps.Dialer != nil {
		p.resolver = deps.Dialer.Resolver
	}
	kinds, err := socketKinds(c.Socket)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	required, families := p.families()
	for i := range p.sockets {
		p.sockets[i].err = errors.New("the probe does not use this address family")
	}
	for _, isIPv6 := range families {
		p.sockets[family(isIPv6)] = p.chooseSocket(kinds, isIPv6)
	}
	if err := p.sockets[family(required)].err; err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	return p, nil
}

// socketKinds returns the kinds a `socket` mode tries, in order.
func socketKinds(mode string) ([]icmpSocketKind, error) {
	switch mode {
	case config.ICMPSocketAuto, "":
		return []icmpSocketKind{icmpDatagram, icmpRaw}, nil
	case config.ICMPSocketDatagram:
		return []icmpSocketKind{icmpDatagram}, nil
	case config.ICMPSocketRaw:
		return []icmpSocketKind{icmpRaw}, nil
	}
	return nil, fmt.Errorf("unknown icmp socket mode %q", mode)
}

func family(isIPv6 bool) int {
	if isIPv6 {
		return 1
	}
	return 0
}

// families returns the address families (IPv6 or not) the probe may send
// to, and the one it must be able to use: an IP literal's, or the
// preferred one of a name. The other family of a name, used only when the
// name resolves to it, may lack a socket (e.g. IPv6 disabled): runs that
// need it fail.
func (p *icmpProber) families() (required bool, families []bool) {
	if addr, err := netip.ParseAddr(p.host); err == nil {
		isIPv6 := addr.Unmap().Is6()
		return isIPv6, []bool{isIPv6}
	}
	required = p.ipProtocol == "ip6"
	if p.ipProtocol == "" || p.ipProtocolFallback {
		return required, []bool{required, !required}
	}
	return required, []bool{required}
}

// chooseSocket returns the first of kinds whose socket opens.
func (p *icmpProber) chooseSocket(kinds []icmpSocketKind, isIPv6 bool) icmpSocket {
	var errs []error
	for _, kind := range kinds {
		conn, err := p.open(kind, isIPv6, p.ttl)
		if err == nil {
			conn.Close()
			return icmpSocket{kind: kind}
		}
		errs = append(errs, fmt.Errorf("%s socket: %w", kind, err))
	}
	return icmpSocket{err: noICMPSocketError(kinds, isIPv6, errs)}
}

// noICMPSocketError explains why no socket of kinds opened and, when it is
// a matter of permissions, how to grant them.
func noICMPSocketError(kinds []icmpSocketKind, isIPv6 bool, errs []error) error {
	version := "ICMP"
	if isIPv6 {
		version = "ICMPv6"
	}
	joined := errs[0]
	for _, next := range errs[1:] {
		joined = fmt.Errorf("%w; %w", joined, next)
	}
	err := fmt.Errorf("cannot open an %s socket: %w", version, joined)
	if !errors.Is(err, os.ErrPermission) {
		return err
	}
	sysctl := "sysctl net.ipv4.ping_group_range covering the daemon's group (gid " + strconv.Itoa(os.Getegid()) +
		`, e.g. net.ipv4.ping_group_range="0 2147483647")`
	switch {
	case len(kinds) > 1:
		return fmt.Errorf("%w; allow datagram sockets with %s, or grant the daemon CAP_NET_RAW for raw sockets", err, sysctl)
	case kinds[0] == icmpDatagram:
		return fmt.Errorf("%w; allow datagram sockets with %s, or set socket: auto and grant the daemon CAP_NET_RAW", err, sysctl)
	}
	return fmt.Errorf("%w; grant the daemon CAP_NET_RAW, or set socket: auto and allow datagram sockets with %s", err, sysctl)
}

// Probe implements Prober.
func (p *icmpProber) Probe(ctx context.Context) Result {
	return runProbe(ctx, p.run)
}

// run resolves the host, opens the socket and exchanges the echoes. It
// returns the first error; when that error's Reason is not what
// ClassifyError would say, it sets result.Reason itself.
func (p *icmpProber) run(ctx context.Context, result *Result) error {
	resolveStart := time.Now()
	addr, err := resolveIP(ctx, p.resolver, p.host, p.ipProtocol, p.ipProtocolFallback)
	result.Phases.Add(PhaseResolve, time.Since(resolveStart))
	if err != nil {
		if result.Reason = ClassifyError(err, ctx.Err()); result.Reason == ReasonInternal {
			result.Reason = ReasonDNS
		}
		return fmt.Errorf("resolving %q: %w", p.host, err)
	}
	addr = addr.Unmap()

	socket := p.sockets[family(addr.Is6())]
	if socket.err != nil {
		result.Reason = socketReason(socket.err)
		return fmt.Errorf("%s resolved to %s: %w", p.host, addr, socket.err)
	}
	openStart := time.Now()
	conn, err := p.open(socket.kind, addr.Is6(), p.ttl)
	result.Phases.Add(PhaseConnect, time.Since(openStart))
	if err != nil {
		result.Reason = socketReason(err)
		return fmt.Errorf("opening %s %s socket: %w", socket.kind, socket.kind.network(addr.Is6()), err)
	}
	return p.exchange(ctx, conn, p.newFilter(socket.kind, addr), socket.kind.destination(addr), result)
}

// socketReason is the Reason of a socket that would not open.
func socketReason(err error) Reason {
	if errors.Is(err, os.ErrPermission) {
		return ReasonPermission
	}
	return ReasonInternal
}

// newFilter draws the run's sequence numbers and payload marker.
func (p *icmpProber) newFilter(kind icmpSocketKind, target netip.Addr) *echoFilter {
	payload := make([]byte, p.payloadSize)
	var marker [icmpMarkerLen]byte
	binary.BigEndian.PutUint64(marker[:], rand.Uint64())
	copy(payload, marker[:])
	for i := icmpMarkerLen; i < len(payload); i++ {
		payload[i] = byte(i) // as ping(8) fills it
	}
	return &echoFilter{
		ipv6:    target.Is6(),
		checkID: kind == icmpRaw,
		id:      p.id,
		seqBase: uint16(rand.Uint32()),
		count:   p.packets,
		payload: payload,
		target:  target,
	}
}
