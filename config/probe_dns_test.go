package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// dnsProbeYAML is a configuration with one dns probe whose section is
// body, indented by ten spaces.
func dnsProbeYAML(body string) string {
	return "services:\n  - name: dns\n    probes:\n      - name: resolver\n        dns:\n" + body
}

func TestDNSProbeDefaults(t *testing.T) {
	cfg, err := Parse([]byte(dnsProbeYAML("          server: 192.0.2.53\n          query_name: example.com\n")), "x.yml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := cfg.Services[0].Probes[0].DNS
	want := &DNSProbe{
		Server:             "192.0.2.53",
		Transport:          "udp",
		QueryName:          "example.com",
		QueryType:          "A",
		QueryClass:         "IN",
		RecursionDesired:   true,
		ValidRcodes:        []string{"NOERROR"},
		IPProtocolFallback: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if target := cfg.Services[0].Probes[0].Section().Target(); target != "192.0.2.53" {
		t.Errorf("Target() = %q, want the server", target)
	}
	got.ValidRcodes[0] = "SERVFAIL"
	if DefaultDNSProbe.ValidRcodes[0] != "NOERROR" {
		t.Fatalf("changing a loaded probe changed DefaultDNSProbe")
	}
}

func TestDNSProbeExplicitValues(t *testing.T) {
	cfg, err := Parse([]byte(dnsProbeYAML(`          server: "[2001:db8::53]:8853"
          transport: tls
          tls_config: {server_name: dns.example}
          query_name: example.com
          query_type: MX
          query_class: CH
          recursion_desired: false
          valid_rcodes: [NXDOMAIN, SERVFAIL]
          ip_protocol: ip6
          ip_protocol_fallback: false
          validate_answer_rrs:
            fail_if_matches_regexp: [a]
            fail_if_all_match_regexp: [b]
            fail_if_not_matches_regexp: [c]
            fail_if_none_matches_regexp: [d]
          validate_authority_rrs: {fail_if_matches_regexp: [e]}
          validate_additional_rrs: {fail_if_matches_regexp: [f]}
`)), "x.yml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p := cfg.Services[0].Probes[0].DNS
	if p.Transport != "tls" || p.TLSConfig.ServerName != "dns.example" || p.QueryType != "MX" || p.QueryClass != "CH" ||
		p.RecursionDesired || !reflect.DeepEqual(p.ValidRcodes, []string{"NXDOMAIN", "SERVFAIL"}) ||
		p.IPProtocol != "ip6" || p.IPProtocolFallback {
		t.Errorf("explicit values not kept: %+v", p)
	}
	regexps := []struct {
		list []Regexp
		want string
	}{
		{p.ValidateAnswer.FailIfMatchesRegexp, "a"},
		{p.ValidateAnswer.FailIfAllMatchRegexp, "b"},
		{p.ValidateAnswer.FailIfNotMatchesRegexp, "c"},
		{p.ValidateAnswer.FailIfNoneMatchesRegexp, "d"},
		{p.ValidateAuthority.FailIfMatchesRegexp, "e"},
		{p.ValidateAdditional.FailIfMatchesRegexp, "f"},
	}
	for i, re := range regexps {
		if len(re.list) != 1 || re.list[0].String() != re.want {
			t.Errorf("regexp list %d = %v, want [%s]", i, re.list, re.want)
		}
	}
	// The effective configuration shows and loads again unchanged.
	again, err := Parse([]byte(cfg.String()), "x.yml")
	if err != nil {
		t.Fatalf("Parse(String()): %v\n%s", err, cfg)
	}
	if again.String() != cfg.String() {
		t.Errorf("round trip changed the config:\n%s\nwant:\n%s", again, cfg)
	}
}

func TestDNSServerAddress(t *testing.T) {
	tests := []struct {
		server, transport  string
		wantHost, wantPort string
		wantErr            string
	}{
		{server: "192.0.2.53", transport: "udp", wantHost: "192.0.2.53", wantPort: "53"},
		{server: "192.0.2.53", transport: "tls", wantHost: "192.0.2.53", wantPort: "853"},
		{server: "192.0.2.53:5353", transport: "tls", wantHost: "192.0.2.53", wantPort: "5353"},
		{server: "ns1.example", transport: "tcp", wantHost: "ns1.example", wantPort: "53"},
		{server: "ns1.example:1053", transport: "udp", wantHost: "ns1.example", wantPort: "1053"},
		{server: "2001:db8::53", transport: "udp", wantHost: "2001:db8::53", wantPort: "53"},
		{server: "[2001:db8::53]", transport: "tls", wantHost: "2001:db8::53", wantPort: "853"},
		{server: "[2001:db8::53]:53", transport: "tls", wantHost: "2001:db8::53", wantPort: "53"},
		{server: "fe80::1%eth0", transport: "udp", wantHost: "fe80::1%eth0", wantPort: "53"},
		{server: "", wantErr: `must be host or host:port, got ""`},
		{server: ":53", wantErr: `must be host or host:port, got ":53"`},
		{server: "ns1.example:", wantErr: `port must be a number from 1 to 65535, got ""`},
		{server: "ns1.example:65536", wantErr: `port must be a number from 1 to 65535, got "65536"`},
		{server: "[192.0.2.53]", wantErr: `brackets are for an IPv6 address, got "[192.0.2.53]"`},
		{server: "[2001:db8::53", wantErr: `must be host or host:port (an IPv6 address with a port goes in brackets: [2001:db8::53]:53), got "[2001:db8::53"`},
	}
	for _, tt := range tests {
		t.Run(tt.server+"/"+tt.transport, func(t *testing.T) {
			host, port, err := (&DNSProbe{Server: tt.server, Transport: tt.transport}).ServerAddress()
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("ServerAddress() = %q, %q, %v; want error %q", host, port, err, tt.wantErr)
				}
			case err != nil || host != tt.wantHost || port != tt.wantPort:
				t.Errorf("ServerAddress() = %q, %q, %v; want %q, %q", host, port, err, tt.wantHost, tt.wantPort)
			}
		})
	}
}

func TestDNSQuestion(t *testing.T) {
	tests := []struct {
		name, qtype, qclass string
		want                dns.Question
		wantErr             string
	}{
		{name: "example.com", qtype: "A", qclass: "IN", want: dns.Question{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}},
		{name: "example.com.", qtype: "HTTPS", qclass: "IN", want: dns.Question{Name: "example.com.", Qtype: dns.TypeHTTPS, Qclass: dns.ClassINET}},
		{name: ".", qtype: "NS", qclass: "IN", want: dns.Question{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET}},
		{name: "münchen.example", qtype: "ANY", qclass: "ANY", want: dns.Question{Name: "xn--mnchen-3ya.example.", Qtype: dns.TypeANY, Qclass: dns.ClassANY}},
		{name: "_imaps._tcp.example.com", qtype: "SRV", qclass: "IN", want: dns.Question{Name: "_imaps._tcp.example.com.", Qtype: dns.TypeSRV, Qclass: dns.ClassINET}},
		{name: "", qtype: "A", qclass: "IN", wantErr: "query_name: must be set"},
		{name: strings.Repeat("a", 64) + ".example", qtype: "A", qclass: "IN", wantErr: "query_name: \"" + strings.Repeat("a", 64) + ".example\" is not a valid domain name"},
		{name: "example.com", qtype: "IXFR", qclass: "IN", wantErr: "query_type: IXFR: zone transfers are not supported"},
		{name: "example.com", qtype: "OPT", qclass: "IN", wantErr: "query_type: OPT: a pseudo-record, not queryable"},
		{name: "example.com", qtype: "None", qclass: "IN", wantErr: "query_type: None: not a record type"},
		{name: "example.com", qtype: "Mx", qclass: "IN", wantErr: `query_type: unknown query type "Mx" (did you mean "MX"?)`},
		{name: "example.com", qtype: "A", qclass: "in", wantErr: `query_class: unknown query class "in" (want one of IN, CS, CH, HS, NONE, ANY)`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.qtype+"/"+tt.qclass, func(t *testing.T) {
			got, err := (&DNSProbe{QueryName: tt.name, QueryType: tt.qtype, QueryClass: tt.qclass}).Question()
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("Question() = %v, %v; want error %q", got, err, tt.wantErr)
				}
			case err != nil || got != tt.want:
				t.Errorf("Question() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestDNSRcodes(t *testing.T) {
	got, err := (&DNSProbe{ValidRcodes: []string{"NOERROR", "NXDOMAIN", "REFUSED", "NOTIMP", "NOTIMPL"}}).Rcodes()
	if want := []int{0, 3, 5, 4, 4}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Rcodes() = %v, %v; want %v", got, err, want)
	}
	if _, err := (&DNSProbe{ValidRcodes: []string{"NOERROR", "noerror"}}).Rcodes(); err == nil ||
		!strings.HasPrefix(err.Error(), `valid_rcodes[1]: unknown rcode "noerror" (want one of NOERROR, FORMERR, `) {
		t.Errorf("Rcodes() error = %v, want one about valid_rcodes[1]", err)
	}
}

// TestDNSValidateInCode checks Validate on a configuration built in code,
// without positions.
func TestDNSValidateInCode(t *testing.T) {
	probe := DefaultDNSProbe
	probe.Server = "192.0.2.53"
	probe.Transport = "doh"
	probe.ValidateAnswer.FailIfMatchesRegexp = []Regexp{{}}
	cfg := &Config{Global: DefaultGlobalConfig, Services: []ServiceConfig{{
		Name:   "dns",
		Probes: []ProbeConfig{{Name: "resolver", Interval: Duration(30e9), Timeout: Duration(5e9), DNS: &probe}},
	}}}
	err := cfg.Validate()
	want := strings.Join([]string{
		`services[0].probes[0].dns.transport: must be udp, tcp or tls, got "doh"`,
		`services[0].probes[0].dns.query_name: must be set`,
		`services[0].probes[0].dns.validate_answer_rrs.fail_if_matches_regexp[0]: must be a regular expression`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want:\n%s", err, want)
	}
}

func TestDNSRelativePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reliability.yml")
	data := dnsProbeYAML("          server: dns.example\n          transport: tls\n          query_name: example.com\n" +
		"          tls_config: {ca_file: certs/ca.pem, cert_file: /etc/client.pem, key_file: client.key}\n")
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := cfg.Services[0].Probes[0].DNS.TLSConfig
	want := TLSConfig{CAFile: filepath.Join(dir, "certs/ca.pem"), CertFile: "/etc/client.pem", KeyFile: filepath.Join(dir, "client.key")}
	if got != want {
		t.Errorf("tls_config = %+v, want %+v", got, want)
	}
}

// TestDNSExample loads examples/probes/dns.yml, which documents every
// option of the dns probe.
func TestDNSExample(t *testing.T) {
	cfg, err := Load("../examples/probes/dns.yml")
	if err != nil {
		t.Fatalf("examples/probes/dns.yml does not load:\n%v", err)
	}
	var probes []*DNSProbe
	for _, service := range cfg.Services {
		for _, probe := range service.Probes {
			if probe.DNS == nil {
				t.Errorf("probe %s is not a dns probe", probe.Name)
				continue
			}
			probes = append(probes, probe.DNS)
		}
	}
	if len(probes) != 5 {
		t.Fatalf("%d dns probes, want 5", len(probes))
	}
	// Every field of the section is written somewhere, as a key (those of
	// tls_config, shared by every probe type, are documented with it).
	data, err := os.ReadFile("../examples/probes/dns.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range yamlFieldPaths(reflect.TypeOf(DNSProbe{}), "") {
		key := field[strings.LastIndex(field, ".")+1:]
		if !regexp.MustCompile(`(?m)^\s*` + key + `:`).Match(data) {
			t.Errorf("examples/probes/dns.yml does not set %s", field)
		}
	}
}

// yamlFieldPaths lists the YAML paths of the fields of a struct, nested
// structs flattened ("validate_answer_rrs.fail_if_matches_regexp") except
// TLSConfig.
func yamlFieldPaths(typ reflect.Type, prefix string) []string {
	var paths []string
	for _, field := range reflect.VisibleFields(typ) {
		name := yamlName(field)
		if name == "" {
			continue
		}
		if field.Type.Kind() == reflect.Struct && field.Type != reflect.TypeOf(Regexp{}) && field.Type != reflect.TypeOf(TLSConfig{}) {
			paths = append(paths, yamlFieldPaths(field.Type, prefix+name+".")...)
			continue
		}
		paths = append(paths, prefix+name)
	}
	return paths
}
