package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

const (
	// defaultUserAgent is sent unless the probe sets a User-Agent header.
	defaultUserAgent = "reliabilityd"
	// maxPooledBodyBuffer bounds the buffers kept for reuse, so one huge
	// body does not pin its memory to the prober between runs.
	maxPooledBodyBuffer = 1 << 20
	// keepAliveIdleTimeout closes a kept-alive connection nobody reused.
	keepAliveIdleTimeout = 90 * time.Second
)

// httpProber probes an HTTP(S) URL. Everything that does not change
// between runs is built once in NewHTTPProber; per-run state lives in an
// httpRun that travels in the request context.
type httpProber struct {
	method string
	// request is the template every run copies (shallowly) with its own
	// context, body and, with credentials, its own header.
	request *http.Request
	body    string

	client    *http.Client
	transport *http.Transport
	dial      dialPolicy
	redirects redirectPolicy

	// keepAlive: the prober owns its transport and may reuse connections;
	// otherwise every run dials a connection of its own, used once.
	keepAlive     bool
	bodySizeLimit int64

	// Credentials, read from their files at every run.
	needsCredentials bool
	basicAuthUser    string
	basicAuthFile    string
	bearerTokenFile  string

	// Success criteria.
	validStatus    validStatus
	failIfNotTLS   bool
	headerChecks   []headerCheck
	bodyMatches    []*regexp.Regexp
	bodyNotMatches []*regexp.Regexp

	// bodyBuffers holds the buffers of bodies the regexps read. One pool
	// per prober: no state shared between probers.
	bodyBuffers bodyBufferPool
}

// headerCheck is one fail_if_header_(not_)matches entry, with the header
// name canonicalised once.
type headerCheck struct {
	key          string
	re           *regexp.Regexp
	allowMissing bool
	// failOnMatch is true for fail_if_header_matches, false for
	// fail_if_header_not_matches.
	failOnMatch bool
}

// NewHTTPProber builds the prober of an `http` probe: URL, headers,
// regexps, TLS configuration and one transport, all once. cfg.HTTP must be
// set with its defaults applied.
func NewHTTPProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	if cfg.HTTP == nil {
		return nil, fmt.Errorf("probe %q: no http section", cfg.Name)
	}
	p, err := newHTTPProber(cfg.HTTP, cfg.Timeout.Duration(), deps)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	return p, nil
}

func newHTTPProber(cfg *config.HTTPProbe, timeout time.Duration, deps ProberDeps) (*httpProber, error) {
	target, err := parseTargetURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := checkIPProtocol(cfg.IPProtocol); err != nil {
		return nil, err
	}
	if cfg.BasicAuth != nil && cfg.BearerTokenFile != "" {
		return nil, errors.New("basic_auth and bearer_token_file are mutually exclusive")
	}
	p := &httpProber{
		method:          cfg.Method,
		body:            cfg.Body,
		dial:            newDialPolicy(deps.Dialer, cfg.IPProtocol, cfg.IPProtocolFallback, !cfg.KeepAlive),
		redirects:       redirectPolicy{follow: cfg.FollowRedirects, max: cfg.MaxRedirects},
		bodySizeLimit:   int64(cfg.BodySizeLimit),
		failIfNotTLS:    cfg.FailIfNotTLS,
		keepAlive:       cfg.KeepAlive,
		bearerTokenFile: cfg.BearerTokenFile,
	}
	if p.method == "" {
		p.method = http.MethodGet
	}
	if cfg.BasicAuth != nil {
		p.basicAuthUser, p.basicAuthFile = cfg.BasicAuth.Username, cfg.BasicAuth.PasswordFile
	}
	p.needsCredentials = cfg.BasicAuth != nil || cfg.BearerTokenFile != ""
	if err := p.setChecks(cfg); err != nil {
		return nil, err
	}
	p.request = p.newTemplateRequest(target, cfg.Headers)
	tlsConfig, err := newHTTPTLSConfig(cfg.TLSConfig, p.request.Host)
	if err != nil {
		return nil, err
	}
	p.transport = deps.HTTPTransports.get(transportKey{tls: cfg.TLSConfig, serverName: tlsConfig.ServerName,
		isTLS: target.Scheme == "https", dialer: deps.Dialer}, tlsConfig, cfg.KeepAlive, timeout)
	p.client = &http.Client{Transport: p.transport, CheckRedirect: p.redirects.check}
	return p, nil
}

