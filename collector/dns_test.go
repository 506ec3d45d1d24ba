package collector

import (
	"context"
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/reliabilityd/reliabilityd/config"
)

// dnsTestZone is what the test server knows. Positive answers come with
// the NS record in the authority section and its glue in the additional
// section; misses with the SOA in the authority section.
const dnsTestZone = `
example.test.      300 IN SOA  ns.example.test. hostmaster.example.test. 2024010101 3600 600 86400 300
example.test.      300 IN NS   ns.example.test.
example.test.      300 IN MX   10 mail.example.test.
example.test.      300 IN TXT  "v=spf1 -all"
www.example.test.  300 IN A    192.0.2.1
www.example.test.  300 IN A    192.0.2.2
www.example.test.  300 IN AAAA 2001:db8::1
mail.example.test. 300 IN A    192.0.2.25
ns.example.test.   300 IN A    127.0.0.1
ns.example.test.   300 IN AAAA ::1
version.bind.      0   CH TXT  "reliabilityd-test"
`

// Names with special behaviour in the test server.
const (
	dnsNameServfail = "servfail.example.test."
	// dnsNameSilent is never answered: its handler blocks until the test
	// ends.
	dnsNameSilent = "silent.example.test."
	// dnsNameBig answers dnsBigRecords TXT records over TCP and a
	// truncated, empty response (TC bit) over UDP.
	dnsNameBig = "big.example.test."
	// dnsNameTC answers with the TC bit and no records over every
	// transport.
	dnsNameTC = "tc.example.test."
	// dnsNameRD answers a TXT record telling whether the query asked for
	// recursion: "rd=true" or "rd=false".
	dnsNameRD = "rd.example.test."
)

const dnsBigRecords = 40

// dnsTestHandler answers from dnsTestZone. silentQueries, when not nil,
// gets a value each time a query for dnsNameSilent arrives.
type dnsTestHandler struct {
	records       map[string][]dns.RR // by lower-case name
	ns, glue, soa dns.RR
	// stop releases the handlers of dnsNameSilent.
	stop          <-chan struct{}
	silentQueries chan<- struct{}
}

func newDNSTestHandler(t *testing.T, stop <-chan struct{}, silentQueries chan<- struct{}) *dnsTestHandler {
	t.Helper()
	h := &dnsTestHandler{records: map[string][]dns.RR{}, stop: stop, silentQueries: silentQueries}
	for _, line := range strings.Split(strings.TrimSpace(dnsTestZone), "\n") {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("test zone line %q: %v", line, err)
		}
		name := strings.ToLower(rr.Header().Name)
		h.records[name] = append(h.records[name], rr)
		switch {
		case rr.Header().Rrtype == dns.TypeNS:
			h.ns = rr
		case rr.Header().Rrtype == dns.TypeSOA:
			h.soa = rr
		case name == "ns.example.test." && rr.Header().Rrtype == dns.TypeA:
			h.glue = rr
		}
	}
	return h
}

// ServeDNS implements dns.Handler.
func (h *dnsTestHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	reply := new(dns.Msg).SetReply(r)
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	switch name {
	case dnsNameSilent:
		if h.silentQueries != nil {
			h.silentQueries <- struct{}{}
		}
		<-h.stop
		return
	case dnsNameServfail:
		reply.Rcode = dns.RcodeServerFailure
	case dnsNameBig:
		if w.LocalAddr().Network() == "udp" {
			reply.Truncated = true
			break
		}
		for i := range dnsBigRecords {
			reply.Answer = append(reply.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{strings.Repeat("x", 50) + string(rune('a'+i%26))},
			})
		}
	case dnsNameTC:
		reply.Truncated = true
	case dnsNameRD:
		txt := "rd=false"
		if r.RecursionDesired {
			txt = "rd=true"
		}
		reply.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{txt}}}
	default:
		h.answer(reply, name, q)
	}
	_ = w.WriteMsg(reply)
}

// answer fills reply from the zone: the records of the name and type,
// NODATA when the name has none of that type, NXDOMAIN when it has none.
func (h *dnsTestHandler) answer(reply *dns.Msg, name string, q dns.Question) {
	records, known := h.records[name]
	for _, rr := range records {
		if rr.Header().Rrtype == q.Qtype && rr.Header().Class == q.Qclass {
			reply.Answer = append(reply.Answer, rr)
		}
	}
	switch {
	case len(reply.Answer) > 0 && q.Qclass == dns.ClassINET:
		reply.Ns = []dns.RR{h.ns}
		reply.Extra = []dns.RR{h.glue}
	case len(reply.Answer) > 0:
	case known:
		reply.Ns = []dns.RR{h.soa}
	default:
		reply.Rcode = dns.RcodeNameError
		reply.Ns = []dns.RR{h.soa}
	}
}

// dnsTestServers are the addresses of a test server: plain DNS on the
// same port over UDP and TCP (so a truncated UDP answer can be retried
// over TCP), and DNS over TLS on another port when requested.
type dnsTestServers struct {
	plain string
	tls   string
}

