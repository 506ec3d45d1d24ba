package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// transactionProber runs the steps of a `transaction` probe in order.
// Everything that does not change between runs is built once here and
// read-only afterwards; what a run changes (captured values, secrets
// read, cookies, connections) lives in its transactionRun, so runs are
// independent and each measures fresh connections.
type transactionProber struct {
	steps []*transactionStep
	// variables are the initial values of var; secrets map the names of
	// secret to their files.
	variables map[string]string
	secrets   map[string]string
	// templates holds every templated value of the steps, named by its
	// field path (steps[1].body). A run binds var and secret to its own
	// values in a clone.
	templates *template.Template
	// transports are the TLS configurations of the distinct transports
	// the steps need. A run makes each transport it uses once, so steps
	// sharing one also share connections.
	transports  []*tls.Config
	bodyBuffers bodyBufferPool
}

// transactionStep is one step, compiled.
type transactionStep struct {
	name string
	// label is how errors name the step: `step 2 "login"`.
	label  string
	method string
	url    stepValue
	// staticURL is the parsed URL when it is not templated.
	staticURL *url.URL
	// urlText is the configured URL without user information, for
	// errors: never a rendered one, which may hold captured values.
	urlText string
	host    string // a Host header: the request's host and TLS server name
	headers []stepHeader
	body    stepValue

	status        validStatus
	redirects     redirectPolicy
	bodySizeLimit int64
	dial          dialPolicy
	transport     int // index in transactionProber.transports

	assertions []stepAssertion
	captures   []stepCapture
	// needsBody: an assertion or capture reads the body.
	needsBody bool
}

// stepValue is a url, header value or body: a literal, or the name of a
// template in transactionProber.templates.
type stepValue struct {
	field    string // for errors: url, body, headers["X"]
	literal  string
	template string
}

type stepHeader struct {
	key   string
	value stepValue
}

// NewTransactionProber builds the prober of a `transaction` probe: the
// templates, checks and TLS configurations of every step, all once.
// cfg.Transaction must be set with its defaults applied.
func NewTransactionProber(cfg config.ProbeConfig, deps ProberDeps) (Prober, error) {
	if cfg.Transaction == nil {
		return nil, fmt.Errorf("probe %q: no transaction section", cfg.Name)
	}
	p, err := newTransactionProber(cfg.Transaction, deps)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", cfg.Name, err)
	}
	return p, nil
}

func newTransactionProber(cfg *config.TransactionProbe, deps ProberDeps) (*transactionProber, error) {
	if len(cfg.Steps) == 0 {
		return nil, errors.New("a transaction needs at least one step")
	}
	p := &transactionProber{
		variables: cfg.Variables,
		secrets:   cfg.Secrets,
		templates: template.New("").Option("missingkey=error").Funcs(config.TemplateFuncs()),
	}
	transports := map[transportOf]int{}
	for i := range cfg.Steps {
		step, err := p.newStep(i, &cfg.Steps[i], deps, transports)
		if err != nil {
			return nil, fmt.Errorf("steps[%d] (%q): %w", i, cfg.Steps[i].Name, err)
		}
		p.steps = append(p.steps, step)
	}
	return p, nil
}

// transportOf is what steps must have in common to share connections:
// the TLS settings, and the address family the connections were dialled
// by.
type transportOf struct {
	tls        config.TLSConfig
	host       string
	ipProtocol string
	ipFallback bool
}

