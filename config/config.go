// Package config loads, defaults and validates reliabilityd's YAML
// configuration. A *Config returned by Load or Parse is read-only: the
// daemon shares it between goroutines and swaps it whole on reload.
package config

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Defaults. They are values, never mutated: UnmarshalYAML copies them.
var (
	// DefaultGlobalConfig holds the defaults of the `global` section.
	DefaultGlobalConfig = GlobalConfig{
		ProbeInterval:       Duration(30 * time.Second),
		ProbeTimeout:        Duration(10 * time.Second),
		MaxConcurrentProbes: 1000,
		EvaluationInterval:  Duration(15 * time.Second),
		History:             DefaultHistoryConfig,
	}
	// DefaultHistoryConfig holds the defaults of `global.history`.
	DefaultHistoryConfig = HistoryConfig{Successes: 50, Failures: 100}
	// DefaultHTTPProbe holds the defaults of an `http` probe.
	DefaultHTTPProbe = HTTPProbe{
		Method:             "GET",
		FollowRedirects:    true,
		MaxRedirects:       10,
		BodySizeLimit:      ByteSize(10 * units.MiB),
		IPProtocolFallback: true,
	}
	// DefaultTCPProbe holds the defaults of a `tcp` probe.
	DefaultTCPProbe = TCPProbe{
		IPProtocolFallback: true,
	}
)

// Config is the whole configuration file.
type Config struct {
	Global   GlobalConfig    `yaml:"global"`
	Services []ServiceConfig `yaml:"services"`
	// PrometheusSources are the Prometheus-compatible APIs that capacity
	// resources and backups query.
	PrometheusSources []PrometheusSourceConfig `yaml:"prometheus_sources,omitempty"`

	// Filename is the file the configuration was read from; empty for the
	// built-in default. Not part of the YAML.
	Filename string `yaml:"-"`
}

// GlobalConfig holds settings that apply to every service.
type GlobalConfig struct {
	// ProbeInterval is the interval of probes that set none.
	ProbeInterval Duration `yaml:"probe_interval"`
	// ProbeTimeout is the timeout of probes that set none. A probe's
	// timeout is capped at its interval.
	ProbeTimeout Duration `yaml:"probe_timeout"`
	// MaxConcurrentProbes caps how many probe runs are in flight at once.
	MaxConcurrentProbes int `yaml:"max_concurrent_probes"`
	// EvaluationInterval is how often SLO figures are recomputed for
	// /metrics and the landing page.
	EvaluationInterval Duration `yaml:"evaluation_interval"`
	// History bounds the recent results kept for the landing page.
	History HistoryConfig `yaml:"history"`
}

// HistoryConfig bounds the ring buffers of recent probe results. Failures
// are kept apart from successes so a burst of successes never pushes out
// the failures an operator wants to read.
type HistoryConfig struct {
	Successes int `yaml:"successes"`
	Failures  int `yaml:"failures"`
}

// ServiceConfig is one monitored service.
type ServiceConfig struct {
	Name     string `yaml:"name"`
	Owner    string `yaml:"owner"`
	Priority string `yaml:"priority"`
	// Maintenance windows and HoursOfOperation exclude events from the
	// service's SLOs (counted apart as planned downtime).
	Maintenance      []MaintenanceWindow `yaml:"maintenance,omitempty"`
	HoursOfOperation *HoursOfOperation   `yaml:"hours_of_operation,omitempty"`
	Probes           []ProbeConfig       `yaml:"probes"`
	SLOs             []SLOConfig         `yaml:"slos,omitempty"`
	Capacity         []CapacityConfig    `yaml:"capacity,omitempty"`
	Recovery         *RecoveryConfig     `yaml:"recovery,omitempty"`
}

