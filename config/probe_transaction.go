package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/alecthomas/units"
	"gopkg.in/yaml.v3"
)

// Limits of a transaction. Every step is a round trip inside the probe's
// timeout and every captured value is kept for the rest of the run, so
// both are bounded; the prober enforces the value size at run time too.
const (
	// MaxTransactionSteps bounds the steps of a transaction.
	MaxTransactionSteps = 20
	// MaxTransactionStepChecks bounds the assertions, and separately the
	// captures, of one step.
	MaxTransactionStepChecks = 20
	// MaxTransactionValueSize bounds a rendered url, header value or body,
	// a captured value and an initial variable, in bytes.
	MaxTransactionValueSize = 64 << 10
	// MaxTransactionBodySizeLimit caps a step's body_size_limit.
	MaxTransactionBodySizeLimit = ByteSize(10 * units.MiB)
	// maxJSONPathLength bounds a json_path expression.
	maxJSONPathLength = 1024
)

// DefaultTransactionStep holds the defaults of a step of a `transaction`
// probe. They are those of an `http` probe, except for a smaller body
// size limit: a transaction reads up to MaxTransactionSteps bodies a run.
var DefaultTransactionStep = TransactionStep{
	Method:             "GET",
	FollowRedirects:    true,
	MaxRedirects:       10,
	BodySizeLimit:      ByteSize(units.MiB),
	IPProtocolFallback: true,
}

// TransactionProbe configures a `transaction` probe: HTTP requests made
// in order, sharing a cookie jar, each checked and able to capture values
// for the requests after it. The probe's timeout bounds the whole
// transaction.
type TransactionProbe struct {
	// Secrets maps a name, read in templates with `secret "name"`, to the
	// file holding the value. The files are read at every run.
	Secrets map[string]string `yaml:"secrets,omitempty"`
	// Variables are the initial values read with `var "name"`; captures
	// of the same name replace them for the steps after the capture.
	Variables map[string]string `yaml:"variables,omitempty"`
	Steps     []TransactionStep `yaml:"steps"`
}

