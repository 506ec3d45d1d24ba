package collector

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/reliabilityd/reliabilityd/config"
)

// dnsHeaderLen is the size of a DNS message header (RFC 1035 4.1.1).
const dnsHeaderLen = 12

// dnsProber runs a `dns` probe. Everything derived from the configuration
// (the packed query, rcodes, regexps, TLS configuration) is built once in
// NewDNSProber and only read by Probe.
type dnsProber struct {
	host, port         string
	network            string // "udp" or "tcp"; "tcp" for DNS over TLS
	ipProtocol         string
	ipProtocolFallback bool
	// tlsConfig is nil unless the transport is tls. Shared by runs, never
	// modified.
	tlsConfig *tls.Config
	dialer    *net.Dialer

	question dns.Question
	// query is the packed query with a zero ID; each exchange copies it
	// and sets an ID of its own.
	query []byte

	validRcodes      []int
	validRcodesNames []string // for errors, as configured
	sections         [3]rrChecks

	// buffers holds *[]byte of dns.MaxMsgSize for responses: any UDP
	// datagram or TCP message fits, so a response is never cut and
	// memory per run is bounded. One pool per prober: no state shared
	// between probers.
	buffers sync.Pool
}

// rrChecks are the regexps of one validate_*_rrs section.
type rrChecks struct {
	section string // "answer", "authority" or "additional", for errors
	// The lists of config.DNSRRValidator, in its order.
	failIfMatches, failIfAllMatch, failIfNotMatches, failIfNoneMatches []*regexp.Regexp
}

// NewDNSProber builds the prober of a `dns` probe.
func NewDNSProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	if cfg.DNS == nil {
		return nil, fmt.Errorf("probe %q: no dns section", cfg.Name)
	}
	p, err := newDNSProber(cfg.DNS, deps)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	return p, nil
}

func newDNSProber(cfg *config.DNSProbe, deps ProberDeps) (*dnsProber, error) {
	host, port, err := cfg.ServerAddress()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := checkIPProtocol(cfg.IPProtocol); err != nil {
		return nil, err
	}
	p := &dnsProber{
		host:               host,
		port:               port,
		ipProtocol:         cfg.IPProtocol,
		ipProtocolFallback: cfg.IPProtocolFallback,
		dialer:             deps.Dialer,
		validRcodesNames:   slices.Clone(cfg.ValidRcodes),
	}
	validators := [3]config.DNSRRValidator{cfg.ValidateAnswer, cfg.ValidateAuthority, cfg.ValidateAdditional}
	for i, section := range [3]string{"answer", "authority", "additional"} {
		if p.sections[i], err = newRRChecks(section, validators[i]); err != nil {
			return nil, err
		}
	}
	if p.dialer == nil {
		p.dialer = &net.Dialer{}
	}
	switch cfg.Transport {
	case "udp", "tcp":
		p.network = cfg.Transport
	case "tls":
		p.network = "tcp"
		if p.tlsConfig, err = NewTLSConfig(cfg.TLSConfig, host); err != nil {
			return nil, fmt.Errorf("tls_config: %w", err)
		}
	default:
		return nil, fmt.Errorf("transport %q: want udp, tcp or tls", cfg.Transport)
	}
	if p.question, err = cfg.Question(); err != nil {
		return nil, err
	}
	if p.validRcodes, err = cfg.Rcodes(); err != nil {
		return nil, err
	}
	query := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Opcode: dns.OpcodeQuery, RecursionDesired: cfg.RecursionDesired},
		Question: []dns.Question{p.question},
	}
	if p.query, err = query.Pack(); err != nil {
		return nil, fmt.Errorf("packing the query: %w", err)
	}
	p.buffers.New = func() any {
		buf := make([]byte, dns.MaxMsgSize)
		return &buf
	}
	return p, nil
}

func newRRChecks(section string, v config.DNSRRValidator) (rrChecks, error) {
	checks := rrChecks{section: section}
	lists := []struct {
		name string
		in   []config.Regexp
		out  *[]*regexp.Regexp
	}{
		{"fail_if_matches_regexp", v.FailIfMatchesRegexp, &checks.failIfMatches},
		{"fail_if_all_match_regexp", v.FailIfAllMatchRegexp, &checks.failIfAllMatch},
		{"fail_if_not_matches_regexp", v.FailIfNotMatchesRegexp, &checks.failIfNotMatches},
		{"fail_if_none_matches_regexp", v.FailIfNoneMatchesRegexp, &checks.failIfNoneMatches},
	}
	for _, list := range lists {
		for i, re := range list.in {
			if re.Regexp == nil {
				return rrChecks{}, fmt.Errorf("validate_%s_rrs.%s[%d]: not a compiled regular expression", section, list.name, i)
			}
			*list.out = append(*list.out, re.Regexp)
		}
	}
	return checks, nil
}

// Probe implements Prober.
func (p *dnsProber) Probe(ctx context.Context) Result {
	return runProbe(ctx, p.run)
}

