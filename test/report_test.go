package test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// reportTestConfig: shop's probe fails one run in four (its SLO of 99 %
// is missed), search's never fails (its SLO of 90 % is met). Runs are a
// second apart with the interval as timeout, so they never overlap and a
// run's event is recorded before the next request.
const reportTestConfig = `
global:
  evaluation_interval: 1s
services:
  - name: shop
    owner: payments
    priority: critical
    probes:
      - {name: home, interval: 1s, timeout: 1s, http: {url: "%[1]s/shop"}}
    slos:
      - {name: availability, objective: 99, window: 1d, sli: {probes: [home]}}
  - name: search
    probes:
      - {name: api, interval: 1s, timeout: 1s, http: {url: "%[1]s/search"}}
    slos:
      - {name: availability, objective: 90, window: 1d, sli: {probes: [api]}}
`

// shopFailEvery: the shop target answers 500 to every shopFailEvery-th request.
const shopFailEvery = 4

// TestReportPageInChromium renders the report page and a service page in
// Debian's headless Chromium, checks the figures against what the target
// served, follows every link, and saves screenshots under test/out/.
func TestReportPageInChromium(t *testing.T) {
	chromium := lookChromium(t)
	var shopServed, searchServed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/shop":
			if shopServed.Add(1)%shopFailEvery == 0 {
				http.Error(w, "deterministic failure", http.StatusInternalServerError)
				return
			}
		case "/search":
			searchServed.Add(1)
		}
		w.Write([]byte("ok"))
	}))
	defer target.Close()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, fmt.Sprintf(reportTestConfig, target.URL))
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	// Eight events make two failures: enough for every figure to show.
	d.waitFor(60*time.Second,
		`^slo_window_events\{service="shop",slo="availability",window="full"\} ([89]|[1-9]\d+)$`,
		`^slo_window_events\{service="search",slo="availability",window="full"\} ([89]|[1-9]\d+)$`)

	b := &browser{t: t, path: chromium, profile: t.TempDir()}
	reportURL := d.url + "/"
	report := b.dumpDOM(reportURL)
	served := map[string]int64{"shop": shopServed.Load(), "search": searchServed.Load()}

	table := findOne(t, report, "the services table", func(n *html.Node) bool { return n.Data == "table" && attrOf(n, "id") == "services" })
	rows := findNodes(table, func(n *html.Node) bool { return n.Data == "tr" && attrOf(n, "data-service") != "" })
	var names []string
	for _, r := range rows {
		names = append(names, attrOf(r, "data-service"))
	}
	if !slices.Equal(names, []string{"shop", "search"}) {
		t.Fatalf("services table rows %q, want shop and search", names)
	}
	for _, tt := range []struct {
		service   string
		objective float64
		fails     bool // every shopFailEvery-th request failed
		status    string
	}{
		{"shop", 0.99, true, "fail"},
		{"search", 0.90, false, "ok"},
	} {
		t.Run(tt.service, func(t *testing.T) {
			row := rows[slices.Index(names, tt.service)]
			cell := rowCells(row)
			events := checkSLOCell(t, cell["slos"], tt.objective, served[tt.service])
			good, bad := events, int64(0)
			if tt.fails {
				// The events are the first requests the target served, in
				// order: the runs never overlap.
				bad = events / shopFailEvery
				good = events - bad
			}
			if want := fmt.Sprintf("availability: %.3f %% / %s %% · 1d · %d events", 100*float64(good)/float64(events),
				strconv.FormatFloat(tt.objective*100, 'f', -1, 64), events); cell["slos"] != want {
				t.Errorf("SLO cell %q, want %q", cell["slos"], want)
			}
			remaining := 1 - float64(bad)/((1-tt.objective)*float64(events))
			if want := fmt.Sprintf("availability: %.3f %%", 100*remaining); cell["budget"] != want {
				t.Errorf("budget cell %q, want %q", cell["budget"], want)
			}
			status := findOne(t, row, "the status cell", func(n *html.Node) bool { return n.Data == "td" && attrOf(n, "class") == "status" })
			if got := attrOf(status, "data-status"); got != tt.status {
				t.Errorf("status %q, want %q: %s", got, tt.status, nodeText(status))
			}
			if tt.fails && !strings.Contains(nodeText(status), fmt.Sprintf("SLO availability: %.3f %% attained over 1d, below the 99 %% objective", 100*float64(good)/float64(events))) {
				t.Errorf("status cell %q lacks the missed objective", nodeText(status))
			}
		})
	}
	failures := findNodes(findOne(t, report, "the failures table", func(n *html.Node) bool { return n.Data == "table" && attrOf(n, "class") == "failures" }),
		func(n *html.Node) bool { return n.Data == "tr" })[1:]
	if len(failures) < 2 {
		t.Errorf("%d recent probe failures, want at least the 2 of the first 8 runs", len(failures))
	}
	for _, f := range failures {
		if cells := nodeTexts(findNodes(f, func(n *html.Node) bool { return n.Data == "td" })); len(cells) != 6 ||
			cells[1] != "shop" || cells[2] != "home" || cells[3] != "status" || !strings.Contains(cells[4], "500") {
			t.Errorf("recent failure %q, want shop/home failing with status 500", cells)
		}
	}

	// Each probe's detail is on its service's page, not on the report.
	if probes := findNodes(report, func(n *html.Node) bool { return attrOf(n, "data-probe") != "" }); len(probes) != 0 {
		t.Errorf("the report lists %d probes in detail, want none", len(probes))
	}

	// Follow shop's link to its page.
	link := findOne(t, rows[0], "shop's link", func(n *html.Node) bool { return n.Data == "a" })
	serviceURL := resolve(t, reportURL, attrOf(link, "href"))
	if serviceURL != d.url+"/service/shop" {
		t.Errorf("shop's link goes to %s", serviceURL)
	}
	service := b.dumpDOM(serviceURL)
	shopServedAfter := shopServed.Load()
	if h1 := findOne(t, service, "the heading", func(n *html.Node) bool { return n.Data == "h1" }); attrOf(h1, "data-service") != "shop" ||
		nodeText(h1) != "shop failing" {
		t.Errorf("service page heading %q", nodeText(h1))
	}
	full := findOne(t, service, "the full window", func(n *html.Node) bool { return attrOf(n, "data-window") == "full" })
	cells := nodeTexts(findNodes(full, func(n *html.Node) bool { return n.Data == "td" }))
	good, errGood := strconv.ParseInt(cells[1], 10, 64)
	bad, errBad := strconv.ParseInt(cells[2], 10, 64)
	events := good + bad
	if errGood != nil || errBad != nil || events < 8 || events > shopServedAfter || bad != events/shopFailEvery {
		t.Errorf("full window %q: want good + bad events of the first %d requests, every %dth bad", cells, shopServedAfter, shopFailEvery)
	}
	if want := []string{"full", cells[1], cells[2], "0", fmt.Sprintf("%.3f %%", 100*float64(good)/float64(events)),
		fmt.Sprintf("%.2f", float64(bad)/float64(events)/0.01)}; !slices.Equal(cells, want) {
		t.Errorf("full window %q, want %q", cells, want)
	}
	home := findOne(t, service, "the home probe", func(n *html.Node) bool { return attrOf(n, "data-probe") == "home" })
	if got := nodeText(home); !strings.HasPrefix(got, "home http "+target.URL+"/shop 1s ") {
		t.Errorf("probe row %q", got)
	}
	// The recent runs are shop's own, each a success or the status failure.
	runs := findNodes(findOne(t, service, "the runs table", func(n *html.Node) bool { return n.Data == "table" && attrOf(n, "class") == "runs" }),
		func(n *html.Node) bool { return n.Data == "tr" })[1:]
	if len(runs) < 8 {
		t.Errorf("%d recent runs, want at least the first 8", len(runs))
	}
	for _, r := range runs {
		if cells := nodeTexts(findNodes(r, func(n *html.Node) bool { return n.Data == "td" })); len(cells) != 4 || cells[1] != "home" ||
			(cells[2] != "success" && cells[2] != "status") {
			t.Errorf("recent run %q, want home's success or status failure", cells)
		}
	}

	// Every link of both pages answers 200, and none leaves the daemon.
	checked := 0
	for page, doc := range map[string]*html.Node{reportURL: report, serviceURL: service} {
		for _, n := range findNodes(doc, func(n *html.Node) bool { return (n.Data == "a" || n.Data == "link") && attrOf(n, "href") != "" }) {
			u := resolve(t, page, attrOf(n, "href"))
			if !strings.HasPrefix(u, d.url+"/") {
				t.Errorf("%s links outside the daemon: %s", page, u)
				continue
			}
			resp, err := http.Get(u)
			if err != nil {
				t.Errorf("%s links to %s: %v", page, u, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s links to %s: %d", page, u, resp.StatusCode)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d links checked", checked)
	}

	for name, u := range map[string]string{"report.png": reportURL, "report-service-shop.png": serviceURL} {
		path := b.screenshot(u, name)
		t.Logf("screenshot of %s: %s", u, path)
	}
}

// TestServicePageUnknownInChromium: an unknown service's page says so,
// with a 404.
func TestServicePageUnknownInChromium(t *testing.T) {
	b := &browser{t: t, path: lookChromium(t), profile: t.TempDir()}
	d := startDaemon(t, "--storage.path="+t.TempDir())
	resp, err := http.Get(d.url + "/service/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /service/nope = %d, want 404", resp.StatusCode)
	}
	doc := b.dumpDOM(d.url + "/service/nope")
	if got := nodeText(findOne(t, doc, "the message", func(n *html.Node) bool { return attrOf(n, "id") == "not-found" })); got != "The configuration in force has no service named nope." {
		t.Errorf("message %q", got)
	}
}

