package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// The shipped files under test: the example Alertmanager configuration and
// every Prometheus rule file, loaded as an operator would load them.
const (
	alertmanagerExample = "../deploy/alertmanager/alertmanager.yml"
	rulesGlob           = "../deploy/prometheus/*.rules.yml"
	runbookURL          = "https://github.com/reliabilityd/reliabilityd/blob/main/docs/runbooks.md#"
)

// lookAlertmanagerTool returns the first of names found in PATH. CI installs
// Debian's prometheus-alertmanager package (amtool, and the server as
// prometheus-alertmanager), so it is an error there to lack them.
func lookAlertmanagerTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("none of %q found; .ci/run installs Debian's prometheus-alertmanager package", names)
	}
	t.Skipf("none of %q found: apt-get install prometheus-alertmanager to run this test", names)
	return ""
}

// TestAlertmanagerConfig: amtool accepts the example, and it routes pages
// to the pager, tickets and alerts without a known severity to tickets.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := lookAlertmanagerTool(t, "amtool")
	out, err := exec.Command(amtool, "check-config", alertmanagerExample).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config %s: %v\n%s", alertmanagerExample, err, out)
	}
	for _, tc := range []struct {
		name     string
		labels   []string
		receiver string
	}{
		{"page", []string{"alertname=SLOErrorBudgetBurnPage", "severity=page", "service=shop", "slo=availability"}, "pager"},
		{"ticket", []string{"alertname=SLOErrorBudgetBurnTicket", "severity=ticket", "service=shop", "slo=availability"}, "ticket"},
		{"no severity", []string{"alertname=SomeOtherAlert", "service=shop"}, "ticket"},
		{"unknown severity", []string{"alertname=SomeOtherAlert", "severity=info"}, "ticket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=" + alertmanagerExample, "--verify.receivers=" + tc.receiver}, tc.labels...)
			cmd := exec.Command(amtool, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if got := strings.TrimSpace(stdout.String()); err != nil || got != tc.receiver {
				t.Errorf("amtool config routes test %q: receiver %q (%v), want %q\n%s", tc.labels, got, err, tc.receiver, stderr.String())
			}
		})
	}
}

