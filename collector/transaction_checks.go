package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// The checks of a transaction step: assertions on its response and
// captures of values from it. Their errors name the check and what it
// expected (configuration), never what the response held: a body, a
// header or a JSON value may be a token.

// stepResponse is what the assertions and captures of a step look at.
type stepResponse struct {
	resp *http.Response
	// body is nil when no check reads it.
	body     *bytes.Buffer
	duration time.Duration

	// doc is the body parsed as JSON on first use, docErr why it is not.
	doc    any
	docErr error
	parsed bool
}

// json returns the body parsed as JSON, numbers kept as written.
func (r *stepResponse) json() (any, error) {
	if !r.parsed {
		r.parsed = true
		r.doc, r.docErr = parseJSONBody(r.body.Bytes())
	}
	return r.doc, r.docErr
}

func parseJSONBody(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, errors.New("body is empty, not JSON")
	case err != nil:
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("body is not JSON: data after the first value")
	}
	return doc, nil
}

// jsonText is the text a JSON value is compared and captured as: a
// string without quotes, a number as written, true, false, null, and an
// object or array as compact JSON (object keys sorted).
func jsonText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	}
	out, err := json.Marshal(v)
	if err != nil {
		// Values decoded from JSON always marshal back.
		return ""
	}
	return string(out)
}

type assertionKind uint8

const (
	assertBodyMatches assertionKind = iota
	assertBodyNotMatches
	assertHeader
	assertJSONPath
	assertMaxDuration
)

// stepAssertion is one entry of a step's assertions.
type stepAssertion struct {
	kind assertionKind
	// re is body_regexp, body_not_regexp, or the regexp refining header
	// and json_path (nil when unset).
	re          *regexp.Regexp
	header      string // canonical
	path        config.JSONPath
	equals      *string
	maxDuration time.Duration
}

func newStepAssertion(cfg *config.TransactionAssertion) (stepAssertion, error) {
	a := stepAssertion{re: cfg.Regexp.Regexp, equals: cfg.Equals, path: cfg.JSONPath}
	kinds := 0
	if cfg.BodyRegexp.Regexp != nil {
		a.kind, a.re = assertBodyMatches, cfg.BodyRegexp.Regexp
		kinds++
	}
	if cfg.BodyNotRegexp.Regexp != nil {
		a.kind, a.re = assertBodyNotMatches, cfg.BodyNotRegexp.Regexp
		kinds++
	}
	if cfg.Header != "" {
		a.kind, a.header = assertHeader, http.CanonicalHeaderKey(cfg.Header)
		kinds++
	}
	if !cfg.JSONPath.IsZero() {
		a.kind = assertJSONPath
		kinds++
	}
	if cfg.MaxDuration > 0 {
		a.kind, a.maxDuration = assertMaxDuration, cfg.MaxDuration.Duration()
		kinds++
	}
	if kinds != 1 {
		return a, fmt.Errorf("an assertion needs exactly one of body_regexp, body_not_regexp, header, json_path and max_duration, found %d", kinds)
	}
	return a, nil
}

func (a *stepAssertion) readsBody() bool {
	return a.kind == assertBodyMatches || a.kind == assertBodyNotMatches || a.kind == assertJSONPath
}

// check returns why the response fails the assertion, nil if it passes.
func (a *stepAssertion) check(r *stepResponse) error {
	switch a.kind {
	case assertBodyMatches:
		if !a.re.Match(r.body.Bytes()) {
			return fmt.Errorf("body does not match body_regexp %q", a.re)
		}
	case assertBodyNotMatches:
		if a.re.Match(r.body.Bytes()) {
			return fmt.Errorf("body matches body_not_regexp %q", a.re)
		}
	case assertHeader:
		values := r.resp.Header[a.header]
		if len(values) == 0 {
			return fmt.Errorf("header %q missing", a.header)
		}
		for _, value := range values {
			if a.accepts(value) {
				return nil
			}
		}
		return fmt.Errorf("header %q %s", a.header, a.expectation())
	case assertJSONPath:
		doc, err := r.json()
		if err != nil {
			return err
		}
		value, ok := a.path.Lookup(doc)
		if !ok {
			return fmt.Errorf("json_path %q not found", a.path)
		}
		if !a.accepts(jsonText(value)) {
			return fmt.Errorf("json_path %q %s", a.path, a.expectation())
		}
	case assertMaxDuration:
		if r.duration > a.maxDuration {
			return fmt.Errorf("took %s, more than max_duration %s", r.duration.Round(time.Microsecond), a.maxDuration)
		}
	}
	return nil
}

// accepts applies equals and regexp, when set, to a header or JSON value.
func (a *stepAssertion) accepts(value string) bool {
	return (a.equals == nil || value == *a.equals) && (a.re == nil || a.re.MatchString(value))
}

func (a *stepAssertion) expectation() string {
	switch {
	case a.equals != nil && a.re != nil:
		return fmt.Sprintf("does not both equal %q and match regexp %q", *a.equals, a.re)
	case a.equals != nil:
		return fmt.Sprintf("does not equal %q", *a.equals)
	}
	return fmt.Sprintf("does not match regexp %q", a.re)
}

type captureSource uint8

const (
	captureBody captureSource = iota
	captureJSONPath
	captureHeader
	captureCookie
)

// stepCapture is one entry of a step's captures.
type stepCapture struct {
	name   string
	source captureSource
	path   config.JSONPath
	// key is the header (canonical) or the cookie name.
	key string
	// re, when set, picks group of its first match in the source's value.
	re    *regexp.Regexp
	group int
}

