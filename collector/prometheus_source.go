package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/reliabilityd/reliabilityd/config"
)

const (
	// maxQueryResponseBytes bounds a query's response: the queries read
	// one sample, so a response this large is a query that selects far
	// too much, and reading it whole would only cost memory.
	maxQueryResponseBytes = 16 << 20
	// maxListedSeries bounds how many series an error about a query that
	// returned several names.
	maxListedSeries = 3
)

// PrometheusSource queries a Prometheus-compatible HTTP API (Prometheus,
// Thanos, Mimir, VictoriaMetrics) for single values. It is built once per
// configuration, shared by every resource and backup that names it, and
// safe for concurrent use. Credentials files are read at every query.
type PrometheusSource struct {
	name    string
	api     v1.API
	timeout time.Duration
	metrics *PrometheusSourceMetrics
}

// NewPrometheusSource builds the source cfg describes; cfg must have its
// defaults applied. The TLS configuration's files are read here, once.
// metrics, shared by every source of the daemon, counts its queries.
func NewPrometheusSource(cfg config.PrometheusSourceConfig, metrics *PrometheusSourceMetrics) (*PrometheusSource, error) {
	target, err := parseTargetURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("prometheus source %q: %w", cfg.Name, err)
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("prometheus source %q: timeout must be greater than 0", cfg.Name)
	}
	tlsConfig, err := newHTTPTLSConfig(cfg.TLSConfig, "")
	if err != nil {
		return nil, fmt.Errorf("prometheus source %q: %w", cfg.Name, err)
	}
	header := make(http.Header, len(cfg.Headers)+1)
	header.Set("User-Agent", defaultUserAgent)
	for name, value := range cfg.Headers {
		header.Set(name, value)
	}
	rt := &sourceRoundTripper{
		next: &http.Transport{
			// No proxy from the environment, as for probes.
			Proxy:               nil,
			DialContext:         (&net.Dialer{}).DialContext,
			TLSClientConfig:     tlsConfig,
			MaxIdleConnsPerHost: 4,
			// A reload builds new sources; the idle connections of the
			// old ones close by themselves.
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: cfg.Timeout.Duration(),
			// HTTP/1.1 only, as for every other client of the daemon.
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		},
		header:          header,
		bearerTokenFile: cfg.BearerTokenFile,
		basicAuth:       cfg.BasicAuth,
	}
	client, err := api.NewClient(api.Config{Address: target.String(), RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus source %q: %w", cfg.Name, err)
	}
	return &PrometheusSource{name: cfg.Name, api: v1.NewAPI(client), timeout: cfg.Timeout.Duration(), metrics: metrics}, nil
}

// Name returns the source's configured name.
func (s *PrometheusSource) Name() string { return s.name }

// valueCheck refuses a value a query's consumer cannot use, with a
// ReasonNaN *SourceError.
type valueCheck func(v float64) error

// Query runs expr as an instant query and returns its single value, which
// must be finite, pass check (when not nil) and come as one sample of an
// instant vector or as a scalar. The query is bounded by ctx and by the
// source's timeout, which is also sent to the API as the query's timeout.
//
// A failed query returns a *SourceError: ReasonSecret (a credentials file
// cannot be read), ReasonTimeout, ReasonDNS, ReasonConnect, ReasonTLS,
// ReasonStatus (an HTTP error or an API error response: a bad query, an
// execution error), ReasonProtocol (a response that does not parse, or a
// result of the wrong type), ReasonBodyTooLarge, ReasonEmpty (no sample),
// ReasonMultiple (more than one series), ReasonNaN (NaN, an infinity, or
// a value check refused). Every query and failure is counted in the
// source's metrics.
func (s *PrometheusSource) Query(ctx context.Context, expr string, check valueCheck) (float64, error) {
	return s.query(ctx, instantQuery{expr: expr, check: check})
}

// instantQuery is one query: expr at at (zero: the API's now), its value
// checked by check; with emptyIsZero, an empty result reads as 0 (a sum
// of error counters when no request failed).
type instantQuery struct {
	expr        string
	at          time.Time
	check       valueCheck
	emptyIsZero bool
}