// run resolves the server, exchanges the query and checks the response.
// It returns the first error; when that error's Reason is not what
// ClassifyError would say, it sets result.Reason itself.
func (p *dnsProber) run(ctx context.Context, result *Result) error {
	resolveStart := time.Now()
	addr, err := resolveIP(ctx, p.dialer.Resolver, p.host, p.ipProtocol, p.ipProtocolFallback)
	result.Phases.Add(PhaseResolve, time.Since(resolveStart))
	if err != nil {
		// Whatever went wrong resolving (a lookup failure or an address
		// of the wrong family) means the name gave no usable address.
		if result.Reason = ClassifyError(err, ctx.Err()); result.Reason == ReasonInternal {
			result.Reason = ReasonDNS
		}
		return fmt.Errorf("resolving %q: %w", p.host, err)
	}
	server := net.JoinHostPort(addr.String(), p.port)

	buf := p.buffers.Get().(*[]byte)
	defer p.buffers.Put(buf)

	network := p.network
	reply, err := p.exchange(ctx, network, server, *buf, result)
	if err == nil && reply.Truncated && network == "udp" {
		// The answer does not fit in a UDP datagram: ask again over TCP,
		// as a resolver would (RFC 7766). The run covers both exchanges.
		network = "tcp"
		reply, err = p.exchange(ctx, network, server, *buf, result)
	}
	if err != nil {
		return err
	}
	if reply.Truncated {
		// Over TCP the whole answer fits: TC there is a broken server.
		result.Reason = ReasonProtocol
		return fmt.Errorf("truncated response from %s over %s", server, p.transportName(network))
	}
	return p.check(reply, result)
}

// exchange sends the query to server over network and reads the response,
// recording the connect, TLS and processing phases. A valid response (one
// that answers this query) is also recorded in result.DNS, whatever its
// rcode and records. buf receives the response; it is the run's.
func (p *dnsProber) exchange(ctx context.Context, network, server string, buf []byte, result *Result) (*dns.Msg, error) {
	connectStart := time.Now()
	conn, err := p.dialer.DialContext(ctx, network, server)
	result.Phases.Add(PhaseConnect, time.Since(connectStart))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s over %s: %w", server, network, err)
	}
	// The raw connection is closed, even over TLS: tls.Conn.Close would
	// first send close_notify under its own 5 s write deadline, which could
	// outlast the probe's timeout.
	defer conn.Close()

	// Every read and write below is bound by ctx: by its deadline, and by
	// its cancellation through an already-passed deadline.
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return nil, fmt.Errorf("setting connection deadline: %w", err)
		}
	}
	// The hook runs on its own goroutine: it must only see the raw
	// connection, never a variable the handshake below assigns.
	raw := conn
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	transport := p.transportName(network)
	if p.tlsConfig != nil {
		tlsConn, err := p.handshake(ctx, raw, result)
		if err != nil {
			return nil, err
		}
		conn = tlsConn
	}

	// dns.Conn frames messages: as is over UDP, length-prefixed over TCP.
	dnsConn := &dns.Conn{Conn: conn}
	id := dns.Id()
	query := make([]byte, len(p.query))
	copy(query, p.query)
	binary.BigEndian.PutUint16(query, id)

	processingStart := time.Now()
	var n int
	if _, err = dnsConn.Write(query); err == nil {
		n, err = dnsConn.Read(buf)
	}
	result.Phases.Add(PhaseProcessing, time.Since(processingStart))
	if err != nil {
		return nil, fmt.Errorf("querying %s over %s: %w", server, transport, err)
	}
	reply, err := p.parseReply(buf[:n], id)
	if err != nil {
		result.Reason = ReasonProtocol
		return nil, fmt.Errorf("response from %s over %s: %w", server, transport, err)
	}
	result.DNS = &DNSResult{Rcode: reply.Rcode, Answer: len(reply.Answer), Authority: len(reply.Ns), Additional: len(reply.Extra)}
	return reply, nil
}

// transportName names the transport of an exchange over network for
// errors: udp, tcp or tls.
func (p *dnsProber) transportName(network string) string {
	if p.tlsConfig != nil {
		return "tls"
	}
	return network
}

// handshake runs the TLS handshake over conn, recording its phase and, on
// success, the TLS state.
func (p *dnsProber) handshake(ctx context.Context, conn net.Conn, result *Result) (net.Conn, error) {
	return handshakeTLS(ctx, conn, p.tlsConfig, result)
}

