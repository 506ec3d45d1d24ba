package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Prometheus rules shipped in deploy/prometheus, their promtool unit
// tests and their runbooks (docs/runbooks.md).
const (
	rulesDir         = "../deploy/prometheus"
	runbooksPath     = "../docs/runbooks.md"
	runbookURLPrefix = "https://github.com/reliabilityd/reliabilityd/blob/main/docs/runbooks.md#"
)

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleTestFile is the part of a promtool unit-test file the checks read.
type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTests []struct {
			Alertname string `yaml:"alertname"`
			EvalTime  string `yaml:"eval_time"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTests []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// alertRule is one alerting rule with the file it came from.
type alertRule struct {
	file, name, expr, forDuration string
	labels, annotations           map[string]string
}

// loadRules parses every deploy/prometheus/*.rules.yml and returns its
// alerts and recording rules (by name, in file order).
func loadRules(t *testing.T) (files []string, alerts []alertRule, records []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rulesDir, "*.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no rule files in %s", rulesDir)
	}
	for _, path := range files {
		var rf ruleFile
		decodeYAML(t, path, &rf)
		if len(rf.Groups) == 0 {
			t.Errorf("%s: no rule groups", path)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				switch {
				case r.Alert != "" && r.Record != "":
					t.Errorf("%s: rule is both alert %q and record %q", path, r.Alert, r.Record)
				case r.Alert != "":
					alerts = append(alerts, alertRule{
						file: filepath.Base(path), name: r.Alert, expr: r.Expr, forDuration: r.For,
						labels: r.Labels, annotations: r.Annotations,
					})
				case r.Record != "":
					records = append(records, r.Record)
				default:
					t.Errorf("%s: group %s has a rule that is neither an alert nor a record", path, g.Name)
				}
			}
		}
	}
	return files, alerts, records
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Unknown keys are not checked here: promtool rejects them in both
	// kinds of file, and these structs hold only what the checks read.
	if err := yaml.NewDecoder(f).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestRulesPromtool runs promtool over the rule files and their unit tests.
func TestRulesPromtool(t *testing.T) {
	promtool := lookPromtool(t)
	files, alerts, records := loadRules(t)
	tests, err := filepath.Glob(filepath.Join(rulesDir, "tests", "*.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) == 0 {
		t.Fatalf("no unit tests in %s/tests", rulesDir)
	}

	t.Run("check", func(t *testing.T) {
		out, err := exec.Command(promtool, append([]string{"check", "rules"}, files...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check rules: %v\n%s", err, out)
		}
		// promtool counts the rules it loaded: they must be the ones
		// parsed here, so no file or group was skipped.
		found := 0
		for _, m := range regexp.MustCompile(`SUCCESS: (\d+) rules found`).FindAllStringSubmatch(string(out), -1) {
			n, _ := strconv.Atoi(m[1])
			found += n
		}
		if want := len(alerts) + len(records); found != want {
			t.Errorf("promtool found %d rules, the files hold %d:\n%s", found, want, out)
		}
	})
	t.Run("test", func(t *testing.T) {
		out, err := exec.Command(promtool, append([]string{"test", "rules"}, tests...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool test rules: %v\n%s", err, out)
		}
		if n := strings.Count(string(out), "SUCCESS"); n != len(tests) {
			t.Errorf("%d of %d test files passed:\n%s", n, len(tests), out)
		}
	})
}

// TestRulesCatalogue checks the alerts against the alerting contract: the
// names, files, severities and `for` durations, the annotations every alert
// must have, and that every runbook link lands on a section of
// docs/runbooks.md.
func TestRulesCatalogue(t *testing.T) {
	want := []struct{ file, name, severity, forDuration string }{
		{"slo.rules.yml", "SLOErrorBudgetBurnPage", "page", "2m"},
		{"slo.rules.yml", "SLOErrorBudgetBurnTicket", "ticket", "15m"},
		{"slo.rules.yml", "SLOErrorBudgetExhausted", "ticket", "5m"},
		{"slo.rules.yml", "SLONoData", "ticket", "15m"},
		{"capacity.rules.yml", "CapacityHeadroomBelowTarget", "ticket", "15m"},
		{"capacity.rules.yml", "CapacityExhaustionWithin7Days", "page", "15m"},
		{"capacity.rules.yml", "CapacityExhaustionWithin30Days", "ticket", "1h"},
		// No `for`: the outage rule already debounces, and a delay here
		// is taken from the RTO.
		{"recovery.rules.yml", "RecoveryOutageHalfOfRTO", "page", ""},
		{"recovery.rules.yml", "RecoveryOutageRTOBreached", "page", ""},
		{"recovery.rules.yml", "RecoveryRPOBreached", "page", "5m"},
		{"recovery.rules.yml", "RecoveryBackupSourceFailing", "ticket", "15m"},
		{"recovery.rules.yml", "RecoveryDrillOverdue", "ticket", "1h"},
		{"probes.rules.yml", "ProbeFailing", "ticket", "5m"},
		{"probes.rules.yml", "ProbeCertificateExpiresIn14Days", "ticket", "15m"},
		{"probes.rules.yml", "ProbeCertificateExpiresIn3Days", "page", "15m"},
		{"reliabilityd.rules.yml", "ReliabilitydDown", "page", "5m"},
		{"reliabilityd.rules.yml", "ReliabilitydConfigReloadFailed", "ticket", "10m"},
		{"reliabilityd.rules.yml", "ReliabilitydStateFlushFailing", "ticket", "5m"},
		{"reliabilityd.rules.yml", "ReliabilitydProbeRunsLateOrSkipped", "ticket", "15m"},
		{"reliabilityd.rules.yml", "ReliabilitydPrometheusSourceFailing", "page", "10m"},
	}
	_, alerts, _ := loadRules(t)
	byName := map[string]alertRule{}
	for _, a := range alerts {
		if _, dup := byName[a.name]; dup {
			t.Errorf("alert %s is defined twice", a.name)
		}
		byName[a.name] = a
	}
	for _, w := range want {
		if _, ok := byName[w.name]; !ok {
			t.Errorf("alert %s is missing from %s", w.name, w.file)
		}
	}
	if len(byName) != len(want) {
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Errorf("the rule files hold %d alerts, the contract %d: %v", len(byName), len(want), names)
	}

	headings := runbookHeadings(t)
	for _, w := range want {
		a, ok := byName[w.name]
		if !ok {
			continue
		}
		t.Run(w.name, func(t *testing.T) {
			if a.file != w.file {
				t.Errorf("defined in %s, want %s", a.file, w.file)
			}
			if a.forDuration != w.forDuration {
				t.Errorf("for = %q, want %q", a.forDuration, w.forDuration)
			}
			if got := a.labels["severity"]; got != w.severity {
				t.Errorf("severity = %q, want %q", got, w.severity)
			}
			// Static labels other than severity would mask or clash
			// with the metric's own (service, slo, …).
			for k := range a.labels {
				if k != "severity" {
					t.Errorf("static label %q: only severity is set by the rule", k)
				}
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(a.annotations[k]) == "" {
					t.Errorf("annotation %s is missing", k)
				}
			}
			for k := range a.annotations {
				if k != "summary" && k != "description" && k != "runbook_url" {
					t.Errorf("unexpected annotation %q", k)
				}
			}
			url := a.annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookURLPrefix)
			if !ok || anchor != strings.ToLower(w.name) {
				t.Errorf("runbook_url = %q, want %s%s", url, runbookURLPrefix, strings.ToLower(w.name))
			}
			if !headings[w.name] {
				t.Errorf("docs/runbooks.md has no heading \"## %s\" for anchor #%s", w.name, anchor)
			}
		})
	}
	// Every runbook section belongs to an alert that exists: a renamed
	// alert must not leave its old section behind.
	for h := range headings {
		if _, ok := byName[h]; !ok {
			t.Errorf("docs/runbooks.md has a section \"## %s\" for no alert", h)
		}
	}
}

// runbookHeadings returns the "## Name" headings of docs/runbooks.md.
func runbookHeadings(t *testing.T) map[string]bool {
	t.Helper()
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)\s*$`).FindAllStringSubmatch(readDoc(t, runbooksPath), -1) {
		if headings[m[1]] {
			t.Errorf("docs/runbooks.md has two sections \"## %s\"", m[1])
		}
		headings[m[1]] = true
	}
	return headings
}

