// Command gen writes the Grafana dashboards of dashboards/*.json: the
// reliability report, the service detail, capacity planning, recovery and
// continuity, and the daemon itself. The JSON is generated so that the five
// dashboards share one way of filtering, linking and labelling, so that the
// alert panel lists exactly the alerts of deploy/prometheus/*.rules.yml, and
// so that the burn-rate panels colour at exactly those alerts' thresholds.
//
// From the repository root:
//
//	go run ./dashboards/gen          # rewrite dashboards/*.json
//	go run ./dashboards/gen -check   # exit 1 if a file is stale
//
// The test in this directory fails when the committed files differ from
// what this program generates; test/dashboards_test.go checks their
// structure and runs every query against a real Prometheus.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Paths relative to the repository root.
const (
	rulesDir  = "deploy/prometheus"
	rulesGlob = "*.rules.yml"
	outDir    = "dashboards"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "Repository root. Empty: the nearest directory holding go.mod, from the working directory up.")
	check := fs.Bool("check", false, "Do not write: exit 1 when a dashboard file differs from what would be written.")
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
	files, err := generate(filepath.Join(*root, rulesDir))
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 1
	}
	stale := 0
	for _, name := range sortedKeys(files) {
		path := filepath.Join(*root, outDir, name)
		if *check {
			committed, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(committed, files[name]) {
				fmt.Fprintf(stderr, "gen: %s is stale: run go run ./dashboards/gen from the repository root\n", path)
				stale++
			}
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			fmt.Fprintln(stderr, "gen:", err)
			return 1
		}
	}
	if stale > 0 {
		return 1
	}
	return 0
}

// moduleRoot finds the directory holding go.mod, from the working
// directory up, so that the program works from the root (go run) as well as
// from its own directory (go test).
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

// generate returns every dashboard file's name and content, from the rule
// files in rules.
func generate(rules string) (map[string][]byte, error) {
	s, err := loadSet(rules)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, d := range []*dashboard{s.report(), s.service(), s.capacity(), s.recovery(), s.daemon()} {
		data, err := encode(d)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
		}
		files[d.UID+".json"] = data
	}
	return files, nil
}

// loadSet reads what the dashboards take from the rule files in dir: the
// alert names and the burn-rate thresholds.
func loadSet(dir string) (*set, error) {
	rules, err := readRules(dir)
	if err != nil {
		return nil, err
	}
	names, err := alertNames(rules)
	if err != nil {
		return nil, err
	}
	burn, err := burnThresholds(rules)
	if err != nil {
		return nil, err
	}
	return &set{alertNames: names, burn: burn}, nil
}

// encode writes a dashboard as JSON with sorted keys, two-space indent and
// a final newline, without HTML escaping (PromQL is full of < and >), so
// that the same dashboard always gives the same bytes and diffs stay small.
// The structs give the fields; a round trip through generic values sorts
// the keys, with json.Number keeping every number as written.
func encode(d *dashboard) ([]byte, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil { // Encode ends with a newline
		return nil, err
	}
	return out.Bytes(), nil
}

// alertNameRe is what an alert name must look like to go into the alert
// panels' regular expression as it is.
var alertNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ruleFile is the part of a Prometheus rule file the generator reads.
type ruleFile struct {
	Groups []struct {
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert  string            `yaml:"alert"`
	Expr   string            `yaml:"expr"`
	Labels map[string]string `yaml:"labels"`
}

// fileRule is an alerting rule and the file it is in, for error messages.
type fileRule struct {
	rule
	file string
}

// readRules returns the alerting rules of dir/*.rules.yml, file by file in
// name order.
func readRules(dir string) ([]fileRule, error) {
	paths, err := filepath.Glob(filepath.Join(dir, rulesGlob))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no %s in %s", rulesGlob, dir)
	}
	var rules []fileRule
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var rf ruleFile
		if err := yaml.Unmarshal(data, &rf); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					rules = append(rules, fileRule{rule: r, file: p})
				}
			}
		}
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("no alerting rule in %s/%s", dir, rulesGlob)
	}
	return rules, nil
}

// alertNames returns the names of the alerts, sorted and unique.
func alertNames(rules []fileRule) ([]string, error) {
	seen := map[string]bool{}
	for _, r := range rules {
		if !alertNameRe.MatchString(r.Alert) {
			// The names go into a regular expression unquoted.
			return nil, fmt.Errorf("%s: alert name %q is not an identifier", r.file, r.Alert)
		}
		seen[r.Alert] = true
	}
	return sortedKeys(seen), nil
}

// burnPairRe finds the long window of a multiwindow burn-rate condition
// (SRE workbook): the long window's burn rate over a threshold, matched with
// the short window's by "and ignoring (window)". The short window follows
// and is not captured.
var burnPairRe = regexp.MustCompile(`slo_burn_rate\{window="([0-9]+[smhdwy])"\}\s*>\s*([0-9]+(?:\.[0-9]+)?)\s+and\s+ignoring\s*\(\s*window\s*\)`)

// severityColors are the colours of the alert severities, for thresholds
// drawn at an alert's threshold.
func severityColors() map[string]string {
	return map[string]string{"page": "red", "ticket": "orange"}
}

// burnThreshold is the burn rate above which an alert fires, on its long
// window.
type burnThreshold struct {
	window   string
	length   model.Duration // of window, to sort by
	rate     float64
	severity string
}

// color is the severity's colour.
func (b burnThreshold) color() string { return severityColors()[b.severity] }

// burnThresholds returns the long windows of the burn-rate alerts, with
// their thresholds and severities, shortest window first.
func burnThresholds(rules []fileRule) ([]burnThreshold, error) {
	var out []burnThreshold
	seen := map[string]bool{}
	for _, r := range rules {
		for _, m := range burnPairRe.FindAllStringSubmatch(r.Expr, -1) {
			length, err := model.ParseDuration(m[1])
			if err != nil {
				return nil, fmt.Errorf("%s: alert %s: window %q: %w", r.file, r.Alert, m[1], err)
			}
			rate, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: alert %s: threshold %q: %w", r.file, r.Alert, m[2], err)
			}
			severity := r.Labels["severity"]
			if _, ok := severityColors()[severity]; !ok {
				return nil, fmt.Errorf("%s: alert %s: severity %q, want one of %q", r.file, r.Alert, severity, sortedKeys(severityColors()))
			}
			if seen[m[1]] {
				return nil, fmt.Errorf("%s: alert %s: a second burn-rate threshold on window %s", r.file, r.Alert, m[1])
			}
			seen[m[1]] = true
			out = append(out, burnThreshold{window: m[1], length: length, rate: rate, severity: severity})
		}
	}
	if len(out) == 0 {
		return nil, errors.New(`no burn-rate alert in the rule files: want slo_burn_rate{window="<long>"} > <threshold> and ignoring (window) ...`)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].length < out[j].length })
	return out, nil
}