// lookChromium finds Debian's chromium; CI installs it (.ci/run), so it is
// an error there to lack it.
func lookChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found; .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium not found: apt-get install chromium to run this test")
	return ""
}

// browser runs headless Chromium, one process per page, on a throw-away
// profile. It only ever loads the daemon's pages on 127.0.0.1: every
// background service is off, and no host name resolves.
type browser struct {
	t       *testing.T
	path    string
	profile string
}

// chromiumTimeout bounds one Chromium run; a cold start on a loaded CI
// machine takes seconds.
const chromiumTimeout = 90 * time.Second

func (b *browser) run(args ...string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage", "--no-proxy-server",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + b.profile,
	}, args...)
	cmd := exec.CommandContext(ctx, b.path, args...)
	// Chromium starts helper processes: its own process group lets a
	// timeout end all of them, and only them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(os.Environ(), "HOME="+b.profile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.t.Fatalf("chromium %s: %v (context: %v)\n%s", strings.Join(args, " "), err, ctx.Err(), stderr.String())
	}
	return stdout.Bytes()
}

// dumpDOM returns the DOM Chromium rendered for u.
func (b *browser) dumpDOM(u string) *html.Node {
	b.t.Helper()
	out := b.run("--dump-dom", u)
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		b.t.Fatalf("parsing the DOM of %s: %v", u, err)
	}
	return doc
}