// startDNSServers serves h on loopback until the test ends. tlsConfig nil
// starts no DNS over TLS server.
func startDNSServers(t *testing.T, h dns.Handler, tlsConfig *tls.Config) dnsTestServers {
	t.Helper()
	var servers dnsTestServers
	var tcp net.Listener
	var udp net.PacketConn
	for range 20 { // the port free for TCP may be taken for UDP
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listening: %v", err)
		}
		if udp, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			tcp, servers.plain = ln, ln.Addr().String()
			break
		}
		ln.Close()
	}
	if tcp == nil {
		t.Fatal("no port free on both TCP and UDP")
	}
	runDNSServer(t, &dns.Server{PacketConn: udp, Handler: h})
	runDNSServer(t, &dns.Server{Listener: tcp, Handler: h})
	if tlsConfig != nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listening: %v", err)
		}
		servers.tls = ln.Addr().String()
		runDNSServer(t, &dns.Server{Listener: tls.NewListener(ln, tlsConfig), Net: "tcp-tls", Handler: h})
	}
	return servers
}

// runDNSServer starts srv and returns once it serves; it is shut down
// when the test ends.
func runDNSServer(t *testing.T, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("DNS server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutting the DNS server down: %v", err)
		}
		<-done
	})
}

// startDNSZone starts the test zone's servers (with DNS over TLS when
// tlsConfig is set). Handlers of dnsNameSilent are released when the test
// ends, before the servers shut down.
func startDNSZone(t *testing.T, tlsConfig *tls.Config, silentQueries chan<- struct{}) dnsTestServers {
	t.Helper()
	stop := make(chan struct{})
	servers := startDNSServers(t, newDNSTestHandler(t, stop, silentQueries), tlsConfig)
	t.Cleanup(func() { close(stop) }) // runs before the servers' cleanups
	return servers
}