func (p *transactionProber) newStep(i int, cfg *config.TransactionStep, deps ProberDeps, transports map[transportOf]int) (*transactionStep, error) {
	if err := checkIPProtocol(cfg.IPProtocol); err != nil {
		return nil, err
	}
	s := &transactionStep{
		name:          cfg.Name,
		label:         fmt.Sprintf("step %d %q", i+1, cfg.Name),
		method:        cfg.Method,
		urlText:       config.RedactURL(cfg.URL.Text),
		status:        newValidStatus(cfg.ValidStatusCodes),
		redirects:     redirectPolicy{follow: cfg.FollowRedirects, max: cfg.MaxRedirects},
		bodySizeLimit: int64(cfg.BodySizeLimit),
		// Every connection is the run's own: its deadline may be set.
		dial: newDialPolicy(deps.Dialer, cfg.IPProtocol, cfg.IPProtocolFallback, true),
	}
	if s.method == "" {
		s.method = http.MethodGet
	}
	if s.bodySizeLimit <= 0 {
		return nil, fmt.Errorf("body_size_limit must be greater than 0, got %d", s.bodySizeLimit)
	}
	prefix := fmt.Sprintf("steps[%d].", i)
	var err error
	if s.url, err = p.value(prefix, "url", cfg.URL.Text); err != nil {
		return nil, err
	}
	if s.url.template == "" {
		if s.staticURL, err = parseTargetURL(s.url.literal); err != nil {
			return nil, err
		}
	}
	if s.body, err = p.value(prefix, "body", cfg.Body.Text); err != nil {
		return nil, err
	}
	if err := p.setHeaders(s, prefix, cfg.Headers); err != nil {
		return nil, err
	}
	if err := s.setChecks(cfg); err != nil {
		return nil, err
	}
	key := transportOf{tls: cfg.TLSConfig, host: s.host, ipProtocol: cfg.IPProtocol, ipFallback: cfg.IPProtocolFallback}
	index, ok := transports[key]
	if !ok {
		tlsConfig, err := newHTTPTLSConfig(cfg.TLSConfig, s.host)
		if err != nil {
			return nil, err
		}
		index = len(p.transports)
		p.transports = append(p.transports, tlsConfig)
		transports[key] = index
	}
	s.transport = index
	return s, nil
}

// value compiles the text of a field: a literal, or a template added to
// p.templates under prefix+field.
func (p *transactionProber) value(prefix, field, text string) (stepValue, error) {
	v := stepValue{field: field}
	parsed, err := config.ParseTemplate(text)
	if err != nil {
		return v, fmt.Errorf("%s: invalid template: %w", field, err)
	}
	if parsed.Parsed == nil {
		v.literal = text
		return v, nil
	}
	v.template = prefix + field
	if _, err := p.templates.New(v.template).Parse(text); err != nil {
		return v, fmt.Errorf("%s: invalid template: %w", field, err)
	}
	return v, nil
}

func (p *transactionProber) setHeaders(s *transactionStep, prefix string, headers map[string]config.Template) error {
	for name, value := range headers {
		key := http.CanonicalHeaderKey(name)
		field := "headers[" + strconv.Quote(name) + "]"
		v, err := p.value(prefix, field, value.Text)
		if err != nil {
			return err
		}
		if key == "Host" {
			if v.template != "" {
				return errors.New("the Host header cannot be templated")
			}
			s.host = v.literal
			continue
		}
		s.headers = append(s.headers, stepHeader{key: key, value: v})
	}
	return nil
}

// Probe implements Prober. The steps run in order until one fails; the
// result's Reason and Err are the failing step's.
func (p *transactionProber) Probe(ctx context.Context) Result {
	result := Result{Start: time.Now(), Steps: make([]StepResult, len(p.steps))}
	run := p.newRun(ctx)
	defer run.close()
	for i, step := range p.steps {
		result.Steps[i].Name = step.name
	}
	for i, step := range p.steps {
		stepResult := &result.Steps[i]
		stepResult.Ran = true
		reason, err := run.step(step, stepResult, &result)
		if err != nil {
			stepResult.Reason = reason
			result.Reason = reason
			result.Err = fmt.Errorf("%s: %w", step.label, err)
			break
		}
		stepResult.Success = true
	}
	result.Duration = time.Since(result.Start)
	result.Success = result.Reason == ""
	return result
}

// transactionRun is the state of one run. It is used by the goroutine
// running the probe only; net/http's goroutines see just the per-step
// httpRun, which locks.
type transactionRun struct {
	prober   *transactionProber
	ctx      context.Context
	deadline time.Time
	// captured holds the values captured so far; var falls back to the
	// prober's initial variables.
	captured map[string]string
	// secrets holds the secrets read in this run, each read once.
	secrets map[string]string
	// templates is the prober's, bound to this run; made on first use.
	templates  *template.Template
	jar        *cookiejar.Jar
	transports []*http.Transport // by transactionStep.transport, made on first use
}

func (p *transactionProber) newRun(ctx context.Context) *transactionRun {
	// cookiejar.New fails only for a bad option; nil has none.
	jar, _ := cookiejar.New(nil)
	run := &transactionRun{
		prober:     p,
		ctx:        ctx,
		captured:   map[string]string{},
		jar:        jar,
		transports: make([]*http.Transport, len(p.transports)),
	}
	run.deadline, _ = ctx.Deadline()
	return run
}

// close closes the run's connections: the next run dials its own. A
// connection still in use when the run gave up is closed by net/http
// when the request is cancelled, and by its deadline at the latest.
func (r *transactionRun) close() {
	for _, transport := range r.transports {
		if transport != nil {
			transport.CloseIdleConnections()
		}
	}
}