// TransactionStep is one request of a transaction and what makes it
// succeed. Fields shared with HTTPProbe mean the same.
type TransactionStep struct {
	// Name identifies the step in metrics (the `step` label), errors and
	// pages; unique within the transaction.
	Name    string              `yaml:"name"`
	Method  string              `yaml:"method"`
	URL     Template            `yaml:"url"`
	Headers map[string]Template `yaml:"headers,omitempty"`
	Body    Template            `yaml:"body,omitempty"`

	// ValidStatusCodes lists accepted status codes; empty means any 2xx.
	ValidStatusCodes []int                  `yaml:"valid_status_codes,omitempty"`
	Assertions       []TransactionAssertion `yaml:"assertions,omitempty"`
	Captures         []TransactionCapture   `yaml:"captures,omitempty"`

	FollowRedirects bool     `yaml:"follow_redirects"`
	MaxRedirects    int      `yaml:"max_redirects"`
	BodySizeLimit   ByteSize `yaml:"body_size_limit"`

	TLSConfig          TLSConfig `yaml:"tls_config,omitempty"`
	IPProtocol         string    `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool      `yaml:"ip_protocol_fallback"`

	// decodeErr holds the errors of decoding the step, which
	// TransactionProbe.UnmarshalYAML reports: see UnmarshalYAML.
	decodeErr *yaml.TypeError
}

// TransactionAssertion is one check of a step's response. Exactly one of
// BodyRegexp, BodyNotRegexp, Header, JSONPath and MaxDuration is set;
// Regexp and Equals refine Header and JSONPath.
type TransactionAssertion struct {
	// BodyRegexp must match the body.
	BodyRegexp Regexp `yaml:"body_regexp,omitempty"`
	// BodyNotRegexp must not match the body.
	BodyNotRegexp Regexp `yaml:"body_not_regexp,omitempty"`
	// Header must be present; with Regexp or Equals, one of its values
	// must match, or equal, them.
	Header string `yaml:"header,omitempty"`
	// JSONPath must select a value in the body, parsed as JSON; with
	// Regexp or Equals, the value's text must match, or equal, them.
	JSONPath JSONPath `yaml:"json_path,omitempty"`
	Regexp   Regexp   `yaml:"regexp,omitempty"`
	// Equals is a pointer so that `equals: ""` can be told from unset.
	Equals *string `yaml:"equals,omitempty"`
	// MaxDuration bounds the step's duration.
	MaxDuration Duration `yaml:"max_duration,omitempty"`

	// written holds the keys written in the file, nil for an assertion
	// built in code.
	written map[string]bool
}

// TransactionCapture stores a value of a step's response in a variable
// for the steps after it. Exactly one source is set: JSONPath, Header,
// Cookie, or Regexp alone, which then applies to the body. With a source,
// Regexp picks a part of the source's value.
type TransactionCapture struct {
	Name     string   `yaml:"name"`
	JSONPath JSONPath `yaml:"json_path,omitempty"`
	Header   string   `yaml:"header,omitempty"`
	Cookie   string   `yaml:"cookie,omitempty"`
	Regexp   Regexp   `yaml:"regexp,omitempty"`
	// Group is the regexp group captured: by default 1 when the regexp
	// has a group, else 0 (the whole match).
	Group *int `yaml:"group,omitempty"`

	// written holds the keys written in the file, nil for a capture built
	// in code.
	written map[string]bool
}

// Target implements ProbeSection: the first step's URL without user
// information (its template text when it is templated).
func (c *TransactionProbe) Target() string {
	if len(c.Steps) == 0 {
		return ""
	}
	return RedactURL(c.Steps[0].URL.Text)
}

// UnmarshalYAML implements yaml.Unmarshaler. yaml.v3 drops a list
// element whose UnmarshalYAML fails, so a step with a bad field would
// vanish and its siblings be misjudged (too few steps, a capture gone):
// the step keeps its errors instead, for TransactionProbe to return.
func (c *TransactionStep) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultTransactionStep
	type plain TransactionStep
	err := unmarshal((*plain)(c))
	var typeErr *yaml.TypeError
	if err != nil && !errors.As(err, &typeErr) {
		return err
	}
	if typeErr != nil {
		// A copy: the decoder reuses the array behind typeErr.Errors.
		c.decodeErr = &yaml.TypeError{Errors: slices.Clone(typeErr.Errors)}
	}
	c.noteWrittenKeys(unmarshal)
	return nil
}

// noteWrittenKeys records the keys written in each assertion and
// capture: a kind whose value failed to decode (an invalid regexp) is
// still written, and validation must not also call it missing.
func (c *TransactionStep) noteWrittenKeys(unmarshal func(any) error) {
	var written struct {
		Assertions []map[string]any `yaml:"assertions"`
		Captures   []map[string]any `yaml:"captures"`
	}
	// This decode fails on the step's other keys, which this struct does
	// not know: its errors are expected, and the real decode reports any
	// others.
	_ = unmarshal(&written)
	if len(written.Assertions) == len(c.Assertions) {
		for i, keys := range written.Assertions {
			c.Assertions[i].written = keySet(keys)
		}
	}
	if len(written.Captures) == len(c.Captures) {
		for i, keys := range written.Captures {
			c.Captures[i].written = keySet(keys)
		}
	}
}

func keySet(m map[string]any) map[string]bool {
	set := make(map[string]bool, len(m))
	for key := range m {
		set[key] = true
	}
	return set
}

// UnmarshalYAML implements yaml.Unmarshaler, returning the errors of the
// steps with its own.
func (c *TransactionProbe) UnmarshalYAML(unmarshal func(any) error) error {
	type plain TransactionProbe
	err := unmarshal((*plain)(c))
	var typeErr *yaml.TypeError
	if err != nil && !errors.As(err, &typeErr) {
		return err
	}
	var msgs []string
	if typeErr != nil {
		msgs = slices.Clone(typeErr.Errors)
	}
	for i := range c.Steps {
		if stepErr := c.Steps[i].decodeErr; stepErr != nil {
			msgs = append(msgs, stepErr.Errors...)
			c.Steps[i].decodeErr = nil
		}
	}
	if len(msgs) > 0 {
		return &yaml.TypeError{Errors: msgs}
	}
	return nil
}

// resolvePaths implements pathResolver: the secret files and the steps'
// TLS files.
func (c *TransactionProbe) resolvePaths(resolve func(path *string)) {
	for name, file := range c.Secrets {
		resolve(&file)
		c.Secrets[name] = file
	}
	for i := range c.Steps {
		c.Steps[i].TLSConfig.resolvePaths(resolve)
	}
}

// Template is a url, header value or body of a transaction step: a Go
// text/template, parsed at load time, with the functions of
// TemplateFuncs. It marshals back to its text.
type Template struct {
	// Text is the template as written.
	Text string
	// Parsed is the parsed template, nil when Text holds no action: the
	// value is then Text as is.
	Parsed *template.Template
	// vars and secrets are the names the template reads with var and
	// secret, for validation.
	vars, secrets []string
}

// TemplateFuncs returns the functions transaction templates may call
// besides text/template's built-ins (urlquery, printf, ...): a fresh map
// on every call. `var` and `secret` read the values of the run: here they
// only fail, and the prober replaces them for each run.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"var":    unboundTemplateFunc("var"),
		"secret": unboundTemplateFunc("secret"),
		"json":   templateJSON,
		"base64": templateBase64,
	}
}

func unboundTemplateFunc(name string) func(string) (string, error) {
	return func(string) (string, error) {
		return "", fmt.Errorf("%s is only available while a probe runs", name)
	}
}

// templateJSON writes v as JSON: a string becomes a quoted JSON string,
// with <, > and & left as they are.
func templateJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func templateBase64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// ParseTemplate parses text as a transaction template. Besides syntax and
// unknown functions, it rejects what cannot work in a transaction: fields
// of the data (there is none: values come from var), var and secret
// without exactly one quoted name (names are checked at load), define,
// block and template, range, and printf formats with a width or precision
// (which allocate without bound). What is left runs each action at most
// once, so rendering is bounded by the template and the values.
func ParseTemplate(text string) (Template, error) {
	t := Template{Text: text}
	if !strings.Contains(text, "{{") {
		return t, nil
	}
	parsed, err := template.New("").Option("missingkey=error").Funcs(TemplateFuncs()).Parse(text)
	if err != nil {
		return Template{}, templateParseError(err, strings.Contains(text, "\n"))
	}
	if len(parsed.Templates()) > 1 {
		return Template{}, errors.New("define and block are not supported")
	}
	if parsed.Tree == nil || parsed.Tree.Root == nil {
		return t, nil
	}
	if err := t.walk(parsed.Tree.Root); err != nil {
		return Template{}, err
	}
	t.Parsed = parsed
	return t, nil
}

// templateParseError rewords text/template's "template: :LINE: MSG",
// keeping the line only for a template of several lines.
func templateParseError(err error, multiline bool) error {
	msg := strings.TrimPrefix(err.Error(), "template: :")
	line, rest, ok := strings.Cut(msg, ": ")
	if _, atoiErr := strconv.Atoi(line); !ok || atoiErr != nil {
		return errors.New(msg)
	}
	if multiline {
		return fmt.Errorf("line %s: %s", line, rest)
	}
	return errors.New(rest)
}

// walk checks node and collects the names read with var and secret.
func (t *Template) walk(node parse.Node) error {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, child := range n.Nodes {
			if err := t.walk(child); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return t.walk(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, cmd := range n.Cmds {
			if err := t.walkCommand(cmd); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return t.walkBranch(&n.BranchNode)
	case *parse.RangeNode:
		// Values are strings, so range could only loop over an integer:
		// a run that no timeout could stop.
		return errors.New("range is not supported")
	case *parse.WithNode:
		return t.walkBranch(&n.BranchNode)
	case *parse.TemplateNode:
		return errors.New("template is not supported")
	case *parse.FieldNode:
		return fmt.Errorf("%s: a template has no data: read values with var, e.g. var %q", n, n.Ident[0])
	case *parse.ChainNode:
		return fmt.Errorf("%s: a template has no data: read values with var", n)
	case *parse.VariableNode:
		if len(n.Ident) > 1 {
			return fmt.Errorf("%s: a template has no data: read values with var", n)
		}
	case *parse.IdentifierNode:
		if n.Ident == "var" || n.Ident == "secret" {
			return fmt.Errorf("%s takes one quoted name, e.g. {{ %s \"name\" }}", n.Ident, n.Ident)
		}
	}
	return nil
}

func (t *Template) walkBranch(b *parse.BranchNode) error {
	for _, node := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := t.walk(node); err != nil {
			return err
		}
	}
	return nil
}

// walkCommand records `var "name"` and `secret "name"`, and walks the
// arguments of other commands.
func (t *Template) walkCommand(cmd *parse.CommandNode) error {
	if ident, ok := cmd.Args[0].(*parse.IdentifierNode); ok && (ident.Ident == "var" || ident.Ident == "secret") {
		var name *parse.StringNode
		if len(cmd.Args) == 2 {
			name, _ = cmd.Args[1].(*parse.StringNode)
		}
		if name == nil {
			return fmt.Errorf("%s takes one quoted name, e.g. {{ %s \"name\" }}", ident.Ident, ident.Ident)
		}
		if ident.Ident == "var" {
			t.vars = append(t.vars, name.Text)
		} else {
			t.secrets = append(t.secrets, name.Text)
		}
		return nil
	}
	if ident, ok := cmd.Args[0].(*parse.IdentifierNode); ok && ident.Ident == "printf" {
		if err := checkPrintf(cmd); err != nil {
			return err
		}
	}
	for _, arg := range cmd.Args {
		if err := t.walk(arg); err != nil {
			return err
		}
	}
	return nil
}

// checkPrintf accepts printf with a quoted format whose verbs have no
// width, precision or argument index: with one ({{ printf "%0999999d" 1 }})
// fmt builds megabytes before any output limit applies.
func checkPrintf(cmd *parse.CommandNode) error {
	var format *parse.StringNode
	if len(cmd.Args) > 1 {
		format, _ = cmd.Args[1].(*parse.StringNode)
	}
	if format == nil {
		return errors.New(`printf takes a quoted format first, e.g. printf "%s:%s" (var "user") (secret "password")`)
	}
	text := format.Text
	for i := 0; i < len(text); i++ {
		if text[i] != '%' {
			continue
		}
		i++
		for i < len(text) && strings.IndexByte("+-# ", text[i]) >= 0 {
			i++
		}
		if i < len(text) && (text[i] >= '0' && text[i] <= '9' || strings.IndexByte(".*[", text[i]) >= 0) {
			return fmt.Errorf("printf format %q: widths, precisions and argument indexes are not supported", text)
		}
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Template) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return scalarError(n, "a template must be a string")
	}
	parsed, err := ParseTemplate(n.Value)
	if err != nil {
		return scalarError(n, "invalid template: %v", err)
	}
	*t = parsed
	return nil
}

// MarshalText implements encoding.TextMarshaler (for JSON).
func (t Template) MarshalText() ([]byte, error) { return []byte(t.Text), nil }

// MarshalYAML implements yaml.Marshaler.
func (t Template) MarshalYAML() (any, error) { return t.Text, nil }

// IsZero tells YAML's omitempty that the template is unset.
func (t Template) IsZero() bool { return t.Text == "" }

// JSONPath selects a value in a JSON document: keys separated by dots,
// array indexes in brackets, e.g. `data.items[0].id`. A negative index
// counts from the end ([-1] is the last element). A key holding '.', '['
// or ']' is written quoted in brackets: `labels["app.kubernetes.io/name"]`.
// The path starts with a key or a bracket.
type JSONPath struct {
	text     string
	segments []jsonPathSegment
}

// jsonPathSegment is one key, or with isIndex one array index.
type jsonPathSegment struct {
	key     string
	index   int
	isIndex bool
}

// ParseJSONPath parses a path as JSONPath documents it.
func ParseJSONPath(text string) (JSONPath, error) {
	switch {
	case text == "":
		return JSONPath{}, errors.New("empty path")
	case len(text) > maxJSONPathLength:
		return JSONPath{}, fmt.Errorf("longer than %d bytes", maxJSONPathLength)
	case !utf8.ValidString(text):
		return JSONPath{}, errors.New("not valid UTF-8")
	case text[0] == '$':
		return JSONPath{}, errors.New(`a path starts with a key or [index], without "$" (write data.token for $.data.token)`)
	}
	p := JSONPath{text: text}
	for i := 0; i < len(text); {
		var segment jsonPathSegment
		var n int
		var err error
		switch c := text[i]; {
		case c == '[':
			segment, n, err = parseJSONPathBracket(text[i:])
		case c == '.' && i > 0:
			segment, n, err = parseJSONPathKey(text[i+1:])
			n++
		case i == 0 && c != '.' && c != ']':
			segment, n, err = parseJSONPathKey(text)
		default:
			err = fmt.Errorf("unexpected %q", c)
		}
		if err != nil {
			return JSONPath{}, fmt.Errorf("at offset %d: %w", i, err)
		}
		p.segments = append(p.segments, segment)
		i += n
	}
	return p, nil
}

// parseJSONPathKey reads a bare key at the start of s, up to the next
// '.' or '['.
func parseJSONPathKey(s string) (jsonPathSegment, int, error) {
	end := strings.IndexAny(s, ".[]")
	if end < 0 {
		end = len(s)
	}
	switch {
	case end == 0:
		return jsonPathSegment{}, 0, errors.New("empty key")
	case end < len(s) && s[end] == ']':
		return jsonPathSegment{}, 0, errors.New("unexpected ']' in a key (quote such a key: [\"a]b\"])")
	}
	return jsonPathSegment{key: s[:end]}, end, nil
}

// parseJSONPathBracket reads `[N]` or `["key"]` at the start of s.
func parseJSONPathBracket(s string) (jsonPathSegment, int, error) {
	if len(s) > 1 && s[1] == '"' {
		// The closing quote is at 1+q, the bracket must follow it.
		q := quotedEnd(s[1:])
		if q < 0 || q+2 >= len(s) || s[q+2] != ']' {
			return jsonPathSegment{}, 0, errors.New(`a quoted key must end with "]`)
		}
		var key string
		if err := json.Unmarshal([]byte(s[1:q+2]), &key); err != nil {
			return jsonPathSegment{}, 0, fmt.Errorf("invalid quoted key: %w", err)
		}
		return jsonPathSegment{key: key}, q + 3, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return jsonPathSegment{}, 0, errors.New("missing ']'")
	}
	digits := s[1:end]
	if strings.HasPrefix(digits, "+") || len(digits) > 10 {
		return jsonPathSegment{}, 0, fmt.Errorf("index %q: want an integer or a quoted key", digits)
	}
	index, err := strconv.Atoi(digits)
	if err != nil {
		return jsonPathSegment{}, 0, fmt.Errorf("index %q: want an integer or a quoted key", digits)
	}
	return jsonPathSegment{index: index, isIndex: true}, end + 1, nil
}

