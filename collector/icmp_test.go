package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpProbe returns a probe of host with the defaults of the
// configuration, changed by edit.
func icmpProbe(host string, edit func(*config.ICMPProbe)) config.ProbeConfig {
	probe := config.DefaultICMPProbe
	probe.Host = host
	if edit != nil {
		edit(&probe)
	}
	return config.ProbeConfig{Name: "ping", Timeout: config.Duration(5 * time.Second), ICMP: &probe}
}

// fakeNetwork answers the echo requests written to its sockets as answer
// says, without privileges: a test stands in for the kernel and the
// target. Safe for concurrent use.
type fakeNetwork struct {
	// denied maps the socket kinds that may not be opened to the error
	// opening them gives.
	denied map[icmpSocketKind]error
	// answer returns the packets that arrive in reply to request number
	// n (0-based, counted over the network's lifetime) with its ID and
	// sequence number, which the fake kernel gave the echo (on a datagram
	// socket, the identifier is the kernel's).
	answer func(n int, request []byte, ipv6 bool) [][]byte
	// writeErr, when set, fails every write.
	writeErr error
	// readErr, when set, fails the first read.
	readErr error
	// replyFrom, when set, is where echo replies come from instead of the
	// request's destination.
	replyFrom net.Addr

	mu       sync.Mutex
	opened   []string // kind/family of each open, in order
	requests int
	conns    []*fakeICMPConn
}

// open implements openICMPSocketFunc.
func (n *fakeNetwork) open(kind icmpSocketKind, ipv6 bool, ttl int) (net.PacketConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.opened = append(n.opened, kind.network(ipv6))
	if err := n.denied[kind]; err != nil {
		return nil, &net.OpError{Op: "listen", Net: kind.network(ipv6), Err: os.NewSyscallError("socket", err)}
	}
	conn := &fakeICMPConn{network: n, kind: kind, ipv6: ipv6, queue: make(chan fakePacket, 1000), closed: make(chan struct{})}
	if n.readErr != nil {
		conn.queue <- fakePacket{} // a read error comes first
	}
	n.conns = append(n.conns, conn)
	return conn, nil
}

func (n *fakeNetwork) openedSockets() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.opened...)
}

// allClosed reports whether every socket opened was closed.
func (n *fakeNetwork) allClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		select {
		case <-c.closed:
		default:
			return false
		}
	}
	return true
}

// fakeICMPConn is a socket of a fakeNetwork.
type fakeICMPConn struct {
	network   *fakeNetwork
	kind      icmpSocketKind
	ipv6      bool
	queue     chan fakePacket
	closed    chan struct{}
	closeOnce sync.Once
}

// fakePacket is a packet a fakeICMPConn reads, and its sender.
type fakePacket struct {
	data []byte
	from net.Addr
}

// fakeRouter sends the ICMP errors of a fakeNetwork.
var fakeRouter = &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}

func (c *fakeICMPConn) WriteTo(b []byte, dst net.Addr) (int, error) {
	wantAddr := "*net.IPAddr"
	if c.kind == icmpDatagram {
		wantAddr = "*net.UDPAddr"
	}
	if got := fmt.Sprintf("%T", dst); got != wantAddr {
		return 0, fmt.Errorf("fake: writing to a %s on a %s socket", got, c.kind)
	}
	if c.network.writeErr != nil {
		return 0, &net.OpError{Op: "write", Net: c.kind.network(c.ipv6), Err: os.NewSyscallError("sendto", c.network.writeErr)}
	}
	request := append([]byte(nil), b...)
	if c.kind == icmpDatagram {
		request[4], request[5] = 0xbe, 0xef // the kernel's identifier
	}
	c.network.mu.Lock()
	n := c.network.requests
	c.network.requests++
	c.network.mu.Unlock()
	for _, packet := range c.network.answer(n, request, c.ipv6) {
		// Echo replies come from the target, errors from a router.
		from := net.Addr(fakeRouter)
		if len(packet) > 0 && (packet[0] == byte(ipv4.ICMPTypeEchoReply) || packet[0] == byte(ipv6.ICMPTypeEchoReply)) {
			from = dst
			if c.network.replyFrom != nil {
				from = c.network.replyFrom
			}
		}
		c.queue <- fakePacket{data: packet, from: from}
	}
	return len(b), nil
}