// startRawDNSServer answers each UDP query with the reply built by
// respond from the packed query, until the test ends.
func startRawDNSServer(t *testing.T, respond func(t *testing.T, query []byte) []byte) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, dns.MaxMsgSize)
		for range 100 { // more than any test sends
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := respond(t, buf[:n]); reply != nil {
				_, _ = conn.WriteTo(reply, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return conn.LocalAddr().String()
}

// startDNSNotTLSPeer writes reply to the first connection it accepts and
// closes it: a peer that does not speak TLS.
func startDNSNotTLSPeer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = conn.Write([]byte(reply))
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// dnsRawReply answers query with one A record, after edit changes it.
func dnsRawReply(edit func(reply *dns.Msg)) func(t *testing.T, query []byte) []byte {
	return func(t *testing.T, query []byte) []byte {
		request := new(dns.Msg)
		if err := request.Unpack(query); err != nil {
			t.Errorf("raw server: unpacking the query: %v", err)
			return nil
		}
		reply := new(dns.Msg).SetReply(request)
		rr, _ := dns.NewRR(request.Question[0].Name + " 300 IN A 192.0.2.1")
		reply.Answer = []dns.RR{rr}
		edit(reply)
		packed, err := reply.Pack()
		if err != nil {
			t.Errorf("raw server: packing the reply: %v", err)
			return nil
		}
		return packed
	}
}

// dnsClosedPort returns a loopback address nothing listens on, over UDP
// and TCP.
func dnsClosedPort(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	addr := conn.LocalAddr().String()
	conn.Close()
	return addr
}

// dnsResolverDialer returns a dialer whose resolver asks the test server,
// so server names resolve (or not) from dnsTestZone without leaving the
// machine.
func dnsResolverDialer(server string) *net.Dialer {
	return &net.Dialer{Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}}
}

func dnsRegexps(exprs ...string) []config.Regexp {
	out := make([]config.Regexp, len(exprs))
	for i, expr := range exprs {
		out[i] = config.Regexp{Regexp: regexp.MustCompile(expr)}
	}
	return out
}

// dnsProbe returns a probe of www.example.test A on server with the
// defaults of a loaded configuration, after edit changes it.
func dnsProbe(server string, edit func(*config.DNSProbe)) config.ProbeConfig {
	probe := config.DefaultDNSProbe
	probe.ValidRcodes = []string{"NOERROR"}
	probe.Server = server
	probe.QueryName = "www.example.test"
	if edit != nil {
		edit(&probe)
	}
	return config.ProbeConfig{Name: "resolver", DNS: &probe}
}

func runDNSProbe(t *testing.T, cfg config.ProbeConfig, deps ProberDeps, timeout time.Duration) Result {
	t.Helper()
	prober, err := NewDNSProber(cfg, deps)
	if err != nil {
		t.Fatalf("NewDNSProber: %v", err)
	}
	return probeWithin(t, prober, timeout)
}

// dnsWant is what a test expects of a Result.
type dnsWant struct {
	reason Reason // empty: the run must succeed
	// err is the whole error text; errPart a part of it, for errors that
	// hold addresses.
	err, errPart string
	// dns is the expected Result.DNS; nil: none.
	dns      *DNSResult
	phases   []Phase
	noPhases []Phase
	tls      bool // Result.TLS set
}

func checkDNSResult(t *testing.T, r Result, want dnsWant) {
	t.Helper()
	if r.Start.IsZero() || r.Duration <= 0 {
		t.Errorf("Start %v Duration %v, want both set", r.Start, r.Duration)
	}
	if want.reason == "" {
		if !r.Success || r.Reason != "" || r.Err != nil {
			t.Errorf("Success %v Reason %q Err %v, want success", r.Success, r.Reason, r.Err)
		}
	} else {
		if r.Success || r.Reason != want.reason {
			t.Errorf("Success %v Reason %q Err %v, want failure with reason %q", r.Success, r.Reason, r.Err, want.reason)
		}
		switch {
		case r.Err == nil:
			t.Errorf("Err = nil, want an error")
		case want.err != "" && r.Err.Error() != want.err:
			t.Errorf("Err = %q, want %q", r.Err, want.err)
		case want.errPart != "" && !strings.Contains(r.Err.Error(), want.errPart):
			t.Errorf("Err = %q, want one containing %q", r.Err, want.errPart)
		}
	}
	switch {
	case want.dns == nil && r.DNS != nil:
		t.Errorf("Result.DNS = %+v, want nil", *r.DNS)
	case want.dns != nil && r.DNS == nil:
		t.Errorf("Result.DNS = nil, want %+v", *want.dns)
	case want.dns != nil && *r.DNS != *want.dns:
		t.Errorf("Result.DNS = %+v, want %+v", *r.DNS, *want.dns)
	}
	for _, phase := range want.phases {
		if _, ok := r.Phases.Get(phase); !ok {
			t.Errorf("phase %s not recorded", phase)
		}
	}
	for _, phase := range want.noPhases {
		if d, ok := r.Phases.Get(phase); ok {
			t.Errorf("phase %s recorded (%v), want none", phase, d)
		}
	}
	if (r.TLS != nil) != want.tls {
		t.Errorf("Result.TLS = %+v, want set: %v", r.TLS, want.tls)
	}
}

// Response shapes of the test zone.
var (
	dnsWWWA        = &DNSResult{Rcode: dns.RcodeSuccess, Answer: 2, Authority: 1, Additional: 1}
	dnsNXDomain    = &DNSResult{Rcode: dns.RcodeNameError, Authority: 1}
	dnsPlainPhases = []Phase{PhaseResolve, PhaseConnect, PhaseProcessing}
)

func TestDNSProberTransports(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.leaf(t, leafOptions{})
	servers := startDNSZone(t, &tls.Config{Certificates: []tls.Certificate{leaf.cert}, MinVersion: tls.VersionTLS12}, nil)

	tests := []struct {
		name  string
		probe config.ProbeConfig
		want  dnsWant
	}{
		{
			name:  "udp",
			probe: dnsProbe(servers.plain, nil),
			want:  dnsWant{dns: dnsWWWA, phases: dnsPlainPhases, noPhases: []Phase{PhaseTLS, PhaseTransfer}},
		},
		{
			name:  "tcp",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) { p.Transport = "tcp" }),
			want:  dnsWant{dns: dnsWWWA, phases: dnsPlainPhases, noPhases: []Phase{PhaseTLS, PhaseTransfer}},
		},
		{
			name: "tls",
			probe: dnsProbe(servers.tls, func(p *config.DNSProbe) {
				p.Transport = "tls"
				p.TLSConfig.CAFile = ca.certFile
			}),
			want: dnsWant{dns: dnsWWWA, phases: append([]Phase{PhaseTLS}, dnsPlainPhases...), noPhases: []Phase{PhaseTransfer}, tls: true},
		},
		{
			name: "udp AAAA",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryType = "AAAA"
				p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps("^www\\.example\\.test\\.\t300\tIN\tAAAA\t2001:db8::1$")
			}),
			want: dnsWant{dns: &DNSResult{Answer: 1, Authority: 1, Additional: 1}, phases: dnsPlainPhases},
		},
		{
			name: "tcp MX",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.Transport = "tcp"
				p.QueryName = "example.test."
				p.QueryType = "MX"
				p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps("\tMX\t10 mail\\.example\\.test\\.$")
			}),
			want: dnsWant{dns: &DNSResult{Answer: 1, Authority: 1, Additional: 1}, phases: dnsPlainPhases},
		},
		{
			name: "TXT",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName = "EXAMPLE.test" // any case, no trailing dot
				p.QueryType = "TXT"
				p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps(`"v=spf1 -all"$`)
			}),
			want: dnsWant{dns: &DNSResult{Answer: 1, Authority: 1, Additional: 1}, phases: dnsPlainPhases},
		},
		{
			name: "query class CH",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName = "version.bind"
				p.QueryType = "TXT"
				p.QueryClass = "CH"
				p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps(`\tCH\tTXT\t"reliabilityd-test"$`)
			}),
			want: dnsWant{dns: &DNSResult{Answer: 1}, phases: dnsPlainPhases},
		},
		{
			name: "NODATA",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName = "mail.example.test"
				p.QueryType = "AAAA"
			}),
			want: dnsWant{dns: &DNSResult{Authority: 1}, phases: dnsPlainPhases},
		},
		{
			name: "recursion desired by default",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName, p.QueryType = dnsNameRD, "TXT"
				p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps(`"rd=true"$`)
			}),
			want: dnsWant{dns: &DNSResult{Answer: 1}, phases: dnsPlainPhases},
		},
		{
			name: "recursion not desired",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName, p.QueryType = dnsNameRD, "TXT"
				p.RecursionDesired = false
				p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps(`"rd=false"$`)
			}),
			want: dnsWant{dns: &DNSResult{Answer: 1}, phases: dnsPlainPhases},
		},
		{
			// The UDP answer is empty with the TC bit: the records counted
			// can only come from the retry over TCP.
			name: "truncated udp answer retried over tcp",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName, p.QueryType = dnsNameBig, "TXT"
			}),
			want: dnsWant{dns: &DNSResult{Answer: dnsBigRecords}, phases: dnsPlainPhases, noPhases: []Phase{PhaseTLS}},
		},
		{
			name: "large answer over tcp",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.Transport = "tcp"
				p.QueryName, p.QueryType = dnsNameBig, "TXT"
			}),
			want: dnsWant{dns: &DNSResult{Answer: dnsBigRecords}, phases: dnsPlainPhases},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDNSResult(t, runDNSProbe(t, tt.probe, ProberDeps{}, 5*time.Second), tt.want)
		})
	}
}