// TestAlertmanagerInhibition: in an Alertmanager running the example's
// routes and inhibition rules, each page holds back the matching ticket of
// the same service (and SLO or probe), and only that one.
func TestAlertmanagerInhibition(t *testing.T) {
	amPath := lookAlertmanagerTool(t, "alertmanager", "prometheus-alertmanager")
	hook := newWebhookRecorder(t)
	am := startAlertmanager(t, amPath, deriveAlertmanagerConfig(t, hook.url))

	sources := []map[string]string{
		{"alertname": "SLOErrorBudgetBurnPage", "severity": "page", "service": "shop", "slo": "availability"},
		{"alertname": "RecoveryOutageRTOBreached", "severity": "page", "service": "shop"},
		{"alertname": "ProbeCertificateExpiresIn3Days", "severity": "page", "service": "shop", "probe": "home"},
	}
	am.post(t, sources...)
	// The pages' notifications show that Alertmanager holds them, so the
	// targets posted next meet their sources.
	for _, s := range sources {
		hook.wait(t, time.Now().Add(30*time.Second), "the page "+s["alertname"], nil, func(n notification) bool {
			return n.Receiver == "pager" && n.has("firing", s)
		})
	}

	slo, recovery, cert := sources[0], sources[1], sources[2]
	targets := []struct {
		labels   map[string]string
		receiver string
		by       map[string]string // the source that inhibits it, or nil
	}{
		{map[string]string{"alertname": "SLOErrorBudgetBurnTicket", "severity": "ticket", "service": "shop", "slo": "availability"}, "ticket", slo},
		{map[string]string{"alertname": "SLOErrorBudgetBurnTicket", "severity": "ticket", "service": "shop", "slo": "latency"}, "ticket", nil},
		{map[string]string{"alertname": "RecoveryOutageHalfOfRTO", "severity": "page", "service": "shop"}, "pager", recovery},
		{map[string]string{"alertname": "RecoveryOutageHalfOfRTO", "severity": "page", "service": "cart"}, "pager", nil},
		{map[string]string{"alertname": "ProbeCertificateExpiresIn14Days", "severity": "ticket", "service": "shop", "probe": "home"}, "ticket", cert},
		{map[string]string{"alertname": "ProbeCertificateExpiresIn14Days", "severity": "ticket", "service": "shop", "probe": "api"}, "ticket", nil},
		{map[string]string{"alertname": "ProbeCertificateExpiresIn14Days", "severity": "ticket", "service": "cart", "probe": "home"}, "ticket", nil},
	}
	var labels []map[string]string
	for _, tc := range targets {
		labels = append(labels, tc.labels)
	}
	am.post(t, labels...)

	for _, tc := range targets {
		if tc.by == nil {
			hook.wait(t, time.Now().Add(30*time.Second), alertName(tc.labels), nil, func(n notification) bool {
				return n.Receiver == tc.receiver && n.has("firing", tc.labels)
			})
		}
	}
	// Alertmanager's API says which alert mutes which, by fingerprint.
	held := map[string]amAlert{}
	for _, a := range am.alerts(t) {
		held[fmt.Sprint(a.Labels)] = a
	}
	for _, tc := range targets {
		t.Run(alertName(tc.labels), func(t *testing.T) {
			a, ok := held[fmt.Sprint(tc.labels)]
			if !ok {
				t.Fatalf("Alertmanager does not hold the alert")
			}
			if tc.by == nil {
				if a.Status.State != "active" || len(a.Status.InhibitedBy) != 0 {
					t.Errorf("state %q inhibited by %q, want active", a.Status.State, a.Status.InhibitedBy)
				}
				return
			}
			want := []string{held[fmt.Sprint(tc.by)].Fingerprint}
			if a.Status.State != "suppressed" || !slices.Equal(a.Status.InhibitedBy, want) {
				t.Errorf("state %q inhibited by %q, want suppressed by %q (%v)", a.Status.State, a.Status.InhibitedBy, want, tc.by)
			}
			for _, n := range hook.all() {
				if n.has("", tc.labels) {
					t.Errorf("the inhibited alert was sent to %s", n.Receiver)
				}
			}
		})
	}
}

// alertName writes an alert's labels but severity as a series name.
func alertName(labels map[string]string) string {
	var pairs []string
	for k, v := range labels {
		if k != "alertname" && k != "severity" {
			pairs = append(pairs, k+"="+v)
		}
	}
	slices.Sort(pairs)
	return labels["alertname"] + "{" + strings.Join(pairs, ",") + "}"
}

// The end-to-end SLO and its target. Every failOneIn-th request fails
// while the target is degraded.
const (
	alertSLOBudget = 0.01 // objective 99: the daemon's b = 1 - o, as written in alertingConfig
	failOneIn      = 10   // burn rate (1/10)/0.01 = 10 while degraded
	pageBurnFast   = 14.4 // the page rule's 1h and 5m threshold
	pageBurnSlow   = 6.0  // the page rule's 6h and 30m threshold
	pageFor        = 2 * time.Minute
	// notifyLate bounds how long after its condition Prometheus and
	// Alertmanager deliver a notification: the daemon's evaluation (1s),
	// Prometheus's scrape (alertScrape) and rule evaluation (1s), Alertmanager's
	// group_wait or group_interval (1s) and the webhook, with room for a
	// loaded 2-core machine running the race-enabled daemon.
	notifyLate = 30 * time.Second
	// alertScrape is Prometheus's scrape interval and timeout for the
	// daemon. A failed scrape marks every series of the target stale, which
	// ends a pending alert and restarts its for: (Prometheus 2.42 has no
	// keep_firing_for), so the timeout must outlast any stall of a loaded
	// machine: 1s did not, once. Rules are still evaluated every second.
	alertScrape = 5 * time.Second
	// scrapeLead is how much earlier than the daemon publishes a figure
	// Prometheus may stamp the scrape that reads it: a scrape is stamped
	// when it starts and lasts up to its timeout.
	scrapeLead = alertScrape
)

const alertingConfig = `
global: {evaluation_interval: 1s}
services:
  - name: shop
    probes:
      - {name: home, interval: 200ms, timeout: 190ms, http: {url: "%s/"}}
    slos:
      - {name: availability, objective: 99, window: 1h, sli: {probes: [home]}}
`