func (c *fakeICMPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case packet := <-c.queue:
		if packet.data == nil {
			return 0, nil, c.network.readErr
		}
		return copy(b, packet.data), packet.from, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakeICMPConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeICMPConn) LocalAddr() net.Addr                { return &net.IPAddr{} }
func (c *fakeICMPConn) SetDeadline(t time.Time) error      { return nil }
func (c *fakeICMPConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fakeICMPConn) SetWriteDeadline(t time.Time) error { return nil }

// Answers of a fakeNetwork.

// reply turns request into its echo reply, as its target would.
func reply(request []byte, isIPv6 bool) []byte {
	packet := append([]byte(nil), request...)
	packet[0] = byte(ipv4.ICMPTypeEchoReply)
	if isIPv6 {
		packet[0] = byte(ipv6.ICMPTypeEchoReply)
	}
	packet[2], packet[3] = 0, 0
	if !isIPv6 {
		sum := internetChecksum(packet)
		packet[2], packet[3] = byte(sum>>8), byte(sum)
	}
	return packet
}

func answerAll(n int, request []byte, ipv6 bool) [][]byte { return [][]byte{reply(request, ipv6)} }

// refuse answers the requests numbered in refused with destination
// unreachable (from a router, quoting the request), the others with their
// reply.
func refuse(t *testing.T, target string, refused ...int) func(int, []byte, bool) [][]byte {
	return func(n int, request []byte, isIPv6 bool) [][]byte {
		for _, r := range refused {
			if r == n {
				typ := icmp.Type(ipv4.ICMPTypeDestinationUnreachable)
				if isIPv6 {
					typ = ipv6.ICMPTypeDestinationUnreachable
				}
				return [][]byte{icmpErrorOf(t, typ, 1, netip.MustParseAddr(target), request)}
			}
		}
		return answerAll(n, request, isIPv6)
	}
}

