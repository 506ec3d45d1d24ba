package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

const (
	// maxBackupRedirects is how many redirects an HTTP backup source
	// follows, as many as net/http's default.
	maxBackupRedirects = 10
	// maxUnixSeconds is 9999-12-31T23:59:59Z: a number beyond it is not
	// Unix seconds (milliseconds, more likely) and would overflow
	// time.Time's arithmetic.
	maxUnixSeconds = 253402300799
	// maxQuotedValue bounds how much of a wrong value an error repeats.
	maxQuotedValue = 64
)

// httpBackupSource reads the recovery point from an HTTP endpoint: with
// jsonField, a field of its JSON body; otherwise its Last-Modified header.
// Everything that does not change between checks (URL, headers, TLS
// configuration, client) is built once; the bearer token is read at every
// check, so it can be rotated without a reload.
//
// Checks run every few minutes, so connections are not kept alive: no
// idle connection outlives a check and nothing needs closing.
type httpBackupSource struct {
	// request is the template every check copies with its own context.
	// Its header is shared read-only; a check that adds a token clones it.
	request         *http.Request
	client          *http.Client
	bearerTokenFile string
	// jsonField is the configured path, for errors; jsonPath its names.
	jsonField     string
	jsonPath      []string
	bodySizeLimit int64
	clock         Clock
}

func newHTTPBackupSource(cfg *config.BackupHTTP, clock Clock) (*httpBackupSource, error) {
	target, err := parseTargetURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.BodySizeLimit <= 0 {
		return nil, fmt.Errorf("body_size_limit must be greater than 0, got %d", cfg.BodySizeLimit)
	}
	s := &httpBackupSource{
		bearerTokenFile: cfg.BearerTokenFile,
		jsonField:       cfg.JSONField,
		bodySizeLimit:   int64(cfg.BodySizeLimit),
		clock:           clock,
	}
	if cfg.JSONField != "" {
		s.jsonPath = strings.Split(cfg.JSONField, ".")
		for _, name := range s.jsonPath {
			if name == "" {
				return nil, fmt.Errorf("json_field %q: empty name in the path", cfg.JSONField)
			}
		}
	}
	header := make(http.Header, len(cfg.Headers)+1)
	header.Set("User-Agent", defaultUserAgent)
	s.request = &http.Request{
		Method:     http.MethodGet,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
	}
	for name, value := range cfg.Headers {
		if key := http.CanonicalHeaderKey(name); key == "Host" {
			s.request.Host = value
		} else {
			header[key] = []string{value}
		}
	}
	tlsConfig, err := newHTTPTLSConfig(cfg.TLSConfig, s.request.Host)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		// No proxy from the environment, as for probes.
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   tlsConfig,
		DisableKeepAlives: true,
		// HTTP/1.1 only: HTTP/2's connection pool ignores
		// DisableKeepAlives. A non-nil empty map disables HTTP/2.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	s.client = &http.Client{Transport: transport, CheckRedirect: checkBackupRedirect}
	return s, nil
}

// checkBackupRedirect stops after maxBackupRedirects with an error that
// classifies as ReasonRedirect. via holds the requests already sent.
func checkBackupRedirect(_ *http.Request, via []*http.Request) error {
	if len(via) > maxBackupRedirects {
		return &redirectError{msg: "too many redirects (more than " + strconv.Itoa(maxBackupRedirects) + ")"}
	}
	return nil
}