// quotedEnd returns the offset in s (which starts with '"') of the quote
// closing the string, or -1.
func quotedEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// Lookup returns the value the path selects in doc, a document decoded
// by encoding/json into `any` (objects as map[string]any, arrays as
// []any), and whether there is one.
func (p JSONPath) Lookup(doc any) (any, bool) {
	value := doc
	for _, segment := range p.segments {
		if segment.isIndex {
			array, ok := value.([]any)
			if !ok {
				return nil, false
			}
			i := segment.index
			if i < 0 {
				i += len(array)
			}
			if i < 0 || i >= len(array) {
				return nil, false
			}
			value = array[i]
			continue
		}
		object, ok := value.(map[string]any)
		if !ok {
			return nil, false
		}
		if value, ok = object[segment.key]; !ok {
			return nil, false
		}
	}
	return value, true
}

// String returns the path as written.
func (p JSONPath) String() string { return p.text }

// IsZero tells YAML's omitempty and validation that the path is unset.
func (p JSONPath) IsZero() bool { return p.text == "" }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *JSONPath) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return scalarError(n, "a JSON path must be a string")
	}
	parsed, err := ParseJSONPath(n.Value)
	if err != nil {
		return scalarError(n, "invalid JSON path %q: %v", n.Value, err)
	}
	*p = parsed
	return nil
}

