package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/units"
)

// TestLoadTransactionExample loads examples/probes/transaction.yml, which
// uses every option of the transaction probe.
func TestLoadTransactionExample(t *testing.T) {
	cfg, err := Load("../examples/probes/transaction.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 1 || len(cfg.Services[0].Probes) != 1 {
		t.Fatalf("want one service with one probe, got %+v", cfg.Services)
	}
	probe := cfg.Services[0].Probes[0]
	tx := probe.Transaction
	if probe.Type() != "transaction" || tx == nil || probe.Timeout != Duration(20*time.Second) {
		t.Fatalf("probe %q: type %q, timeout %s", probe.Name, probe.Type(), probe.Timeout)
	}
	if got := tx.Target(); got != "https://shop.example/login" {
		t.Errorf("Target() = %q", got)
	}
	examples, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	wantSecrets := map[string]string{
		"password":    filepath.Join(examples, "probes/secrets/shop-password"),
		"partner_key": filepath.Join(examples, "probes/secrets/partner-api-key"),
	}
	if !reflect.DeepEqual(tx.Secrets, wantSecrets) {
		t.Errorf("secrets = %v, want %v", tx.Secrets, wantSecrets)
	}
	var names []string
	for _, step := range tx.Steps {
		names = append(names, step.Name)
	}
	if want := []string{"login-page", "login", "orders", "quote", "logout"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("steps %v, want %v", names, want)
	}

	first, login, orders, quote := &tx.Steps[0], &tx.Steps[1], &tx.Steps[2], &tx.Steps[3]
	checks := []struct {
		name      string
		got, want any
	}{
		{"defaulted method", first.Method, "GET"},
		{"defaulted follow_redirects", first.FollowRedirects, true},
		{"defaulted max_redirects", first.MaxRedirects, 10},
		{"defaulted body_size_limit", first.BodySizeLimit, ByteSize(units.MiB)},
		{"defaulted ip_protocol_fallback", first.IPProtocolFallback, true},
		{"literal url", first.URL.Parsed == nil, true},
		{"templated url", login.URL.Parsed != nil, true},
		{"templated body reads", [2][]string{login.Body.vars, login.Body.secrets}, [2][]string{{"user", "csrf"}, {"password"}}},
		{"follow_redirects", login.FollowRedirects, false},
		{"capture regexp", first.Captures[0].Regexp.String(), `name="csrf" value="([^"]+)"`},
		{"capture json_path", login.Captures[0].JSONPath.String(), "data.token"},
		{"capture cookie", login.Captures[1].Cookie, "session"},
		{"capture group unset", login.Captures[2].Group == nil, true},
		{"capture group", *orders.Captures[1].Group, 1},
		{"max_redirects", orders.MaxRedirects, 3},
		{"body_size_limit", orders.BodySizeLimit, ByteSize(256 * units.KiB)},
		{"equals", *orders.Assertions[2].Equals, "42.50"},
		{"quoted key", orders.Assertions[3].JSONPath.segments, []jsonPathSegment{{key: "meta"}, {key: "x.request-id"}}},
		{"max_duration", orders.Assertions[4].MaxDuration, Duration(500 * time.Millisecond)},
		{"ca_file", quote.TLSConfig.CAFile, filepath.Join(examples, "tls/internal-ca.pem")},
		{"ip_protocol", [2]any{quote.IPProtocol, quote.IPProtocolFallback}, [2]any{"ip6", false}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// The effective configuration renders and loads back to the same probe.
	again, err := Parse([]byte(cfg.String()), "")
	if err != nil {
		t.Fatalf("rendered configuration does not load: %v\n%s", err, cfg)
	}
	if got, want := again.Services[0].Probes[0].Hash(), probe.Hash(); got != want {
		t.Errorf("hash after a round trip = %x, want %x", got, want)
	}
}

// TestTransactionHash: a change of a template, a JSON path or a capture
// changes the probe's hash, so a reload rebuilds the prober.
func TestTransactionHash(t *testing.T) {
	const base = `
services:
  - name: shop
    probes:
      - name: flow
        transaction:
          steps:
            - name: login
              url: 'https://shop.example/login?u={{ "a" | urlquery }}'
              captures: [{name: token, json_path: data.token}]
`
	load := func(doc string) uint64 {
		t.Helper()
		cfg, err := Parse([]byte(doc), "")
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Services[0].Probes[0].Hash()
	}
	hash := load(base)
	for _, change := range [][2]string{
		{`"a" | urlquery`, `"b" | urlquery`},
		{"data.token", "data.tokens"},
		{"name: token", "name: tok"},
	} {
		if load(strings.Replace(base, change[0], change[1], 1)) == hash {
			t.Errorf("changing %q to %q keeps the hash", change[0], change[1])
		}
	}
	if load(base) != hash {
		t.Error("the same configuration hashes differently")
	}
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		text        string
		wantLiteral bool
		wantVars    []string
		wantSecrets []string
		wantErr     string
	}{
		{text: "https://shop.example/", wantLiteral: true},
		{text: "", wantLiteral: true},
		{text: "a } b { c", wantLiteral: true},
		{text: `{{ var "user" }}:{{ secret "pw" | urlquery }}`, wantVars: []string{"user"}, wantSecrets: []string{"pw"}},
		{text: `{{ if eq (var "a") "x" }}{{ var "b" }}{{ else }}{{ secret "c" }}{{ end }}`, wantVars: []string{"a", "b"}, wantSecrets: []string{"c"}},
		{text: `{{ range $i, $c := var "list" }}{{ $c }}{{ end }}`, wantErr: "range is not supported"},
		{text: `{{ range 1000000000 }}{{ end }}`, wantErr: "range is not supported"},
		{text: `{{ with $x := var "a" }}{{ $x | json }}{{ end }}`, wantVars: []string{"a"}},
		{text: `{{ printf "%s:%s" (var "u") (secret "p") | base64 }}`, wantVars: []string{"u"}, wantSecrets: []string{"p"}},
		{text: `{{ printf "%-s %+v %%5 %#x" (var "u") 1 2 }}`, wantVars: []string{"u"}},
		{text: `{{ printf "%0999999d" 1 }}`, wantErr: `printf format "%0999999d": widths, precisions and argument indexes are not supported`},
		{text: `{{ printf "%.999999f" 1.0 }}`, wantErr: `printf format "%.999999f": widths, precisions and argument indexes are not supported`},
		{text: `{{ printf "%*d" 999999 1 }}`, wantErr: `printf format "%*d": widths, precisions and argument indexes are not supported`},
		{text: `{{ printf "%[1]s" "a" }}`, wantErr: `printf format "%[1]s": widths, precisions and argument indexes are not supported`},
		{text: `{{ printf (var "fmt") 1 }}`, wantErr: `printf takes a quoted format first, e.g. printf "%s:%s" (var "user") (secret "password")`},
		{text: `{{/* a comment */}}`},
		{text: `{{ var "a" `, wantErr: "unclosed action"},
		{text: "{\n{{ end }}", wantErr: "line 2: unexpected {{end}}"},
		{text: `{{ upper "a" }}`, wantErr: `function "upper" not defined`},
		{text: `{{ .user }}`, wantErr: `.user: a template has no data: read values with var, e.g. var "user"`},
		{text: `{{ $.user }}`, wantErr: `$.user: a template has no data: read values with var`},
		{text: `{{ (var "a").b }}`, wantErr: `(var "a").b: a template has no data: read values with var`},
		{text: `{{ var }}`, wantErr: `var takes one quoted name, e.g. {{ var "name" }}`},
		{text: `{{ var "a" "b" }}`, wantErr: `var takes one quoted name, e.g. {{ var "name" }}`},
		{text: `{{ $n := "a" }}{{ var $n }}`, wantErr: `var takes one quoted name, e.g. {{ var "name" }}`},
		{text: `{{ "a" | secret }}`, wantErr: `secret takes one quoted name, e.g. {{ secret "name" }}`},
		{text: `{{ print secret }}`, wantErr: `secret takes one quoted name, e.g. {{ secret "name" }}`},
		{text: `{{ define "x" }}a{{ end }}b`, wantErr: "define and block are not supported"},
		{text: `{{ template "x" }}`, wantErr: "template is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseTemplate(tt.text)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != tt.text || (got.Parsed == nil) != tt.wantLiteral {
				t.Errorf("got text %q, parsed %v; want literal %v", got.Text, got.Parsed != nil, tt.wantLiteral)
			}
			if !reflect.DeepEqual(got.vars, tt.wantVars) || !reflect.DeepEqual(got.secrets, tt.wantSecrets) {
				t.Errorf("reads vars %q, secrets %q; want %q, %q", got.vars, got.secrets, tt.wantVars, tt.wantSecrets)
			}
		})
	}
}