// RecoveryPoint implements BackupSource.
func (s *httpBackupSource) RecoveryPoint(ctx context.Context) (time.Time, error) {
	req, err := s.newRequest(ctx)
	if err != nil {
		return time.Time{}, &SourceError{Reason: ReasonSecret, Err: err}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return time.Time{}, &SourceError{Reason: classifyHTTPError(err, ctx.Err()), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return time.Time{}, &SourceError{Reason: ReasonStatus, Err: fmt.Errorf("status %d not in 2xx", resp.StatusCode)}
	}
	var point time.Time
	what := "Last-Modified header"
	if s.jsonPath == nil {
		point, err = lastModified(resp.Header)
	} else {
		what = fmt.Sprintf("json_field %q", s.jsonField)
		point, err = s.readField(ctx, resp.Body)
	}
	if err != nil {
		return time.Time{}, err
	}
	if err := checkNotFuture(point, s.clock.Now(), what); err != nil {
		return time.Time{}, err
	}
	return point, nil
}

// newRequest copies the template with ctx and, with a bearer token file,
// a header of its own holding the token, read now.
func (s *httpBackupSource) newRequest(ctx context.Context) (*http.Request, error) {
	req := s.request.WithContext(ctx)
	if s.bearerTokenFile == "" {
		return req, nil
	}
	token, err := readSecretFile("bearer_token_file", s.bearerTokenFile)
	if err != nil {
		return nil, err
	}
	req.Header = s.request.Header.Clone()
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// lastModified reads the Last-Modified header of a response.
func lastModified(header http.Header) (time.Time, error) {
	value := header.Get("Last-Modified")
	if value == "" {
		return time.Time{}, &SourceError{Reason: ReasonAssertion, Err: errors.New(
			"response has no Last-Modified header (set json_field to read the time from the body)")}
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return time.Time{}, &SourceError{Reason: ReasonAssertion, Err: fmt.Errorf(
			"Last-Modified header %s is not an HTTP date", quoteValue(value))}
	}
	return t, nil
}

// readField reads at most body_size_limit bytes of the body, decodes them
// as one JSON value and returns the time held by the field at jsonPath.
func (s *httpBackupSource) readField(ctx context.Context, body io.Reader) (time.Time, error) {
	data, err := io.ReadAll(io.LimitReader(body, s.bodySizeLimit+1))
	if err != nil {
		return time.Time{}, &SourceError{Reason: classifyHTTPError(err, ctx.Err()), Err: fmt.Errorf("reading body: %w", err)}
	}
	if int64(len(data)) > s.bodySizeLimit {
		return time.Time{}, &SourceError{Reason: ReasonBodyTooLarge, Err: fmt.Errorf(
			"body exceeds body_size_limit of %d bytes", s.bodySizeLimit)}
	}
	// UseNumber keeps integers of Unix seconds exact.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	err = dec.Decode(&doc)
	if err == nil && dec.Decode(new(any)) != io.EOF {
		err = errors.New("data after the first JSON value")
	}
	if err != nil {
		return time.Time{}, s.assertionError("body is not JSON: %v", err)
	}
	value := doc
	for i, name := range s.jsonPath {
		object, ok := value.(map[string]any)
		if !ok {
			where := "the body"
			if i > 0 {
				where = strconv.Quote(strings.Join(s.jsonPath[:i], "."))
			}
			return time.Time{}, s.assertionError("%s is %s, not an object", where, describeJSON(value))
		}
		if value, ok = object[name]; !ok {
			return time.Time{}, s.assertionError("%q not found", strings.Join(s.jsonPath[:i+1], "."))
		}
	}
	return s.parseTime(value)
}

// parseTime reads the field's value: an RFC 3339 string or a number of
// Unix seconds, possibly with a fraction.
func (s *httpBackupSource) parseTime(value any) (time.Time, error) {
	switch v := value.(type) {
	case string:
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, s.assertionError("found the string %s, not an RFC 3339 time", quoteValue(v))
		}
		return t, nil
	case json.Number:
		if secs, err := v.Int64(); err == nil {
			if secs < 0 || secs > maxUnixSeconds {
				return time.Time{}, s.secondsRangeError(v)
			}
			return time.Unix(secs, 0), nil
		}
		f, err := v.Float64()
		if err != nil || f < 0 || f > maxUnixSeconds {
			return time.Time{}, s.secondsRangeError(v)
		}
		whole, frac := math.Modf(f)
		return time.Unix(int64(whole), int64(math.Round(frac*1e9))), nil
	}
	return time.Time{}, s.assertionError("found %s, want an RFC 3339 string or a number of Unix seconds", describeJSON(value))
}

func (s *httpBackupSource) secondsRangeError(n json.Number) error {
	return s.assertionError("found the number %s, not Unix seconds between 0 and %d (milliseconds?)", cutValue(n.String()), maxUnixSeconds)
}

// assertionError is a ReasonAssertion error about the JSON field.
func (s *httpBackupSource) assertionError(format string, args ...any) error {
	return &SourceError{Reason: ReasonAssertion, Err: fmt.Errorf("json_field %q: %s", s.jsonField, fmt.Sprintf(format, args...))}
}

// describeJSON says what kind of JSON value v is, for errors; scalars
// with their (bounded) value.
func describeJSON(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "the boolean " + strconv.FormatBool(v)
	case json.Number:
		return "the number " + cutValue(v.String())
	case string:
		return "the string " + quoteValue(v)
	case []any:
		return fmt.Sprintf("an array of %d elements", len(v))
	case map[string]any:
		return fmt.Sprintf("an object of %d fields", len(v))
	}
	return fmt.Sprintf("a %T", v)
}

// quoteValue quotes a value found in a response, cut by cutValue.
func quoteValue(v string) string {
	if len(v) > maxQuotedValue {
		return strconv.Quote(v[:maxQuotedValue]) + "..."
	}
	return strconv.Quote(v)
}

// cutValue cuts a value found in a response to maxQuotedValue bytes:
// errors show what was there without carrying a whole body.
func cutValue(v string) string {
	if len(v) > maxQuotedValue {
		return v[:maxQuotedValue] + "..."
	}
	return v
}