func parseTargetURL(raw string) (*url.URL, error) {
	target, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if target.Scheme != "http" && target.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", target.Redacted())
	}
	if target.Host == "" {
		return nil, fmt.Errorf("url %q: no host", target.Redacted())
	}
	return target, nil
}

func checkIPProtocol(ipProtocol string) error {
	switch ipProtocol {
	case "", "ip4", "ip6":
		return nil
	}
	return fmt.Errorf("ip_protocol %q: want ip4, ip6 or empty", ipProtocol)
}

// newHTTPTLSConfig builds the client TLS configuration. The server name is
// pinned only when a Host header names another host than the URL (as
// blackbox_exporter does); otherwise net/http sets it per connection from
// the URL being fetched, which equals the URL host on the first hop and
// stays right after a redirect to another host. net/http clones the config
// per connection, so nothing shared is filled in lazily.
func newHTTPTLSConfig(cfg config.TLSConfig, hostHeader string) (*tls.Config, error) {
	serverName := ""
	if hostHeader != "" {
		serverName = hostHeader
		if host, _, err := net.SplitHostPort(hostHeader); err == nil {
			serverName = host
		}
	}
	tlsConfig, err := NewTLSConfig(cfg, serverName)
	if err != nil {
		return nil, fmt.Errorf("tls_config: %w", err)
	}
	return tlsConfig, nil
}

// setChecks compiles the success criteria of cfg into p.
func (p *httpProber) setChecks(cfg *config.HTTPProbe) error {
	p.validStatus = newValidStatus(cfg.ValidStatusCodes)
	var err error
	if p.bodyMatches, err = regexps("fail_if_body_matches_regexp", cfg.FailIfBodyMatches); err != nil {
		return err
	}
	if p.bodyNotMatches, err = regexps("fail_if_body_not_matches_regexp", cfg.FailIfBodyNotMatches); err != nil {
		return err
	}
	if err := p.addHeaderChecks("fail_if_header_matches", cfg.FailIfHeaderMatches, true); err != nil {
		return err
	}
	return p.addHeaderChecks("fail_if_header_not_matches", cfg.FailIfHeaderNotMatches, false)
}

func regexps(field string, list []config.Regexp) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(list))
	for i, re := range list {
		if re.Regexp == nil {
			return nil, fmt.Errorf("%s[%d]: no regular expression", field, i)
		}
		out = append(out, re.Regexp)
	}
	return out, nil
}

func (p *httpProber) addHeaderChecks(field string, list []config.HeaderMatch, failOnMatch bool) error {
	for i, m := range list {
		if m.Header == "" || m.Regexp.Regexp == nil {
			return fmt.Errorf("%s[%d]: header and regexp must be set", field, i)
		}
		p.headerChecks = append(p.headerChecks, headerCheck{
			key:          http.CanonicalHeaderKey(m.Header),
			re:           m.Regexp.Regexp,
			allowMissing: m.AllowMissing,
			failOnMatch:  failOnMatch,
		})
	}
	return nil
}