func (s *PrometheusSource) query(ctx context.Context, q instantQuery) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	v, err := s.run(ctx, q)
	s.metrics.observe(s.name, start, time.Since(start), err)
	return v, err
}

func (s *PrometheusSource) run(ctx context.Context, q instantQuery) (float64, error) {
	expr, check := q.expr, q.check
	result, _, _, err := s.api.Query(ctx, expr, q.at, v1.WithTimeout(s.timeout))
	if err != nil {
		return 0, &SourceError{Reason: classifyQueryError(err, ctx.Err()), Err: fmt.Errorf("query %s: %w", quoteValue(expr), err)}
	}
	v, err := singleValue(result)
	if vector, ok := result.(model.Vector); ok && len(vector) == 0 && q.emptyIsZero {
		v, err = 0, nil
	}
	if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		err = &SourceError{Reason: ReasonNaN, Err: fmt.Errorf("the value is %v", v)}
	}
	if err == nil && check != nil {
		err = check(v)
	}
	if err != nil {
		var srcErr *SourceError
		if errors.As(err, &srcErr) {
			srcErr.Err = fmt.Errorf("query %s: %w", quoteValue(expr), srcErr.Err)
		}
		return 0, err
	}
	return v, nil
}

// singleValue returns the value of a result that holds exactly one
// sample: a one-element instant vector, or a scalar.
func singleValue(result model.Value) (float64, error) {
	switch r := result.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, &SourceError{Reason: ReasonEmpty, Err: errors.New("the result is empty: no series matched")}
		case 1:
			return float64(r[0].Value), nil
		}
		names := make([]string, 0, maxListedSeries)
		for _, sample := range r[:min(len(r), maxListedSeries)] {
			names = append(names, cutValue(sample.Metric.String()))
		}
		return 0, &SourceError{Reason: ReasonMultiple, Err: fmt.Errorf(
			"the result holds %d series, want one (aggregate it, e.g. with sum or max): %s", len(r), strings.Join(names, ", "))}
	case *model.Scalar:
		return float64(r.Value), nil
	case nil:
		return 0, &SourceError{Reason: ReasonProtocol, Err: errors.New("the response holds no result")}
	}
	return 0, &SourceError{Reason: ReasonProtocol, Err: fmt.Errorf("the result is a %s, want an instant vector or a scalar", result.Type())}
}

// nonNegative refuses a negative value: usage and limits are amounts.
func nonNegative(what string) valueCheck {
	return func(v float64) error {
		if v < 0 {
			return &SourceError{Reason: ReasonNaN, Err: fmt.Errorf("%s is negative: %v", what, v)}
		}
		return nil
	}
}

// positive refuses zero and negative values: a limit of 0 leaves nothing
// to compute utilisation against.
func positive(what string) valueCheck {
	return func(v float64) error {
		if v <= 0 {
			return &SourceError{Reason: ReasonNaN, Err: fmt.Errorf("%s must be greater than 0, got %v", what, v)}
		}
		return nil
	}
}

// validUnixSeconds refuses values that are no Unix time of a backup: 0 (the
// value of a gauge never set), negative values, and beyond year 9999
// (milliseconds, most likely).
func validUnixSeconds(v float64) error {
	if v <= 0 || v > maxUnixSeconds {
		return &SourceError{Reason: ReasonNaN, Err: fmt.Errorf(
			"the value %v is not Unix seconds between 0 (exclusive) and %d (milliseconds? a gauge never set?)", v, maxUnixSeconds)}
	}
	return nil
}