// transport returns the run's transport i.
func (r *transactionRun) transport(i int) *http.Transport {
	if r.transports[i] == nil {
		r.transports[i] = &http.Transport{
			Proxy:           nil,
			DialContext:     dialHTTPTarget,
			TLSClientConfig: r.prober.transports[i],
			// Steps run one after the other: one idle connection per
			// host is all they can reuse.
			MaxIdleConnsPerHost: 1,
			// The body limit counts the bytes the server sent.
			DisableCompression: true,
			// HTTP/1.1, as the http probe without keep_alive: the phases
			// of a fresh connection are measured the same way.
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		}
	}
	return r.transports[i]
}

// step runs one step, filling its result and the run's StatusCode, TLS
// and Phases. It returns why the step failed, if it did.
func (r *transactionRun) step(s *transactionStep, stepResult *StepResult, result *Result) (Reason, error) {
	start := time.Now()
	trace := &httpRun{dial: &s.dial, deadline: r.deadline}
	resp, reason, err := r.exchange(s, trace, stepResult, result)
	end := time.Now()
	stepResult.Duration = end.Sub(start)
	addPhases(&result.Phases, trace.finish(end))
	if err != nil {
		return reason, err
	}
	if resp.body != nil {
		defer r.prober.bodyBuffers.put(resp.body)
	}
	resp.duration = stepResult.Duration
	for i := range s.assertions {
		if err := s.assertions[i].check(resp); err != nil {
			return ReasonAssertion, err
		}
	}
	for i := range s.captures {
		c := &s.captures[i]
		value, err := c.capture(resp, r.jar)
		if err != nil {
			return ReasonAssertion, fmt.Errorf("capture %q: %w", c.name, err)
		}
		r.captured[c.name] = value
	}
	return "", nil
}

// exchange sends the step's request and reads the response. On success
// the response's body is in a pooled buffer when the checks need it.
func (r *transactionRun) exchange(s *transactionStep, trace *httpRun, stepResult *StepResult, result *Result) (*stepResponse, Reason, error) {
	req, reason, err := r.newRequest(s, trace)
	if err != nil {
		return nil, reason, err
	}
	client := &http.Client{Transport: r.transport(s.transport), Jar: r.jar, CheckRedirect: s.redirects.check}
	resp, err := client.Do(req)
	if resp != nil {
		// Also set when too many redirects: the last redirect's status.
		stepResult.StatusCode = resp.StatusCode
		result.StatusCode = resp.StatusCode
	}
	if err != nil {
		return nil, trace.classify(err, r.ctx.Err()), s.requestError(err, req.URL.Hostname())
	}
	defer resp.Body.Close()
	if resp.TLS != nil {
		result.TLS = NewTLSState(resp.TLS)
	}
	if err := s.status.check(resp.StatusCode); err != nil {
		return nil, ReasonStatus, err
	}
	var body *bytes.Buffer
	if s.needsBody {
		body = r.prober.bodyBuffers.get()
	}
	size, err := readBody(resp.Body, s.bodySizeLimit, body)
	switch {
	case err != nil:
		err = fmt.Errorf("reading body: %w", err)
		reason = trace.classify(err, r.ctx.Err())
	case size > s.bodySizeLimit:
		err = fmt.Errorf("body exceeds body_size_limit of %d bytes", s.bodySizeLimit)
		reason = ReasonBodyTooLarge
	}
	if err != nil {
		if body != nil {
			r.prober.bodyBuffers.put(body)
		}
		return nil, reason, err
	}
	return &stepResponse{resp: resp, body: body}, "", nil
}

// requestError rewords an error of http.Client.Do naming the configured
// URL instead of the one requested: a rendered URL, or one a redirect
// pointed to, may hold captured values (a session id, an OAuth code).
// host is the requested host: when the URL is a template, it was rendered
// from such values too, and the DNS and certificate errors that name it
// have it replaced. The reason is classified before, on err itself.
func (s *transactionStep) requestError(err error, host string) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = fmt.Errorf("%s %q: %w", urlErr.Op, s.urlText, urlErr.Err)
	}
	if s.staticURL == nil && host != "" && strings.Contains(err.Error(), host) {
		return errors.New(strings.ReplaceAll(err.Error(), host, "(rendered host)"))
	}
	return err
}