func TestICMPProberFake(t *testing.T) {
	tests := []struct {
		name   string
		host   string // default 127.0.0.1
		edit   func(*config.ICMPProbe)
		denied map[icmpSocketKind]error
		answer func(t *testing.T) func(int, []byte, bool) [][]byte
		// timeout of the run, default 5 s. Runs that wait for a lost reply
		// last it.
		timeout   time.Duration
		writeErr  error
		readErr   error
		replyFrom net.Addr

		wantReason    Reason // empty: the run must succeed
		wantErr       string // the whole message
		wantSent      int
		wantReceived  int
		wantNoPackets bool
	}{
		{name: "raw socket, all answered",
			denied:   map[icmpSocketKind]error{icmpDatagram: syscall.EACCES},
			answer:   func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			wantSent: 3, wantReceived: 3},
		{name: "datagram socket with the kernel's identifier",
			answer:   func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			wantSent: 3, wantReceived: 3},
		{name: "IPv6", host: "::1",
			answer:   func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			wantSent: 3, wantReceived: 3},
		{name: "duplicates counted once",
			answer: func(*testing.T) func(int, []byte, bool) [][]byte {
				return func(n int, request []byte, ipv6 bool) [][]byte {
					return [][]byte{reply(request, ipv6), reply(request, ipv6), reply(request, ipv6)}
				}
			},
			wantSent: 3, wantReceived: 3},
		{name: "foreign packets ignored", edit: func(c *config.ICMPProbe) { c.Socket = config.ICMPSocketRaw },
			answer: func(t *testing.T) func(int, []byte, bool) [][]byte {
				return func(n int, request []byte, ipv6 bool) [][]byte {
					good := reply(request, ipv6)
					otherID := append([]byte(nil), good...)
					otherID[4] ^= 1
					otherPayload := append([]byte(nil), good...)
					otherPayload[len(otherPayload)-1] ^= 1
					return [][]byte{request, reply(otherID, ipv6), reply(otherPayload, ipv6), good[:7], good}
				}
			},
			wantSent: 3, wantReceived: 3},
		{name: "replies from another host ignored", host: "198.51.100.7",
			edit:       func(c *config.ICMPProbe) { c.Socket, c.PayloadSize = config.ICMPSocketRaw, 0 },
			answer:     func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			replyFrom:  &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)},
			timeout:    time.Second,
			wantReason: ReasonPacketLoss,
			wantErr:    "3 of 3 echo requests unanswered (100% > max_loss_ratio 0%)",
			wantSent:   3, wantReceived: 0},
		{name: "one of three refused within max_loss_ratio", host: "198.51.100.7",
			edit:     func(c *config.ICMPProbe) { c.MaxLossRatio = 0.5 },
			answer:   func(t *testing.T) func(int, []byte, bool) [][]byte { return refuse(t, "198.51.100.7", 1) },
			wantSent: 3, wantReceived: 2},
		{name: "loss exactly at max_loss_ratio passes", host: "198.51.100.7",
			edit:     func(c *config.ICMPProbe) { c.Packets, c.MaxLossRatio = 2, 0.5 },
			answer:   func(t *testing.T) func(int, []byte, bool) [][]byte { return refuse(t, "198.51.100.7", 0) },
			wantSent: 2, wantReceived: 1},
		{name: "loss above max_loss_ratio", host: "198.51.100.7",
			edit:       func(c *config.ICMPProbe) { c.MaxLossRatio = 0.5 },
			answer:     func(t *testing.T) func(int, []byte, bool) [][]byte { return refuse(t, "198.51.100.7", 0, 2) },
			wantReason: ReasonPacketLoss,
			wantErr:    "2 of 3 echo requests unanswered (66.7% > max_loss_ratio 50%); received destination unreachable (code 1) from 127.0.0.1",
			wantSent:   3, wantReceived: 1},
		{name: "any loss fails by default", host: "2001:db8::7",
			answer:     func(t *testing.T) func(int, []byte, bool) [][]byte { return refuse(t, "2001:db8::7", 2) },
			wantReason: ReasonPacketLoss,
			wantErr:    "1 of 3 echo requests unanswered (33.3% > max_loss_ratio 0%); received destination unreachable (code 1) from 127.0.0.1",
			wantSent:   3, wantReceived: 2},
		{name: "no reply until the timeout",
			edit: func(c *config.ICMPProbe) { c.Packets = 2 },
			answer: func(t *testing.T) func(int, []byte, bool) [][]byte {
				return func(int, []byte, bool) [][]byte { return nil }
			},
			timeout:    time.Second,
			wantReason: ReasonPacketLoss,
			wantErr:    "2 of 2 echo requests unanswered (100% > max_loss_ratio 0%)",
			wantSent:   2, wantReceived: 0},
		{name: "the last reply lost at the timeout",
			edit: func(c *config.ICMPProbe) { c.Packets, c.MaxLossRatio = 2, 0.25 },
			answer: func(t *testing.T) func(int, []byte, bool) [][]byte {
				return func(n int, request []byte, ipv6 bool) [][]byte {
					if n == 1 {
						return nil
					}
					return answerAll(n, request, ipv6)
				}
			},
			timeout:    time.Second,
			wantReason: ReasonPacketLoss,
			wantErr:    "1 of 2 echo requests unanswered (50% > max_loss_ratio 25%)",
			wantSent:   2, wantReceived: 1},
		{name: "timeout before every request was sent",
			edit:       func(c *config.ICMPProbe) { c.PacketInterval = config.Duration(time.Hour) },
			answer:     func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			timeout:    200 * time.Millisecond,
			wantReason: ReasonTimeout,
			wantErr:    "ended after sending 1 of 3 echo requests (1 answered): context deadline exceeded",
			wantSent:   1, wantReceived: 1},
		{name: "send refused by a firewall",
			answer:     func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			writeErr:   syscall.EPERM,
			wantReason: ReasonPermission,
			wantErr:    "sending echo request 1 of 3: write udp4: sendto: operation not permitted"},
		{name: "host unreachable",
			answer:     func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			writeErr:   syscall.EHOSTUNREACH,
			wantReason: ReasonConnect,
			wantErr:    "sending echo request 1 of 3: write udp4: sendto: no route to host"},
		{name: "read error",
			answer: func(*testing.T) func(int, []byte, bool) [][]byte {
				return func(int, []byte, bool) [][]byte { return nil }
			},
			readErr:    syscall.ENOBUFS,
			wantReason: ReasonInternal,
			wantErr:    "reading echo replies: no buffer space available",
			wantSent:   1, wantReceived: 0},
		{name: "name not resolving", host: "unknown.invalid",
			answer:     func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			wantReason: ReasonDNS,
			// The resolver adds the server of /etc/resolv.conf.
			wantErr:       `resolving "unknown.invalid": lookup unknown.invalid on * no DNS in tests`,
			wantNoPackets: true},
		{name: "IPv4 only, name resolves to IPv6", host: "::1",
			edit:          func(c *config.ICMPProbe) { c.IPProtocol, c.IPProtocolFallback = "ip4", false },
			answer:        func(*testing.T) func(int, []byte, bool) [][]byte { return answerAll },
			wantReason:    ReasonDNS,
			wantErr:       `resolving "::1": address ::1 is not of family ip4`,
			wantNoPackets: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := tt.host
			if host == "" {
				host = "127.0.0.1"
			}
			network := &fakeNetwork{denied: tt.denied, answer: tt.answer(t), writeErr: tt.writeErr, readErr: tt.readErr, replyFrom: tt.replyFrom}
			deps := ProberDeps{Dialer: &net.Dialer{Resolver: noDNSResolver()}}
			p, err := newICMPProber(icmpProbe(host, tt.edit), deps, network.open)
			if err != nil {
				t.Fatalf("newICMPProber: %v", err)
			}
			r := probeWithin(t, p, tt.timeout)

			if r.Reason != tt.wantReason || r.Success != (tt.wantReason == "") {
				t.Errorf("Success %v, Reason %q (err %v); want reason %q", r.Success, r.Reason, r.Err, tt.wantReason)
			}
			if !errorMatches(r.Err, tt.wantErr) {
				t.Errorf("Err = %v\nwant %s", r.Err, tt.wantErr)
			}
			if tt.wantNoPackets {
				if r.Packets != nil {
					t.Errorf("Packets = %+v, want none", *r.Packets)
				}
				return
			}
			if r.Packets == nil {
				t.Fatal("no Packets in the result")
			}
			checkPackets(t, *r.Packets, tt.wantSent, tt.wantReceived, false)
			checkICMPPhases(t, r)
			if !network.allClosed() {
				t.Error("a socket was left open")
			}
		})
	}
}