func TestDNSProberTLSState(t *testing.T) {
	ca := newTestCA(t)
	leaf := ca.leaf(t, leafOptions{})
	servers := startDNSZone(t, &tls.Config{Certificates: []tls.Certificate{leaf.cert}, MinVersion: tls.VersionTLS12}, nil)
	r := runDNSProbe(t, dnsProbe(servers.tls, func(p *config.DNSProbe) {
		p.Transport = "tls"
		p.TLSConfig.CAFile = ca.certFile
	}), ProberDeps{}, 5*time.Second)
	checkDNSResult(t, r, dnsWant{dns: dnsWWWA, phases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing}, tls: true})
	if r.TLS == nil {
		t.FailNow()
	}
	if !r.TLS.LeafExpiry.Equal(leaf.x509.NotAfter) || r.TLS.Version != "TLS 1.3" || r.TLS.CipherSuite == "" {
		t.Errorf("TLS state %+v, want leaf expiry %v, TLS 1.3 and a cipher suite", *r.TLS, leaf.x509.NotAfter)
	}
}

func TestDNSProberRcodes(t *testing.T) {
	servers := startDNSZone(t, nil, nil)
	tests := []struct {
		name  string
		probe config.ProbeConfig
		want  dnsWant
	}{
		{
			name:  "NXDOMAIN not valid by default",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) { p.QueryName = "nope.example.test" }),
			want:  dnsWant{reason: ReasonStatus, err: "rcode NXDOMAIN not in valid_rcodes [NOERROR]", dns: dnsNXDomain, phases: dnsPlainPhases},
		},
		{
			name: "NXDOMAIN listed",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.QueryName = "nope.example.test"
				p.ValidRcodes = []string{"NOERROR", "NXDOMAIN"}
			}),
			want: dnsWant{dns: dnsNXDomain, phases: dnsPlainPhases},
		},
		{
			name:  "SERVFAIL",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) { p.QueryName = dnsNameServfail }),
			want:  dnsWant{reason: ReasonStatus, err: "rcode SERVFAIL not in valid_rcodes [NOERROR]", dns: &DNSResult{Rcode: dns.RcodeServerFailure}},
		},
		{
			name: "NOERROR not listed",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.ValidRcodes = []string{"NXDOMAIN", "SERVFAIL"}
			}),
			want: dnsWant{reason: ReasonStatus, err: "rcode NOERROR not in valid_rcodes [NXDOMAIN SERVFAIL]", dns: dnsWWWA},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDNSResult(t, runDNSProbe(t, tt.probe, ProberDeps{}, 5*time.Second), tt.want)
		})
	}
}

