package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// DefaultDNSProbe holds the defaults of a `dns` probe. Its slice is
// copied by UnmarshalYAML, never shared.
var DefaultDNSProbe = DNSProbe{
	Transport:          "udp",
	QueryType:          "A",
	QueryClass:         "IN",
	RecursionDesired:   true,
	ValidRcodes:        []string{"NOERROR"},
	IPProtocolFallback: true,
}

// DNSProbe configures a `dns` probe: one query to one server, and what
// makes its response good. Option names and semantics follow
// blackbox_exporter's dns prober where they make sense.
type DNSProbe struct {
	// Server is host or host:port; the port defaults to 53, or 853 with
	// transport tls.
	Server string `yaml:"server"`
	// Transport is udp, tcp or tls (DNS over TLS, RFC 7858).
	Transport string `yaml:"transport"`
	// TLSConfig is only allowed with transport tls.
	TLSConfig TLSConfig `yaml:"tls_config,omitempty"`

	QueryName string `yaml:"query_name"`
	// QueryType and QueryClass are names as miekg/dns knows them (A,
	// AAAA, MX...; IN, CH...).
	QueryType        string `yaml:"query_type"`
	QueryClass       string `yaml:"query_class"`
	RecursionDesired bool   `yaml:"recursion_desired"`

	// ValidRcodes lists the accepted response codes by name (NOERROR,
	// NXDOMAIN...).
	ValidRcodes        []string       `yaml:"valid_rcodes"`
	ValidateAnswer     DNSRRValidator `yaml:"validate_answer_rrs,omitempty"`
	ValidateAuthority  DNSRRValidator `yaml:"validate_authority_rrs,omitempty"`
	ValidateAdditional DNSRRValidator `yaml:"validate_additional_rrs,omitempty"`

	IPProtocol         string `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
}

// DNSRRValidator holds the regexps the records of one section of a
// response are checked with. Each record is matched in its text form
// (miekg/dns RR.String(): "name TTL class type data", tab-separated),
// unanchored.
type DNSRRValidator struct {
	// FailIfMatchesRegexp fails the run when any record matches any of them.
	FailIfMatchesRegexp []Regexp `yaml:"fail_if_matches_regexp,omitempty"`
	// FailIfAllMatchRegexp fails the run when there are records and every
	// record matches every one of them.
	FailIfAllMatchRegexp []Regexp `yaml:"fail_if_all_match_regexp,omitempty"`
	// FailIfNotMatchesRegexp fails the run when any record does not match
	// one of them, or when there is no record.
	FailIfNotMatchesRegexp []Regexp `yaml:"fail_if_not_matches_regexp,omitempty"`
	// FailIfNoneMatchesRegexp fails the run when no record matches any of
	// them (also when there is no record).
	FailIfNoneMatchesRegexp []Regexp `yaml:"fail_if_none_matches_regexp,omitempty"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *DNSProbe) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultDNSProbe
	c.ValidRcodes = slices.Clone(DefaultDNSProbe.ValidRcodes)
	type plain DNSProbe
	return unmarshal((*plain)(c))
}

// Target implements ProbeSection: the server as configured.
func (c *DNSProbe) Target() string { return c.Server }

func (c *DNSProbe) resolvePaths(resolve func(path *string)) { c.TLSConfig.resolvePaths(resolve) }

// ServerAddress splits Server into host and port. The port defaults to 53,
// or 853 with transport tls. An IPv6 literal without a port may be
// written with or without brackets ("::1", "[::1]"); with one it needs
// them ("[::1]:53").
func (c *DNSProbe) ServerAddress() (host, port string, err error) {
	port = "53"
	if c.Transport == "tls" {
		port = "853"
	}
	server := c.Server
	if inner, ok := strings.CutPrefix(server, "["); ok && strings.HasSuffix(inner, "]") {
		inner = strings.TrimSuffix(inner, "]")
		if addr, err := netip.ParseAddr(inner); err == nil && addr.Is6() {
			return inner, port, nil
		}
		return "", "", fmt.Errorf("brackets are for an IPv6 address, got %q", server)
	}
	if _, err := netip.ParseAddr(server); err == nil || (server != "" && !strings.Contains(server, ":")) {
		return server, port, nil
	}
	host, port, err = net.SplitHostPort(server)
	if err != nil || host == "" {
		hint := ""
		if strings.Count(server, ":") > 1 {
			hint = " (an IPv6 address with a port goes in brackets: [2001:db8::53]:53)"
		}
		return "", "", fmt.Errorf("must be host or host:port%s, got %q", hint, server)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port must be a number from 1 to 65535, got %q", port)
	}
	return host, port, nil
}

// Question returns the question the probe asks: the query name fully
// qualified (an internationalised name in its ASCII form), type and
// class. It fails where validation does.
func (c *DNSProbe) Question() (dns.Question, error) {
	name, err := dnsQueryName(c.QueryName)
	if err != nil {
		return dns.Question{}, fmt.Errorf("query_name: %w", err)
	}
	qtype, err := dnsQueryType(c.QueryType)
	if err != nil {
		return dns.Question{}, fmt.Errorf("query_type: %w", err)
	}
	qclass, err := dnsQueryClass(c.QueryClass)
	if err != nil {
		return dns.Question{}, fmt.Errorf("query_class: %w", err)
	}
	return dns.Question{Name: name, Qtype: qtype, Qclass: qclass}, nil
}