// parseReply unpacks a response and checks it answers the query with ID
// id. A response with another ID fails rather than being skipped while
// waiting for the right one, as a resolver would: over a connected socket
// it can only come from the server, which then answered something else.
func (p *dnsProber) parseReply(msg []byte, id uint16) (*dns.Msg, error) {
	if len(msg) < dnsHeaderLen {
		return nil, fmt.Errorf("%d bytes, shorter than a DNS header", len(msg))
	}
	if got := binary.BigEndian.Uint16(msg); got != id {
		return nil, fmt.Errorf("ID %d does not match the query's ID %d", got, id)
	}
	reply := new(dns.Msg)
	if err := reply.Unpack(msg); err != nil {
		return nil, fmt.Errorf("malformed message: %w", err)
	}
	switch {
	case !reply.Response:
		return nil, errors.New("got a query, not a response")
	case reply.Opcode != dns.OpcodeQuery:
		return nil, fmt.Errorf("opcode %s, want QUERY", opcodeName(reply.Opcode))
	case len(reply.Question) == 0 && reply.Rcode != dns.RcodeSuccess:
		// Servers may leave the question out of an error (FORMERR,
		// REFUSED, NOTIMP...): the rcode check judges it.
	case len(reply.Question) != 1 || !sameQuestion(reply.Question[0], p.question):
		return nil, fmt.Errorf("answers %s, not the question asked, %s", questionText(reply.Question), questionText([]dns.Question{p.question}))
	}
	return reply, nil
}

// sameQuestion compares names case-insensitively: servers may echo the
// name in another case (RFC 4343).
func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

func questionText(questions []dns.Question) string {
	if len(questions) == 0 {
		return "no question"
	}
	texts := make([]string, len(questions))
	for i, q := range questions {
		texts[i] = fmt.Sprintf("%q", q.Name+" "+dns.Class(q.Qclass).String()+" "+dns.Type(q.Qtype).String())
	}
	return strings.Join(texts, ", ")
}

func opcodeName(opcode int) string {
	if name, ok := dns.OpcodeToString[opcode]; ok {
		return name
	}
	return fmt.Sprintf("OPCODE%d", opcode)
}

func rcodeName(rcode int) string {
	if name, ok := dns.RcodeToString[rcode]; ok {
		return name
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// check applies valid_rcodes, then the record checks of the answer,
// authority and additional sections, in that order (as blackbox_exporter
// does), and returns the first failure.
func (p *dnsProber) check(reply *dns.Msg, result *Result) error {
	if !slices.Contains(p.validRcodes, reply.Rcode) {
		result.Reason = ReasonStatus
		return fmt.Errorf("rcode %s not in valid_rcodes %v", rcodeName(reply.Rcode), p.validRcodesNames)
	}
	for i, rrs := range [3][]dns.RR{reply.Answer, reply.Ns, reply.Extra} {
		if err := p.sections[i].check(rrs); err != nil {
			result.Reason = ReasonAssertion
			return err
		}
	}
	return nil
}

// check matches the records of one section, each in its text form, with
// blackbox_exporter's semantics: fail_if_matches_regexp and
// fail_if_not_matches_regexp judge each record against each regexp;
// fail_if_all_match_regexp fails when every record matches every regexp,
// fail_if_none_matches_regexp when no record matches any. Unlike
// blackbox_exporter, fail_if_all_match_regexp passes on an empty section:
// no record there is no record that matches.
func (c *rrChecks) check(rrs []dns.RR) error {
	if len(rrs) == 0 {
		switch {
		case len(c.failIfNotMatches) > 0:
			return fmt.Errorf("no %s records, but fail_if_not_matches_regexp requires them", c.section)
		case len(c.failIfNoneMatches) > 0:
			return fmt.Errorf("no %s records, but fail_if_none_matches_regexp requires one", c.section)
		}
		return nil
	}
	allMatch := len(c.failIfAllMatch) > 0
	anyMatch := false
	for _, rr := range rrs {
		text := rr.String()
		for _, re := range c.failIfMatches {
			if re.MatchString(text) {
				return fmt.Errorf("%s record %q matches fail_if_matches_regexp %q", c.section, text, re)
			}
		}
		for _, re := range c.failIfNotMatches {
			if !re.MatchString(text) {
				return fmt.Errorf("%s record %q does not match fail_if_not_matches_regexp %q", c.section, text, re)
			}
		}
		if allMatch {
			allMatch = matchesAll(c.failIfAllMatch, text)
		}
		if !anyMatch {
			anyMatch = slices.ContainsFunc(c.failIfNoneMatches, func(re *regexp.Regexp) bool { return re.MatchString(text) })
		}
	}
	if allMatch {
		return fmt.Errorf("all %d %s records match fail_if_all_match_regexp %q", len(rrs), c.section, regexpTexts(c.failIfAllMatch))
	}
	if len(c.failIfNoneMatches) > 0 && !anyMatch {
		return fmt.Errorf("none of the %d %s records matches fail_if_none_matches_regexp %q", len(rrs), c.section, regexpTexts(c.failIfNoneMatches))
	}
	return nil
}

func matchesAll(regexps []*regexp.Regexp, text string) bool {
	for _, re := range regexps {
		if !re.MatchString(text) {
			return false
		}
	}
	return true
}

func regexpTexts(regexps []*regexp.Regexp) []string {
	texts := make([]string, len(regexps))
	for i, re := range regexps {
		texts[i] = re.String()
	}
	return texts
}