// screenshot saves a 1400×1000 screenshot of u as test/out/name and
// checks it is a PNG of that size with something drawn on it.
func (b *browser) screenshot(u, name string) string {
	b.t.Helper()
	if err := os.MkdirAll("out", 0o755); err != nil {
		b.t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join("out", name))
	if err != nil {
		b.t.Fatal(err)
	}
	os.Remove(path) // a stale file must not pass for a new one
	b.run("--screenshot="+path, "--window-size=1400,1000", "--hide-scrollbars", u)
	f, err := os.Open(path)
	if err != nil {
		b.t.Fatalf("no screenshot of %s: %v", u, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", path, err)
	}
	if size := img.Bounds().Size(); size != (image.Point{X: 1400, Y: 1000}) {
		b.t.Errorf("screenshot %s is %v, want 1400×1000", path, size)
	}
	// A page with tables, badges and coloured figures has many colours; a
	// blank or error page has a handful.
	colours := map[[4]uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y && len(colours) < 64; y += 3 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colours) < 64 {
		b.t.Errorf("screenshot %s has only %d colours: nothing rendered?", path, len(colours))
	}
	return path
}

// checkSLOCell returns the number of events the SLO cell of a report row
// shows, after checking it is within what the target served.
func checkSLOCell(t *testing.T, cell string, objective float64, served int64) int64 {
	t.Helper()
	m := regexp.MustCompile(` · (\d+) events$`).FindStringSubmatch(cell)
	if m == nil {
		t.Fatalf("SLO cell %q shows no event count", cell)
	}
	events, _ := strconv.ParseInt(m[1], 10, 64)
	if events < 8 || events > served {
		t.Fatalf("SLO cell %q: %d events, want 8 to the %d requests served", cell, events, served)
	}
	return events
}

func resolve(t *testing.T, base, href string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(href)
	if err != nil {
		t.Fatalf("bad link %q: %v", href, err)
	}
	u := b.ResolveReference(ref)
	u.Fragment = ""
	return u.String()
}

func findNodes(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func findOne(t *testing.T, n *html.Node, what string, match func(*html.Node) bool) *html.Node {
	t.Helper()
	found := findNodes(n, match)
	if len(found) != 1 {
		t.Fatalf("%d elements are %s, want 1", len(found), what)
	}
	return found[0]
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// nodeText is n's text as laid out on one line: line breaks and block
// elements separate words, runs of white space are one space.
func nodeText(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		switch {
		case c.Type == html.TextNode:
			b.WriteString(c.Data)
		case c.Type == html.ElementNode && slices.Contains([]string{"br", "div", "li", "td", "th", "tr", "p"}, c.Data):
			b.WriteString(" ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func nodeTexts(nodes []*html.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = nodeText(n)
	}
	return out
}

// rowCells returns the text of a row's cells by class.
func rowCells(row *html.Node) map[string]string {
	out := map[string]string{}
	for _, td := range findNodes(row, func(n *html.Node) bool { return n.Data == "td" }) {
		if class := attrOf(td, "class"); class != "" {
			out[class] = nodeText(td)
		}
	}
	return out
}