// newTemplateRequest builds the request every run copies. Its header is
// shared read-only by the runs without credentials (net/http does not
// modify a request's header), which saves a map per run.
func (p *httpProber) newTemplateRequest(target *url.URL, headers map[string]string) *http.Request {
	header := make(http.Header, len(headers)+1)
	header.Set("User-Agent", defaultUserAgent)
	req := &http.Request{
		Method:     p.method,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       target.Host,
	}
	for name, value := range headers {
		key := http.CanonicalHeaderKey(name)
		if key == "Host" {
			req.Host = value
			continue
		}
		header[key] = []string{value}
	}
	if req.Host == target.Host {
		// Leave Host to net/http, which then also follows redirects.
		req.Host = ""
	}
	if p.body != "" {
		req.ContentLength = int64(len(p.body))
		req.GetBody = p.newBody
	}
	return req
}

// newBody returns a fresh reader of the configured request body (also
// used by net/http to resend it on a 307/308 redirect).
func (p *httpProber) newBody() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(p.body)), nil
}

// newTransport makes the prober's own transport: no proxy from the
// environment, our dialer (resolution with address-family preference and
// phase timing) and, unless keep_alive is set, a fresh connection per run.
// Timeouts all come from the run's context.
func newHTTPTransport(tlsConfig *tls.Config, isTLS, keepAlive bool, timeout time.Duration) *http.Transport {
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialHTTPTarget,
		TLSClientConfig:     tlsConfig,
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     keepAliveIdleTimeout,
		// The body limit counts the bytes the server sent; transparent
		// gzip would also cost CPU on the hot path.
		DisableCompression: true,
	}
	if keepAlive {
		// HTTP/2 when the server offers it. A kept-alive connection is
		// not dialled with a run's deadline, so the handshake is bounded
		// by the probe's timeout here.
		transport.ForceAttemptHTTP2 = isTLS
		transport.TLSHandshakeTimeout = timeout
	} else {
		// HTTP/1.1 only: HTTP/2's connection pool ignores
		// DisableKeepAlives, so a connection dialled for one run (or one
		// given up on) could serve another, which would then measure no
		// connect and no handshake. A non-nil empty map disables HTTP/2.
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return transport
}

// Close implements Closer: it closes kept-alive connections. Only a
// keep-alive prober has any, and only it owns its transport: a shared one
// is left alone, as other probes use it.
func (p *httpProber) Close() {
	if p.keepAlive {
		p.transport.CloseIdleConnections()
	}
}

// HTTPTransports shares http.Transports between HTTP probers whose
// connections are set up alike (same TLS settings, dialer, scheme) and
// that keep no connection alive: such a transport holds no state of its
// own beyond its configuration, and 10,000 probes need one instead of
// 10,000 (with their TLS configurations). A nil *HTTPTransports shares
// nothing. Safe for concurrent use; build one per configuration load.
type HTTPTransports struct {
	mu         sync.Mutex
	transports map[transportKey]*http.Transport
}

// NewHTTPTransports returns an empty HTTPTransports.
func NewHTTPTransports() *HTTPTransports {
	return &HTTPTransports{transports: map[transportKey]*http.Transport{}}
}

// transportKey is what makes two probers' transports interchangeable.
type transportKey struct {
	tls        config.TLSConfig
	serverName string
	isTLS      bool
	dialer     *net.Dialer
}