// classifyQueryError maps an error of the API client to its Reason.
func classifyQueryError(err, ctxErr error) Reason {
	var apiErr *v1.Error
	var secretErr *secretFileError
	switch {
	case errors.As(err, &secretErr):
		return ReasonSecret
	case errors.Is(err, errQueryResponseTooLarge):
		return ReasonBodyTooLarge
	case errors.As(err, &apiErr):
		switch apiErr.Type {
		case v1.ErrTimeout, v1.ErrCanceled:
			return ReasonTimeout
		case v1.ErrBadResponse:
			return ReasonProtocol
		case v1.ErrServer:
			// Prometheus answers a query that ran out of time with 503,
			// whose body the client leaves in Detail.
			if strings.Contains(apiErr.Detail, `"errorType":"timeout"`) {
				return ReasonTimeout
			}
		}
		// bad_data (a query that does not parse), execution, and HTTP
		// errors (client_error, server_error).
		return ReasonStatus
	}
	return classifyHTTPError(err, ctxErr)
}

// secretFileError is a credentials file that could not be read.
type secretFileError struct{ err error }

func (e *secretFileError) Error() string { return e.err.Error() }
func (e *secretFileError) Unwrap() error { return e.err }

var errQueryResponseTooLarge = fmt.Errorf("response larger than %d bytes", maxQueryResponseBytes)

// sourceRoundTripper adds a source's headers and credentials to every
// request, and bounds what is read of the response.
type sourceRoundTripper struct {
	next            http.RoundTripper
	header          http.Header // read-only
	bearerTokenFile string
	basicAuth       *config.BasicAuth
}

// RoundTrip implements http.RoundTripper.
func (rt *sourceRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the request it is given.
	req = req.Clone(req.Context())
	for name, values := range rt.header {
		req.Header[name] = values
	}
	switch {
	case rt.bearerTokenFile != "":
		token, err := readSecretFile("bearer_token_file", rt.bearerTokenFile)
		if err != nil {
			return nil, &secretFileError{err: err}
		}
		req.Header.Set("Authorization", "Bearer "+token)
	case rt.basicAuth != nil:
		password, err := readSecretFile("basic_auth password_file", rt.basicAuth.PasswordFile)
		if err != nil {
			return nil, &secretFileError{err: err}
		}
		req.SetBasicAuth(rt.basicAuth.Username, password)
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: maxQueryResponseBytes}
	return resp, nil
}

// limitedBody fails a read beyond its limit rather than truncating: a cut
// JSON document would read as a protocol error and hide the cause.
type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Is there more? One byte tells.
		var probe [1]byte
		if n, _ := b.ReadCloser.Read(probe[:]); n > 0 {
			return 0, errQueryResponseTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// PrometheusSourceMetrics counts the queries of the daemon's Prometheus
// sources, and keeps each source's last query for the landing page. It
// outlives configurations; SetSources follows the sources configured.
// Safe for concurrent use.
type PrometheusSourceMetrics struct {
	queries  *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	info     *prometheus.GaugeVec

	mu     sync.Mutex
	status map[string]*PrometheusSourceStatus // by source name
}

// PrometheusSourceStatus is what the landing page shows of a source.
type PrometheusSourceStatus struct {
	Name, URL string
	// LastQuery is when the last query started; zero before the first.
	LastQuery time.Time
	LastOK    bool
	// LastError and LastReason are those of the last failed query, kept
	// after later successes; LastErrorTime is when it started.
	LastError     string
	LastReason    Reason
	LastErrorTime time.Time
	Queries       uint64
	Failures      uint64
}

// queryReasons are the reasons a query can fail for, pre-initialised so
// a source's failure counters exist at 0 from the start.
var queryReasons = [...]Reason{ReasonSecret, ReasonTimeout, ReasonDNS, ReasonConnect, ReasonTLS, ReasonStatus,
	ReasonProtocol, ReasonBodyTooLarge, ReasonEmpty, ReasonMultiple, ReasonNaN, ReasonInternal}

// NewPrometheusSourceMetrics registers the sources' metrics with reg.
func NewPrometheusSourceMetrics(reg prometheus.Registerer) *PrometheusSourceMetrics {
	m := &PrometheusSourceMetrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_source_queries_total",
			Help: "Queries sent to a Prometheus source.",
		}, []string{"source"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prometheus_source_query_failures_total",
			Help: "Queries of a Prometheus source that failed, by reason.",
		}, []string{"source", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prometheus_source_query_duration_seconds",
			Help:    "Duration of the queries of a Prometheus source, failed ones included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"source"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prometheus_source_info",
			Help: "A configured Prometheus source and its URL (without credentials); always 1.",
		}, []string{"source", "url"}),
		status: map[string]*PrometheusSourceStatus{},
	}
	reg.MustRegister(m.queries, m.failures, m.duration, m.info)
	return m
}