// errorMatches reports whether err's message is want, where a "*" in
// want stands for any text up to the next space; want "" is no error.
func errorMatches(err error, want string) bool {
	if err == nil || want == "" {
		return err == nil && want == ""
	}
	got := err.Error()
	before, after, wild := strings.Cut(want, "*")
	if !wild {
		return got == want
	}
	rest, ok := strings.CutPrefix(got, before)
	if !ok {
		return false
	}
	_, rest, _ = strings.Cut(rest, " ")
	return rest == strings.TrimPrefix(after, " ")
}

// noDNSResolver fails every lookup that /etc/hosts does not answer: tests
// stay off the network.
func noDNSResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS in tests")
	}}
}

// checkPackets checks the counts and that the round trip times are
// ordered, and positive when live says the replies crossed a real stack.
func checkPackets(t *testing.T, got PacketResult, sent, received int, live bool) {
	t.Helper()
	if got.Sent != sent || got.Received != received {
		t.Errorf("sent %d, received %d; want %d, %d", got.Sent, got.Received, sent, received)
	}
	if received == 0 {
		if got.RTTMin != 0 || got.RTTMean != 0 || got.RTTMax != 0 {
			t.Errorf("round trip times %v/%v/%v without replies, want zeros", got.RTTMin, got.RTTMean, got.RTTMax)
		}
		return
	}
	positive := got.RTTMin >= 0
	if live {
		positive = got.RTTMin > 0
	}
	if !positive || got.RTTMin > got.RTTMean || got.RTTMean > got.RTTMax || got.RTTMax > 5*time.Second {
		t.Errorf("round trip times min %v mean %v max %v are not ordered", got.RTTMin, got.RTTMean, got.RTTMax)
	}
}

