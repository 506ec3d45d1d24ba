package collector

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// testEchoFilter returns the filter of a raw-socket run of count requests
// to target, starting at sequence number seqBase.
func testEchoFilter(target string, seqBase uint16, count int) *echoFilter {
	addr := netip.MustParseAddr(target)
	return &echoFilter{
		ipv6:    addr.Is6(),
		checkID: true,
		id:      0x1234,
		seqBase: seqBase,
		count:   count,
		payload: []byte("marker!!-and-the-rest"),
		target:  addr,
	}
}

// echoPacket builds an ICMP echo message of type typ (request or reply of
// f's family).
func echoPacket(t testing.TB, typ icmp.Type, code int, id, seq uint16, data []byte) []byte {
	t.Helper()
	msg := icmp.Message{Type: typ, Code: code, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: data}}
	b, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// echoReplyOf is the reply to request i of f, as its target sends it.
func echoReplyOf(t testing.TB, f *echoFilter, i int) []byte {
	return echoPacket(t, f.replyType(), 0, f.id, f.seqBase+uint16(i), f.payload)
}

// ipHeader returns an IP header of dst's family from src to dst carrying
// an ICMP message of payloadLen bytes.
func ipHeader(src, dst netip.Addr, payloadLen int) []byte {
	if dst.Is6() {
		h := make([]byte, ipv6HeaderLen)
		h[0] = 6 << 4
		binary.BigEndian.PutUint16(h[4:6], uint16(payloadLen))
		h[6] = protocolICMPv6
		h[7] = 64
		copy(h[8:24], src.AsSlice())
		copy(h[24:40], dst.AsSlice())
		return h
	}
	h := make([]byte, ipv4HeaderMin)
	h[0] = 4<<4 | 5
	binary.BigEndian.PutUint16(h[2:4], uint16(ipv4HeaderMin+payloadLen))
	h[8] = 64
	h[9] = protocolICMP
	copy(h[12:16], src.AsSlice())
	copy(h[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:12], internetChecksum(h))
	return h
}