// get returns a transport for key: shared when possible, else its own.
func (t *HTTPTransports) get(key transportKey, tlsConfig *tls.Config, keepAlive bool, timeout time.Duration) *http.Transport {
	if t == nil || keepAlive {
		// Kept-alive connections belong to one probe: its Close must not
		// cut another's, and its timings must not ride another's conns.
		return newHTTPTransport(tlsConfig, key.isTLS, keepAlive, timeout)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if shared, ok := t.transports[key]; ok {
		return shared
	}
	transport := newHTTPTransport(tlsConfig, key.isTLS, false, 0)
	t.transports[key] = transport
	return transport
}

// redirectError reports a redirect that is not followed: beyond
// max_redirects, or to a scheme other than http and https.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// redirectPolicy is follow_redirects and max_redirects.
type redirectPolicy struct {
	follow bool
	max    int
}

// check enforces the policy as an http.Client's CheckRedirect. via holds
// the requests already sent, so len(via) is the redirect about to be
// followed.
func (r redirectPolicy) check(req *http.Request, via []*http.Request) error {
	if !r.follow {
		return http.ErrUseLastResponse
	}
	if len(via) > r.max {
		return &redirectError{msg: "too many redirects (max_redirects " + strconv.Itoa(r.max) + ")"}
	}
	if scheme := req.URL.Scheme; scheme != "http" && scheme != "https" {
		return &redirectError{msg: "redirect to unsupported scheme " + strconv.Quote(scheme)}
	}
	return nil
}

// dialPolicy is how a probe's HTTP connections are dialled. It lives in
// the prober and is read-only once built, so runs of probers sharing a
// transport each dial by their own probe's policy.
type dialPolicy struct {
	dialer     *net.Dialer
	ipProtocol string
	ipFallback bool
	// runOwnsConns: every connection serves one run only, so the run's
	// deadline may be set on it (not on a kept-alive one, which outlives
	// the run).
	runOwnsConns bool
}

// newDialPolicy returns the policy; dialer nil means a default net.Dialer.
func newDialPolicy(dialer *net.Dialer, ipProtocol string, ipFallback, runOwnsConns bool) dialPolicy {
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	return dialPolicy{dialer: dialer, ipProtocol: ipProtocol, ipFallback: ipFallback, runOwnsConns: runOwnsConns}
}

// dialHTTPTarget resolves with the probe's address-family preference and
// connects, timing both phases into the run found in ctx (net/http keeps
// the request context's values when it dials).
func dialHTTPTarget(ctx context.Context, network, address string) (net.Conn, error) {
	run, _ := ctx.Value(httpRunKey{}).(*httpRun)
	if run == nil {
		return nil, fmt.Errorf("dial %s: no probe run in the request context", address)
	}
	p := run.dial
	if !run.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, run.deadline)
		defer cancel()
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	start := time.Now()
	ip, err := resolveIP(ctx, p.dialer.Resolver, host, p.ipProtocol, p.ipFallback)
	connectStart := time.Now()
	run.add(PhaseResolve, connectStart.Sub(start))
	if err != nil {
		return nil, asDNSError(host, err)
	}
	portNumber, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", address, err)
	}
	// DialTCP with the address found: no second parse and lookup of a
	// host:port string, which showed in profiles at 1,000 runs/s.
	tcpConn, err := p.dialer.DialTCP(ctx, network, netip.AddrPort{}, netip.AddrPortFrom(ip, uint16(portNumber)))
	run.add(PhaseConnect, time.Since(connectStart))
	if err != nil {
		return nil, err
	}
	var conn net.Conn = tcpConn
	if p.runOwnsConns && !run.deadline.IsZero() {
		// The connection serves this run only: its deadline bounds the
		// TLS handshake and every read and write, so nothing of the run
		// outlives it, even what net/http does after the run gave up.
		conn.SetDeadline(run.deadline)
	}
	return conn, nil
}

// asDNSError makes every resolution failure (also an IP literal of the
// wrong family) classify as ReasonDNS.
func asDNSError(host string, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return err
	}
	return &net.DNSError{Err: err.Error(), Name: host, IsNotFound: true}
}

// httpRunKey is the context key of the run's *httpRun.
type httpRunKey struct{}

// httpRun collects the timings of one run. net/http calls the trace hooks
// and the dialer from its own goroutines, possibly after the run gave up
// (a dial finishing late), so every access holds mu and nothing is
// recorded once finish has been called.
type httpRun struct {
	// dial is the policy of the probe this run belongs to: the dialer
	// reads it here, so a transport can be shared.
	dial *dialPolicy

	// deadline is the run's, re-applied to the dial: net/http dials with
	// a context stripped of the request's deadline.
	deadline time.Time

	mu       sync.Mutex
	finished bool
	phases   Phases
	// Starts of the phases in progress; zero when none is.
	tlsStart, requestSent, firstByte time.Time
	// tlsFailed: a handshake of this run failed (the peer may have just
	// closed the connection, which reads as a plain EOF).
	tlsFailed bool
}

