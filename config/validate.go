package config

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits of validation. History is bounded because every probe keeps its
// own ring buffers in memory; redirects because each one is a round trip
// inside the probe's timeout.
const (
	maxHistory      = 10000
	maxRedirectsCap = 100
)

// Validate checks c without changing it and returns every problem as
// Errors (without positions: it works on the values, not on a file), or
// nil. Load and Parse already validate; Validate is for configurations
// built in code, such as Default. It expects defaults resolved, as Load
// leaves them: a zero interval or timeout is an error.
func (c *Config) Validate() error {
	errs := c.validate()
	if len(errs) == 0 {
		return nil
	}
	for _, fe := range errs {
		fe.File = c.Filename
	}
	return errs
}

// validator collects errors by field path.
type validator struct {
	errs Errors
	// promSources holds the names of the valid Prometheus sources, which
	// resources and backups refer to.
	promSources map[string]bool
}

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *Config) validate() Errors {
	var v validator
	v.global(&c.Global)
	v.promSources = v.prometheusSources(c.PrometheusSources)
	serviceNames := map[string]string{}
	for i := range c.Services {
		path := servicePath(i)
		service := &c.Services[i]
		v.name(path+".name", "service", service.Name, serviceNames, path)
		probeNames := map[string]string{}
		for j := range service.Probes {
			probe := &service.Probes[j]
			probePath := probePath(i, j)
			v.name(probePath+".name", "probe", probe.Name, probeNames, probePath)
			v.probe(probePath, probe, &c.Global)
		}
		v.service(i, service, probeNames)
	}
	return v.errs
}

func (v *validator) global(g *GlobalConfig) {
	if g.ProbeInterval <= 0 {
		v.addf("global.probe_interval", "must be greater than 0")
	}
	if g.ProbeTimeout <= 0 {
		v.addf("global.probe_timeout", "must be greater than 0")
	}
	if g.ProbeInterval > 0 && g.ProbeTimeout > g.ProbeInterval {
		v.addf("global.probe_timeout", "%s must not exceed global.probe_interval (%s)", g.ProbeTimeout, g.ProbeInterval)
	}
	if g.MaxConcurrentProbes < 1 {
		v.addf("global.max_concurrent_probes", "must be at least 1, got %d", g.MaxConcurrentProbes)
	}
	switch interval := g.EvaluationInterval; {
	case interval < MinEvaluationInterval:
		v.addf("global.evaluation_interval", "%s is shorter than the minimum of %s", interval, MinEvaluationInterval)
	case interval > MaxEvaluationInterval:
		v.addf("global.evaluation_interval", "%s is longer than the maximum of %s", interval, MaxEvaluationInterval)
	}
	v.between("global.history.successes", g.History.Successes, 0, maxHistory)
	v.between("global.history.failures", g.History.Failures, 0, maxHistory)
}

func (v *validator) between(path string, value, low, high int) {
	if value < low || value > high {
		v.addf(path, "must be between %d and %d, got %d", low, high, value)
	}
}

// name checks a service or probe name: names become label values and URL
// path segments, so they are restricted to a safe alphabet, and unique in
// their scope (seen maps names to the path of their first use).
func (v *validator) name(path, kind, name string, seen map[string]string, ownerPath string) {
	switch {
	case name == "":
		v.addf(path, "must be set")
	case !validName(name):
		v.addf(path, "invalid %s name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", kind, name)
	case seen[name] != "":
		v.addf(path, "%s name %q is already used by %s", kind, name, seen[name])
	default:
		seen[name] = ownerPath
	}
}

// validName matches ^[A-Za-z0-9][A-Za-z0-9_.-]*$.
func validName(name string) bool {
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return false
		}
	}
	return name != ""
}

// MaxProbeInterval bounds probe intervals: a probe that runs less than
// once a year measures nothing useful, and bounded intervals keep the
// scheduler's due-time arithmetic far from overflowing.
const MaxProbeInterval = Duration(365 * 24 * time.Hour)

func (v *validator) probe(path string, p *ProbeConfig, g *GlobalConfig) {
	// A zero inherited from an invalid global value is reported there.
	if g.ProbeInterval > 0 && p.Interval <= 0 {
		v.addf(path+".interval", "must be greater than 0")
	}
	if g.ProbeTimeout > 0 && p.Timeout <= 0 {
		v.addf(path+".timeout", "must be greater than 0")
	}
	if p.Interval > 0 && p.Timeout > p.Interval {
		v.addf(path+".timeout", "%s must not exceed the interval (%s)", p.Timeout, p.Interval)
	}
	if p.Interval > MaxProbeInterval {
		v.addf(path+".interval", "%s is longer than the maximum of %s", p.Interval, MaxProbeInterval)
	}
	switch set := p.setSections(); len(set) {
	case 0:
		v.addf(path, "a probe needs exactly one protocol section (%s), found none", strings.Join(ProbeTypes(), ", "))
	case 1:
	default:
		v.addf(path, "a probe needs exactly one protocol section, found %s", strings.Join(set, " and "))
	}
	if p.HTTP != nil {
		v.http(path+".http", p.HTTP)
	}
	if p.TCP != nil {
		v.tcp(path+".tcp", p.TCP)
	}
	if p.Transaction != nil {
		v.transaction(path+".transaction", p.Transaction)
	}
	if p.DNS != nil {
		v.dns(path+".dns", p.DNS)
	}
	if p.GRPC != nil {
		v.grpc(path+".grpc", p.GRPC)
	}
	if p.ICMP != nil {
		v.icmp(path+".icmp", p.ICMP)
		v.icmpTimeout(path+".icmp", p.ICMP, p.Timeout)
	}
	if p.TLS != nil {
		v.tlsProbe(path+".tls", p.TLS)
	}
}