func newStepCapture(cfg *config.TransactionCapture) (stepCapture, error) {
	c := stepCapture{name: cfg.Name, source: captureBody, path: cfg.JSONPath, re: cfg.Regexp.Regexp}
	sources := 0
	if !cfg.JSONPath.IsZero() {
		c.source = captureJSONPath
		sources++
	}
	if cfg.Header != "" {
		c.source, c.key = captureHeader, http.CanonicalHeaderKey(cfg.Header)
		sources++
	}
	if cfg.Cookie != "" {
		c.source, c.key = captureCookie, cfg.Cookie
		sources++
	}
	if sources > 1 || (sources == 0 && c.re == nil) {
		return c, errors.New("a capture needs exactly one of json_path, header, cookie and regexp alone")
	}
	if cfg.Name == "" {
		return c, errors.New("a capture needs a name")
	}
	switch {
	case c.re == nil && cfg.Group != nil:
		return c, errors.New("group is only used with regexp")
	case c.re == nil:
	case cfg.Group != nil:
		c.group = *cfg.Group
	case c.re.NumSubexp() > 0:
		c.group = 1
	}
	if c.re != nil && (c.group < 0 || c.group > c.re.NumSubexp()) {
		return c, fmt.Errorf("group %d: regexp %q has %d groups", c.group, c.re, c.re.NumSubexp())
	}
	return c, nil
}

// capture returns the value the capture finds in the response; jar is
// the run's, for cookies the response did not set itself.
func (c *stepCapture) capture(r *stepResponse, jar http.CookieJar) (string, error) {
	var value string
	switch c.source {
	case captureBody:
		body := r.body.Bytes()
		start, end, ok := c.submatch(c.re.FindSubmatchIndex(body))
		if !ok {
			return "", fmt.Errorf("regexp %q does not match the body", c.re)
		}
		return c.bounded(string(body[start:end]))
	case captureJSONPath:
		doc, err := r.json()
		if err != nil {
			return "", err
		}
		found, ok := c.path.Lookup(doc)
		switch {
		case !ok:
			return "", fmt.Errorf("json_path %q not found", c.path)
		case found == nil:
			return "", fmt.Errorf("json_path %q is null", c.path)
		}
		value = jsonText(found)
	case captureHeader:
		return c.header(r.resp.Header[c.key])
	case captureCookie:
		var ok bool
		if value, ok = responseCookie(r.resp, jar, c.key); !ok {
			return "", fmt.Errorf("no cookie %q", c.key)
		}
	}
	if c.re != nil {
		start, end, ok := c.submatch(c.re.FindStringSubmatchIndex(value))
		if !ok {
			return "", fmt.Errorf("regexp %q does not match the value", c.re)
		}
		value = value[start:end]
	}
	return c.bounded(value)
}

// header captures from the first value of a header, or with a regexp
// from the first value it matches.
func (c *stepCapture) header(values []string) (string, error) {
	if len(values) == 0 {
		return "", fmt.Errorf("header %q missing", c.key)
	}
	if c.re == nil {
		return c.bounded(values[0])
	}
	for _, value := range values {
		if start, end, ok := c.submatch(c.re.FindStringSubmatchIndex(value)); ok {
			return c.bounded(value[start:end])
		}
	}
	return "", fmt.Errorf("regexp %q does not match header %q", c.re, c.key)
}

// submatch returns the bounds of the capture's group in a match, and
// false when there is no match or the group took no part in it.
func (c *stepCapture) submatch(match []int) (start, end int, ok bool) {
	if match == nil || match[2*c.group] < 0 {
		return 0, 0, false
	}
	return match[2*c.group], match[2*c.group+1], true
}

func (c *stepCapture) bounded(value string) (string, error) {
	if len(value) > config.MaxTransactionValueSize {
		return "", fmt.Errorf("the value exceeds %d bytes", config.MaxTransactionValueSize)
	}
	return value, nil
}

// responseCookie returns the value of the cookie name that the response
// set (not deleted), or else that the jar would send to the response's
// URL (set by an earlier step or an intermediate redirect).
func responseCookie(resp *http.Response, jar http.CookieJar, name string) (string, bool) {
	now := time.Now()
	for _, cookie := range resp.Cookies() {
		deleted := cookie.MaxAge < 0 || (!cookie.Expires.IsZero() && cookie.Expires.Before(now))
		if cookie.Name == name && !deleted {
			return cookie.Value, true
		}
	}
	for _, cookie := range jar.Cookies(resp.Request.URL) {
		if cookie.Name == name {
			return cookie.Value, true
		}
	}
	return "", false
}

// setChecks compiles the assertions and captures of cfg into s.
func (s *transactionStep) setChecks(cfg *config.TransactionStep) error {
	for i := range cfg.Assertions {
		a, err := newStepAssertion(&cfg.Assertions[i])
		if err != nil {
			return fmt.Errorf("assertions[%d]: %w", i, err)
		}
		s.assertions = append(s.assertions, a)
		s.needsBody = s.needsBody || a.readsBody()
	}
	for i := range cfg.Captures {
		c, err := newStepCapture(&cfg.Captures[i])
		if err != nil {
			return fmt.Errorf("captures[%d]: %w", i, err)
		}
		s.captures = append(s.captures, c)
		s.needsBody = s.needsBody || c.source == captureBody || c.source == captureJSONPath
	}
	return nil
}