func (r *httpRun) add(phase Phase, d time.Duration) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if !r.finished {
		r.phases.Add(phase, d)
	}
	r.mu.Unlock()
}

// clientTrace returns the hooks that time the TLS, processing and
// transfer phases. A redirect starts a new round trip (GetConn), which
// ends the transfer of the previous response.
//
// Processing runs from the request written to the first response byte.
// HTTP/2 reports WroteRequest from the writing goroutine, which may run
// after the reader saw the response, so the start falls back to the
// headers written, then to the connection obtained: whichever came last
// before the first byte.
func (r *httpRun) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn:              r.getConn,
		GotConn:              r.markRequestSent,
		TLSHandshakeStart:    r.tlsHandshakeStart,
		TLSHandshakeDone:     r.tlsHandshakeDone,
		WroteHeaders:         r.wroteHeaders,
		WroteRequest:         r.wroteRequest,
		GotFirstResponseByte: r.gotFirstResponseByte,
	}
}

func (r *httpRun) getConn(string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.finished && !r.firstByte.IsZero() {
		r.phases.Add(PhaseTransfer, now.Sub(r.firstByte))
	}
	r.firstByte, r.requestSent = time.Time{}, time.Time{}
}

func (r *httpRun) tlsHandshakeStart() {
	r.mu.Lock()
	r.tlsStart = time.Now()
	r.mu.Unlock()
}

func (r *httpRun) tlsHandshakeDone(_ tls.ConnectionState, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.tlsFailed = true
	}
	if !r.finished && !r.tlsStart.IsZero() {
		r.phases.Add(PhaseTLS, time.Since(r.tlsStart))
		r.tlsStart = time.Time{}
	}
}

func (r *httpRun) markRequestSent(httptrace.GotConnInfo)   { r.setRequestSent() }
func (r *httpRun) wroteHeaders()                           { r.setRequestSent() }
func (r *httpRun) wroteRequest(httptrace.WroteRequestInfo) { r.setRequestSent() }

func (r *httpRun) setRequestSent() {
	r.mu.Lock()
	if r.firstByte.IsZero() {
		r.requestSent = time.Now()
	}
	r.mu.Unlock()
}

func (r *httpRun) gotFirstResponseByte() {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.finished && !r.requestSent.IsZero() {
		r.phases.Add(PhaseProcessing, now.Sub(r.requestSent))
	}
	r.requestSent = time.Time{}
	r.firstByte = now
}

// finish closes the phases still in progress at end (a timeout shows
// where the time went), stops recording and returns the phases.
func (r *httpRun) finish(end time.Time) Phases {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.tlsStart.IsZero() {
		r.phases.Add(PhaseTLS, end.Sub(r.tlsStart))
	}
	if !r.requestSent.IsZero() {
		r.phases.Add(PhaseProcessing, end.Sub(r.requestSent))
	}
	if !r.firstByte.IsZero() {
		r.phases.Add(PhaseTransfer, end.Sub(r.firstByte))
	}
	r.finished = true
	return r.phases
}

// Probe implements Prober.
func (p *httpProber) Probe(ctx context.Context) Result {
	result := Result{Start: time.Now()}
	run := &httpRun{dial: &p.dial}
	run.deadline, _ = ctx.Deadline()
	result.Reason, result.Err = p.exchange(ctx, run, &result)
	end := time.Now()
	result.Duration = end.Sub(result.Start)
	result.Phases = run.finish(end)
	result.Success = result.Reason == ""
	return result
}