// icmpErrorOf returns an ICMP error of type typ quoting request (sent to
// dst) as a router would: the request's IP header and message.
func icmpErrorOf(t testing.TB, typ icmp.Type, code int, dst netip.Addr, request []byte) []byte {
	t.Helper()
	src := netip.MustParseAddr("192.0.2.1")
	if dst.Is6() {
		src = netip.MustParseAddr("2001:db8::1")
	}
	quoted := append(ipHeader(src, dst, len(request)), request...)
	var body icmp.MessageBody
	switch typ {
	case ipv4.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeDestinationUnreachable:
		body = &icmp.DstUnreach{Data: quoted}
	case ipv4.ICMPTypeTimeExceeded, ipv6.ICMPTypeTimeExceeded:
		body = &icmp.TimeExceeded{Data: quoted}
	case ipv4.ICMPTypeParameterProblem, ipv6.ICMPTypeParameterProblem:
		body = &icmp.ParamProb{Data: quoted}
	case ipv6.ICMPTypePacketTooBig:
		body = &icmp.PacketTooBig{MTU: 1280, Data: quoted}
	default:
		t.Fatalf("no error body for %v", typ)
	}
	msg := icmp.Message{Type: typ, Code: code, Body: body}
	b, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRequest(t testing.TB, f *echoFilter, i int) []byte {
	t.Helper()
	b, err := f.request(i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEchoFilterMatch(t *testing.T) {
	type want struct {
		ok        bool
		index     int
		icmpError string
	}
	tests := []struct {
		name   string
		target string
		// seqBase defaults to 100, count to 3.
		seqBase uint16
		// datagram: the kernel chose the identifier, so it is not checked.
		datagram bool
		packet   func(t *testing.T, f *echoFilter) []byte
		want     want
	}{
		{name: "reply to the first request", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte { return echoReplyOf(t, f, 0) },
			want:   want{ok: true, index: 0}},
		{name: "reply to the last request", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte { return echoReplyOf(t, f, 2) },
			want:   want{ok: true, index: 2}},
		{name: "sequence numbers wrap around", target: "127.0.0.1", seqBase: 65535,
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, 1, f.payload)
			},
			want: want{ok: true, index: 2}},
		{name: "sequence number before the run", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, f.seqBase-1, f.payload)
			}},
		{name: "sequence number after the run", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, f.seqBase+3, f.payload)
			}},
		{name: "another identifier on a raw socket", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id+1, f.seqBase, f.payload)
			}},
		{name: "another identifier on a datagram socket", target: "127.0.0.1", datagram: true,
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, 40000, f.seqBase+1, f.payload)
			},
			want: want{ok: true, index: 1}},
		{name: "another run's marker", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				other := bytes.Clone(f.payload)
				other[0] ^= 1
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, f.seqBase, other)
			}},
		{name: "truncated payload", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, f.seqBase, f.payload[:len(f.payload)-1])
			}},
		{name: "longer payload", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, f.seqBase, append(bytes.Clone(f.payload), 0))
			}},
		{name: "truncated packet", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte { return echoReplyOf(t, f, 0)[:7] }},
		{name: "empty packet", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte { return nil }},
		{name: "bad checksum", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				b := echoReplyOf(t, f, 0)
				b[len(b)-1] ^= 0xff
				return b
			}},
		{name: "our request reflected", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte { return mustRequest(t, f, 0) }},
		{name: "reply with a code", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 1, f.id, f.seqBase, f.payload)
			}},
		{name: "reply behind an IPv4 header", target: "127.0.0.1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				reply := echoReplyOf(t, f, 1)
				return append(ipHeader(f.target, f.target, len(reply)), reply...)
			},
			want: want{ok: true, index: 1}},
		{name: "destination unreachable for a request", target: "198.51.100.7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv4.ICMPTypeDestinationUnreachable, 1, f.target, mustRequest(t, f, 1))
			},
			want: want{ok: true, index: 1, icmpError: "destination unreachable (code 1)"}},
		{name: "time exceeded for a request", target: "198.51.100.7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv4.ICMPTypeTimeExceeded, 0, f.target, mustRequest(t, f, 2))
			},
			want: want{ok: true, index: 2, icmpError: "time exceeded (code 0)"}},
		{name: "error about a request to another address", target: "198.51.100.7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv4.ICMPTypeDestinationUnreachable, 1, netip.MustParseAddr("198.51.100.8"), mustRequest(t, f, 0))
			}},
		{name: "error about another identifier", target: "198.51.100.7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				request := echoPacket(t, ipv4.ICMPTypeEcho, 0, f.id+1, f.seqBase, f.payload)
				return icmpErrorOf(t, ipv4.ICMPTypeDestinationUnreachable, 1, f.target, request)
			}},
		{name: "error about a reply", target: "198.51.100.7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv4.ICMPTypeDestinationUnreachable, 3, f.target, echoReplyOf(t, f, 0))
			}},
		{name: "error quoting a truncated request", target: "198.51.100.7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv4.ICMPTypeDestinationUnreachable, 1, f.target, mustRequest(t, f, 0)[:7])
			}},

		{name: "IPv6 reply", target: "::1",
			packet: func(t *testing.T, f *echoFilter) []byte { return echoReplyOf(t, f, 1) },
			want:   want{ok: true, index: 1}},
		{name: "IPv6 request reflected", target: "::1",
			packet: func(t *testing.T, f *echoFilter) []byte { return mustRequest(t, f, 1) }},
		{name: "ICMPv4 reply on an IPv6 run", target: "::1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv4.ICMPTypeEchoReply, 0, f.id, f.seqBase, f.payload)
			}},
		{name: "IPv6 reply with another identifier", target: "::1",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return echoPacket(t, ipv6.ICMPTypeEchoReply, 0, f.id^0xffff, f.seqBase, f.payload)
			}},
		{name: "IPv6 packet too big", target: "2001:db8::7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv6.ICMPTypePacketTooBig, 0, f.target, mustRequest(t, f, 0))
			},
			want: want{ok: true, index: 0, icmpError: "packet too big (code 0)"}},
		{name: "IPv6 destination unreachable", target: "2001:db8::7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv6.ICMPTypeDestinationUnreachable, 4, f.target, mustRequest(t, f, 2))
			},
			want: want{ok: true, index: 2, icmpError: "destination unreachable (code 4)"}},
		{name: "IPv6 error about another address", target: "2001:db8::7",
			packet: func(t *testing.T, f *echoFilter) []byte {
				return icmpErrorOf(t, ipv6.ICMPTypeTimeExceeded, 0, netip.MustParseAddr("2001:db8::8"), mustRequest(t, f, 0))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seqBase := tt.seqBase
			if seqBase == 0 {
				seqBase = 100
			}
			f := testEchoFilter(tt.target, seqBase, 3)
			f.checkID = !tt.datagram
			match, ok := f.match(tt.packet(t, f))
			got := want{ok: ok, index: match.index, icmpError: match.icmpError}
			if got != tt.want {
				t.Errorf("match = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEchoFilterRequest(t *testing.T) {
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			f := testEchoFilter(target, 65534, 3)
			b := mustRequest(t, f, 2)
			msg, err := icmp.ParseMessage(f.protocol(), b)
			if err != nil {
				t.Fatal(err)
			}
			echo, ok := msg.Body.(*icmp.Echo)
			if !ok || msg.Type != f.requestType() || msg.Code != 0 {
				t.Fatalf("request is %v code %d (%T), want an echo request", msg.Type, msg.Code, msg.Body)
			}
			if echo.ID != 0x1234 || echo.Seq != 0 || !bytes.Equal(echo.Data, f.payload) {
				t.Errorf("request ID %#x seq %d data %q, want 0x1234 0 %q", echo.ID, echo.Seq, echo.Data, f.payload)
			}
			if !f.ipv6 && internetChecksum(b) != 0 {
				t.Errorf("ICMPv4 request checksum is wrong")
			}
		})
	}
}