// TestRulesEveryAlertTested checks the unit tests' coverage, which promtool
// does not: every alert is tested both firing and not firing, every firing
// expectation states the severity and all three annotations (promtool
// compares only the annotations a test lists), every tested alert name
// exists (promtool passes a test of an unknown alert that expects
// nothing), and every recording rule is evaluated by some test.
func TestRulesEveryAlertTested(t *testing.T) {
	files, alerts, records := loadRules(t)
	severity := map[string]string{}
	for _, a := range alerts {
		severity[a.name] = a.labels["severity"]
	}
	firing, silent := map[string]int{}, map[string]int{}
	var exprs []string
	for _, path := range files {
		base := filepath.Base(path)
		testPath := filepath.Join(rulesDir, "tests", strings.TrimSuffix(base, ".yml")+".test.yml")
		if _, err := os.Stat(testPath); err != nil {
			t.Errorf("%s has no unit tests: %v", base, err)
			continue
		}
		var tf ruleTestFile
		decodeYAML(t, testPath, &tf)
		if !slices.Contains(tf.RuleFiles, "../"+base) {
			t.Errorf("%s: rule_files = %v, want ../%s", testPath, tf.RuleFiles, base)
		}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTests {
				sev, ok := severity[at.Alertname]
				if !ok {
					t.Errorf("%s: test at %s of alert %q, which no rule file defines", testPath, at.EvalTime, at.Alertname)
					continue
				}
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname]++
					continue
				}
				firing[at.Alertname]++
				for _, ea := range at.ExpAlerts {
					if got := ea.ExpLabels["severity"]; got != sev {
						t.Errorf("%s: %s at %s expects severity %q, the rule sets %q", testPath, at.Alertname, at.EvalTime, got, sev)
					}
					for _, k := range []string{"summary", "description", "runbook_url"} {
						if ea.ExpAnnotations[k] == "" {
							t.Errorf("%s: %s at %s does not check annotation %s", testPath, at.Alertname, at.EvalTime, k)
						}
					}
				}
			}
			for _, et := range tc.PromQLExprTests {
				exprs = append(exprs, et.Expr)
			}
		}
	}
	for _, a := range alerts {
		if firing[a.name] == 0 {
			t.Errorf("alert %s (%s) is never tested firing", a.name, a.file)
		}
		if silent[a.name] == 0 {
			t.Errorf("alert %s (%s) is never tested not firing", a.name, a.file)
		}
	}
	recordRe := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	for _, r := range records {
		tested := false
		for _, e := range exprs {
			if slices.Contains(recordRe.FindAllString(e, -1), r) {
				tested = true
			}
		}
		if !tested {
			t.Errorf("recording rule %s is evaluated by no promql_expr_test", r)
		}
	}
}