// exchange sends the request, reads the response and checks it, filling
// StatusCode and TLS of result. It returns why the run failed, if it did.
func (p *httpProber) exchange(ctx context.Context, run *httpRun, result *Result) (Reason, error) {
	req, err := p.newRequest(ctx, run)
	if err != nil {
		return ReasonSecret, err
	}
	resp, err := p.client.Do(req)
	if resp != nil {
		// Also set when too many redirects: the last redirect's status.
		result.StatusCode = resp.StatusCode
	}
	if err != nil {
		return run.classify(err, ctx.Err()), err
	}
	defer resp.Body.Close()
	if resp.TLS != nil {
		result.TLS = NewTLSState(resp.TLS)
	}
	statusErr := p.validStatus.check(resp.StatusCode)
	var body *bytes.Buffer
	if statusErr == nil && p.needsBody() {
		body = p.bodyBuffers.get()
		defer p.bodyBuffers.put(body)
	}
	size, readErr := readBody(resp.Body, p.bodySizeLimit, body)
	switch {
	case statusErr != nil:
		return ReasonStatus, statusErr
	case readErr != nil:
		return run.classify(readErr, ctx.Err()), fmt.Errorf("reading body: %w", readErr)
	case size > p.bodySizeLimit:
		return ReasonBodyTooLarge, fmt.Errorf("body exceeds body_size_limit of %d bytes", p.bodySizeLimit)
	}
	if err := p.checkResponse(resp, body); err != nil {
		return ReasonAssertion, err
	}
	return "", nil
}

// classify is classifyHTTPError knowing what the run saw: a failed TLS
// handshake makes the failure a TLS one whatever error surfaced.
func (r *httpRun) classify(err, ctxErr error) Reason {
	reason := classifyHTTPError(err, ctxErr)
	r.mu.Lock()
	tlsFailed := r.tlsFailed
	r.mu.Unlock()
	if tlsFailed && (reason == ReasonProtocol || reason == ReasonInternal) {
		return ReasonTLS
	}
	return reason
}

// classifyHTTPError is ClassifyError plus what only an HTTP client sees:
// redirects not followed, and responses net/http could not parse.
func classifyHTTPError(err, ctxErr error) Reason {
	var redirectErr *redirectError
	if errors.As(err, &redirectErr) {
		return ReasonRedirect
	}
	reason := ClassifyError(err, ctxErr)
	if reason == ReasonInternal && strings.Contains(err.Error(), "malformed HTTP") {
		// net/http's unexported badStringError: "malformed HTTP status
		// code", "malformed HTTP response", "malformed MIME header".
		return ReasonProtocol
	}
	return reason
}