// Rcodes returns ValidRcodes as numbers, in order.
func (c *DNSProbe) Rcodes() ([]int, error) {
	if len(c.ValidRcodes) == 0 {
		return nil, errors.New("valid_rcodes: must list at least one rcode")
	}
	codes := make([]int, len(c.ValidRcodes))
	for i, name := range c.ValidRcodes {
		code, err := dnsRcode(name)
		if err != nil {
			return nil, fmt.Errorf("valid_rcodes[%d]: %w", i, err)
		}
		codes[i] = code
	}
	return codes, nil
}

// dnsQueryName returns name fully qualified, an internationalised name
// converted to its ASCII (punycode) form as blackbox_exporter does.
func dnsQueryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("must be set")
	}
	ascii, err := idna.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid domain name: %v", name, err)
	}
	fqdn := dns.Fqdn(ascii)
	if _, ok := dns.IsDomainName(fqdn); !ok {
		return "", fmt.Errorf("%q is not a valid domain name", name)
	}
	return fqdn, nil
}

// unqueryable says why a type miekg/dns knows cannot be asked for ("" when
// it can): not a type at all, a pseudo-record, or a zone transfer (several
// messages per answer).
func unqueryable(name string) string {
	switch name {
	case "None", "Reserved":
		return "not a record type"
	case "OPT", "TSIG":
		return "a pseudo-record, not queryable"
	case "AXFR", "IXFR":
		return "zone transfers are not supported"
	}
	return ""
}

func dnsQueryType(name string) (uint16, error) {
	if why := unqueryable(name); why != "" {
		return 0, fmt.Errorf("%s: %s", name, why)
	}
	qtype, ok := dns.StringToType[name]
	if !ok {
		return 0, fmt.Errorf("unknown query type %q%s", name, upperHint(name, func(s string) bool { _, ok := dns.StringToType[s]; return ok }))
	}
	return qtype, nil
}

func dnsQueryClass(name string) (uint16, error) {
	qclass, ok := dns.StringToClass[name]
	if !ok {
		return 0, fmt.Errorf("unknown query class %q (want one of %s)", name, strings.Join(sortedNames(dns.StringToClass), ", "))
	}
	return qclass, nil
}

func dnsRcode(name string) (int, error) {
	code, ok := dns.StringToRcode[name]
	if !ok {
		return 0, fmt.Errorf("unknown rcode %q (want one of %s)", name, strings.Join(sortedNames(dns.StringToRcode), ", "))
	}
	return code, nil
}

// upperHint suggests the upper-case spelling of name when that is known:
// names are case-sensitive, as in blackbox_exporter.
func upperHint(name string, known func(string) bool) string {
	if upper := strings.ToUpper(name); upper != name && known(upper) {
		return fmt.Sprintf(" (did you mean %q?)", upper)
	}
	return ""
}

// sortedNames lists the names of m by value, then name: the order of the
// protocol's numbering, stable for error messages.
func sortedNames[V uint16 | int](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] < m[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}

func (v *validator) dns(path string, c *DNSProbe) {
	if c.Server == "" {
		v.addf(path+".server", "must be set")
	} else if _, _, err := c.ServerAddress(); err != nil {
		v.addf(path+".server", "%v", err)
	}
	switch c.Transport {
	case "udp", "tcp", "tls":
	default:
		v.addf(path+".transport", "must be udp, tcp or tls, got %q", c.Transport)
	}
	if c.TLSConfig != (TLSConfig{}) && c.Transport != "tls" {
		v.addf(path+".tls_config", "is only used with transport: tls")
	}
	v.tlsConfig(path+".tls_config", &c.TLSConfig)
	if _, err := dnsQueryName(c.QueryName); err != nil {
		v.addf(path+".query_name", "%v", err)
	}
	if _, err := dnsQueryType(c.QueryType); err != nil {
		v.addf(path+".query_type", "%v", err)
	}
	if _, err := dnsQueryClass(c.QueryClass); err != nil {
		v.addf(path+".query_class", "%v", err)
	}
	if len(c.ValidRcodes) == 0 {
		v.addf(path+".valid_rcodes", "must list at least one rcode")
	}
	for i, name := range c.ValidRcodes {
		if _, err := dnsRcode(name); err != nil {
			v.addf(fmt.Sprintf("%s.valid_rcodes[%d]", path, i), "%v", err)
		}
	}
	v.dnsRRValidator(path+".validate_answer_rrs", &c.ValidateAnswer)
	v.dnsRRValidator(path+".validate_authority_rrs", &c.ValidateAuthority)
	v.dnsRRValidator(path+".validate_additional_rrs", &c.ValidateAdditional)
	v.ipProtocol(path+".ip_protocol", c.IPProtocol)
}

func (v *validator) dnsRRValidator(path string, rv *DNSRRValidator) {
	v.regexps(path+".fail_if_matches_regexp", rv.FailIfMatchesRegexp)
	v.regexps(path+".fail_if_all_match_regexp", rv.FailIfAllMatchRegexp)
	v.regexps(path+".fail_if_not_matches_regexp", rv.FailIfNotMatchesRegexp)
	v.regexps(path+".fail_if_none_matches_regexp", rv.FailIfNoneMatchesRegexp)
}
