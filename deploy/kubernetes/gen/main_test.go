package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestCommittedPrometheusRuleIsFresh fails when deploy/kubernetes/
// prometheusrule.yaml is not what the rule files generate: someone edited a
// rule file without regenerating, or edited the output by hand.
func TestCommittedPrometheusRuleIsFresh(t *testing.T) {
	sources, err := readSources(filepath.Join("..", "..", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := generate(sources)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("deploy/kubernetes/prometheusrule.yaml is stale (%s); regenerate it from the repository root with\n\tgo run ./deploy/kubernetes/gen", firstDifference(got, want))
	}
	checkGroupsCopied(t, sources, want)
}

// TestGenerateGolden pins the output's layout on testdata/good (two files,
// a multi-line expression, templates, every optional field). Regenerate
// testdata/good.yaml from the repository root with
//
//	go run ./deploy/kubernetes/gen -rules deploy/kubernetes/gen/testdata/good -out deploy/kubernetes/gen/testdata/good.yaml
//
// and review the diff.
func TestGenerateGolden(t *testing.T) {
	sources, err := readSources(filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 2 || sources[0].name != "a.rules.yml" || sources[1].name != "b.rules.yml" {
		t.Fatalf("sources: want a.rules.yml and b.rules.yml in order, got %v", sourceNames(sources))
	}
	got, err := generate(sources)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from testdata/good.yaml (%s):\n%s", firstDifference(want, got), got)
	}
	checkGroupsCopied(t, sources, got)
	// Literal facts about testdata/good, not derived from the generator.
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(got, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name != "reliabilityd" {
		t.Errorf("header: got %s %s %s", pr.APIVersion, pr.Kind, pr.Metadata.Name)
	}
	var names []string
	for _, g := range pr.Spec.Groups {
		names = append(names, g.Name)
	}
	if strings.Join(names, ",") != "a,a-records,b" {
		t.Errorf("groups: want a,a-records,b, got %v", names)
	}
	if e := pr.Spec.Groups[0].Rules[0].Expr; e != "sum by (service) (rate(x_total[5m]))\n  > 1\n" {
		t.Errorf("multi-line expr: got %q", e)
	}
	if !bytes.Contains(got, []byte("    # From deploy/prometheus/b.rules.yml.\n    - name: b\n")) {
		t.Errorf("no comment naming b.rules.yml above group b:\n%s", got)
	}
}

// checkGroupsCopied decodes the generated PrometheusRule and the rule files
// as plain YAML, independently of the generator's types, and checks that
// spec.groups is the files' groups concatenated, value for value.
func checkGroupsCopied(t *testing.T, sources []source, generated []byte) {
	t.Helper()
	var want []any
	for _, src := range sources {
		var f map[string]any
		if err := yaml.Unmarshal(src.data, &f); err != nil {
			t.Fatalf("%s: %v", src.name, err)
		}
		groups, ok := f["groups"].([]any)
		if !ok {
			t.Fatalf("%s: groups is not a list", src.name)
		}
		want = append(want, groups...)
	}
	var pr map[string]any
	if err := yaml.Unmarshal(generated, &pr); err != nil {
		t.Fatalf("generated output: %v", err)
	}
	spec, _ := pr["spec"].(map[string]any)
	got, _ := spec["groups"].([]any)
	if len(got) != len(want) {
		t.Fatalf("spec.groups: want %d groups, got %d", len(want), len(got))
	}
	for i := range want {
		if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
			t.Errorf("spec.groups[%d]:\nwant %#v\ngot  %#v", i, want[i], got[i])
		}
	}
}

// normalize turns scalars into strings: a rule file may write `limit: 10`
// or `expr: 1`, which the PrometheusRule carries as the same text.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = normalize(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = normalize(x)
		}
		return s
	case string:
		return v
	default:
		return strings.TrimSpace(yamlString(v))
	}
}