// newRequest copies the template with the run's context and, when the
// probe has credentials, a header of its own holding them, read now.
func (p *httpProber) newRequest(ctx context.Context, run *httpRun) (*http.Request, error) {
	ctx = httptrace.WithClientTrace(context.WithValue(ctx, httpRunKey{}, run), run.clientTrace())
	req := p.request.WithContext(ctx)
	if p.body != "" {
		req.Body, _ = p.newBody()
	}
	if !p.needsCredentials {
		return req, nil
	}
	req.Header = p.request.Header.Clone()
	if p.basicAuthFile != "" {
		password, err := readSecretFile("basic_auth password_file", p.basicAuthFile)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(p.basicAuthUser, password)
	}
	if p.bearerTokenFile != "" {
		token, err := readSecretFile("bearer_token_file", p.bearerTokenFile)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// readSecretFile reads a credentials file at every run, so it can be
// rotated without a reload. The error names the file, never its content.
func readSecretFile(field, path string) (string, error) {
	// A FIFO or a device would block the run or read without end: only
	// regular files (symbolic links to them, as Kubernetes mounts
	// secrets, are fine), and only maxSecretBytes of them. O_NONBLOCK
	// keeps opening a FIFO from waiting for a writer.
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", field, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", field, err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("reading %s: %s is not a regular file", field, path)
	}
	data, err := io.ReadAll(io.LimitReader(file, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", field, err)
	}
	if len(data) > maxSecretBytes {
		return "", fmt.Errorf("reading %s: %s is larger than %d bytes", field, path, maxSecretBytes)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// maxSecretBytes bounds a credentials file: a password or a token, not a
// file a typo pointed at.
const maxSecretBytes = 64 << 10

// validStatus is valid_status_codes: the codes listed, or any 2xx when
// none is.
type validStatus struct {
	codes []int
	text  string // for errors: "2xx" or "[200 204]"
}

func newValidStatus(codes []int) validStatus {
	if len(codes) == 0 {
		return validStatus{text: "2xx"}
	}
	codes = append([]int(nil), codes...)
	return validStatus{codes: codes, text: fmt.Sprint(codes)}
}

func (v validStatus) check(code int) error {
	if len(v.codes) == 0 {
		if code >= 200 && code < 300 {
			return nil
		}
	} else {
		for _, valid := range v.codes {
			if code == valid {
				return nil
			}
		}
	}
	return fmt.Errorf("status %d not in %s", code, v.text)
}

func (p *httpProber) needsBody() bool {
	return len(p.bodyMatches) > 0 || len(p.bodyNotMatches) > 0
}

// readBody reads at most limit+1 bytes, so a larger body shows as a size
// above the limit. With buf the body is kept there; without, it is
// counted and discarded through io.Discard's own pooled buffer.
func readBody(body io.Reader, limit int64, buf *bytes.Buffer) (int64, error) {
	limited := io.LimitReader(body, limit+1)
	if buf == nil {
		return io.Copy(io.Discard, limited)
	}
	return buf.ReadFrom(limited)
}

// bodyBufferPool holds the buffers of bodies that are checked. The zero
// value is ready to use.
type bodyBufferPool struct {
	pool sync.Pool
}

// get returns an empty buffer, to be given back with put.
func (b *bodyBufferPool) get() *bytes.Buffer {
	if buf, ok := b.pool.Get().(*bytes.Buffer); ok {
		buf.Reset()
		return buf
	}
	return new(bytes.Buffer)
}

// put keeps buf for reuse unless it grew too large to pin.
func (b *bodyBufferPool) put(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBodyBuffer {
		b.pool.Put(buf)
	}
}

// checkResponse applies fail_if_not_tls and the header and body regexps.
// Errors name the check and its regexp, never the content they matched.
func (p *httpProber) checkResponse(resp *http.Response, body *bytes.Buffer) error {
	if p.failIfNotTLS && resp.TLS == nil {
		return errors.New("fail_if_not_tls: final response did not come over TLS")
	}
	for _, check := range p.headerChecks {
		if err := check.apply(resp.Header); err != nil {
			return err
		}
	}
	if body == nil {
		return nil
	}
	for _, re := range p.bodyMatches {
		if re.Match(body.Bytes()) {
			return fmt.Errorf("body matches fail_if_body_matches_regexp %q", re.String())
		}
	}
	for _, re := range p.bodyNotMatches {
		if !re.Match(body.Bytes()) {
			return fmt.Errorf("body does not match fail_if_body_not_matches_regexp %q", re.String())
		}
	}
	return nil
}

// apply checks one header as blackbox_exporter does: a missing header
// fails either kind of check unless allow_missing is set.
func (c headerCheck) apply(header http.Header) error {
	field := "fail_if_header_not_matches"
	if c.failOnMatch {
		field = "fail_if_header_matches"
	}
	values := header[c.key]
	if len(values) == 0 {
		if c.allowMissing {
			return nil
		}
		return fmt.Errorf("%s: header %q missing", field, c.key)
	}
	matched := false
	for _, value := range values {
		if c.re.MatchString(value) {
			matched = true
			break
		}
	}
	switch {
	case c.failOnMatch && matched:
		return fmt.Errorf("%s: header %q matches %q", field, c.key, c.re.String())
	case !c.failOnMatch && !matched:
		return fmt.Errorf("%s: header %q does not match %q", field, c.key, c.re.String())
	}
	return nil
}
