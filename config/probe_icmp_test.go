package config

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestICMPProbeDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - name: network
    probes:
      - name: gateway
        icmp: {host: 10.0.0.1}
`), "reliability.yml")
	if err != nil {
		t.Fatal(err)
	}
	probe := cfg.Services[0].Probes[0]
	want := ICMPProbe{
		Host:               "10.0.0.1",
		Packets:            3,
		PacketInterval:     Duration(100 * time.Millisecond),
		PayloadSize:        56,
		IPProtocolFallback: true,
		Socket:             "auto",
	}
	if !reflect.DeepEqual(*probe.ICMP, want) {
		t.Errorf("icmp = %+v, want %+v", *probe.ICMP, want)
	}
	if probe.Type() != "icmp" || probe.Section().Target() != "10.0.0.1" {
		t.Errorf("Type() = %q, Target() = %q; want icmp and the host", probe.Type(), probe.Section().Target())
	}
}

// TestICMPProbeExample loads examples/probes/icmp.yml: it must load, and
// its values are the documented ones. (Building its probers needs ICMP
// sockets: test/probes_test.go runs --config.check on it where allowed.)
func TestICMPProbeExample(t *testing.T) {
	cfg, err := Load("../examples/probes/icmp.yml")
	if err != nil {
		t.Fatal(err)
	}
	probes := cfg.Services[0].Probes
	if len(probes) != 3 {
		t.Fatalf("%d probes, want 3", len(probes))
	}
	gateway := DefaultICMPProbe
	gateway.Host = "10.0.0.1"
	want := []ICMPProbe{
		gateway,
		{Host: "db.internal.example", Packets: 5, PacketInterval: Duration(200 * time.Millisecond), PayloadSize: 1400,
			MaxLossRatio: 0.2, TTL: 8, IPProtocol: "ip4", Socket: "auto"},
		{Host: "www.example.com", Packets: 10, PacketInterval: Duration(500 * time.Millisecond), PayloadSize: 56,
			MaxLossRatio: 0.5, IPProtocol: "ip6", IPProtocolFallback: true, Socket: "auto"},
	}
	for i, probe := range probes {
		if probe.ICMP == nil || !reflect.DeepEqual(*probe.ICMP, want[i]) {
			t.Errorf("probe %s: icmp = %+v, want %+v", probe.Name, probe.ICMP, want[i])
		}
	}
}

func TestICMPValidate(t *testing.T) {
	valid := func(edit func(*ICMPProbe)) *ICMPProbe {
		c := DefaultICMPProbe
		c.Host = "gw.example"
		edit(&c)
		return &c
	}
	tests := []struct {
		name  string
		probe *ICMPProbe
		want  []string // "path: message", in order
	}{
		{name: "defaults", probe: valid(func(*ICMPProbe) {})},
		{name: "bounds included", probe: valid(func(c *ICMPProbe) {
			c.Packets, c.PacketInterval, c.PayloadSize, c.MaxLossRatio, c.TTL = 100, MinICMPPacketInterval, 65000, 0.99, 255
		})},
		{name: "lower bounds", probe: valid(func(c *ICMPProbe) { c.Packets, c.PayloadSize, c.TTL = 1, 0, 1 })},
		{name: "IPv6 literal with zone", probe: valid(func(c *ICMPProbe) { c.Host, c.IPProtocol = "fe80::1%eth0", "ip6" })},
		{name: "socket modes", probe: valid(func(c *ICMPProbe) { c.Socket = "raw" })},
		{name: "out of range", probe: valid(func(c *ICMPProbe) {
			c.Packets, c.PacketInterval, c.PayloadSize, c.TTL = 101, Duration(9*time.Millisecond), 65001, 256
		}), want: []string{
			"icmp.packets: must be between 1 and 100, got 101",
			"icmp.packet_interval: 9ms is shorter than the minimum of 10ms",
			"icmp.payload_size: must be between 0 and 65000, got 65001",
			"icmp.ttl: must be between 1 and 255, got 256",
		}},
		{name: "below range", probe: valid(func(c *ICMPProbe) { c.Packets, c.PayloadSize, c.TTL = 0, -1, -1 }), want: []string{
			"icmp.packets: must be between 1 and 100, got 0",
			"icmp.payload_size: must be between 0 and 65000, got -1",
			"icmp.ttl: must be between 1 and 255, got -1",
		}},
		{name: "loss ratio 1", probe: valid(func(c *ICMPProbe) { c.MaxLossRatio = 1 }), want: []string{
			"icmp.max_loss_ratio: must be at least 0 and less than 1 (a share of the echo requests: 0.5 is half), got 1",
		}},
		{name: "negative loss ratio", probe: valid(func(c *ICMPProbe) { c.MaxLossRatio = -0.1 }), want: []string{
			"icmp.max_loss_ratio: must be at least 0 and less than 1 (a share of the echo requests: 0.5 is half), got -0.1",
		}},
		{name: "NaN loss ratio", probe: valid(func(c *ICMPProbe) { c.MaxLossRatio = math.NaN() }), want: []string{
			"icmp.max_loss_ratio: must be at least 0 and less than 1 (a share of the echo requests: 0.5 is half), got NaN",
		}},
		{name: "empty host", probe: valid(func(c *ICMPProbe) { c.Host = "" }), want: []string{"icmp.host: must be set"}},
		{name: "host with port", probe: valid(func(c *ICMPProbe) { c.Host = "gw.example:80" }), want: []string{
			`icmp.host: must be a host name or an IP address (no port, scheme or brackets), got "gw.example:80"`,
		}},
		{name: "bracketed IPv6", probe: valid(func(c *ICMPProbe) { c.Host = "[::1]" }), want: []string{
			`icmp.host: must be a host name or an IP address (no port, scheme or brackets), got "[::1]"`,
		}},
		{name: "bad protocol and socket", probe: valid(func(c *ICMPProbe) { c.IPProtocol, c.Socket = "ipv4", "" }), want: []string{
			`icmp.ip_protocol: must be ip4 or ip6 (or unset for either), got "ipv4"`,
			`icmp.socket: must be auto, datagram or raw, got ""`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v validator
			v.icmp("icmp", tt.probe)
			if got := fieldErrors(v.errs); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func fieldErrors(errs Errors) []string {
	var out []string
	for _, fe := range errs {
		out = append(out, fe.Path+": "+fe.Msg)
	}
	return out
}

func TestICMPValidateTimeout(t *testing.T) {
	tests := []struct {
		name     string
		packets  int
		interval time.Duration
		timeout  time.Duration
		want     string // "" for no error
	}{
		{name: "well within", packets: 3, interval: 100 * time.Millisecond, timeout: 10 * time.Second},
		{name: "exactly half", packets: 11, interval: 500 * time.Millisecond, timeout: 10 * time.Second},
		{name: "one packet, any interval", packets: 1, interval: time.Hour, timeout: time.Second},
		{name: "just over half", packets: 11, interval: 501 * time.Millisecond, timeout: 10 * time.Second,
			want: "icmp.packet_interval: 11 echo requests 501ms apart take 5s10ms to send, more than half of the probe's timeout (10s): " +
				"lower packets or packet_interval, or raise the timeout"},
		{name: "interval beyond the timeout", packets: 2, interval: 2 * time.Second, timeout: time.Second,
			want: "icmp.packet_interval: 2 echo requests 2s apart take 2s to send, more than half of the probe's timeout (1s): " +
				"lower packets or packet_interval, or raise the timeout"},
		{name: "huge interval saturates", packets: 100, interval: 200 * 365 * 24 * time.Hour, timeout: time.Second,
			want: "icmp.packet_interval: 100 echo requests 200y apart take 106751d23h47m16s854ms to send, more than half of the probe's timeout (1s): " +
				"lower packets or packet_interval, or raise the timeout"},
		{name: "zero timeout reported elsewhere", packets: 3, interval: time.Second},
		{name: "packets out of range reported elsewhere", packets: 1000, interval: time.Second, timeout: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultICMPProbe
			c.Host, c.Packets, c.PacketInterval = "gw.example", tt.packets, Duration(tt.interval)
			var v validator
			v.icmpTimeout("icmp", &c, Duration(tt.timeout))
			if got := strings.Join(fieldErrors(v.errs), "\n"); got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestICMPSendSpan(t *testing.T) {
	tests := []struct {
		packets  int
		interval time.Duration
		want     time.Duration
	}{
		{packets: 0, interval: time.Second, want: 0},
		{packets: 1, interval: time.Second, want: 0},
		{packets: 3, interval: 100 * time.Millisecond, want: 200 * time.Millisecond},
		{packets: 100, interval: 10 * time.Millisecond, want: 990 * time.Millisecond},
		{packets: 3, interval: math.MaxInt64 / 2, want: math.MaxInt64 - 1},
		{packets: 4, interval: math.MaxInt64 / 2, want: math.MaxInt64},
	}
	for _, tt := range tests {
		c := ICMPProbe{Packets: tt.packets, PacketInterval: Duration(tt.interval)}
		if got := c.SendSpan(); got != tt.want {
			t.Errorf("SendSpan of %d packets %v apart = %v, want %v", tt.packets, tt.interval, got, tt.want)
		}
	}
}