// newRequest renders the step's request. A secret that cannot be read
// fails it with ReasonSecret; a rendered value that does not fit (too
// large, not a URL, a header with a line break) with ReasonAssertion, as
// it comes from values captured from the responses.
func (r *transactionRun) newRequest(s *transactionStep, trace *httpRun) (*http.Request, Reason, error) {
	target := s.staticURL
	if target == nil {
		raw, err := r.render(s.url)
		if err != nil {
			return nil, renderReason(err), err
		}
		if target, err = parseRenderedURL(raw); err != nil {
			return nil, ReasonAssertion, err
		}
	}
	header := make(http.Header, len(s.headers)+1)
	header.Set("User-Agent", defaultUserAgent)
	for _, h := range s.headers {
		value, err := r.render(h.value)
		if err != nil {
			return nil, renderReason(err), err
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, ReasonAssertion, fmt.Errorf("%s: the rendered value holds CR, LF or NUL", h.value.field)
		}
		header[h.key] = []string{value}
	}
	body, err := r.render(s.body)
	if err != nil {
		return nil, renderReason(err), err
	}
	ctx := httptrace.WithClientTrace(context.WithValue(r.ctx, httpRunKey{}, trace), trace.clientTrace())
	req := (&http.Request{
		Method:     s.method,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       s.host,
	}).WithContext(ctx)
	if body != "" {
		req.ContentLength = int64(len(body))
		// GetBody also resends the body on a 307 or 308 redirect.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		req.Body, _ = req.GetBody()
	}
	return req, "", nil
}

// parseRenderedURL checks a rendered URL. Errors do not quote it: it may
// hold captured values.
func parseRenderedURL(raw string) (*url.URL, error) {
	target, err := url.Parse(raw)
	if err != nil {
		// url.Parse's errors quote the offending part of the value.
		return nil, errors.New("url: the rendered value is not a URL")
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, errors.New("url: the rendered value is not an absolute http or https URL")
	}
	return target, nil
}

// secretError is a secret file that could not be read.
type secretError struct{ err error }

func (e *secretError) Error() string { return e.err.Error() }
func (e *secretError) Unwrap() error { return e.err }

func renderReason(err error) Reason {
	var secretErr *secretError
	if errors.As(err, &secretErr) {
		return ReasonSecret
	}
	return ReasonAssertion
}

// render returns the value of v in this run. Errors never hold values.
func (r *transactionRun) render(v stepValue) (string, error) {
	if v.template == "" {
		return v.literal, nil
	}
	if r.templates == nil {
		templates, err := r.prober.templates.Clone()
		if err != nil {
			return "", fmt.Errorf("%s: %w", v.field, err)
		}
		r.templates = templates.Funcs(template.FuncMap{"var": r.variable, "secret": r.secret})
	}
	w := valueWriter{limit: config.MaxTransactionValueSize}
	err := r.templates.ExecuteTemplate(&w, v.template, nil)
	var secretErr *secretError
	switch {
	case errors.As(err, &secretErr):
		// Without text/template's wrapping: the error says it all.
		return "", secretErr
	case err != nil:
		return "", fmt.Errorf("%s: %w", v.field, err)
	}
	return w.b.String(), nil
}

// variable implements the template function var.
func (r *transactionRun) variable(name string) (string, error) {
	if value, ok := r.captured[name]; ok {
		return value, nil
	}
	if value, ok := r.prober.variables[name]; ok {
		return value, nil
	}
	return "", fmt.Errorf("var %q is not set", name)
}

// secret implements the template function secret: the file is read at
// its first use in the run, so it can be rotated without a reload.
func (r *transactionRun) secret(name string) (string, error) {
	if value, ok := r.secrets[name]; ok {
		return value, nil
	}
	file, ok := r.prober.secrets[name]
	if !ok {
		return "", fmt.Errorf("secret %q is not configured", name)
	}
	value, err := readSecretFile(fmt.Sprintf("secret %q", name), file)
	if err != nil {
		return "", &secretError{err: err}
	}
	if r.secrets == nil {
		r.secrets = map[string]string{}
	}
	r.secrets[name] = value
	return value, nil
}

// valueWriter collects a rendered value up to limit bytes, so a template
// looping over a large captured value cannot take unbounded memory.
type valueWriter struct {
	b     strings.Builder
	limit int
}

func (w *valueWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.limit {
		return 0, fmt.Errorf("the rendered value exceeds %d bytes", w.limit)
	}
	return w.b.Write(p)
}

// addPhases adds the phases src went through to dst.
func addPhases(dst *Phases, src Phases) {
	for phase := Phase(0); phase < numPhases; phase++ {
		if d, ok := src.Get(phase); ok {
			dst.Add(phase, d)
		}
	}
}
