// Command gen writes deploy/kubernetes/prometheusrule.yaml, a
// prometheus-operator PrometheusRule, from the Prometheus rule files
// deploy/prometheus/*.rules.yml. The rule files are the source: promtool
// checks and unit-tests them, and this program copies their groups into the
// PrometheusRule, so the Kubernetes manifest can never drift into a hand copy.
//
// From the repository root:
//
//	go run ./deploy/kubernetes/gen          # rewrite the PrometheusRule
//	go run ./deploy/kubernetes/gen -check   # exit 1 if it is stale
//	go run ./deploy/kubernetes/gen -out -   # print it instead
//
// The test in this directory (and test/deploy_test.go) fails when the
// committed file differs from what this program generates.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Paths relative to the repository root.
const (
	rulesDir   = "deploy/prometheus"
	rulesGlob  = "*.rules.yml"
	outputPath = "deploy/kubernetes/prometheusrule.yaml"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "Repository root. Empty: the nearest directory holding go.mod, from the working directory up.")
	rules := fs.String("rules", rulesDir, "Directory of the rule files ("+rulesGlob+"), relative to the root unless absolute.")
	out := fs.String("out", "", "Output file, relative to the root unless absolute; - for standard output. Empty: "+outputPath+".")
	check := fs.Bool("check", false, "Do not write: exit 1 when the output file differs from what would be written.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *root == "" {
		r, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(stderr, "gen:", err)
			return 1
		}
		*root = r
	}
	if !filepath.IsAbs(*rules) {
		*rules = filepath.Join(*root, *rules)
	}
	sources, err := readSources(*rules)
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 1
	}
	generated, err := generate(sources)
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 1
	}
	if *out == "-" {
		if _, err := stdout.Write(generated); err != nil {
			fmt.Fprintln(stderr, "gen:", err)
			return 1
		}
		return 0
	}
	path := *out
	if path == "" {
		path = outputPath
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(*root, path)
	}
	if *check {
		committed, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(stderr, "gen:", err)
			return 1
		}
		if !bytes.Equal(committed, generated) {
			fmt.Fprintf(stderr, "gen: %s is stale: run go run ./deploy/kubernetes/gen from the repository root\n", path)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(path, generated, 0o644); err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 1
	}
	return 0
}

// moduleRoot finds the directory holding go.mod, from the working
// directory up, so that the program works from the root (go run) as well as
// from a package directory (go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // bounded: no real tree is deeper
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod in the working directory or above it: give -root")
}

// source is one rule file: its base name (which goes into the output, so
// the output does not depend on where the program runs) and its content.
type source struct {
	name string
	data []byte
}

// readSources reads dir/*.rules.yml in lexical order.
func readSources(dir string) ([]source, error) {
	paths, err := filepath.Glob(filepath.Join(dir, rulesGlob))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no %s in %s", rulesGlob, dir)
	}
	sources := make([]source, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		sources = append(sources, source{name: filepath.Base(p), data: data})
	}
	return sources, nil
}

// ruleFile is a Prometheus rule file. Its fields, and those of ruleGroup and
// rule, are the ones prometheus-operator's PrometheusRule also has under
// spec.groups; decoding with KnownFields makes a field that it lacks an
// error here rather than a PrometheusRule the operator's admission webhook
// rejects.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Limit    int    `yaml:"limit,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

type prometheusRule struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       ruleSpec `yaml:"spec"`
}

type metadata struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type ruleSpec struct {
	Groups []yaml.Node `yaml:"groups"`
}

// header starts the generated file.
const header = `# Code generated by go run ./deploy/kubernetes/gen from deploy/prometheus/*.rules.yml. DO NOT EDIT.
# Edit the rule files (and their promtool tests in deploy/prometheus/tests/), then regenerate.
`

// generate returns the PrometheusRule holding every group of sources, in
// order, each group headed by a comment naming its file. Group names must be
// unique across files: the operator writes one PrometheusRule to one rule
// file, in which Prometheus rejects duplicate group names.
func generate(sources []source) ([]byte, error) {
	pr := prometheusRule{
		APIVersion: "monitoring.coreos.com/v1",
		Kind:       "PrometheusRule",
		Metadata: metadata{
			Name: "reliabilityd",
			Labels: map[string]string{
				"app.kubernetes.io/name":      "reliabilityd",
				"app.kubernetes.io/component": "alerting",
			},
		},
	}
	seen := make(map[string]string) // group name -> file
	for _, src := range sources {
		var f ruleFile
		dec := yaml.NewDecoder(bytes.NewReader(src.data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("rule file %s: %w", src.name, err)
		}
		if len(f.Groups) == 0 {
			return nil, fmt.Errorf("rule file %s: no groups", src.name)
		}
		for i, g := range f.Groups {
			if err := g.validate(); err != nil {
				return nil, fmt.Errorf("rule file %s: groups[%d]: %w", src.name, i, err)
			}
			if other, ok := seen[g.Name]; ok {
				return nil, fmt.Errorf("rule file %s: group %q is also in %s: group names must be unique across the rule files", src.name, g.Name, other)
			}
			seen[g.Name] = src.name
			var n yaml.Node
			if err := n.Encode(g); err != nil {
				return nil, fmt.Errorf("rule file %s: group %q: %w", src.name, g.Name, err)
			}
			if i == 0 {
				n.HeadComment = "From " + rulesDir + "/" + src.name + "."
			}
			pr.Spec.Groups = append(pr.Spec.Groups, n)
		}
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(pr); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// validate checks what the decoder cannot: a name, rules, and each rule
// either a recording or an alerting rule with an expression.
func (g ruleGroup) validate() error {
	if strings.TrimSpace(g.Name) == "" {
		return errors.New("group without a name")
	}
	if len(g.Rules) == 0 {
		return fmt.Errorf("group %q: no rules", g.Name)
	}
	for i, r := range g.Rules {
		switch {
		case (r.Record == "") == (r.Alert == ""):
			return fmt.Errorf("group %q: rules[%d]: exactly one of record and alert is required", g.Name, i)
		case strings.TrimSpace(r.Expr) == "":
			return fmt.Errorf("group %q: rules[%d]: expr is required", g.Name, i)
		}
	}
	return nil
}
