package config

import (
	"math"
	"net/netip"
	"time"
)

// ICMP socket modes of an `icmp` probe.
const (
	// ICMPSocketAuto tries the unprivileged datagram socket, then the raw one.
	ICMPSocketAuto = "auto"
	// ICMPSocketDatagram uses only the unprivileged datagram ("ping")
	// socket, allowed by sysctl net.ipv4.ping_group_range.
	ICMPSocketDatagram = "datagram"
	// ICMPSocketRaw uses only the raw socket, which needs CAP_NET_RAW.
	ICMPSocketRaw = "raw"
)

// Bounds of an `icmp` probe. Packets and payload are bounded because every
// run holds them in memory and puts them on the wire; the interval from
// below so that one probe cannot flood its target.
const (
	MaxICMPPackets        = 100
	MinICMPPacketInterval = Duration(10 * time.Millisecond)
	MaxICMPPayloadSize    = 65000
)

// DefaultICMPProbe holds the defaults of an `icmp` probe.
var DefaultICMPProbe = ICMPProbe{
	Packets:            3,
	PacketInterval:     Duration(100 * time.Millisecond),
	PayloadSize:        56,
	IPProtocolFallback: true,
	Socket:             ICMPSocketAuto,
}

// ICMPProbe configures an `icmp` probe: Packets echo requests ("pings")
// per run, PacketInterval apart, and how many may go unanswered.
type ICMPProbe struct {
	// Host is a name or an IP literal (no port, no brackets).
	Host    string `yaml:"host"`
	Packets int    `yaml:"packets"`
	// PacketInterval separates the echo requests of one run.
	PacketInterval Duration `yaml:"packet_interval"`
	// PayloadSize is the number of data bytes of each echo request, after
	// the 8-byte ICMP header.
	PayloadSize int `yaml:"payload_size"`
	// MaxLossRatio is the largest share of unanswered echo requests with
	// which a run still succeeds: 0 fails a run on any loss.
	MaxLossRatio float64 `yaml:"max_loss_ratio"`
	// TTL is the IPv4 time to live or IPv6 hop limit of the requests; 0
	// leaves the system default.
	TTL int `yaml:"ttl,omitempty"`

	IPProtocol         string `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
	// Socket is ICMPSocketAuto, ICMPSocketDatagram or ICMPSocketRaw.
	Socket string `yaml:"socket"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *ICMPProbe) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultICMPProbe
	type plain ICMPProbe
	return unmarshal((*plain)(c))
}

// Target implements ProbeSection.
func (c *ICMPProbe) Target() string { return c.Host }

// SendSpan is how long a run takes to send its echo requests: from the
// first to the last one.
func (c *ICMPProbe) SendSpan() time.Duration {
	gaps, interval := int64(c.Packets-1), int64(c.PacketInterval)
	switch {
	case gaps < 1 || interval <= 0:
		return 0
	case interval > math.MaxInt64/gaps:
		return math.MaxInt64 // saturated rather than wrapped around
	}
	return time.Duration(gaps * interval)
}

// icmp checks the fields of an `icmp` section on their own; icmpTimeout
// checks them against the probe's timeout.
func (v *validator) icmp(path string, c *ICMPProbe) {
	v.icmpHost(path+".host", c.Host)
	v.between(path+".packets", c.Packets, 1, MaxICMPPackets)
	if c.PacketInterval < MinICMPPacketInterval {
		v.addf(path+".packet_interval", "%s is shorter than the minimum of %s", c.PacketInterval, MinICMPPacketInterval)
	}
	v.between(path+".payload_size", c.PayloadSize, 0, MaxICMPPayloadSize)
	// Written so that NaN fails too.
	if !(c.MaxLossRatio >= 0 && c.MaxLossRatio < 1) {
		v.addf(path+".max_loss_ratio", "must be at least 0 and less than 1 (a share of the echo requests: 0.5 is half), got %v", c.MaxLossRatio)
	}
	if c.TTL != 0 {
		v.between(path+".ttl", c.TTL, 1, 255)
	}
	v.ipProtocol(path+".ip_protocol", c.IPProtocol)
	switch c.Socket {
	case ICMPSocketAuto, ICMPSocketDatagram, ICMPSocketRaw:
	default:
		v.addf(path+".socket", "must be %s, %s or %s, got %q", ICMPSocketAuto, ICMPSocketDatagram, ICMPSocketRaw, c.Socket)
	}
}

// icmpHost checks that host is an IP literal or looks like a host name:
// a URL or host:port here is a common slip that would only fail at run
// time, as a DNS error.
func (v *validator) icmpHost(path, host string) {
	if host == "" {
		v.addf(path, "must be set")
		return
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			v.addf(path, "must be a host name or an IP address (no port, scheme or brackets), got %q", host)
			return
		}
	}
}

// icmpTimeout checks that a run sends its echo requests within the first
// half of the probe's timeout, so the last one has at least the other half
// to be answered. Out-of-range values are reported on their own.
func (v *validator) icmpTimeout(path string, c *ICMPProbe, timeout Duration) {
	if timeout <= 0 || c.Packets < 2 || c.Packets > MaxICMPPackets || c.PacketInterval <= 0 {
		return
	}
	if span := c.SendSpan(); span > timeout.Duration()/2 {
		v.addf(path+".packet_interval", "%d echo requests %s apart take %s to send, more than half of the probe's timeout (%s): "+
			"lower packets or packet_interval, or raise the timeout", c.Packets, c.PacketInterval, Duration(span), timeout)
	}
}