// checkICMPPhases checks the phases of a run that sent echo requests.
func checkICMPPhases(t *testing.T, r Result) {
	t.Helper()
	for _, phase := range AllPhases() {
		_, got := r.Phases.Get(phase)
		want := phase == PhaseResolve || phase == PhaseConnect || phase == PhaseProcessing
		if got != want {
			t.Errorf("phase %s recorded: %v, want %v", phase, got, want)
		}
	}
}

func TestNewICMPProberSockets(t *testing.T) {
	denied := map[icmpSocketKind]error{icmpDatagram: syscall.EACCES, icmpRaw: syscall.EPERM}
	sysctl := fmt.Sprintf(`sysctl net.ipv4.ping_group_range covering the daemon's group (gid %d, e.g. net.ipv4.ping_group_range="0 2147483647")`, os.Getegid())
	tests := []struct {
		name   string
		host   string
		edit   func(*config.ICMPProbe)
		denied map[icmpSocketKind]error
		// wantOpened lists the sockets tried, in order.
		wantOpened []string
		// wantKinds are the socket kinds chosen for IPv4 and IPv6; "-" for
		// none.
		wantKinds [2]string
		wantErr   string
		// wantPermission: the error is a permission error.
		wantPermission bool
	}{
		{name: "auto prefers datagram", host: "127.0.0.1",
			wantOpened: []string{"udp4"}, wantKinds: [2]string{"datagram", "-"}},
		{name: "auto falls back to raw", host: "127.0.0.1",
			denied:     map[icmpSocketKind]error{icmpDatagram: syscall.EACCES},
			wantOpened: []string{"udp4", "ip4:icmp"}, wantKinds: [2]string{"raw", "-"}},
		{name: "raw only", host: "::1", edit: func(c *config.ICMPProbe) { c.Socket = config.ICMPSocketRaw },
			wantOpened: []string{"ip6:ipv6-icmp"}, wantKinds: [2]string{"-", "raw"}},
		{name: "a name may use either family", host: "ping.example",
			denied:     map[icmpSocketKind]error{icmpDatagram: syscall.EACCES},
			wantOpened: []string{"udp4", "ip4:icmp", "udp6", "ip6:ipv6-icmp"}, wantKinds: [2]string{"raw", "raw"}},
		{name: "a name of one family only", host: "ping.example",
			edit:       func(c *config.ICMPProbe) { c.IPProtocol, c.IPProtocolFallback = "ip6", false },
			wantOpened: []string{"udp6"}, wantKinds: [2]string{"-", "datagram"}},
		{name: "neither kind allowed", host: "127.0.0.1", denied: denied,
			wantOpened: []string{"udp4", "ip4:icmp"},
			wantErr: `probe "ping": cannot open an ICMP socket: datagram socket: listen udp4: socket: permission denied; ` +
				`raw socket: listen ip4:icmp: socket: operation not permitted; allow datagram sockets with ` + sysctl +
				`, or grant the daemon CAP_NET_RAW for raw sockets`,
			wantPermission: true},
		{name: "datagram not allowed", host: "::1", denied: denied,
			edit:       func(c *config.ICMPProbe) { c.Socket = config.ICMPSocketDatagram },
			wantOpened: []string{"udp6"},
			wantErr: `probe "ping": cannot open an ICMPv6 socket: datagram socket: listen udp6: socket: permission denied; ` +
				`allow datagram sockets with ` + sysctl + `, or set socket: auto and grant the daemon CAP_NET_RAW`,
			wantPermission: true},
		{name: "raw not allowed", host: "127.0.0.1", denied: denied,
			edit:       func(c *config.ICMPProbe) { c.Socket = config.ICMPSocketRaw },
			wantOpened: []string{"ip4:icmp"},
			wantErr: `probe "ping": cannot open an ICMP socket: raw socket: listen ip4:icmp: socket: operation not permitted; ` +
				`grant the daemon CAP_NET_RAW, or set socket: auto and allow datagram sockets with ` + sysctl,
			wantPermission: true},
		{name: "preferred family without sockets", host: "ping.example",
			edit:       func(c *config.ICMPProbe) { c.IPProtocol = "ip6" },
			denied:     map[icmpSocketKind]error{icmpDatagram: syscall.EAFNOSUPPORT, icmpRaw: syscall.EAFNOSUPPORT},
			wantOpened: []string{"udp6", "ip6:ipv6-icmp", "udp4", "ip4:icmp"},
			wantErr: `probe "ping": cannot open an ICMPv6 socket: datagram socket: listen udp6: socket: address family not supported by protocol; ` +
				`raw socket: listen ip6:ipv6-icmp: socket: address family not supported by protocol`},
		{name: "unknown socket mode", host: "127.0.0.1", edit: func(c *config.ICMPProbe) { c.Socket = "stream" },
			wantErr: `probe "ping": unknown icmp socket mode "stream"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			network := &fakeNetwork{denied: tt.denied}
			p, err := newICMPProber(icmpProbe(tt.host, tt.edit), ProberDeps{}, network.open)
			if got := network.openedSockets(); strings.Join(got, " ") != strings.Join(tt.wantOpened, " ") {
				t.Errorf("opened %q, want %q", got, tt.wantOpened)
			}
			if !network.allClosed() {
				t.Error("a socket was left open")
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error:\n%v\nwant:\n%s", err, tt.wantErr)
				}
				if got := errors.Is(err, os.ErrPermission); got != tt.wantPermission {
					t.Errorf("errors.Is(err, os.ErrPermission) = %v, want %v", got, tt.wantPermission)
				}
				return
			}
			if err != nil {
				t.Fatalf("newICMPProber: %v", err)
			}
			var kinds [2]string
			for i, s := range p.sockets {
				kinds[i] = s.kind.String()
				if s.err != nil {
					kinds[i] = "-"
				}
			}
			if kinds != tt.wantKinds {
				t.Errorf("socket kinds (IPv4, IPv6) %q, want %q", kinds, tt.wantKinds)
			}
		})
	}
}

// TestICMPProberSocketAtRunTime: a socket that opened when the prober was
// built may be refused later (the sysctl changed), and the other family of
// a name may have none.
func TestICMPProberSocketAtRunTime(t *testing.T) {
	t.Run("refused after the check", func(t *testing.T) {
		network := &fakeNetwork{answer: answerAll}
		p, err := newICMPProber(icmpProbe("127.0.0.1", nil), ProberDeps{}, network.open)
		if err != nil {
			t.Fatal(err)
		}
		network.denied = map[icmpSocketKind]error{icmpDatagram: syscall.EACCES}
		r := p.Probe(t.Context())
		want := "opening datagram udp4 socket: listen udp4: socket: permission denied"
		if r.Success || r.Reason != ReasonPermission || fmt.Sprint(r.Err) != want {
			t.Errorf("Success %v, Reason %q, Err %v; want permission, %s", r.Success, r.Reason, r.Err, want)
		}
		if r.Packets != nil {
			t.Errorf("Packets = %+v, want none", *r.Packets)
		}
	})
	t.Run("family without a socket", func(t *testing.T) {
		network := &fakeNetwork{answer: answerAll}
		p, err := newICMPProber(icmpProbe("localhost", nil), ProberDeps{}, network.open)
		if err != nil {
			t.Fatal(err)
		}
		p.host = "::1" // as if the name had resolved to it
		p.sockets[1] = icmpSocket{err: errors.New("cannot open an ICMPv6 socket: no IPv6 here")}
		r := p.Probe(t.Context())
		want := "::1 resolved to ::1: cannot open an ICMPv6 socket: no IPv6 here"
		if r.Success || r.Reason != ReasonInternal || fmt.Sprint(r.Err) != want {
			t.Errorf("Success %v, Reason %q, Err %v; want internal, %s", r.Success, r.Reason, r.Err, want)
		}
	})
}

// liveICMPProber builds a prober with real sockets, or skips the test with
// the reason when the machine does not allow the socket mode.
func liveICMPProber(t *testing.T, probe config.ProbeConfig) *icmpProber {
	t.Helper()
	p, err := newICMPProber(probe, ProberDeps{}, openICMPSocket)
	switch {
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EADDRNOTAVAIL):
		t.Skipf("socket: %s not permitted on this machine: %v", probe.ICMP.Socket, err)
	case err != nil:
		t.Fatalf("newICMPProber: %v", err)
	}
	return p
}

func loopbackUp(t *testing.T, host string) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("loopback %s is not up: %v", host, err)
	}
	ln.Close()
}

// TestICMPProberLive pings the loopback addresses through each socket
// mode the machine allows.
func TestICMPProberLive(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		for _, mode := range []string{config.ICMPSocketAuto, config.ICMPSocketDatagram, config.ICMPSocketRaw} {
			t.Run(host+"/"+mode, func(t *testing.T) {
				loopbackUp(t, host)
				probe := icmpProbe(host, func(c *config.ICMPProbe) {
					c.Socket = mode
					c.Packets = 3
					c.PacketInterval = config.Duration(10 * time.Millisecond)
					c.TTL = 2
				})
				p := liveICMPProber(t, probe)
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				r := p.Probe(ctx)
				if !r.Success || r.Reason != "" || r.Err != nil {
					t.Fatalf("Success %v, Reason %q, Err %v; want success", r.Success, r.Reason, r.Err)
				}
				checkPackets(t, *r.Packets, 3, 3, true)
				checkICMPPhases(t, r)
				t.Logf("socket %s, RTT min %v mean %v max %v", p.sockets[family(host == "::1")].kind, r.Packets.RTTMin, r.Packets.RTTMean, r.Packets.RTTMax)
			})
		}
	}
}

// TestICMPProberLiveAutoOrder: auto takes the datagram socket exactly when
// the machine allows it.
func TestICMPProberLiveAutoOrder(t *testing.T) {
	auto := liveICMPProber(t, icmpProbe("127.0.0.1", nil))
	_, datagramErr := newICMPProber(icmpProbe("127.0.0.1", func(c *config.ICMPProbe) { c.Socket = config.ICMPSocketDatagram }),
		ProberDeps{}, openICMPSocket)
	want := icmpDatagram
	if datagramErr != nil {
		want = icmpRaw
		t.Logf("datagram sockets not allowed here: %v", datagramErr)
	}
	if got := auto.sockets[0].kind; got != want {
		t.Errorf("auto chose %s sockets, want %s", got, want)
	}
}

// TestICMPProberLiveConcurrent runs probers at once against 127.0.0.1 and
// checks none counts another's replies: two of them even share their echo
// identifier, so only the sequence numbers and payload markers tell their
// replies apart on raw sockets.
func TestICMPProberLiveConcurrent(t *testing.T) {
	const packets = 10
	var probers []*icmpProber
	for range 4 {
		probers = append(probers, liveICMPProber(t, icmpProbe("127.0.0.1", func(c *config.ICMPProbe) {
			c.Packets = packets
			c.PacketInterval = config.Duration(10 * time.Millisecond)
		})))
	}
	probers[1].id = probers[0].id
	results := make([]Result, len(probers))
	var wg sync.WaitGroup
	for i, p := range probers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			results[i] = p.Probe(ctx)
		})
	}
	wg.Wait()
	for i, r := range results {
		if !r.Success || r.Packets == nil {
			t.Errorf("prober %d: Success %v, Reason %q, Err %v", i, r.Success, r.Reason, r.Err)
			continue
		}
		checkPackets(t, *r.Packets, packets, packets, true)
	}
}

// TestICMPExample builds the probers of examples/probes/icmp.yml on a
// fake network that allows datagram sockets: each checks the sockets of
// the address families it may use.
func TestICMPExample(t *testing.T) {
	cfg, err := config.Load("../examples/probes/icmp.yml")
	if err != nil {
		t.Fatal(err)
	}
	wantOpened := map[string][]string{
		"gateway":  {"udp4"},         // an IPv4 literal
		"database": {"udp4"},         // IPv4 only
		"upstream": {"udp6", "udp4"}, // IPv6 preferred, IPv4 as fallback
	}
	probes := cfg.Services[0].Probes
	if len(probes) != len(wantOpened) {
		t.Fatalf("%d probes, want %d", len(probes), len(wantOpened))
	}
	for _, probe := range probes {
		network := &fakeNetwork{}
		if _, err := newICMPProber(probe, ProberDeps{}, network.open); err != nil {
			t.Errorf("probe %s: %v", probe.Name, err)
		}
		if got := network.openedSockets(); strings.Join(got, " ") != strings.Join(wantOpened[probe.Name], " ") {
			t.Errorf("probe %s opened %q, want %q", probe.Name, got, wantOpened[probe.Name])
		}
	}
}
