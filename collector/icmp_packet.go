package collector

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// IANA protocol numbers of ICMP for IPv4 and IPv6, as icmp.ParseMessage
// wants them.
const (
	protocolICMP   = 1
	protocolICMPv6 = 58
)

// Sizes of what an echo run reads and writes.
const (
	icmpHeaderLen = 8 // type, code, checksum, identifier, sequence number
	ipv4HeaderMin = 20
	ipv4HeaderMax = 60
	ipv6HeaderLen = 40
	// icmpMarkerLen is how much of the payload is the run's random marker.
	icmpMarkerLen = 8
	// icmpMinReadBuffer holds the start of any ICMP error: its header, the
	// returned IP header with options and the echo request's header are all
	// that is parsed of it. Longer packets are truncated by the read.
	icmpMinReadBuffer = icmpHeaderLen + ipv4HeaderMax + icmpHeaderLen + 56
)

// echoFilter recognises the packets that answer the echo requests of one
// run. A raw socket receives every ICMP packet of the host: other
// processes' pings, other probers' runs, earlier runs of this prober.
// Replies are told apart by identifier (raw sockets only: a datagram
// socket's identifier is chosen by the kernel, which also demultiplexes
// the replies), by sequence number and by payload, which starts with a
// random marker drawn for the run. Read-only once built, so the reading
// goroutine may use it.
type echoFilter struct {
	ipv6 bool
	// checkID is set for raw sockets, where id is the identifier sent.
	checkID bool
	id      uint16
	// seqBase is the sequence number of the run's first request; request
	// i has seqBase+i, wrapping around.
	seqBase uint16
	count   int
	payload []byte
	// target is the address the requests are sent to: an ICMP error
	// about a request to another address is not about this run.
	target netip.Addr
}

// echoMatch is a packet that concerns request index of the run: its echo
// reply, or an ICMP error (icmpError set) about it.
type echoMatch struct {
	index     int
	icmpError string
}

// request returns the echo request with index i of the run, ready to send
// (the checksum of ICMPv6 is the kernel's to fill in).
func (f *echoFilter) request(i int) ([]byte, error) {
	msg := icmp.Message{
		Type: f.requestType(),
		Body: &icmp.Echo{ID: int(f.id), Seq: int(f.seqBase + uint16(i)), Data: f.payload},
	}
	return msg.Marshal(nil)
}

func (f *echoFilter) requestType() icmp.Type {
	if f.ipv6 {
		return ipv6.ICMPTypeEchoRequest
	}
	return ipv4.ICMPTypeEcho
}

func (f *echoFilter) protocol() int {
	if f.ipv6 {
		return protocolICMPv6
	}
	return protocolICMP
}

// readBufferSize is the read buffer a run needs: a whole reply, with room
// for an IPv4 header should the socket deliver one.
func (f *echoFilter) readBufferSize() int {
	return max(icmpHeaderLen+len(f.payload)+ipv4HeaderMax, icmpMinReadBuffer)
}

// match tells whether packet, as read from the socket, answers one of the
// run's requests, and which.
func (f *echoFilter) match(packet []byte) (echoMatch, bool) {
	if !f.ipv6 {
		packet = stripIPv4Header(packet)
		// The kernel checks ICMPv4 checksums only after handing the
		// packet to raw sockets. (ICMPv6's covers a pseudo-header with
		// addresses we do not have here; the kernel checks it before
		// delivery to either kind of socket.)
		if len(packet) < icmpHeaderLen || internetChecksum(packet) != 0 {
			return echoMatch{}, false
		}
	}
	msg, err := icmp.ParseMessage(f.protocol(), packet)
	if err != nil {
		return echoMatch{}, false
	}
	switch body := msg.Body.(type) {
	case *icmp.Echo:
		if msg.Type != f.replyType() || msg.Code != 0 {
			return echoMatch{}, false // requests, ours reflected on loopback included
		}
		index, ok := f.index(uint16(body.ID), uint16(body.Seq))
		if !ok || string(body.Data) != string(f.payload) {
			return echoMatch{}, false
		}
		return echoMatch{index: index}, true
	case *icmp.DstUnreach:
		return f.matchError(msg, body.Data)
	case *icmp.TimeExceeded:
		return f.matchError(msg, body.Data)
	case *icmp.ParamProb:
		return f.matchError(msg, body.Data)
	case *icmp.PacketTooBig:
		return f.matchError(msg, body.Data)
	}
	return echoMatch{}, false
}

func (f *echoFilter) replyType() icmp.Type {
	if f.ipv6 {
		return ipv6.ICMPTypeEchoReply
	}
	return ipv4.ICMPTypeEchoReply
}

// index returns the request index of identifier id and sequence number
// seq, if they are the run's.
func (f *echoFilter) index(id, seq uint16) (int, bool) {
	if f.checkID && id != f.id {
		return 0, false
	}
	index := int(seq - f.seqBase)
	return index, index < f.count
}

// matchError matches an ICMP error by the request it quotes: the IP
// header of the request, then at least the first 8 bytes of its ICMP
// message (RFC 792, RFC 4443).
func (f *echoFilter) matchError(msg *icmp.Message, quoted []byte) (echoMatch, bool) {
	var dst netip.Addr
	var echo []byte
	if f.ipv6 {
		if len(quoted) < ipv6HeaderLen || quoted[0]>>4 != 6 || quoted[6] != protocolICMPv6 {
			return echoMatch{}, false // extension headers are not followed
		}
		dst = netip.AddrFrom16([16]byte(quoted[24:40]))
		echo = quoted[ipv6HeaderLen:]
	} else {
		headerLen, ok := ipv4HeaderLen(quoted)
		if !ok || quoted[9] != protocolICMP {
			return echoMatch{}, false
		}
		dst = netip.AddrFrom4([4]byte(quoted[16:20]))
		echo = quoted[headerLen:]
	}
	if len(echo) < icmpHeaderLen || dst != f.target.WithZone("") {
		return echoMatch{}, false
	}
	if echo[0] != byte(f.requestTypeNumber()) || echo[1] != 0 {
		return echoMatch{}, false
	}
	index, ok := f.index(binary.BigEndian.Uint16(echo[4:6]), binary.BigEndian.Uint16(echo[6:8]))
	if !ok {
		return echoMatch{}, false
	}
	return echoMatch{index: index, icmpError: fmt.Sprintf("%v (code %d)", msg.Type, msg.Code)}, true
}

func (f *echoFilter) requestTypeNumber() int {
	if f.ipv6 {
		return int(ipv6.ICMPTypeEchoRequest)
	}
	return int(ipv4.ICMPTypeEcho)
}

// ipv4HeaderLen returns the length of the IPv4 header packet starts with,
// if it does and the header is whole.
func ipv4HeaderLen(packet []byte) (int, bool) {
	if len(packet) < ipv4HeaderMin || packet[0]>>4 != 4 {
		return 0, false
	}
	headerLen := int(packet[0]&0x0f) * 4
	return headerLen, headerLen >= ipv4HeaderMin && len(packet) >= headerLen
}

// stripIPv4Header drops the IPv4 header raw IPv4 sockets deliver on some
// systems (Go's net package already strips it on Linux). No ICMP type
// starts with 0x4_, so an ICMP message is never mistaken for a header.
func stripIPv4Header(packet []byte) []byte {
	if headerLen, ok := ipv4HeaderLen(packet); ok && packet[9] == protocolICMP {
		return packet[headerLen:]
	}
	return packet
}

// internetChecksum returns the RFC 1071 checksum of b: 0 when b holds a
// valid checksum.
func internetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