// ProbeConfig is one synthetic probe of a service. Exactly one of the
// protocol sections (http, tcp, transaction, dns, grpc, icmp, tls) is set.
type ProbeConfig struct {
	Name string `yaml:"name"`
	// Interval and Timeout default to the global values when zero.
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`

	HTTP        *HTTPProbe        `yaml:"http,omitempty"`
	TCP         *TCPProbe         `yaml:"tcp,omitempty"`
	Transaction *TransactionProbe `yaml:"transaction,omitempty"`
	DNS         *DNSProbe         `yaml:"dns,omitempty"`
	GRPC        *GRPCProbe        `yaml:"grpc,omitempty"`
	ICMP        *ICMPProbe        `yaml:"icmp,omitempty"`
	TLS         *TLSProbe         `yaml:"tls,omitempty"`
}

// ProbeSection is implemented by every protocol section of a probe.
type ProbeSection interface {
	// Target is what the probe is aimed at, for labels and pages: a URL
	// without credentials, an address, a host. Never a secret.
	Target() string
}

// ProbeTypes lists the protocol section names, in the order Type and the
// validation messages use.
func ProbeTypes() []string {
	return []string{"http", "tcp", "transaction", "dns", "grpc", "icmp", "tls"}
}

// sections returns the protocol sections by name, nil where unset.
func (p *ProbeConfig) sections() [7]ProbeSection {
	var out [7]ProbeSection
	// A typed nil pointer in an interface is not nil: keep unset ones nil.
	if p.HTTP != nil {
		out[0] = p.HTTP
	}
	if p.TCP != nil {
		out[1] = p.TCP
	}
	if p.Transaction != nil {
		out[2] = p.Transaction
	}
	if p.DNS != nil {
		out[3] = p.DNS
	}
	if p.GRPC != nil {
		out[4] = p.GRPC
	}
	if p.ICMP != nil {
		out[5] = p.ICMP
	}
	if p.TLS != nil {
		out[6] = p.TLS
	}
	return out
}

// Type returns the name of the first protocol section that is set
// ("http", "tcp", ...), or "" when none is.
func (p *ProbeConfig) Type() string {
	for i, section := range p.sections() {
		if section != nil {
			return ProbeTypes()[i]
		}
	}
	return ""
}

// Section returns the first protocol section that is set, nil when none is.
func (p *ProbeConfig) Section() ProbeSection {
	for _, section := range p.sections() {
		if section != nil {
			return section
		}
	}
	return nil
}

// setSections returns the names of the protocol sections that are set.
func (p *ProbeConfig) setSections() []string {
	var names []string
	for i, section := range p.sections() {
		if section != nil {
			names = append(names, ProbeTypes()[i])
		}
	}
	return names
}

// Hash identifies the probe's effective configuration: two probes with the
// same hash behave the same. The scheduler uses it on reload to keep the
// state of probes whose configuration did not change. JSON, not YAML: it
// is several times cheaper, which counts at 10,000 probes per reload.
func (p *ProbeConfig) Hash() uint64 {
	out, err := json.Marshal(p)
	if err != nil {
		// Marshalling plain data cannot fail; make a failure visible as a
		// hash that never matches anything but itself.
		out = []byte(fmt.Sprintf("%p", p))
	}
	h := fnv.New64a()
	h.Write(out)
	return h.Sum64()
}

// HTTPProbe configures an HTTP(S) request and what makes it succeed.
type HTTPProbe struct {
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty"`

	// ValidStatusCodes lists accepted status codes; empty means any 2xx.
	ValidStatusCodes       []int         `yaml:"valid_status_codes,omitempty"`
	FailIfBodyMatches      []Regexp      `yaml:"fail_if_body_matches_regexp,omitempty"`
	FailIfBodyNotMatches   []Regexp      `yaml:"fail_if_body_not_matches_regexp,omitempty"`
	FailIfHeaderMatches    []HeaderMatch `yaml:"fail_if_header_matches,omitempty"`
	FailIfHeaderNotMatches []HeaderMatch `yaml:"fail_if_header_not_matches,omitempty"`
	// FailIfNotTLS fails the probe when the final response did not come
	// over TLS (e.g. a redirect to plain http).
	FailIfNotTLS bool `yaml:"fail_if_not_tls,omitempty"`

	FollowRedirects bool `yaml:"follow_redirects"`
	MaxRedirects    int  `yaml:"max_redirects"`
	// BodySizeLimit bounds how much of the body is read; a larger body
	// fails the probe with reason body_too_large.
	BodySizeLimit ByteSize `yaml:"body_size_limit"`

	TLSConfig       TLSConfig  `yaml:"tls_config,omitempty"`
	BasicAuth       *BasicAuth `yaml:"basic_auth,omitempty"`
	BearerTokenFile string     `yaml:"bearer_token_file,omitempty"`

	// IPProtocol is the preferred address family: "ip4", "ip6" or "" (any).
	IPProtocol         string `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
	// KeepAlive reuses connections between runs. Off by default: every run
	// measures a fresh connection, as blackbox_exporter does.
	KeepAlive bool `yaml:"keep_alive,omitempty"`
}

// Target implements ProbeSection: the URL without user information.
func (c *HTTPProbe) Target() string { return RedactURL(c.URL) }

// HeaderMatch is a regular expression applied to the values of a header.
type HeaderMatch struct {
	Header       string `yaml:"header"`
	Regexp       Regexp `yaml:"regexp"`
	AllowMissing bool   `yaml:"allow_missing,omitempty"`
}

// BasicAuth holds HTTP basic credentials. The password is only ever read
// from a file, at every probe run, so it can be rotated without a reload
// and never appears in the configuration, logs, metrics or pages.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// TCPProbe configures a TCP connection, optional TLS and an optional
// dialogue of sends and expected replies.
type TCPProbe struct {
	// Address is host:port.
	Address       string          `yaml:"address"`
	TLS           bool            `yaml:"tls,omitempty"`
	TLSConfig     TLSConfig       `yaml:"tls_config,omitempty"`
	QueryResponse []QueryResponse `yaml:"query_response,omitempty"`

	IPProtocol         string `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
}