func yamlString(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestGenerateErrors(t *testing.T) {
	const alert = "    rules:\n      - alert: A\n        expr: up == 0\n"
	for _, tc := range []struct {
		name    string
		sources []source
		want    string
	}{
		{
			name: "field PrometheusRule lacks",
			sources: []source{{name: "x.rules.yml", data: []byte(
				"groups:\n  - name: g\n    source_tenants: [a]\n" + alert)}},
			want: "rule file x.rules.yml: yaml: unmarshal errors:\n  line 3: field source_tenants not found",
		},
		{
			name: "misspelt rule field",
			sources: []source{{name: "x.rules.yml", data: []byte(
				"groups:\n  - name: g\n    rules:\n      - alert: A\n        exp: up\n")}},
			want: "field exp not found",
		},
		{
			name: "group name in two files",
			sources: []source{
				{name: "a.rules.yml", data: []byte("groups:\n  - name: g\n" + alert)},
				{name: "b.rules.yml", data: []byte("groups:\n  - name: g\n" + alert)},
			},
			want: `rule file b.rules.yml: group "g" is also in a.rules.yml`,
		},
		{
			name:    "record and alert",
			sources: []source{{name: "x.rules.yml", data: []byte("groups:\n  - name: g\n    rules:\n      - {alert: A, record: r, expr: up}\n")}},
			want:    `rule file x.rules.yml: groups[0]: group "g": rules[0]: exactly one of record and alert is required`,
		},
		{
			name:    "neither record nor alert",
			sources: []source{{name: "x.rules.yml", data: []byte("groups:\n  - name: g\n    rules:\n      - {expr: up}\n")}},
			want:    "rules[0]: exactly one of record and alert is required",
		},
		{
			name:    "no expr",
			sources: []source{{name: "x.rules.yml", data: []byte("groups:\n  - name: g\n    rules:\n      - {alert: A}\n")}},
			want:    `group "g": rules[0]: expr is required`,
		},
		{
			name:    "group without name",
			sources: []source{{name: "x.rules.yml", data: []byte("groups:\n  - rules:\n      - {alert: A, expr: up}\n")}},
			want:    "groups[0]: group without a name",
		},
		{
			name:    "group without rules",
			sources: []source{{name: "x.rules.yml", data: []byte("groups:\n  - name: g\n")}},
			want:    `group "g": no rules`,
		},
		{
			name:    "no groups",
			sources: []source{{name: "x.rules.yml", data: []byte("groups: []\n")}},
			want:    "rule file x.rules.yml: no groups",
		},
		{
			name:    "not YAML",
			sources: []source{{name: "x.rules.yml", data: []byte("groups: [\n")}},
			want:    "rule file x.rules.yml: yaml:",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := generate(tc.sources)
			if err == nil {
				t.Fatalf("want an error containing %q, got none; output:\n%s", tc.want, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %q", tc.want, err)
			}
		})
	}
}

// TestRun covers the command line on a scratch repository: writing, -check
// on a fresh and on a stale file, -out -, and a missing rules directory.
func TestRun(t *testing.T) {
	root := t.TempDir()
	rules := filepath.Join(root, "deploy", "prometheus")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "deploy", "kubernetes"), 0o755); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join("testdata", "good", "a.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, "a.rules.yml"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	// Not a rule file: the promtool tests live next to the rules.
	if err := os.WriteFile(filepath.Join(rules, "a.test.yml"), []byte("rule_files: [a.rules.yml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, outputPath)

	for _, step := range []struct {
		name     string
		args     []string
		before   func(t *testing.T)
		wantCode int
		wantErr  string
	}{
		{name: "check before the file exists", args: []string{"-root", root, "-check"}, wantCode: 1, wantErr: "no such file"},
		{name: "write", args: []string{"-root", root}, wantCode: 0},
		{name: "check fresh", args: []string{"-root", root, "-check"}, wantCode: 0},
		{
			name: "check after a rule file changed",
			args: []string{"-root", root, "-check"},
			before: func(t *testing.T) {
				changed := bytes.Replace(good, []byte("for: 5m"), []byte("for: 10m"), 1)
				if bytes.Equal(changed, good) {
					t.Fatal("testdata/good/a.rules.yml has no 'for: 5m' to change")
				}
				if err := os.WriteFile(filepath.Join(rules, "a.rules.yml"), changed, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantCode: 1,
			wantErr:  "is stale: run go run ./deploy/kubernetes/gen",
		},
		{name: "rewrite", args: []string{"-root", root}, wantCode: 0},
		{name: "check after rewrite", args: []string{"-root", root, "-check"}, wantCode: 0},
		{name: "missing rules directory", args: []string{"-root", root, "-rules", "nowhere"}, wantCode: 1, wantErr: "no *.rules.yml in " + filepath.Join(root, "nowhere")},
		{name: "stray argument", args: []string{"-root", root, "extra"}, wantCode: 2, wantErr: "unexpected arguments"},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			var stdout, stderr bytes.Buffer
			if code := run(step.args, &stdout, &stderr); code != step.wantCode {
				t.Fatalf("exit code: want %d, got %d; stderr: %s", step.wantCode, code, stderr.String())
			}
			if !strings.Contains(stderr.String(), step.wantErr) {
				t.Fatalf("stderr: want %q in %q", step.wantErr, stderr.String())
			}
		})
	}

	// The file written holds the changed rule, and -out - prints the same.
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(written, []byte("for: 10m")) || bytes.Contains(written, []byte("for: 5m")) {
		t.Errorf("written file does not carry the changed rule:\n%s", written)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-root", root, "-out", "-"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-out -: exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), written) {
		t.Errorf("-out - printed something else than the written file")
	}
}

// firstDifference names the first line where committed and generated
// differ.
func firstDifference(committed, generated []byte) string {
	c, g := strings.Split(string(committed), "\n"), strings.Split(string(generated), "\n")
	for i := 0; i < len(c) || i < len(g); i++ {
		if i >= len(c) || i >= len(g) || c[i] != g[i] {
			return fmt.Sprintf("first difference at line %d: committed %s, generated %s", i+1, lineAt(c, i), lineAt(g, i))
		}
	}
	return "no difference"
}

func lineAt(lines []string, i int) string {
	if i >= len(lines) {
		return "(end of file)"
	}
	return fmt.Sprintf("%q", lines[i])
}

func sourceNames(sources []source) []string {
	var names []string
	for _, s := range sources {
		names = append(names, s.name)
	}
	return names
}