func TestInternetChecksum(t *testing.T) {
	// RFC 1071 section 3's example, odd length included.
	data := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := internetChecksum(data); got != ^uint16(0xddf2) {
		t.Errorf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
	if got := internetChecksum([]byte{0xff}); got != 0x00ff {
		t.Errorf("checksum of one byte = %#04x, want 0x00ff", got)
	}
}

func TestPayloadMarker(t *testing.T) {
	p := &icmpProber{payloadSize: 20, packets: 3}
	target := netip.MustParseAddr("127.0.0.1")
	a, b := p.newFilter(icmpRaw, target), p.newFilter(icmpRaw, target)
	if len(a.payload) != 20 || !a.checkID {
		t.Fatalf("payload of %d bytes, checkID %v; want 20, true", len(a.payload), a.checkID)
	}
	if bytes.Equal(a.payload[:icmpMarkerLen], b.payload[:icmpMarkerLen]) {
		t.Errorf("two runs drew the same marker %x", a.payload[:icmpMarkerLen])
	}
	if a.payload[19] != 19 {
		t.Errorf("payload[19] = %d, want 19 (the fill pattern)", a.payload[19])
	}
	if small := (&icmpProber{payloadSize: 3}).newFilter(icmpDatagram, target); len(small.payload) != 3 || small.checkID {
		t.Errorf("payload of %d bytes, checkID %v; want 3, false", len(small.payload), small.checkID)
	}
}

// FuzzEchoFilterMatch feeds arbitrary packets to the filter: it must not
// panic, and whatever it matches must be about one of the run's requests.
func FuzzEchoFilterMatch(f *testing.F) {
	for _, target := range []string{"127.0.0.1", "2001:db8::7"} {
		filter := testEchoFilter(target, 65535, 3)
		reply := echoReplyOf(f, filter, 1)
		f.Add(reply, filter.ipv6)
		f.Add(reply[:9], filter.ipv6)
		f.Add(mustRequest(f, filter, 0), filter.ipv6)
		errType := icmp.Type(ipv4.ICMPTypeDestinationUnreachable)
		if filter.ipv6 {
			errType = ipv6.ICMPTypeDestinationUnreachable
		}
		f.Add(icmpErrorOf(f, errType, 1, filter.target, mustRequest(f, filter, 2)), filter.ipv6)
		if !filter.ipv6 {
			f.Add(append(ipHeader(filter.target, filter.target, len(reply)), reply...), false)
		}
	}
	f.Fuzz(func(t *testing.T, packet []byte, isIPv6 bool) {
		target := "127.0.0.1"
		if isIPv6 {
			target = "2001:db8::7"
		}
		filter := testEchoFilter(target, 65535, 3)
		match, ok := filter.match(packet)
		if !ok {
			return
		}
		if match.index < 0 || match.index >= filter.count {
			t.Fatalf("matched index %d of a run of %d", match.index, filter.count)
		}
		if match.icmpError != "" {
			return
		}
		// A matched reply is byte for byte the reply to that request,
		// but for the IPv4 header the socket may leave in front.
		want := echoReplyOf(t, filter, match.index)
		if !bytes.HasSuffix(packet, want[4:]) || !bytes.Equal(packet[len(packet)-len(want):][:2], want[:2]) {
			t.Fatalf("matched %x as the reply to request %d, which is %x", packet, match.index, want)
		}
	})
}
