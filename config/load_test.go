package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// update rewrites the golden .err files: go test ./config -update.
var update = flag.Bool("update", false, "rewrite testdata/*.err golden files")

// TestLoadBad loads every testdata/bad-*.yml and compares the whole error
// text with its bad-*.yml.err golden file.
func TestLoadBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/bad-*.yml files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%q) succeeded, want an error; config:\n%s", file, cfg)
			}
			if cfg != nil {
				t.Errorf("Load(%q) returned a config with its error", file)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Load(%q) error %T is not a non-empty Errors: %v", file, err, err)
			}
			got := err.Error() + "\n"
			golden := file + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("Load(%q) error:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

// TestGoldenFilesPaired guards against a stale golden file whose input was
// renamed or deleted.
func TestGoldenFilesPaired(t *testing.T) {
	goldens, err := filepath.Glob("testdata/*.err")
	if err != nil {
		t.Fatal(err)
	}
	for _, golden := range goldens {
		if _, err := os.Stat(strings.TrimSuffix(golden, ".err")); err != nil {
			t.Errorf("golden file %s has no input: %v", golden, err)
		}
	}
}

func TestLoadGood(t *testing.T) {
	files, err := filepath.Glob("testdata/good-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := Load(file)
			if err != nil {
				t.Fatalf("Load(%q): %v", file, err)
			}
			if cfg.Filename != file {
				t.Errorf("Filename = %q, want %q", cfg.Filename, file)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("loaded config does not validate: %v", err)
			}
		})
	}
}

func TestLoadEmpty(t *testing.T) {
	for _, data := range []string{"", "\n", "# only a comment\n", "---\n", "~\n", "global: ~\n", "global:\n  history: ~\n"} {
		t.Run(data, func(t *testing.T) {
			cfg, err := Parse([]byte(data), "empty.yml")
			if err != nil {
				t.Fatalf("Parse(%q): %v", data, err)
			}
			if len(cfg.Services) != 0 {
				t.Errorf("Services = %v, want none", cfg.Services)
			}
			if !reflect.DeepEqual(cfg.Global, DefaultGlobalConfig) {
				t.Errorf("Global = %+v, want the defaults %+v", cfg.Global, DefaultGlobalConfig)
			}
		})
	}
}