// Target implements ProbeSection.
func (c *TCPProbe) Target() string { return c.Address }

// QueryResponse is one step of a TCP dialogue: first Expect (if set) is
// awaited on the next line read, then Send (if set) is written.
type QueryResponse struct {
	Expect Regexp `yaml:"expect,omitempty"`
	Send   string `yaml:"send,omitempty"`
}

// TLSConfig configures the client side of TLS. Paths are relative to the
// configuration file.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
	// MinVersion is one of TLS10, TLS11, TLS12, TLS13; empty means TLS12.
	MinVersion string `yaml:"min_version,omitempty"`
}

// UnmarshalYAML implements yaml.Unmarshaler (func style, so KnownFields
// stays in force: see go-yaml issue #460).
func (c *GlobalConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultGlobalConfig
	type plain GlobalConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *HistoryConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultHistoryConfig
	type plain HistoryConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *HTTPProbe) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultHTTPProbe
	type plain HTTPProbe
	return unmarshal((*plain)(c))
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *TCPProbe) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultTCPProbe
	type plain TCPProbe
	return unmarshal((*plain)(c))
}

// Duration is a model.Duration ("30s", "5m", "30d") whose parse errors
// carry the line and column of the offending value.
type Duration model.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return scalarError(n, "expected a duration, got %s", describeNode(n, ""))
	}
	parsed, err := model.ParseDuration(n.Value)
	if err != nil {
		return scalarError(n, "not a valid duration %q (use e.g. 30s, 5m, 1h, 30d)", n.Value)
	}
	*d = Duration(parsed)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// String returns the duration in Prometheus notation.
func (d Duration) String() string { return model.Duration(d).String() }

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written with base-2 units ("10MiB", "512KiB").
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	parsed, err := units.ParseBase2Bytes(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode || parsed < 0 {
		return scalarError(n, "not a valid size %q (use e.g. 512KiB, 10MiB)", n.Value)
	}
	*b = ByteSize(parsed)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return units.Base2Bytes(b).String(), nil }

// Regexp is a regular expression compiled at load time. It marshals back
// to its source text.
type Regexp struct {
	*regexp.Regexp
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Regexp) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return scalarError(n, "a regular expression must be a string")
	}
	compiled, err := regexp.Compile(n.Value)
	if err != nil {
		return scalarError(n, "invalid regular expression %q: %v", n.Value, err)
	}
	r.Regexp = compiled
	return nil
}

// MarshalText implements encoding.TextMarshaler (for JSON).
func (r Regexp) MarshalText() ([]byte, error) {
	if r.Regexp == nil {
		return nil, nil
	}
	return []byte(r.String()), nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Regexp) MarshalYAML() (any, error) {
	if r.Regexp == nil {
		return "", nil
	}
	return r.String(), nil
}

// scalarError reports a bad scalar as a *yaml.TypeError so the decoder
// collects it with the others instead of stopping at the first one. The
// message starts with "line L: column C: " so Load can attach the path.
func scalarError(n *yaml.Node, format string, args ...any) error {
	msg := fmt.Sprintf("line %d: column %d: ", n.Line, n.Column) + fmt.Sprintf(format, args...)
	return &yaml.TypeError{Errors: []string{msg}}
}

// RedactURL drops user information from a URL so it can be shown.
func RedactURL(raw string) string {
	parsed, err := url.Parse(raw)
	if err != nil || parsed.User == nil {
		return raw
	}
	parsed.User = nil
	return parsed.String()
}