func TestDNSProberRecordChecks(t *testing.T) {
	servers := startDNSZone(t, nil, nil)
	const (
		first  = "www.example.test.\t300\tIN\tA\t192.0.2.1"
		second = "www.example.test.\t300\tIN\tA\t192.0.2.2"
	)
	answer := func(edit func(v *config.DNSRRValidator)) config.ProbeConfig {
		return dnsProbe(servers.plain, func(p *config.DNSProbe) { edit(&p.ValidateAnswer) })
	}
	nxdomain := func(edit func(p *config.DNSProbe)) config.ProbeConfig {
		return dnsProbe(servers.plain, func(p *config.DNSProbe) {
			p.QueryName = "nope.example.test"
			p.ValidRcodes = []string{"NXDOMAIN"}
			edit(p)
		})
	}
	tests := []struct {
		name       string
		probe      config.ProbeConfig
		wantErr    string // empty: the run must succeed
		wantResult *DNSResult
	}{
		{
			name:    "fail_if_matches_regexp fails",
			probe:   answer(func(v *config.DNSRRValidator) { v.FailIfMatchesRegexp = dnsRegexps(`198\.51\.100\.`, `192\.0\.2\.2$`) }),
			wantErr: `answer record "` + strings.ReplaceAll(second, "\t", `\t`) + `" matches fail_if_matches_regexp "192\\.0\\.2\\.2$"`,
		},
		{
			name:  "fail_if_matches_regexp passes",
			probe: answer(func(v *config.DNSRRValidator) { v.FailIfMatchesRegexp = dnsRegexps(`198\.51\.100\.`, `192\.0\.2\.9$`) }),
		},
		{
			name:    "fail_if_not_matches_regexp fails",
			probe:   answer(func(v *config.DNSRRValidator) { v.FailIfNotMatchesRegexp = dnsRegexps(`^www\.`, `192\.0\.2\.1$`) }),
			wantErr: `answer record "` + strings.ReplaceAll(second, "\t", `\t`) + `" does not match fail_if_not_matches_regexp "192\\.0\\.2\\.1$"`,
		},
		{
			name: "fail_if_not_matches_regexp passes",
			probe: answer(func(v *config.DNSRRValidator) {
				v.FailIfNotMatchesRegexp = dnsRegexps(`^www\.`, "^www\\.example\\.test\\.\t300\tIN\tA\t192\\.0\\.2\\.[12]$")
			}),
		},
		{
			name:    "fail_if_all_match_regexp fails",
			probe:   answer(func(v *config.DNSRRValidator) { v.FailIfAllMatchRegexp = dnsRegexps(`\tA\t`, `192\.0\.2\.`) }),
			wantErr: `all 2 answer records match fail_if_all_match_regexp ["\\tA\\t" "192\\.0\\.2\\."]`,
		},
		{
			name:  "fail_if_all_match_regexp passes when one record does not match",
			probe: answer(func(v *config.DNSRRValidator) { v.FailIfAllMatchRegexp = dnsRegexps(`192\.0\.2\.1$`) }),
		},
		{
			name:  "fail_if_all_match_regexp passes when a record misses one regexp",
			probe: answer(func(v *config.DNSRRValidator) { v.FailIfAllMatchRegexp = dnsRegexps(`\tA\t`, `192\.0\.2\.2$`) }),
		},
		{
			name: "fail_if_all_match_regexp passes on an empty section",
			probe: nxdomain(func(p *config.DNSProbe) {
				p.ValidateAnswer.FailIfAllMatchRegexp = dnsRegexps(`.`)
			}),
			wantResult: dnsNXDomain,
		},
		{
			name: "fail_if_none_matches_regexp fails",
			probe: answer(func(v *config.DNSRRValidator) {
				v.FailIfNoneMatchesRegexp = dnsRegexps(`198\.51\.100\.`, `192\.0\.2\.9$`)
			}),
			wantErr: `none of the 2 answer records matches fail_if_none_matches_regexp ["198\\.51\\.100\\." "192\\.0\\.2\\.9$"]`,
		},
		{
			name: "fail_if_none_matches_regexp passes",
			probe: answer(func(v *config.DNSRRValidator) {
				v.FailIfNoneMatchesRegexp = dnsRegexps(`198\.51\.100\.`, `192\.0\.2\.2$`)
			}),
		},
		{
			name:       "fail_if_not_matches_regexp on an empty section",
			probe:      nxdomain(func(p *config.DNSProbe) { p.ValidateAnswer.FailIfNotMatchesRegexp = dnsRegexps(`.`) }),
			wantErr:    "no answer records, but fail_if_not_matches_regexp requires them",
			wantResult: dnsNXDomain,
		},
		{
			name:       "fail_if_none_matches_regexp on an empty section",
			probe:      nxdomain(func(p *config.DNSProbe) { p.ValidateAnswer.FailIfNoneMatchesRegexp = dnsRegexps(`.`) }),
			wantErr:    "no answer records, but fail_if_none_matches_regexp requires one",
			wantResult: dnsNXDomain,
		},
		{
			name:       "authority section",
			probe:      nxdomain(func(p *config.DNSProbe) { p.ValidateAuthority.FailIfMatchesRegexp = dnsRegexps(`\tSOA\t`) }),
			wantErr:    `authority record "example.test.\t300\tIN\tSOA\tns.example.test. hostmaster.example.test. 2024010101 3600 600 86400 300" matches fail_if_matches_regexp "\\tSOA\\t"`,
			wantResult: dnsNXDomain,
		},
		{
			name: "authority section passes",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.ValidateAuthority.FailIfNotMatchesRegexp = dnsRegexps("^example\\.test\\.\t300\tIN\tNS\tns\\.example\\.test\\.$")
			}),
		},
		{
			name: "additional section",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.ValidateAdditional.FailIfNoneMatchesRegexp = dnsRegexps(`127\.0\.0\.2$`)
			}),
			wantErr: `none of the 1 additional records matches fail_if_none_matches_regexp ["127\\.0\\.0\\.2$"]`,
		},
		{
			name: "additional section passes",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.ValidateAdditional.FailIfNoneMatchesRegexp = dnsRegexps(`^ns\.example\.test\.\t300\tIN\tA\t127\.0\.0\.1$`)
			}),
		},
		{
			name: "sections are checked in order",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.ValidateAdditional.FailIfMatchesRegexp = dnsRegexps(`.`)
				p.ValidateAuthority.FailIfMatchesRegexp = dnsRegexps(`.`)
				p.ValidateAnswer.FailIfMatchesRegexp = dnsRegexps(`192\.0\.2\.1$`)
			}),
			wantErr: `answer record "` + strings.ReplaceAll(first, "\t", `\t`) + `" matches fail_if_matches_regexp "192\\.0\\.2\\.1$"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := dnsWant{err: tt.wantErr, dns: tt.wantResult, phases: dnsPlainPhases}
			if want.dns == nil {
				want.dns = dnsWWWA
			}
			if tt.wantErr != "" {
				want.reason = ReasonAssertion
			}
			checkDNSResult(t, runDNSProbe(t, tt.probe, ProberDeps{}, 5*time.Second), want)
		})
	}
}

func TestDNSProberFailures(t *testing.T) {
	ca := newTestCA(t)
	selfSigned := &tls.Config{Certificates: []tls.Certificate{selfSignedLeaf(t, leafOptions{}).cert}, MinVersion: tls.VersionTLS12}
	servers := startDNSZone(t, selfSigned, nil)
	closed := dnsClosedPort(t)
	wrongID := startRawDNSServer(t, dnsRawReply(func(reply *dns.Msg) { reply.Id++ }))
	wrongQuestion := startRawDNSServer(t, dnsRawReply(func(reply *dns.Msg) { reply.Question[0].Name = "other.example.test." }))
	notAResponse := startRawDNSServer(t, dnsRawReply(func(reply *dns.Msg) { reply.Response = false }))
	garbage := startRawDNSServer(t, func(t *testing.T, query []byte) []byte {
		return append(query[:2:2], []byte("\x81\x80 not a DNS message")...)
	})
	short := startRawDNSServer(t, func(t *testing.T, query []byte) []byte { return query[:2] })
	notTLS := startDNSNotTLSPeer(t, "\x00\x05hello")

	tests := []struct {
		name    string
		probe   config.ProbeConfig
		deps    ProberDeps
		timeout time.Duration // default 5 s
		want    dnsWant
	}{
		{
			// A closed UDP port answers with ICMP port unreachable, which
			// a connected socket reports as "connection refused".
			name:  "closed udp port",
			probe: dnsProbe(closed, nil),
			want:  dnsWant{reason: ReasonConnect, errPart: "querying " + closed + " over udp: ", phases: dnsPlainPhases},
		},
		{
			name:  "closed tcp port",
			probe: dnsProbe(closed, func(p *config.DNSProbe) { p.Transport = "tcp" }),
			want: dnsWant{
				reason: ReasonConnect, errPart: "connecting to " + closed + " over tcp: ",
				phases: []Phase{PhaseResolve, PhaseConnect}, noPhases: []Phase{PhaseProcessing},
			},
		},
		{
			name:    "udp query never answered",
			probe:   dnsProbe(servers.plain, func(p *config.DNSProbe) { p.QueryName = dnsNameSilent }),
			timeout: 300 * time.Millisecond,
			want:    dnsWant{reason: ReasonTimeout, errPart: "querying " + servers.plain + " over udp: ", phases: dnsPlainPhases},
		},
		{
			name: "tcp query never answered",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) {
				p.Transport = "tcp"
				p.QueryName = dnsNameSilent
			}),
			timeout: 300 * time.Millisecond,
			want:    dnsWant{reason: ReasonTimeout, errPart: "querying " + servers.plain + " over tcp: ", phases: dnsPlainPhases},
		},
		{
			name: "tls with untrusted certificate",
			probe: dnsProbe(servers.tls, func(p *config.DNSProbe) {
				p.Transport = "tls"
				p.TLSConfig.CAFile = ca.certFile
			}),
			want: dnsWant{
				reason: ReasonTLS, errPart: "TLS handshake with 127.0.0.1: tls: failed to verify certificate",
				phases: []Phase{PhaseResolve, PhaseConnect, PhaseTLS}, noPhases: []Phase{PhaseProcessing},
			},
		},
		{
			name:  "tls to a peer that does not speak tls",
			probe: dnsProbe(notTLS, func(p *config.DNSProbe) { p.Transport = "tls" }),
			want:  dnsWant{reason: ReasonTLS, errPart: "TLS handshake with 127.0.0.1: ", phases: []Phase{PhaseTLS}, noPhases: []Phase{PhaseProcessing}},
		},
		{
			name:  "server name that does not resolve",
			probe: dnsProbe("dns.nonexistent.invalid", nil),
			deps:  ProberDeps{Dialer: dnsResolverDialer(servers.plain)},
			want: dnsWant{
				reason: ReasonDNS, errPart: `resolving "dns.nonexistent.invalid": `,
				phases: []Phase{PhaseResolve}, noPhases: []Phase{PhaseConnect, PhaseProcessing},
			},
		},
		{
			// Retried over TCP, which cannot need truncation.
			name:  "truncated over udp and tcp",
			probe: dnsProbe(servers.plain, func(p *config.DNSProbe) { p.QueryName = dnsNameTC }),
			want: dnsWant{
				reason: ReasonProtocol, err: "truncated response from " + servers.plain + " over tcp",
				dns: &DNSResult{}, phases: dnsPlainPhases,
			},
		},
		{
			name: "truncated over tls",
			probe: dnsProbe(servers.tls, func(p *config.DNSProbe) {
				p.QueryName = dnsNameTC
				p.Transport = "tls"
				p.TLSConfig.InsecureSkipVerify = true
			}),
			want: dnsWant{
				reason: ReasonProtocol, err: "truncated response from " + servers.tls + " over tls",
				dns: &DNSResult{}, phases: append([]Phase{PhaseTLS}, dnsPlainPhases...), tls: true,
			},
		},
		{
			name:  "response with another ID",
			probe: dnsProbe(wrongID, nil),
			want:  dnsWant{reason: ReasonProtocol, errPart: "response from " + wrongID + " over udp: ID ", phases: dnsPlainPhases},
		},
		{
			name:  "response to another question",
			probe: dnsProbe(wrongQuestion, nil),
			want: dnsWant{
				reason: ReasonProtocol,
				err:    `response from ` + wrongQuestion + ` over udp: answers "other.example.test. IN A", not the question asked, "www.example.test. IN A"`,
				phases: dnsPlainPhases,
			},
		},
		{
			name:  "query instead of a response",
			probe: dnsProbe(notAResponse, nil),
			want:  dnsWant{reason: ReasonProtocol, err: "response from " + notAResponse + " over udp: got a query, not a response"},
		},
		{
			name:  "malformed response",
			probe: dnsProbe(garbage, nil),
			want:  dnsWant{reason: ReasonProtocol, errPart: "response from " + garbage + " over udp: malformed message: "},
		},
		{
			name:  "response shorter than a header",
			probe: dnsProbe(short, nil),
			want:  dnsWant{reason: ReasonProtocol, err: "response from " + short + " over udp: 2 bytes, shorter than a DNS header"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDNSResult(t, runDNSProbe(t, tt.probe, tt.deps, tt.timeout), tt.want)
		})
	}
}

func TestDNSProberServerName(t *testing.T) {
	servers := startDNSZone(t, nil, nil)
	_, port, _ := net.SplitHostPort(servers.plain)
	// ns.example.test resolves to 127.0.0.1 through the test server itself.
	r := runDNSProbe(t, dnsProbe(net.JoinHostPort("ns.example.test", port), func(p *config.DNSProbe) { p.IPProtocol = "ip4" }),
		ProberDeps{Dialer: dnsResolverDialer(servers.plain)}, 5*time.Second)
	checkDNSResult(t, r, dnsWant{dns: dnsWWWA, phases: dnsPlainPhases})
}

func TestDNSProberCancel(t *testing.T) {
	silentQueries := make(chan struct{}, 1)
	servers := startDNSZone(t, nil, silentQueries)
	prober, err := NewDNSProber(dnsProbe(servers.plain, func(p *config.DNSProbe) { p.QueryName = dnsNameSilent }), ProberDeps{})
	if err != nil {
		t.Fatalf("NewDNSProber: %v", err)
	}
	// No deadline: only the cancellation can end the read.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		select {
		case <-silentQueries: // the query arrived: the prober is reading
			cancel()
		case <-ctx.Done():
		}
	}()
	done := make(chan Result, 1)
	go func() { done <- prober.Probe(ctx) }()
	select {
	case r := <-done:
		checkDNSResult(t, r, dnsWant{reason: ReasonTimeout, errPart: "querying " + servers.plain + " over udp: ", phases: dnsPlainPhases})
	case <-time.After(5 * time.Second):
		t.Fatal("Probe did not return after its context was cancelled")
	}
}

func TestNewDNSProberErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.ProbeConfig
		wantErr string
	}{
		{name: "no dns section", cfg: config.ProbeConfig{Name: "resolver"}, wantErr: `probe "resolver": no dns section`},
		{
			name:    "bad server",
			cfg:     dnsProbe("ns.example:0", nil),
			wantErr: `probe "resolver": server: port must be a number from 1 to 65535, got "0"`,
		},
		{
			name:    "bad transport",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.Transport = "quic" }),
			wantErr: `probe "resolver": transport "quic": want udp, tcp or tls`,
		},
		{
			name:    "unknown query type",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.QueryType = "aaaa" }),
			wantErr: `probe "resolver": query_type: unknown query type "aaaa" (did you mean "AAAA"?)`,
		},
		{
			name:    "zone transfer",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.QueryType = "AXFR" }),
			wantErr: `probe "resolver": query_type: AXFR: zone transfers are not supported`,
		},
		{
			name:    "unknown rcode",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.ValidRcodes = []string{"NOERROR", "NXDOMIAN"} }),
			wantErr: `probe "resolver": valid_rcodes[1]: unknown rcode "NXDOMIAN"`,
		},
		{
			name:    "no rcode",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.ValidRcodes = nil }),
			wantErr: `probe "resolver": valid_rcodes: must list at least one rcode`,
		},
		{
			name:    "regexp not compiled",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.ValidateAuthority.FailIfNoneMatchesRegexp = []config.Regexp{{}} }),
			wantErr: `probe "resolver": validate_authority_rrs.fail_if_none_matches_regexp[0]: not a compiled regular expression`,
		},
		{
			name:    "bad ip protocol",
			cfg:     dnsProbe("ns.example", func(p *config.DNSProbe) { p.IPProtocol = "ipx" }),
			wantErr: `probe "resolver": ip_protocol "ipx": want ip4, ip6 or empty`,
		},
		{
			name: "missing ca file",
			cfg: dnsProbe("ns.example", func(p *config.DNSProbe) {
				p.Transport = "tls"
				p.TLSConfig.CAFile = t.TempDir() + "/none.pem"
			}),
			wantErr: `probe "resolver": tls_config: reading CA file: `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProberError(t, NewDNSProber, tt.cfg, tt.wantErr)
		})
	}
}

// TestDNSProberSetup checks what NewDNSProber derives from the
// configuration: address, network, TLS server name, question.
func TestDNSProberSetup(t *testing.T) {
	tests := []struct {
		name               string
		probe              config.ProbeConfig
		wantHost, wantPort string
		wantNetwork        string
		wantTLS            bool
		wantServerName     string
		wantQuestion       dns.Question
	}{
		{
			name:     "udp without port",
			probe:    dnsProbe("ns.example", nil),
			wantHost: "ns.example", wantPort: "53", wantNetwork: "udp",
			wantQuestion: dns.Question{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		},
		{
			name:     "tls without port, host as server name",
			probe:    dnsProbe("ns.example", func(p *config.DNSProbe) { p.Transport = "tls" }),
			wantHost: "ns.example", wantPort: "853", wantNetwork: "tcp", wantTLS: true, wantServerName: "ns.example",
			wantQuestion: dns.Question{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		},
		{
			name: "tls with explicit server name, IPv6 literal",
			probe: dnsProbe("[2001:db8::53]:8853", func(p *config.DNSProbe) {
				p.Transport = "tls"
				p.TLSConfig.ServerName = "dns.example"
			}),
			wantHost: "2001:db8::53", wantPort: "8853", wantNetwork: "tcp", wantTLS: true, wantServerName: "dns.example",
			wantQuestion: dns.Question{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		},
		{
			name: "internationalised name, SOA, class CH, tcp, bare IPv6",
			probe: dnsProbe("2001:db8::53", func(p *config.DNSProbe) {
				p.Transport = "tcp"
				p.QueryName = "bücher.example"
				p.QueryType = "SOA"
				p.QueryClass = "CH"
			}),
			wantHost: "2001:db8::53", wantPort: "53", wantNetwork: "tcp",
			wantQuestion: dns.Question{Name: "xn--bcher-kva.example.", Qtype: dns.TypeSOA, Qclass: dns.ClassCHAOS},
		},
		{
			name:     "service name with underscores",
			probe:    dnsProbe("127.0.0.1", func(p *config.DNSProbe) { p.QueryName, p.QueryType = "_sip._tcp.example.", "SRV" }),
			wantHost: "127.0.0.1", wantPort: "53", wantNetwork: "udp",
			wantQuestion: dns.Question{Name: "_sip._tcp.example.", Qtype: dns.TypeSRV, Qclass: dns.ClassINET},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prober, err := NewDNSProber(tt.probe, ProberDeps{})
			if err != nil {
				t.Fatalf("NewDNSProber: %v", err)
			}
			p := prober.(*dnsProber)
			if p.host != tt.wantHost || p.port != tt.wantPort || p.network != tt.wantNetwork {
				t.Errorf("host %q port %q network %q, want %q %q %q", p.host, p.port, p.network, tt.wantHost, tt.wantPort, tt.wantNetwork)
			}
			if (p.tlsConfig != nil) != tt.wantTLS {
				t.Fatalf("TLS config set: %v, want %v", p.tlsConfig != nil, tt.wantTLS)
			}
			if tt.wantTLS && p.tlsConfig.ServerName != tt.wantServerName {
				t.Errorf("ServerName = %q, want %q", p.tlsConfig.ServerName, tt.wantServerName)
			}
			if p.question != tt.wantQuestion {
				t.Errorf("question %+v, want %+v", p.question, tt.wantQuestion)
			}
			var query dns.Msg
			if err := query.Unpack(p.query); err != nil || len(query.Question) != 1 || query.Question[0] != tt.wantQuestion {
				t.Errorf("packed query %v (%v), want the question %+v", &query, err, tt.wantQuestion)
			}
		})
	}
}

// TestDNSProberIDs checks every exchange uses a fresh random ID: the
// server records the IDs it sees.
func TestDNSProberIDs(t *testing.T) {
	var mu sync.Mutex
	ids := map[uint16]bool{}
	server := startRawDNSServer(t, func(t *testing.T, query []byte) []byte {
		mu.Lock()
		ids[uint16(query[0])<<8|uint16(query[1])] = true
		mu.Unlock()
		return dnsRawReply(func(*dns.Msg) {})(t, query)
	})
	prober, err := NewDNSProber(dnsProbe(server, nil), ProberDeps{})
	if err != nil {
		t.Fatalf("NewDNSProber: %v", err)
	}
	const runs = 20
	for range runs {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		r := prober.Probe(ctx)
		cancel()
		if !r.Success {
			t.Fatalf("run failed: %v", r.Err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// Fewer than 18 distinct IDs in 20 random draws from 65,536 takes
	// three collisions: about one chance in 10^8.
	if len(ids) < runs-2 {
		t.Errorf("%d distinct IDs in %d runs, want random IDs", len(ids), runs)
	}
}

// TestDNSExampleBuilds builds the probers of examples/probes/dns.yml: the
// example's files (the CA) exist and every probe is accepted.
func TestDNSExampleBuilds(t *testing.T) {
	cfg, err := config.Load("../examples/probes/dns.yml")
	if err != nil {
		t.Fatalf("loading the example: %v", err)
	}
	built := 0
	for _, service := range cfg.Services {
		for _, probe := range service.Probes {
			if _, err := NewProber(probe, ProberDeps{}); err != nil {
				t.Errorf("probe %s: %v", probe.Name, err)
			}
			built++
		}
	}
	if built != 5 {
		t.Errorf("built %d probers, want the example's 5", built)
	}
}

// TestDNSProberTLSHandshakeTimeout: a DNS-over-TLS server that accepts
// but never completes the handshake times out, run after run; the
// deadline hook (run on its own goroutine when the context ends) once
// raced with the handshake's result and dereferenced a nil connection.
func TestDNSProberTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	prober, err := NewDNSProber(dnsProbe(ln.Addr().String(), func(p *config.DNSProbe) { p.Transport = "tls" }), ProberDeps{})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Millisecond)
		r := prober.Probe(ctx)
		cancel()
		if r.Reason != ReasonTimeout {
			t.Fatalf("reason %q (%v), want timeout", r.Reason, r.Err)
		}
	}
}