func TestLoadMinimalDefaults(t *testing.T) {
	cfg, err := Load("testdata/good-minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Global, DefaultGlobalConfig) {
		t.Errorf("Global = %+v, want %+v", cfg.Global, DefaultGlobalConfig)
	}
	probes := cfg.Services[0].Probes
	wantHTTP := DefaultHTTPProbe
	wantHTTP.URL = "https://shop.example/"
	if !reflect.DeepEqual(*probes[0].HTTP, wantHTTP) {
		t.Errorf("http probe = %+v, want %+v", *probes[0].HTTP, wantHTTP)
	}
	wantTCP := DefaultTCPProbe
	wantTCP.Address = "db.shop.example:5432"
	if !reflect.DeepEqual(*probes[1].TCP, wantTCP) {
		t.Errorf("tcp probe = %+v, want %+v", *probes[1].TCP, wantTCP)
	}
	for _, p := range probes {
		if p.Interval != Duration(30*time.Second) || p.Timeout != Duration(10*time.Second) {
			t.Errorf("probe %s: interval %s timeout %s, want 30s and 10s", p.Name, p.Interval, p.Timeout)
		}
	}
	if got := probes[0].Type(); got != "http" {
		t.Errorf("Type() = %q, want http", got)
	}
}

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	wantGlobal := GlobalConfig{
		ProbeInterval:       Duration(time.Minute),
		ProbeTimeout:        Duration(15 * time.Second),
		MaxConcurrentProbes: 200,
		EvaluationInterval:  Duration(15 * time.Second),
		History:             HistoryConfig{Successes: 20, Failures: 200},
	}
	if cfg.Global != wantGlobal {
		t.Errorf("Global = %+v, want %+v", cfg.Global, wantGlobal)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("%d services, want 2", len(cfg.Services))
	}
	checkout := cfg.Services[0]
	if checkout.Owner != "payments" || checkout.Priority != "critical" {
		t.Errorf("owner, priority = %q, %q", checkout.Owner, checkout.Priority)
	}
	home := checkout.Probes[0]
	h := home.HTTP
	checks := []struct {
		name      string
		got, want any
	}{
		{"interval", home.Interval, Duration(30 * time.Second)},
		{"timeout", home.Timeout, Duration(5 * time.Second)},
		{"method", h.Method, "POST"},
		{"headers", h.Headers, map[string]string{"Accept": "text/html", "X-Probe": "reliabilityd"}},
		{"body", h.Body, `{"ping": true}`},
		{"valid_status_codes", h.ValidStatusCodes, []int{200, 204}},
		{"body regexp", h.FailIfBodyMatches[0].String(), "(?i)maintenance"},
		{"body not regexp", h.FailIfBodyNotMatches[0].String(), "<title>Shop</title>"},
		{"header match", h.FailIfHeaderMatches[0].Header + " " + h.FailIfHeaderMatches[0].Regexp.String(), "X-Cache MISS"},
		{"allow_missing", h.FailIfHeaderMatches[0].AllowMissing, true},
		{"header not match", h.FailIfHeaderNotMatches[0].Regexp.String(), "^text/html"},
		{"fail_if_not_tls", h.FailIfNotTLS, true},
		{"follow_redirects", h.FollowRedirects, false},
		{"max_redirects", h.MaxRedirects, 3},
		{"body_size_limit", h.BodySizeLimit, ByteSize(512 * 1024)},
		{"tls_config", h.TLSConfig, TLSConfig{ServerName: "shop.example", MinVersion: "TLS13"}},
		{"ip_protocol", h.IPProtocol, "ip6"},
		{"ip_protocol_fallback", h.IPProtocolFallback, false},
		{"keep_alive", h.KeepAlive, true},
		{"tcp address", checkout.Probes[1].TCP.Address, "mail.shop.example:25"},
		{"tcp steps", len(checkout.Probes[1].TCP.QueryResponse), 4},
		{"tcp expect", checkout.Probes[1].TCP.QueryResponse[0].Expect.String(), "^220 "},
		{"tcp send", checkout.Probes[1].TCP.QueryResponse[1].Send, "EHLO reliabilityd\r\n"},
		{"tcp default interval", checkout.Probes[1].Interval, Duration(time.Minute)},
		{"tcp default timeout", checkout.Probes[1].Timeout, Duration(15 * time.Second)},
		{"search method default", cfg.Services[1].Probes[0].HTTP.Method, "GET"},
		{"search body limit default", cfg.Services[1].Probes[0].HTTP.BodySizeLimit, ByteSize(10 << 20)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// TestLoadFullSchedules checks the maintenance windows, hours of
// operation and SLOs of good-full.yml as decoded, with instants worked out
// by hand from the zones' UTC offsets.
func TestLoadFullSchedules(t *testing.T) {
	cfg, err := Load("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	checkout, search := cfg.Services[0], cfg.Services[1]
	if len(checkout.Maintenance) != 3 || len(checkout.SLOs) != 3 || len(search.SLOs) != 1 {
		t.Fatalf("checkout: %d maintenance windows, %d SLOs; search: %d SLOs; want 3, 3, 1",
			len(checkout.Maintenance), len(checkout.SLOs), len(search.SLOs))
	}
	weekly := checkout.Maintenance[0].Weekly
	local, absolute := checkout.Maintenance[1].Once, checkout.Maintenance[2].Once
	hours := checkout.HoursOfOperation
	if weekly == nil || local == nil || absolute == nil || hours == nil {
		t.Fatalf("weekly %v, once %v and %v, hours %v: want all set", weekly, local, absolute, hours)
	}
	availability, monthly, latency := checkout.SLOs[0], checkout.SLOs[1], checkout.SLOs[2]
	quarterly := search.SLOs[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"weekly once unset", checkout.Maintenance[0].Once, (*OnceWindow)(nil)},
		{"weekly days Mon, sunday", weekly.Days, []Weekday{Weekday(time.Monday), Weekday(time.Sunday)}},
		{"weekly start", [2]int{weekly.Start.Hour(), weekly.Start.Minute()}, [2]int{23, 30}},
		{"weekly duration", weekly.Duration, Duration(3 * time.Hour)},
		{"weekly timezone", weekly.TimeZone.String(), "Europe/Berlin"},
		{"once weekly unset", checkout.Maintenance[1].Weekly, (*WeeklyWindow)(nil)},
		{"once local", local.Start.IsLocal(), true},
		// 02:00 Berlin summer time (UTC+2) is 00:00 UTC.
		{"once local start", local.StartTime().UTC(), time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)},
		{"once local duration", local.Duration, Duration(2 * time.Hour)},
		{"once absolute", absolute.Start.IsLocal(), false},
		// 22:00 at +01:00 is 21:00 UTC; no timezone is needed or used.
		{"once absolute start", absolute.StartTime().UTC(), time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)},
		{"once absolute duration", absolute.Duration, Duration(90 * time.Minute)},
		{"once absolute zone unset", absolute.TimeZone.Get(), time.UTC},
		{"hours days monday, Fri", hours.Days, []Weekday{Weekday(time.Monday), Weekday(time.Friday)}},
		{"hours start", hours.Start.String(), "22:00"},
		{"hours end", [2]int{hours.End.Hour(), hours.End.Minute()}, [2]int{6, 0}},
		{"hours timezone", hours.TimeZone.String(), "America/New_York"},
		{"search has no hours", search.HoursOfOperation, (*HoursOfOperation)(nil)},
		{"search has no maintenance", len(search.Maintenance), 0},

		{"availability objective", availability.Objective, 99.9},
		{"availability default window", availability.Window, Duration(30 * 24 * time.Hour)},
		{"availability calendar", availability.Calendar, ""},
		{"availability probes", availability.SLI.Probes, []string{"home", "smtp"}},
		{"availability kind", availability.SLI.Kind(), "availability"},
		{"monthly calendar", monthly.Calendar, "month"},
		{"monthly window stays unset", monthly.Window, Duration(0)},
		{"monthly timezone", monthly.TimeZone.Get().String(), "Europe/Berlin"},
		{"latency window", latency.Window, Duration(7 * 24 * time.Hour)},
		{"latency threshold", latency.SLI.LatencyBelow, Duration(300 * time.Millisecond)},
		{"latency kind", latency.SLI.Kind(), "latency"},
		{"latency objective ratio", latency.ObjectiveRatio(), 0.95},
		{"renamed_from", latency.RenamedFrom, "latency"},
		{"quarterly calendar", quarterly.Calendar, "quarter"},
		{"quarterly zone defaults to UTC", quarterly.TimeZone.Get(), time.UTC},
		{"quarterly zone unset", quarterly.TimeZone.IsZero(), true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestDefaultsInheritance(t *testing.T) {
	cfg, err := Load("testdata/good-inherit.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.ProbeTimeout != Duration(5*time.Second) {
		t.Errorf("global.probe_timeout = %s, want 5s (defaulted 10s capped at the 5s interval)", cfg.Global.ProbeTimeout)
	}
	want := map[string][2]time.Duration{
		"inherited": {5 * time.Second, 5 * time.Second},
		"fast":      {2 * time.Second, 2 * time.Second},
		"slow":      {time.Minute, 5 * time.Second},
		"explicit":  {time.Minute, 45 * time.Second},
	}
	for _, p := range cfg.Services[0].Probes {
		got := [2]time.Duration{p.Interval.Duration(), p.Timeout.Duration()}
		if got != want[p.Name] {
			t.Errorf("probe %s: interval, timeout = %v, want %v", p.Name, got, want[p.Name])
		}
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/good-paths.yml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "conf", "reliability.yml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf")
	probes := cfg.Services[0].Probes
	checks := []struct{ name, got, want string }{
		{"ca_file", probes[0].HTTP.TLSConfig.CAFile, filepath.Join(conf, "certs/ca.pem")},
		{"cert_file", probes[0].HTTP.TLSConfig.CertFile, filepath.Join(conf, "certs/client.pem")},
		{"absolute key_file", probes[0].HTTP.TLSConfig.KeyFile, "/etc/reliabilityd/client.key"},
		{"password_file", probes[0].HTTP.BasicAuth.PasswordFile, filepath.Join(conf, "secrets/password")},
		{"bearer_token_file", probes[1].HTTP.BearerTokenFile, filepath.Join(dir, "token")},
		{"tcp ca_file", probes[2].TCP.TLSConfig.CAFile, filepath.Join(conf, "ca.pem")},
		{"unset stays empty", probes[2].TCP.TLSConfig.CertFile, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestRelativePathsRelativeFilename checks that a relative config file name
// still gives absolute paths, so resolving the String() output again is a
// no-op.
func TestRelativePathsRelativeFilename(t *testing.T) {
	cfg, err := Load("testdata/good-paths.yml")
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(wd, "testdata", "certs", "ca.pem")
	if got := cfg.Services[0].Probes[0].HTTP.TLSConfig.CAFile; got != want {
		t.Errorf("ca_file = %q, want %q", got, want)
	}
	again, err := Parse([]byte(cfg.String()), cfg.Filename)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != cfg.String() {
		t.Errorf("paths changed on the second parse:\n%s\nwant:\n%s", again, cfg)
	}
}

func TestParseWithoutFilename(t *testing.T) {
	data := "services:\n  - name: a\n    probes:\n      - name: p\n        http: {url: /x, tls_config: {ca_file: ca.pem}}\n"
	_, err := Parse([]byte(data), "")
	want := "line 5:21: services[0].probes[0].http.url: must be an absolute http or https URL, got \"/x\""
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error = %v, want %s", err, want)
	}
	cfg, err := Parse([]byte(strings.Replace(data, "/x", "http://x", 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Services[0].Probes[0].HTTP.TLSConfig.CAFile; got != "ca.pem" {
		t.Errorf("without a file name ca_file = %q, want it left as written", got)
	}
}

func TestLoadUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yml")
	_, err := Load(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestErrorsAccess(t *testing.T) {
	_, err := Load("testdata/bad-several.yml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not Errors", err)
	}
	if len(errs) < 5 {
		t.Fatalf("%d errors, want every problem of the file: %v", len(errs), err)
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Errorf("errors not sorted by line: %v before %v", errs[i-1], errs[i])
		}
	}
	first := errs[0]
	want := FieldError{File: "testdata/bad-several.yml", Line: 2, Column: 19, Path: "global.probe_interval"}
	if first.File != want.File || first.Line != want.Line || first.Column != want.Column || first.Path != want.Path {
		t.Errorf("first error = %+v, want position and path of %+v", *first, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe != first {
		t.Errorf("errors.As(*FieldError) = %v, want the first error", fe)
	}
}

func TestFieldErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{"full", FieldError{File: "r.yml", Line: 3, Column: 7, Path: "a.b", Msg: "bad"}, "r.yml:3:7: a.b: bad"},
		{"no column", FieldError{File: "r.yml", Line: 3, Msg: "invalid YAML"}, "r.yml:3: invalid YAML"},
		{"no position", FieldError{File: "r.yml", Path: "a", Msg: "bad"}, "r.yml: a: bad"},
		{"no file", FieldError{Line: 3, Column: 7, Path: "a", Msg: "bad"}, "line 3:7: a: bad"},
		{"code", FieldError{Path: "a", Msg: "bad"}, "a: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParentPath(t *testing.T) {
	tests := map[string]string{
		"services[0].probes[1].http.url": "services[0].probes[1].http",
		"services[0].probes[1]":          "services[0].probes",
		"services[0]":                    "services",
		`http.headers["X.Y[0]"]`:         "http.headers",
		"global":                         "",
		"":                               "",
	}
	for path, want := range tests {
		t.Run(path, func(t *testing.T) {
			if got := parentPath(path); got != want {
				t.Errorf("parentPath(%q) = %q, want %q", path, got, want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"url", "urll", 1}, {"timout", "timeout", 1}, {"servces", "services", 1}, {"abc", "xyz", 3}, {"", "ab", 2},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	cfg, err := Load("testdata/good-minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := cfg.String()
	for _, want := range []string{"probe_interval: 30s\n", "      - name: home\n", "          url: https://shop.example/\n", "body_size_limit: 10MiB\n", "interval: 30s\n", "timeout: 10s\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
	again, err := Parse([]byte(out), "again.yml")
	if err != nil {
		t.Fatalf("String() output does not parse: %v\n%s", err, out)
	}
	if again.String() != out {
		t.Errorf("String() of the reparsed config differs:\n%s\nwant:\n%s", again, out)
	}
}

// TestSyntaxErrorLines checks the line of YAML syntax errors, which yaml.v3
// gets wrong for parser errors and omits on the first line.
func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"first line", "a: b: c\n", "s.yml:1: invalid YAML: mapping values are not allowed in this context"},
		{"first line without newline", "a: b: c", "s.yml:1: invalid YAML: mapping values are not allowed in this context"},
		{"bad indentation", "global:\n  probe_interval: 1s\n probe_timeout: 1s\n", "s.yml:3: invalid YAML: did not find expected key"},
		{"unclosed flow", "global: {\nservices: [\n", "s.yml:1: invalid YAML: did not find expected node content"},
		{"unclosed quote", "global:\n  probe_interval: \"1s\nservices: []\n", "s.yml:2: invalid YAML: found unexpected end of stream"},
		{"tab", "global:\n\tprobe_interval: 1s\n", "s.yml:2: invalid YAML: found character that cannot start any token"},
		{"sequence in mapping", "services: []\n- name: x\n", "s.yml:2: invalid YAML: did not find expected key"},
		{"unknown anchor", "services: *nothing\n", "s.yml:1: invalid YAML: unknown anchor 'nothing' referenced"},
		{"invalid utf-8", "services: []\nglobal: \xff\n", "s.yml:2: invalid YAML: invalid leading UTF-8 octet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), "s.yml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse(%q) error = %v, want %s", tt.data, err, tt.want)
			}
		})
	}
}

// TestParseErrors covers how decode errors are located and worded in
// corners the golden files do not reach: flow style, map keys, tags,
// anchors, long values.
func TestParseErrors(t *testing.T) {
	probe := "services:\n  - name: a\n    probes:\n      - name: p\n        "
	tests := []struct {
		name, data, want string
	}{
		{"root not a mapping", "hello\n", `x.yml:1:1: expected a mapping, got "hello"`},
		{"tagged root list", "!custom\n- a\n", "x.yml:1:1: expected a mapping, got a list"},
		{"map value", probe + "http: {url: 'http://x', headers: {A: [1]}}\n",
			`x.yml:5:46: services[0].probes[0].http.headers["A"]: expected a string, got a list`},
		{"header checks", probe + "http: {url: 'http://x', headers: {'bad name': x, B: \"a\\nb\"}}\n",
			"x.yml:5:55: services[0].probes[0].http.headers[\"bad name\"]: invalid header name \"bad name\"\n" +
				`x.yml:5:61: services[0].probes[0].http.headers["B"]: a header value must not contain CR, LF or NUL`},
		{"collection as key", "services:\n  - name: a\n    ? [x]\n    : 1\n", "x.yml:3:7: services[0]: expected a string, got a list"},
		{"long value", probe + "http: {url: 'http://x', max_redirects: 'a very long string value'}\n",
			`x.yml:5:48: services[0].probes[0].http.max_redirects: expected an integer, got "a very long string value"`},
		{"duration as a list", "global: {probe_interval: [30s]}\n", "x.yml:1:26: global.probe_interval: expected a duration, got a list"},
		{"boolean", probe + "http: {url: 'http://x', follow_redirects: maybe}\n",
			`x.yml:5:51: services[0].probes[0].http.follow_redirects: expected true or false, got "maybe"`},
		{"same unknown key twice on a line", "global: {history: {x: 1}, x: 2}\n",
			"x.yml:1:20: global.history.x: unknown field \"x\"\nx.yml:1:27: global.x: unknown field \"x\""},
		{"anchored error reported once", "services:\n  - name: a\n    probes:\n      - &p {name: p, interval: x, tcp: {address: 'a:1'}}\n  - name: b\n    probes: [*p]\n",
			`x.yml:4:32: services[0].probes[0].interval: not a valid duration "x" (use e.g. 30s, 5m, 1h, 30d)`},
		{"duplicate key hides its siblings", "services:\n  - name: shop\n    name: x\n    probes: [{name: p}]\n",
			`x.yml:3:5: services[0].name: duplicate key "name" (first defined on line 2)`},
		{"empty header match", probe + "http: {url: 'http://x', fail_if_header_matches: [{}]}\n",
			"x.yml:5:58: services[0].probes[0].http.fail_if_header_matches[0].header: must be set\n" +
				"x.yml:5:58: services[0].probes[0].http.fail_if_header_matches[0].regexp: must be set"},
		{"null protocol", probe + "http: ~\n", "x.yml:4:9: services[0].probes[0]: a probe needs exactly one protocol section (http, tcp, transaction, dns, grpc, icmp, tls), found none"},
		{"self-referencing anchor", "services: &s [*s]\n", "x.yml:1:11: services: expected a mapping, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), "x.yml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse(%q) error =\n%v\nwant:\n%s", tt.data, err, tt.want)
			}
		})
	}
}

// TestParseAliasBomb checks that a file expanding aliases into millions of
// nodes is rejected quickly instead of being decoded.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n  - name: s0\n    probes: &ps [&q {name: p, http: {url: 'http://h', fail_if_body_matches_regexp: &r [&x a")
	b.WriteString(strings.Repeat(", *x", 200))
	b.WriteString("]}}")
	b.WriteString(strings.Repeat(", *q", 200))
	b.WriteString("]\n")
	for i := 1; i < 200; i++ {
		b.WriteString("  - {name: s" + strconv.Itoa(i) + ", probes: *ps}\n")
	}
	_, err := Parse([]byte(b.String()), "x.yml")
	want := "x.yml: document contains excessive aliasing"
	if err == nil || err.Error() != want {
		t.Errorf("Parse(alias bomb) error = %v, want %s", err, want)
	}
}

// TestLocateFallbacks covers messages the decoder might word in ways
// locate does not know: they keep their text and get the line's position.
func TestLocateFallbacks(t *testing.T) {
	root, err := parseNodes([]byte("global:\n  probe_interval: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	index := newNodeIndex(root)
	tests := []struct {
		msg  string
		want FieldError
	}{
		// The global mapping starts where its first key does.
		{"line 2: something new", FieldError{Line: 2, Column: 3, Path: "global", Msg: "something new"}},
		{"line 9: something new", FieldError{Line: 9, Msg: "something new"}},
		{"no position at all", FieldError{Msg: "no position at all"}},
		{"line 2: cannot unmarshal !!str `5s` into uint8", FieldError{Line: 2, Column: 19, Path: "global.probe_interval", Msg: `expected a non-negative integer, got "5s"`}},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			got := index.locate(tt.msg)
			if *got != tt.want {
				t.Errorf("locate(%q) = %+v, want %+v", tt.msg, *got, tt.want)
			}
		})
	}
}

func TestDescribeTypeName(t *testing.T) {
	tests := map[string]string{
		"[]int":              "a list",
		"map[string]string":  "a mapping",
		"config.plain":       "a mapping",
		"config.ProbeConfig": "a mapping",
		"string":             "a string",
		"bool":               "true or false",
		"int64":              "an integer",
		"uint16":             "a non-negative integer",
		"float64":            "a number",
		"time.Time":          "a value of type time.Time",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			if got := describeTypeName(name); got != want {
				t.Errorf("describeTypeName(%q) = %q, want %q", name, got, want)
			}
		})
	}
}

// TestProbeHash checks the identity the scheduler keeps state by on
// reload: unchanged probes hash alike, any change shows.
func TestProbeHash(t *testing.T) {
	a, err := Load("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	probeA, probeB := &a.Services[0].Probes[0], &b.Services[0].Probes[0]
	if probeA.Hash() != probeB.Hash() {
		t.Fatalf("the same probe loaded twice hashes differently")
	}
	probeB.HTTP.FailIfBodyMatches[0] = Regexp{regexp.MustCompile("other")}
	if probeA.Hash() == probeB.Hash() {
		t.Errorf("a changed regexp does not change the hash")
	}
}

// TestLoadFullCapacity checks the capacity resources of good-full.yml as
// decoded: sizes worked out by hand, defaults written out rather than
// taken from DefaultCapacityConfig, so a changed default shows here.
func TestLoadFullCapacity(t *testing.T) {
	cfg, err := Load("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	resources := cfg.Services[0].Capacity
	if len(resources) != 7 || len(cfg.Services[1].Capacity) != 0 {
		t.Fatalf("checkout has %d resources, search %d; want 7 and 0", len(resources), len(cfg.Services[1].Capacity))
	}
	disk, inodes, archive, memory, cpu, fds, connections :=
		resources[0], resources[1], resources[2], resources[3], resources[4], resources[5], resources[6]
	percent := func(p Percent) *Percent { return &p }
	defaultForecast := ForecastConfig{Method: "linear", Window: Duration(7 * 24 * time.Hour), MinSamples: 12, Alpha: 0.5, Beta: 0.1, ResetDrop: 50}
	checks := []struct {
		name      string
		got, want any
	}{
		{"disk name", disk.Name, "disk"},
		{"disk source", disk.Source, CapacitySource{Filesystem: "/var/lib/shop"}},
		{"disk type", disk.Source.Type(), "filesystem"},
		// 500 × 2^30 bytes.
		{"disk limit 500GiB", disk.Limit, Quantity(536870912000)},
		{"disk headroom 25%", disk.HeadroomTarget, Percent(25)},
		{"disk headroom ratio", disk.HeadroomTarget.Ratio(), 0.25},
		{"disk growth", disk.Growth, GrowthPlan{Months6: percent(20), Months12: percent(45), Months24: percent(100)}},
		{"disk growth 12mo ratio", disk.Growth.Months12.Ratio(), 0.45},
		{"disk interval", disk.Interval, Duration(5 * time.Minute)},
		{"disk timeout", disk.Timeout, Duration(30 * time.Second)},
		{"disk forecast", disk.Forecast, ForecastConfig{Method: "holt", Window: Duration(14 * 24 * time.Hour), MinSamples: 24, Alpha: 0.3, Beta: 0.05, ResetDrop: 30}},
		{"disk reset_drop ratio", disk.Forecast.ResetDrop.Ratio(), 0.3},

		{"inodes source resolved", inodes.Source, CapacitySource{Filesystem: filepath.Join(wd, "testdata", "data"), Inodes: true}},
		{"inodes no limit", inodes.Limit, Quantity(0)},
		{"inodes no headroom target", inodes.HeadroomTarget, Percent(0)},
		{"inodes no growth", inodes.Growth, GrowthPlan{}},
		{"default interval", inodes.Interval, Duration(time.Minute)},
		{"default timeout", inodes.Timeout, Duration(10 * time.Second)},
		{"default forecast", inodes.Forecast, defaultForecast},

		// 2 × 10^12 bytes: TB is base 10.
		{"archive limit 2TB", archive.Limit, Quantity(2e12)},
		{"archive headroom 25 without %", archive.HeadroomTarget, Percent(25)},
		{"archive headroom ratio", archive.HeadroomTarget.Ratio(), 0.25},
		{"archive growth 12mo only", archive.Growth, GrowthPlan{Months12: percent(10)}},

		{"memory type", memory.Source.Type(), "memory"},
		{"memory partial forecast", memory.Forecast, ForecastConfig{Method: "linear", Window: Duration(48 * time.Hour), MinSamples: 12, Alpha: 0.5, Beta: 0.1, ResetDrop: 50}},

		{"cpu type", cpu.Source.Type(), "cpu"},
		{"cpu limit 64", cpu.Limit, Quantity(64)},
		{"cpu interval", cpu.Interval, Duration(5 * time.Second)},
		{"cpu default timeout capped at the interval", cpu.Timeout, Duration(5 * time.Second)},

		{"fds type", fds.Source.Type(), "process"},
		{"fds pid_file resolved", *fds.Source.Process, ProcessSource{PIDFile: filepath.Join(wd, "testdata", "run", "shop.pid"), Resource: "open_fds"}},
		{"connections process", *connections.Source.Process, ProcessSource{Self: true, Resource: "connections"}},
		{"connections limit", connections.Limit, Quantity(10000)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// TestRelativeCapacityPaths checks that the paths of capacity sources
// resolve against the configuration file's directory, and that absolute
// ones and unset ones stay as they are.
func TestRelativeCapacityPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "reliability.yml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	data := `services:
  - name: shop
    capacity:
      - {name: data, source: {filesystem: data/db}}
      - {name: parent, source: {filesystem: ../spool}}
      - {name: root, source: {filesystem: /}}
      - {name: fds, source: {process: {pid_file: run/shop.pid, resource: open_fds}}}
      - {name: self, source: {process: {self: true, resource: open_fds}}}
`
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf")
	resources := cfg.Services[0].Capacity
	checks := []struct{ name, got, want string }{
		{"filesystem", resources[0].Source.Filesystem, filepath.Join(conf, "data", "db")},
		{"filesystem above", resources[1].Source.Filesystem, filepath.Join(dir, "spool")},
		{"absolute filesystem", resources[2].Source.Filesystem, "/"},
		{"pid_file", resources[3].Source.Process.PIDFile, filepath.Join(conf, "run", "shop.pid")},
		{"unset pid_file", resources[4].Source.Process.PIDFile, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestLoadFullRecovery checks the recovery sections of good-full.yml as
// decoded. Defaults are written out rather than taken from the Default*
// values, so a changed default shows here.
func TestLoadFullRecovery(t *testing.T) {
	cfg, err := Load("testdata/good-full.yml")
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join(wd, "testdata")
	checkout, search := cfg.Services[0].Recovery, cfg.Services[1].Recovery
	if checkout == nil || search == nil {
		t.Fatalf("recovery sections: checkout %v, search %v; want both", checkout, search)
	}
	if len(checkout.Backups) != 2 || len(search.Backups) != 2 {
		t.Fatalf("checkout has %d backups, search %d; want 2 and 2", len(checkout.Backups), len(search.Backups))
	}
	db, objects := checkout.Backups[0], checkout.Backups[1]
	snapshot, index := search.Backups[0], search.Backups[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"rto", checkout.RTO, Duration(30 * time.Minute)},
		{"rpo", checkout.RPO, Duration(24 * time.Hour)},
		{"window", checkout.Window, Duration(90 * 24 * time.Hour)},
		// open_after_duration given: open_after is not defaulted beside it.
		{"outage", checkout.Outage, OutageRule{Probes: []string{"home", "smtp"}, OpenAfterDuration: Duration(2 * time.Minute), CloseAfter: 3}},
		{"drills", checkout.Drills, &DrillConfig{Every: Duration(90 * 24 * time.Hour)}},

		{"db type", db.Type(), "file"},
		{"db http unset", db.HTTP, (*BackupHTTP)(nil)},
		// 1.5 × 2^20 bytes.
		{"db file", *db.File, BackupFile{Glob: filepath.Join(testdata, "backups", "db-*.dump"), MinSize: 1572864}},
		{"db interval", db.Interval, Duration(time.Minute)},
		{"db timeout", db.Timeout, Duration(20 * time.Second)},

		{"objects type", objects.Type(), "http"},
		{"objects file unset", objects.File, (*BackupFile)(nil)},
		{"objects http", *objects.HTTP, BackupHTTP{
			URL:             "https://backup.example/api/status",
			JSONField:       "status.last_success",
			Headers:         map[string]string{"Accept": "application/json"},
			BearerTokenFile: filepath.Join(testdata, "secrets", "backup-token"),
			TLSConfig:       TLSConfig{CAFile: filepath.Join(testdata, "certs", "backup-ca.pem"), ServerName: "backup.example"},
			BodySizeLimit:   64 * 1024,
		}},
		{"objects interval", objects.Interval, Duration(10 * time.Minute)},
		{"objects timeout", objects.Timeout, Duration(time.Minute)},

		{"search rto unset", search.RTO, Duration(0)},
		{"search rpo", search.RPO, Duration(6 * time.Hour)},
		{"default window", search.Window, Duration(30 * 24 * time.Hour)},
		{"default outage", search.Outage, OutageRule{OpenAfter: 3, CloseAfter: 2}},
		{"no drills", search.Drills, (*DrillConfig)(nil)},
		{"snapshot http", *snapshot.HTTP, BackupHTTP{URL: "https://search.example/snapshot", BodySizeLimit: 1 << 20}},
		{"default interval", snapshot.Interval, Duration(5 * time.Minute)},
		{"default timeout", snapshot.Timeout, Duration(30 * time.Second)},
		{"absolute glob unchanged", *index.File, BackupFile{Glob: "/var/backups/search/*.tar"}},
		{"index interval", index.Interval, Duration(10 * time.Second)},
		{"default timeout capped at the interval", index.Timeout, Duration(10 * time.Second)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}