func (v *validator) http(path string, h *HTTPProbe) {
	v.url(path+".url", h.URL)
	switch {
	case h.Method == "":
		v.addf(path+".method", "must be set")
	case !isToken(h.Method):
		v.addf(path+".method", "invalid method %q", h.Method)
	}
	for _, name := range sortedKeys(h.Headers) {
		headerPath := path + ".headers[" + strconv.Quote(name) + "]"
		if !isToken(name) {
			v.addf(headerPath, "invalid header name %q", name)
		}
		if strings.ContainsAny(h.Headers[name], "\r\n\x00") {
			v.addf(headerPath, "a header value must not contain CR, LF or NUL")
		}
	}
	for i, code := range h.ValidStatusCodes {
		if code < 100 || code > 599 {
			v.addf(fmt.Sprintf("%s.valid_status_codes[%d]", path, i), "%d is not an HTTP status code (100-599)", code)
		}
	}
	v.regexps(path+".fail_if_body_matches_regexp", h.FailIfBodyMatches)
	v.regexps(path+".fail_if_body_not_matches_regexp", h.FailIfBodyNotMatches)
	v.headerMatches(path+".fail_if_header_matches", h.FailIfHeaderMatches)
	v.headerMatches(path+".fail_if_header_not_matches", h.FailIfHeaderNotMatches)
	v.between(path+".max_redirects", h.MaxRedirects, 0, maxRedirectsCap)
	if h.BodySizeLimit <= 0 {
		v.addf(path+".body_size_limit", "must be greater than 0")
	}
	v.ipProtocol(path+".ip_protocol", h.IPProtocol)
	v.tlsConfig(path+".tls_config", &h.TLSConfig)
	if h.BasicAuth != nil {
		if h.BasicAuth.Username == "" {
			v.addf(path+".basic_auth.username", "must be set")
		}
		if h.BasicAuth.PasswordFile == "" {
			v.addf(path+".basic_auth.password_file", "must be set")
		}
		if h.BearerTokenFile != "" {
			v.addf(path+".bearer_token_file", "basic_auth and bearer_token_file are mutually exclusive")
		}
	}
}

func (v *validator) url(path, raw string) {
	if raw == "" {
		v.addf(path, "must be set")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf(path, "must be an absolute http or https URL, got %q", raw)
	}
}

func (v *validator) regexps(path string, regexps []Regexp) {
	for i, re := range regexps {
		if re.Regexp == nil {
			v.addf(fmt.Sprintf("%s[%d]", path, i), "must be a regular expression")
		}
	}
}

func (v *validator) headerMatches(path string, matches []HeaderMatch) {
	for i, m := range matches {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case m.Header == "":
			v.addf(itemPath+".header", "must be set")
		case !isToken(m.Header):
			v.addf(itemPath+".header", "invalid header name %q", m.Header)
		}
		if m.Regexp.Regexp == nil {
			v.addf(itemPath+".regexp", "must be set")
		}
	}
}

func (v *validator) ipProtocol(path, protocol string) {
	if protocol != "" && protocol != "ip4" && protocol != "ip6" {
		v.addf(path, "must be ip4 or ip6 (or unset for either), got %q", protocol)
	}
}

func (v *validator) tlsConfig(path string, tc *TLSConfig) {
	switch tc.MinVersion {
	case "", "TLS10", "TLS11", "TLS12", "TLS13":
	default:
		v.addf(path+".min_version", "must be one of TLS10, TLS11, TLS12, TLS13, got %q", tc.MinVersion)
	}
	if tc.CertFile != "" && tc.KeyFile == "" {
		v.addf(path+".key_file", "must be set when cert_file is")
	}
	if tc.KeyFile != "" && tc.CertFile == "" {
		v.addf(path+".cert_file", "must be set when key_file is")
	}
}

func (v *validator) tcp(path string, t *TCPProbe) {
	v.address(path+".address", t.Address)
	v.ipProtocol(path+".ip_protocol", t.IPProtocol)
	if t.TLSConfig != (TLSConfig{}) && !t.TLS {
		v.addf(path+".tls_config", "is only used with tls: true")
	}
	v.tlsConfig(path+".tls_config", &t.TLSConfig)
	for i, step := range t.QueryResponse {
		if step.Expect.Regexp == nil && step.Send == "" {
			v.addf(fmt.Sprintf("%s.query_response[%d]", path, i), "a step needs expect or send")
		}
	}
}

func (v *validator) address(path, address string) {
	if address == "" {
		v.addf(path, "must be set")
		return
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil || host == "" {
		v.addf(path, "must be host:port, got %q", address)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.addf(path, "port must be a number from 1 to 65535, got %q", port)
	}
}

// isToken reports whether s is an HTTP token (RFC 9110), as methods and
// header names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