func TestTemplateFuncs(t *testing.T) {
	tests := []struct{ text, want string }{
		{`{{ "a\"b <c>&" | json }}`, `"a\"b <c>&"`},
		{`{{ 42 | json }}`, `42`},
		{`{{ "user:pass" | base64 }}`, `dXNlcjpwYXNz`},
		{`{{ "a b&c=d" | urlquery }}`, `a+b%26c%3Dd`},
	}
	for _, tt := range tests {
		parsed, err := ParseTemplate(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := parsed.Parsed.Execute(&b, nil); err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		if b.String() != tt.want {
			t.Errorf("%s = %s, want %s", tt.text, b.String(), tt.want)
		}
	}
	parsed, err := ParseTemplate(`{{ var "a" }}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Parsed.Execute(&strings.Builder{}, nil); err == nil || !strings.Contains(err.Error(), "var is only available while a probe runs") {
		t.Errorf("var outside a run: err = %v", err)
	}
}

func TestParseJSONPath(t *testing.T) {
	const doc = `{"data": {"token": "t", "items": [{"id": 1}, {"id": 2}], "a.b": {"c]": true}, "": "empty", "n": null}}`
	var decoded any
	if err := json.Unmarshal([]byte(doc), &decoded); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		want      any // the value found; nil with wantFound false for none
		wantFound bool
	}{
		{"data.token", "t", true},
		{"data.items[0].id", 1.0, true},
		{"data.items[-1].id", 2.0, true},
		{"data.items[-2].id", 1.0, true},
		{"data.items[-3].id", nil, false},
		{"data.items[2]", nil, false},
		{`data["a.b"]["c]"]`, true, true},
		{`data[""]`, "empty", true},
		{`["data"].token`, "t", true},
		{"data.n", nil, true},
		{"data.token.x", nil, false},
		{"data[0]", nil, false},
		{"data.items.id", nil, false},
		{"missing", nil, false},
		{"data.items[0].id.deeper[1]", nil, false},
		{`data.tok en`, nil, false},
	}
	for _, tt := range tests {
		path, err := ParseJSONPath(tt.path)
		if err != nil {
			t.Errorf("ParseJSONPath(%q): %v", tt.path, err)
			continue
		}
		if path.String() != tt.path {
			t.Errorf("String() = %q, want %q", path.String(), tt.path)
		}
		got, found := path.Lookup(decoded)
		if found != tt.wantFound || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.path, got, found, tt.want, tt.wantFound)
		}
	}

	bad := map[string]string{
		"":                                       "empty path",
		"$.data":                                 `a path starts with a key or [index], without "$" (write data.token for $.data.token)`,
		".data":                                  `at offset 0: unexpected '.'`,
		"]":                                      `at offset 0: unexpected ']'`,
		"data.":                                  "at offset 4: empty key",
		"data..token":                            "at offset 4: empty key",
		"data]":                                  `at offset 0: unexpected ']' in a key (quote such a key: ["a]b"])`,
		"data[":                                  "at offset 4: missing ']'",
		"data[]":                                 `at offset 4: index "": want an integer or a quoted key`,
		"data[+1]":                               `at offset 4: index "+1": want an integer or a quoted key`,
		"data[1.5]":                              `at offset 4: index "1.5": want an integer or a quoted key`,
		"data[99999999999]":                      `at offset 4: index "99999999999": want an integer or a quoted key`,
		`data["a"`:                               `at offset 4: a quoted key must end with "]`,
		`data["a"x]`:                             `at offset 4: a quoted key must end with "]`,
		`data["a\q"]`:                            `at offset 4: invalid quoted key: invalid character 'q' in string escape code`,
		`data[0]x`:                               `at offset 7: unexpected 'x'`,
		strings.Repeat("a", maxJSONPathLength+1): "longer than 1024 bytes",
		"data.\xff":                              "not valid UTF-8",
	}
	for path, want := range bad {
		if _, err := ParseJSONPath(path); err == nil || err.Error() != want {
			t.Errorf("ParseJSONPath(%q) error = %v, want %q", path, err, want)
		}
	}
}

// formatJSONPath writes segments in the syntax ParseJSONPath reads, every
// key quoted: a canonical form to compare parses by.
func formatJSONPath(segments []jsonPathSegment) string {
	var b strings.Builder
	for _, s := range segments {
		if s.isIndex {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		quoted, _ := json.Marshal(s.key)
		b.WriteString("[" + string(quoted) + "]")
	}
	return b.String()
}

// FuzzParseJSONPath: parsing never panics, a parsed path prints as
// written, its canonical form parses to the same segments, and looking it
// up in any document never panics.
func FuzzParseJSONPath(f *testing.F) {
	for _, seed := range []string{
		"data.token", "items[0].id", "items[-1]", `labels["app.kubernetes.io/name"]`, `["a"]["b"][0]`,
		"a..b", "$.a", "a[", `a["\u00e9\n"]`, "a]b", "[0", `[""]`, "a.b c.d",
	} {
		f.Add(seed)
	}
	var doc any
	if err := json.Unmarshal([]byte(`{"a": [{"b": {"": [1, "x", null]}}], "items": [0, {"id": "i"}]}`), &doc); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		path, err := ParseJSONPath(text)
		if err != nil {
			return
		}
		if path.String() != text || len(path.segments) == 0 {
			t.Fatalf("ParseJSONPath(%q) = %q with %d segments", text, path.String(), len(path.segments))
		}
		canonical := formatJSONPath(path.segments)
		again, err := ParseJSONPath(canonical)
		if len(canonical) <= maxJSONPathLength && (err != nil || !reflect.DeepEqual(again.segments, path.segments)) {
			t.Fatalf("%q: canonical form %q parses to %+v, %v; want %+v", text, canonical, again.segments, err, path.segments)
		}
		path.Lookup(doc)
	})
}

func TestTransactionTarget(t *testing.T) {
	for url, want := range map[string]string{
		"https://user:pw@shop.example/login": "https://shop.example/login",
		`{{ var "base" }}/login`:             `{{ var "base" }}/login`,
	} {
		tx := &TransactionProbe{Steps: []TransactionStep{{URL: Template{Text: url}}}}
		if got := tx.Target(); got != want {
			t.Errorf("Target() of %q = %q, want %q", url, got, want)
		}
	}
	if got := (&TransactionProbe{}).Target(); got != "" {
		t.Errorf("Target() without steps = %q", got)
	}
}

// FuzzParseTemplate: checking a template never panics, whatever nodes
// text/template makes of it, and a template that passes executes with
// the stub functions without panicking.
func FuzzParseTemplate(f *testing.F) {
	for _, seed := range []string{
		`{{ var "a" }}`, `{{ secret "b" | urlquery }}`, `{{ if var "a" }}{{ else if .x }}{{ end }}`,
		`{{ range $i := var "a" }}{{ break }}{{ end }}`, `{{ printf "%0999999999d" 1 }}`, `{{ (var "a").x }}`, `{{ $x := 1 }}{{ $x.y }}`,
		`{{ print var }}`, `{{ with $ }}{{ . }}{{ end }}`, `{{ block "x" . }}{{ end }}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		parsed, err := ParseTemplate(text)
		if err != nil {
			return
		}
		if parsed.Text != text {
			t.Fatalf("text %q became %q", text, parsed.Text)
		}
		if parsed.Parsed != nil {
			parsed.Parsed.Execute(&limitedBuilder{limit: 1 << 16}, nil)
		}
	})
}

// limitedBuilder fails writes beyond limit bytes.
type limitedBuilder struct {
	strings.Builder
	limit int
}

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, errors.New("too long")
	}
	return b.Builder.Write(p)
}

// TestTransactionDocs: every YAML example of docs/probes/transaction.md
// loads: complete files as they are, the probe, assertion and capture
// snippets inside a minimal file.
func TestTransactionDocs(t *testing.T) {
	raw, err := os.ReadFile("../docs/probes/transaction.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(raw), "```yaml\n")[1:]
	if len(blocks) < 4 {
		t.Fatalf("found %d YAML examples, want at least 4", len(blocks))
	}
	indent := func(text, prefix string) string {
		return prefix + strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\n"+prefix) + "\n"
	}
	for i, block := range blocks {
		block, _, _ = strings.Cut(block, "```")
		doc := block
		switch first, _, _ := strings.Cut(block, ":"); first {
		case "services":
		case "probes":
			doc = "services:\n  - name: shop\n" + indent(block, "    ")
		case "assertions", "captures":
			doc = "services:\n  - name: shop\n    probes:\n      - name: p\n        transaction:\n          steps:\n" +
				"            - name: s\n              url: https://shop.example/\n" + indent(block, "              ")
		default:
			t.Errorf("example %d: unexpected YAML block starting with %q", i, first)
			continue
		}
		if _, err := Parse([]byte(doc), filepath.Join(t.TempDir(), "reliability.yml")); err != nil {
			t.Errorf("example %d does not load:\n%s\n%v", i, doc, err)
		}
	}
}