// SetSources makes the metrics follow the configured sources: sources
// removed lose their series and status, new ones start at zero.
func (m *PrometheusSourceMetrics) SetSources(sources []config.PrometheusSourceConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	listed := make(map[string]bool, len(sources))
	m.info.Reset()
	for _, cfg := range sources {
		listed[cfg.Name] = true
		shownURL := redactedURL(cfg.URL)
		m.info.WithLabelValues(cfg.Name, shownURL).Set(1)
		m.queries.WithLabelValues(cfg.Name)
		for _, reason := range queryReasons {
			m.failures.WithLabelValues(cfg.Name, string(reason))
		}
		if st, ok := m.status[cfg.Name]; ok {
			st.URL = shownURL
		} else {
			m.status[cfg.Name] = &PrometheusSourceStatus{Name: cfg.Name, URL: shownURL}
		}
	}
	for name := range m.status {
		if !listed[name] {
			delete(m.status, name)
			m.queries.DeleteLabelValues(name)
			m.duration.DeleteLabelValues(name)
			m.failures.DeletePartialMatch(prometheus.Labels{"source": name})
		}
	}
}

// observe counts a query of source that started at start.
func (m *PrometheusSourceMetrics) observe(source string, start time.Time, took time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.status[source]
	if !ok {
		// A query of a source removed by a reload while it ran: its
		// series are gone and stay gone.
		return
	}
	m.queries.WithLabelValues(source).Inc()
	m.duration.WithLabelValues(source).Observe(took.Seconds())
	st.Queries++
	st.LastQuery, st.LastOK = start, err == nil
	if err == nil {
		return
	}
	reason := ReasonInternal
	var srcErr *SourceError
	if errors.As(err, &srcErr) {
		reason = srcErr.Reason
	}
	m.failures.WithLabelValues(source, string(reason)).Inc()
	st.Failures++
	st.LastError, st.LastReason, st.LastErrorTime = err.Error(), reason, start
}

// Status returns the status of every source, sorted by name.
func (m *PrometheusSourceMetrics) Status() []PrometheusSourceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PrometheusSourceStatus, 0, len(m.status))
	for _, st := range m.status {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// redactedURL is a URL as shown on pages and labels: never with a
// password (validation refuses user info anyway).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}

// prometheusCapacitySource reads usage, and optionally the limit, from
// queries of a Prometheus source.
type prometheusCapacitySource struct {
	src          *PrometheusSource
	usage, limit string
}

// Sample implements CapacitySource.
func (s *prometheusCapacitySource) Sample(ctx context.Context) (Measurement, error) {
	usage, err := s.src.Query(ctx, s.usage, nonNegative("usage"))
	if err != nil {
		return Measurement{}, err
	}
	m := Measurement{Usage: usage}
	if s.limit != "" {
		if m.Limit, err = s.src.Query(ctx, s.limit, positive("the limit")); err != nil {
			return Measurement{}, err
		}
	}
	return m, nil
}

// prometheusBackupSource reads a recovery point, as Unix seconds, from a
// query of a Prometheus source.
type prometheusBackupSource struct {
	src   *PrometheusSource
	query string
	clock Clock
}

// RecoveryPoint implements BackupSource.
func (s *prometheusBackupSource) RecoveryPoint(ctx context.Context) (time.Time, error) {
	v, err := s.src.Query(ctx, s.query, validUnixSeconds)
	if err != nil {
		return time.Time{}, err
	}
	whole, frac := math.Modf(v)
	point := time.Unix(int64(whole), int64(math.Round(frac*1e9)))
	if err := checkNotFuture(point, s.clock.Now(), "query "+quoteValue(s.query)); err != nil {
		return time.Time{}, err
	}
	return point, nil
}