// TestAlertingEndToEnd: reliabilityd, Prometheus loading the shipped
// rules and Alertmanager routing by the example's routes run together. A
// degraded target pages with SLOErrorBudgetBurnPage, and the page resolves
// after the target is repaired, each within bounds computed from the
// daemon's raw event counters.
//
// Why a degraded target (every tenth request fails, burn rate 10) and not
// a dead one: every window the page reads holds every event of the run (the
// daemon is minutes old), so the rule's condition is about the bad share of
// all events so far. A dead target pages once it has failed for 2m, but
// the 6h/30m pair then needs total ≥ bad/0.06 events, 16.7 times the
// outage, to stop: over half an hour. ProbeFailing (for: 5m) is no quicker
// to raise. At burn rate 10 only the 6h/30m pair trips (10 < 14.4), and the
// arithmetic, with N0 good events before the break and 5 events a second:
//
//   - the condition starts when (n/10)/(N0+n) > 0.06, n > 1.5·N0 degraded
//     events after the break: ~1.5 times the few seconds of start-up;
//   - the alert fires pageFor (2m) later, notified within notifyLate;
//   - the target is repaired then, with B bad events of N: the condition
//     ends when the total reaches B/0.06, (B/0.06 - N)/5 seconds later,
//     ~0.67 × the degraded time - the start-up ≈ 85s;
//   - the resolved notification follows within notifyLate.
//
// In all about 4 minutes, 2m of them the rule's for:; the bounds stop it
// within 7.
func TestAlertingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 4 minutes: the page's for: 2m, then the burn rate's decay")
	}
	promPath := lookPrometheus(t)
	amPath := lookAlertmanagerTool(t, "alertmanager", "prometheus-alertmanager")

	var degraded atomic.Bool
	var failures atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if degraded.Load() && failures.Add(1)%failOneIn == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer target.Close()

	hook := newWebhookRecorder(t)
	am := startAlertmanager(t, amPath, deriveAlertmanagerConfig(t, hook.url))
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf(alertingConfig, target.URL))
	started := time.Now()
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	prom := startPrometheusAlerting(t, promPath, strings.TrimPrefix(d.url, "http://"), strings.TrimPrefix(am.url, "http://"), copyRules(t))

	// Break the target once Prometheus reads the burn rate the rule needs.
	client, err := api.NewClient(api.Config{Address: prom.url})
	if err != nil {
		t.Fatal(err)
	}
	q := &promQuerier{client: client}
	// Registered after Prometheus's cleanup, so it runs before the kill.
	t.Cleanup(func() {
		if t.Failed() {
			logPrometheusView(t, q, prom.url)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !q.has(t, `slo_burn_rate{service="shop",slo="availability",window="30m"}`, time.Now()) {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has no slo_burn_rate within 30s; its log:\n%s", prom.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	degraded.Store(true)
	broken := time.Now()
	before := fetchEvents(t, d)
	t.Logf("target degraded %s after the daemon started, after %v good and %v bad events", broken.Sub(started).Round(time.Millisecond), before.good, before.bad)

	page := map[string]string{"alertname": "SLOErrorBudgetBurnPage", "severity": "page", "service": "shop", "slo": "availability"}
	isPage := func(status string) func(notification) bool {
		return func(n notification) bool { return n.has(status, page) }
	}

	// The condition starts after ~1.5·N0 degraded events: allow twice the
	// start-up, plus the daemon's evaluation.
	raised := watchBurn(t, d, hook, before, time.Now().Add(2*broken.Sub(started)+30*time.Second), isPage(""),
		func(c eventCount) bool { return c.burn() > pageBurnSlow })
	t.Logf("burn rate over every window > %v at %v bad of %v events, %s after the break",
		pageBurnSlow, raised.now.bad, raised.now.total(), raised.now.got.Sub(broken).Round(time.Millisecond))

	fired := hook.wait(t, raised.now.got.Add(pageFor+notifyLate), "the firing page", isPage("resolved"), isPage("firing"))
	degraded.Store(false)
	repaired := time.Now()
	t.Logf("page fired %s after the condition started (%s after the break)",
		fired.received.Sub(raised.now.got).Round(time.Millisecond), fired.received.Sub(broken).Round(time.Millisecond))
	// The condition began after the last fetch that saw it false was
	// asked; Prometheus may stamp its scrape up to scrapeLead earlier.
	if earliest := raised.prev.asked.Add(pageFor - scrapeLead); fired.received.Before(earliest) {
		t.Errorf("the page fired at %s, before its condition had held for %s (from %s at the earliest)",
			fired.received.Format(time.StampMilli), pageFor, raised.prev.asked.Format(time.StampMilli))
	}
	checkPage(t, fired, "firing")

	atRepair := fetchEvents(t, d)
	if burn := atRepair.burn(); burn >= pageBurnFast {
		// The 1h/5m pair would page too, as a second alert.
		t.Fatalf("burn rate %v at the repair, not under %v: more runs failed than the target's one in %d (timeouts?)", burn, pageBurnFast, failOneIn)
	}
	wantTotal := atRepair.bad / (pageBurnSlow * alertSLOBudget)
	rate := atRepair.total() / atRepair.got.Sub(started).Seconds()
	decay := time.Duration((wantTotal - atRepair.total()) / rate * float64(time.Second))
	t.Logf("repaired at %v bad of %v events: the burn rate falls to %v at %.0f events, in about %s at %.1f events/s",
		atRepair.bad, atRepair.total(), pageBurnSlow, wantTotal, decay.Round(time.Second), rate)

	// Allow for runs that time out (bad events) or are skipped on a
	// loaded machine.
	fell := watchBurn(t, d, hook, atRepair, time.Now().Add(decay*3/2+30*time.Second), isPage("resolved"),
		func(c eventCount) bool { return c.burn() <= pageBurnSlow })
	t.Logf("burn rate %.3f at %v bad of %v events, %s after the repair",
		fell.now.burn(), fell.now.bad, fell.now.total(), fell.now.got.Sub(repaired).Round(time.Millisecond))

	resolved := hook.wait(t, fell.now.got.Add(notifyLate), "the resolved page", nil, isPage("resolved"))
	t.Logf("page resolved %s after the burn rate fell (%s after the repair); whole test %s",
		resolved.received.Sub(fell.now.got).Round(time.Millisecond), resolved.received.Sub(repaired).Round(time.Millisecond),
		time.Since(started).Round(time.Second))
	if earliest := fell.prev.asked.Add(-scrapeLead); resolved.received.Before(earliest) {
		t.Errorf("the page resolved at %s, before the burn rate fell (after %s)",
			resolved.received.Format(time.StampMilli), fell.prev.asked.Format(time.StampMilli))
	}
	checkPage(t, resolved, "resolved")

	// One firing and one resolved notification, both to the pager; the
	// example repeats a page hourly, and tickets go elsewhere.
	var sent []string
	for _, n := range hook.all() {
		if n.has("", page) {
			sent = append(sent, n.Receiver+":"+n.Status)
		}
	}
	if want := []string{"pager:firing", "pager:resolved"}; !slices.Equal(sent, want) {
		t.Errorf("notifications of the page: %q, want %q", sent, want)
	}
}

// logPrometheusView logs what Prometheus saw of the daemon and the page
// over the test: failed scrapes (they mark every series stale, which
// resets a pending alert's for:), scrape durations, and how often the
// page's pending state restarted.
func logPrometheusView(t *testing.T, q *promQuerier, promURL string) {
	for _, expr := range []string{
		`count_over_time(up{job="reliabilityd"}[10m])`,
		`count_over_time((up{job="reliabilityd"} == 0)[10m:1s])`,
		`max_over_time(scrape_duration_seconds{job="reliabilityd"}[10m])`,
		`changes(ALERTS_FOR_STATE{alertname="SLOErrorBudgetBurnPage"}[10m])`,
		`count_over_time(ALERTS{alertname="SLOErrorBudgetBurnPage"}[10m])`,
		`ALERTS{alertname="SLOErrorBudgetBurnPage"}`,
	} {
		vector, err := q.query(expr, time.Now())
		t.Logf("Prometheus: %s = %v (%v)", expr, vector, err)
	}
	// The rule's health and last error, as Prometheus evaluates it.
	resp, err := http.Get(promURL + "/api/v1/rules?type=alert")
	if err != nil {
		t.Logf("Prometheus rules: %v", err)
		return
	}
	defer resp.Body.Close()
	var rules struct {
		Data struct {
			Groups []struct {
				File  string           `json:"file"`
				Rules []map[string]any `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rules); err != nil {
		t.Logf("Prometheus rules: %v", err)
		return
	}
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r["name"] == "SLOErrorBudgetBurnPage" {
				t.Logf("Prometheus rule %s in %s: state %v, health %v, last error %v, query %v, alerts %v",
					r["name"], g.File, r["state"], r["health"], r["lastError"], r["query"], r["alerts"])
			}
		}
	}
}

// checkPage checks a notification of the page: grouped as the example
// groups, with the rule's labels and annotations, and the 6h/30m pair
// named as the one that tripped (the burn rate of 10 is under 14.4).
func checkPage(t *testing.T, n notification, status string) {
	t.Helper()
	if n.Receiver != "pager" || n.Status != status || len(n.Alerts) != 1 {
		t.Fatalf("notification to %s, status %s, %d alerts; want one %s alert to pager: %v", n.Receiver, n.Status, len(n.Alerts), status, n)
	}
	if want := map[string]string{"alertname": "SLOErrorBudgetBurnPage", "service": "shop"}; !mapsEqual(n.GroupLabels, want) {
		t.Errorf("group labels %v, want %v (the example groups by alertname and service)", n.GroupLabels, want)
	}
	a := n.Alerts[0]
	for name, want := range map[string]string{"severity": "page", "service": "shop", "slo": "availability", "window": "6h", "job": "reliabilityd"} {
		if got := a.Labels[name]; got != want {
			t.Errorf("label %s = %q, want %q", name, got, want)
		}
	}
	if got, want := a.Annotations["runbook_url"], runbookURL+"sloerrorbudgetburnpage"; got != want {
		t.Errorf("runbook_url = %q, want %q", got, want)
	}
	for _, name := range []string{"summary", "description"} {
		text := a.Annotations[name]
		if !strings.Contains(text, "shop") || strings.Contains(text, "<no value>") || strings.Contains(text, "%!") {
			t.Errorf("annotation %s does not name the service or did not render: %q", name, text)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// eventCount is the SLO's event counters read from one /metrics answer.
type eventCount struct {
	asked, got time.Time // when the request was sent and answered
	good, bad  float64
}

func (c eventCount) total() float64 { return c.good + c.bad }

// burn is the burn rate over every window that holds the whole run (30m,
// 1h, 6h), computed as docs/slo.md defines it: (bad/total)/(1-objective).
func (c eventCount) burn() float64 { return c.bad / c.total() / alertSLOBudget }

var sloEventsRe = regexp.MustCompile(`(?m)^slo_events_total\{result="(good|bad)",service="shop",slo="availability"\} (\S+)$`)

// fetchEvents reads the SLO's raw event counters from the daemon.
func fetchEvents(t *testing.T, d *daemon) eventCount {
	t.Helper()
	c := eventCount{asked: time.Now()}
	_, body := d.get("/metrics")
	c.got = time.Now()
	for _, m := range sloEventsRe.FindAllStringSubmatch(body, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("slo_events_total %s: %v", m[0], err)
		}
		if m[1] == "good" {
			c.good = v
		} else {
			c.bad = v
		}
	}
	if c.total() == 0 {
		t.Fatalf("no slo_events_total for shop/availability:\n%s", grepProbe(body))
	}
	return c
}

// crossing is the first answer of the daemon in which a condition on its
// counters holds, and the answer before it.
type crossing struct{ prev, now eventCount }

// watchBurn fetches the daemon's counters every 200ms, from the answer
// prev on, until cond holds, and fails at deadline or if a notification
// matching early arrives first.
func watchBurn(t *testing.T, d *daemon, hook *webhookRecorder, prev eventCount, deadline time.Time, early func(notification) bool, cond func(eventCount) bool) crossing {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		now := fetchEvents(t, d)
		if cond(now) {
			return crossing{prev, now}
		}
		if n, ok := hook.find(early); ok {
			t.Fatalf("notification before the burn rate crossed %v (now %v at %v bad of %v events): %v", pageBurnSlow, now.burn(), now.bad, now.total(), n)
		}
		if now.got.After(deadline) {
			t.Fatalf("the burn rate did not cross %v by %s: %v at %v bad of %v events", pageBurnSlow, deadline.Format(time.StampMilli), now.burn(), now.bad, now.total())
		}
		prev = now
		<-tick.C
	}
}

// notification is one webhook call of Alertmanager (payload version 4).
type notification struct {
	received    time.Time
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

// String summarizes the notification for failure messages.
func (n notification) String() string {
	var alerts []string
	for _, a := range n.Alerts {
		alerts = append(alerts, fmt.Sprintf("%s %v", a.Status, a.Labels))
	}
	return fmt.Sprintf("%s to %s at %s: %s", n.Status, n.Receiver, n.received.Format(time.StampMilli), strings.Join(alerts, "; "))
}

// has tells whether the notification holds an alert with status ("" for
// any) whose labels include labels.
func (n notification) has(status string, labels map[string]string) bool {
	for _, a := range n.Alerts {
		if status != "" && a.Status != status {
			continue
		}
		match := true
		for k, v := range labels {
			if a.Labels[k] != v {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}

// webhookRecorder is the webhook receiver Alertmanager notifies: it
// records every notification, with the receiver taken from the URL path
// (/pager, /ticket), checked against the payload.
type webhookRecorder struct {
	url     string
	mu      sync.Mutex
	got     []notification
	errs    []string
	changed chan struct{} // signalled after every call
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	t.Helper()
	w := &webhookRecorder{changed: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := notification{received: time.Now()}
		err := json.NewDecoder(r.Body).Decode(&n)
		if err == nil && "/"+n.Receiver != r.URL.Path {
			err = fmt.Errorf("receiver %q posted to %s", n.Receiver, r.URL.Path)
		}
		w.mu.Lock()
		if err != nil {
			w.errs = append(w.errs, err.Error())
		} else {
			w.got = append(w.got, n)
		}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *webhookRecorder) all() []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// find returns the first notification that match accepts (nil: none).
func (w *webhookRecorder) find(match func(notification) bool) (notification, bool) {
	if match == nil {
		return notification{}, false
	}
	for _, n := range w.all() {
		if match(n) {
			return n, true
		}
	}
	return notification{}, false
}

// wait returns the first notification matching want, failing at deadline,
// on a malformed call, or if one matching bad arrives.
func (w *webhookRecorder) wait(t *testing.T, deadline time.Time, what string, bad, want func(notification) bool) notification {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		errs := slices.Clone(w.errs)
		w.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("malformed webhook calls: %q", errs)
		}
		if n, ok := w.find(bad); ok {
			t.Fatalf("waiting for %s: unexpected notification %v", what, n)
		}
		if n, ok := w.find(want); ok {
			return n
		}
		select {
		case <-w.changed:
		case <-timer.C:
			t.Fatalf("no notification of %s by %s; received: %v", what, deadline.Format(time.StampMilli), w.all())
		}
	}
}

// deriveAlertmanagerConfig writes the example configuration with its
// webhooks sent to webhookURL/<receiver> and its group timers at 1s, so a
// test sees its routes, grouping and inhibition without waiting minutes.
func deriveAlertmanagerConfig(t *testing.T, webhookURL string) string {
	t.Helper()
	raw, err := os.ReadFile(alertmanagerExample)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", alertmanagerExample, err)
	}
	route, ok := cfg["route"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no route", alertmanagerExample)
	}
	var shorten func(route map[string]any)
	shorten = func(route map[string]any) {
		route["group_wait"], route["group_interval"] = "1s", "1s"
		// Once per test: a repeat would be a second firing notification.
		route["repeat_interval"] = "1h"
		children, _ := route["routes"].([]any)
		for _, c := range children {
			if child, ok := c.(map[string]any); ok {
				shorten(child)
			}
		}
	}
	shorten(route)
	receivers, _ := cfg["receivers"].([]any)
	for _, r := range receivers {
		receiver, _ := r.(map[string]any)
		name, _ := receiver["name"].(string)
		hooks, _ := receiver["webhook_configs"].([]any)
		if len(hooks) == 0 || len(receiver) != 2 {
			t.Fatalf("receiver %q of %s: want only webhook_configs, which the test redirects to itself", name, alertmanagerExample)
		}
		for _, h := range hooks {
			hook, ok := h.(map[string]any)
			if !ok {
				t.Fatalf("receiver %q of %s: malformed webhook_configs", name, alertmanagerExample)
			}
			hook["url"] = webhookURL + "/" + name
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "alertmanager.yml")
	writeFile(t, path, string(out))
	return path
}

// alertmanagerServer is a running Alertmanager process.
type alertmanagerServer struct {
	url    string
	output syncBuffer
	exited chan struct{}
}

// startAlertmanager runs Alertmanager on loopback with clustering off,
// and waits until it is ready. It is killed at cleanup.
func startAlertmanager(t *testing.T, path, configFile string) *alertmanagerServer {
	t.Helper()
	dir := t.TempDir()
	return withFreePort(t, func(attempt int) (*alertmanagerServer, error) {
		return runAlertmanager(t, path, configFile, filepath.Join(dir, fmt.Sprintf("data-%d", attempt)))
	})
}

func runAlertmanager(t *testing.T, path, configFile, dataDir string) (*alertmanagerServer, error) {
	t.Helper()
	addr, err := freeLoopbackAddress()
	if err != nil {
		return nil, err
	}
	am := &alertmanagerServer{url: "http://" + addr, exited: make(chan struct{})}
	cmd := exec.Command(path,
		"--config.file="+configFile,
		"--storage.path="+dataDir,
		"--web.listen-address="+addr,
		// Empty: no gossip listener on 0.0.0.0:9094.
		"--cluster.listen-address=",
		"--log.level=debug",
	)
	cmd.Stdout, cmd.Stderr = &am.output, &am.output
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting alertmanager: %w", err)
	}
	go func() {
		cmd.Wait()
		close(am.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-am.exited
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", am.output.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-am.exited:
			return nil, fmt.Errorf("alertmanager exited before it was ready:\n%s", am.output.String())
		default:
		}
		if resp, err := http.Get(am.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("alertmanager not ready within 30s:\n%s", am.output.String())
}

// post sends firing alerts with these label sets, as Prometheus would.
func (am *alertmanagerServer) post(t *testing.T, labels ...map[string]string) {
	t.Helper()
	type postable struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   time.Time         `json:"endsAt"`
	}
	now := time.Now()
	var alerts []postable
	for _, l := range labels {
		alerts = append(alerts, postable{l, now, now.Add(time.Hour)})
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(am.url+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/v2/alerts: %d %s", resp.StatusCode, msg)
	}
}

// amAlert is an alert as Alertmanager's API v2 shows it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func (am *alertmanagerServer) alerts(t *testing.T) []amAlert {
	t.Helper()
	resp, err := http.Get(am.url + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatalf("GET /api/v2/alerts: %d: %v", resp.StatusCode, err)
	}
	return alerts
}

// copyRules copies the shipped rule files into a temporary directory, so
// Prometheus reads one version of them whatever happens in the tree, and
// returns their paths. The SLO rules must be among them.
func copyRules(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(files, func(f string) bool { return filepath.Base(f) == "slo.rules.yml" }) {
		t.Fatalf("%s does not include slo.rules.yml: %q", rulesGlob, files)
	}
	dir := t.TempDir()
	var paths []string
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(f))
		writeFile(t, path, string(content))
		paths = append(paths, path)
	}
	return paths
}

// startPrometheusAlerting runs Prometheus on loopback, scraping target as
// job reliabilityd every alertScrape and evaluating rules every second,
// with alerts sent to alertmanager.
func startPrometheusAlerting(t *testing.T, path, target, alertmanager string, rules []string) *prometheusServer {
	t.Helper()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	ruleFiles, err := json.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, configFile, fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: 1s
rule_files: %s
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: reliabilityd
    static_configs:
      - targets: [%q]
`, model.Duration(alertScrape), model.Duration(alertScrape), ruleFiles, alertmanager, target))
	return withFreePort(t, func(attempt int) (*prometheusServer, error) {
		return runPrometheus(t, path, configFile, filepath.Join(dir, fmt.Sprintf("data-%d", attempt)))
	})
}