// MarshalText implements encoding.TextMarshaler (for JSON).
func (p JSONPath) MarshalText() ([]byte, error) { return []byte(p.text), nil }

// MarshalYAML implements yaml.Marshaler.
func (p JSONPath) MarshalYAML() (any, error) { return p.text, nil }

func (v *validator) transaction(path string, c *TransactionProbe) {
	for _, name := range sortedKeys(c.Secrets) {
		secretPath := path + ".secrets[" + strconv.Quote(name) + "]"
		if !validName(name) {
			v.addf(secretPath, "invalid secret name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
		}
		if c.Secrets[name] == "" {
			v.addf(secretPath, "must be a file path")
		}
	}
	defined := map[string]bool{}
	for _, name := range sortedKeys(c.Variables) {
		variablePath := path + ".variables[" + strconv.Quote(name) + "]"
		if !validName(name) {
			v.addf(variablePath, "invalid variable name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
		}
		if len(c.Variables[name]) > MaxTransactionValueSize {
			v.addf(variablePath, "longer than %d bytes", MaxTransactionValueSize)
		}
		defined[name] = true
	}
	switch n := len(c.Steps); {
	case n == 0:
		v.addf(path+".steps", "a transaction needs at least one step")
	case n > MaxTransactionSteps:
		v.addf(path+".steps", "at most %d steps, got %d", MaxTransactionSteps, n)
	}
	vars := &transactionVars{defined: defined, capturedBy: map[string]int{}}
	for i := len(c.Steps) - 1; i >= 0; i-- {
		for _, capture := range c.Steps[i].Captures {
			vars.capturedBy[capture.Name] = i
		}
	}
	stepNames := map[string]string{}
	for i := range c.Steps {
		step := &c.Steps[i]
		stepPath := fmt.Sprintf("%s.steps[%d]", path, i)
		v.name(stepPath+".name", "step", step.Name, stepNames, stepPath)
		vars.step = i
		v.transactionStep(stepPath, step, c.Secrets, vars)
		for _, capture := range step.Captures {
			defined[capture.Name] = true
		}
	}
}

// transactionVars is what validation knows of the variables at a step.
type transactionVars struct {
	// defined holds the variables set before the step: initial ones,
	// then those captured by the steps before it.
	defined map[string]bool
	// capturedBy maps a captured name to the first step capturing it.
	capturedBy map[string]int
	// step is the index of the step.
	step int
}

// transactionStep checks one step.
func (v *validator) transactionStep(path string, s *TransactionStep, secrets map[string]string, vars *transactionVars) {
	switch {
	case s.Method == "":
		v.addf(path+".method", "must be set")
	case !isToken(s.Method):
		v.addf(path+".method", "invalid method %q", s.Method)
	}
	switch {
	case s.URL.Text == "":
		v.addf(path+".url", "must be set")
	case s.URL.Parsed == nil:
		v.url(path+".url", s.URL.Text)
	}
	v.template(path+".url", &s.URL, secrets, vars)
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		headerPath := path + ".headers[" + strconv.Quote(name) + "]"
		value := s.Headers[name]
		switch {
		case !isToken(name):
			v.addf(headerPath, "invalid header name %q", name)
		case strings.EqualFold(name, "Host") && value.Parsed != nil:
			v.addf(headerPath, "the Host header cannot be templated: it sets the TLS server name")
		}
		if value.Parsed == nil && strings.ContainsAny(value.Text, "\r\n\x00") {
			v.addf(headerPath, "a header value must not contain CR, LF or NUL")
		}
		v.template(headerPath, &value, secrets, vars)
	}
	v.template(path+".body", &s.Body, secrets, vars)
	for i, code := range s.ValidStatusCodes {
		if code < 100 || code > 599 {
			v.addf(fmt.Sprintf("%s.valid_status_codes[%d]", path, i), "%d is not an HTTP status code (100-599)", code)
		}
	}
	v.between(path+".max_redirects", s.MaxRedirects, 0, maxRedirectsCap)
	if s.BodySizeLimit <= 0 || s.BodySizeLimit > MaxTransactionBodySizeLimit {
		v.addf(path+".body_size_limit", "must be greater than 0 and at most %s", units.Base2Bytes(MaxTransactionBodySizeLimit))
	}
	v.ipProtocol(path+".ip_protocol", s.IPProtocol)
	v.tlsConfig(path+".tls_config", &s.TLSConfig)
	if n := len(s.Assertions); n > MaxTransactionStepChecks {
		v.addf(path+".assertions", "at most %d assertions, got %d", MaxTransactionStepChecks, n)
	}
	for i := range s.Assertions {
		v.transactionAssertion(fmt.Sprintf("%s.assertions[%d]", path, i), &s.Assertions[i])
	}
	if n := len(s.Captures); n > MaxTransactionStepChecks {
		v.addf(path+".captures", "at most %d captures, got %d", MaxTransactionStepChecks, n)
	}
	captureNames := map[string]string{}
	for i := range s.Captures {
		capturePath := fmt.Sprintf("%s.captures[%d]", path, i)
		v.name(capturePath+".name", "capture", s.Captures[i].Name, captureNames, capturePath)
		v.transactionCapture(capturePath, &s.Captures[i])
	}
}

// template checks the size of t and the names it reads.
func (v *validator) template(path string, t *Template, secrets map[string]string, vars *transactionVars) {
	if len(t.Text) > MaxTransactionValueSize {
		v.addf(path, "longer than %d bytes", MaxTransactionValueSize)
	}
	for _, name := range t.vars {
		if vars.defined[name] {
			continue
		}
		switch step, ok := vars.capturedBy[name]; {
		case ok && step == vars.step:
			v.addf(path, "var %q is not set yet: this step captures it from its response, after sending the request", name)
		case ok:
			v.addf(path, "var %q is not set yet: it is first captured by steps[%d], which runs later", name, step)
		default:
			v.addf(path, "var %q is not set: no earlier step captures it and variables does not define it", name)
		}
	}
	for _, name := range t.secrets {
		if _, ok := secrets[name]; !ok {
			v.addf(path, "secret %q is not listed in secrets", name)
		}
	}
}

// given names the fields of a check that are set, or, from a file,
// written (a value that failed to decode is zero but was given).
func given(written map[string]bool, fields []checkField) []string {
	var names []string
	for _, field := range fields {
		if field.set || written[field.name] {
			names = append(names, field.name)
		}
	}
	return names
}

type checkField struct {
	name string
	set  bool
}

func (v *validator) transactionAssertion(path string, a *TransactionAssertion) {
	kinds := given(a.written, []checkField{
		{"body_regexp", a.BodyRegexp.Regexp != nil},
		{"body_not_regexp", a.BodyNotRegexp.Regexp != nil},
		{"header", a.Header != ""},
		{"json_path", !a.JSONPath.IsZero()},
		{"max_duration", a.MaxDuration != 0},
	})
	refiners := given(a.written, []checkField{{"regexp", a.Regexp.Regexp != nil}, {"equals", a.Equals != nil}})
	const want = "an assertion needs one of body_regexp, body_not_regexp, header, json_path and max_duration"
	switch {
	case len(kinds) == 0 && len(refiners) > 0:
		v.addf(path, "%s, found none (%s only refines header or json_path)", want, strings.Join(refiners, " and "))
		return
	case len(kinds) == 0:
		v.addf(path, "%s, found none", want)
		return
	case len(kinds) > 1:
		v.addf(path, "%s, found %s", want, strings.Join(kinds, " and "))
		return
	}
	if kinds[0] != "header" && kinds[0] != "json_path" {
		for _, refiner := range refiners {
			v.addf(path+"."+refiner, "is only used with header or json_path")
		}
	}
	if a.Header != "" && !isToken(a.Header) {
		v.addf(path+".header", "invalid header name %q", a.Header)
	}
}

func (v *validator) transactionCapture(path string, c *TransactionCapture) {
	sources := given(c.written, []checkField{
		{"json_path", !c.JSONPath.IsZero()},
		{"header", c.Header != ""},
		{"cookie", c.Cookie != ""},
	})
	hasRegexp := len(given(c.written, []checkField{{"regexp", c.Regexp.Regexp != nil}})) > 0
	switch {
	case len(sources) == 0 && !hasRegexp:
		v.addf(path, "a capture needs one of json_path, header, cookie and regexp (alone, on the body), found none")
	case len(sources) > 1:
		v.addf(path, "a capture needs one of json_path, header, cookie and regexp (alone, on the body), found %s", strings.Join(sources, " and "))
	}
	if c.Header != "" && !isToken(c.Header) {
		v.addf(path+".header", "invalid header name %q", c.Header)
	}
	if c.Cookie != "" && !isToken(c.Cookie) {
		v.addf(path+".cookie", "invalid cookie name %q", c.Cookie)
	}
	switch {
	case c.Group == nil:
	case !hasRegexp:
		v.addf(path+".group", "is only used with regexp")
	case c.Regexp.Regexp == nil:
		// An invalid regexp, reported by the decoder.
	case *c.Group < 0 || *c.Group > c.Regexp.NumSubexp():
		v.addf(path+".group", "must be between 0 and %d (the groups of regexp), got %d", c.Regexp.NumSubexp(), *c.Group)
	}
}
