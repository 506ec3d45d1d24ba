package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// unmarshalValue decodes doc, a document "v: ...", into a T and returns
// the one message of the type error, if any, as yaml.v3 collected it.
func unmarshalValue[T any](t *testing.T, doc string) (T, string) {
	t.Helper()
	var holder struct {
		V T `yaml:"v"`
	}
	err := yaml.Unmarshal([]byte(doc), &holder)
	if err == nil {
		return holder.V, ""
	}
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) || len(typeErr.Errors) != 1 {
		t.Fatalf("yaml.Unmarshal(%q) error %T is not a type error with one message: %v", doc, err, err)
	}
	return holder.V, typeErr.Errors[0]
}

// mustLoadLocation loads an IANA zone the tests rely on.
func mustLoadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone database lacks %s: %v", name, err)
	}
	return loc
}

func TestTimeOfDayUnmarshal(t *testing.T) {
	const usage = " (use HH:MM, from 00:00 to 24:00)"
	tests := []struct {
		doc          string
		hour, minute int
		// wantErr is the whole message; empty for success.
		wantErr string
	}{
		{doc: `v: "00:00"`, hour: 0, minute: 0},
		{doc: `v: "08:30"`, hour: 8, minute: 30},
		{doc: `v: "23:59"`, hour: 23, minute: 59},
		{doc: `v: "24:00"`, hour: 24, minute: 0},
		{doc: `v: 08:30`, hour: 8, minute: 30},
		{doc: `v: "7:05"`, hour: 7, minute: 5},
		{doc: `v: "24:01"`, wantErr: `line 1: column 4: not a time of day "24:01"` + usage},
		{doc: `v: "25:00"`, wantErr: `line 1: column 4: not a time of day "25:00"` + usage},
		{doc: `v: "7:5"`, wantErr: `line 1: column 4: not a time of day "7:5"` + usage},
		{doc: `v: "12:60"`, wantErr: `line 1: column 4: not a time of day "12:60"` + usage},
		{doc: `v: "-1:00"`, wantErr: `line 1: column 4: not a time of day "-1:00"` + usage},
		{doc: `v: "+1:00"`, wantErr: `line 1: column 4: not a time of day "+1:00"` + usage},
		{doc: `v: "-0:00"`, wantErr: `line 1: column 4: not a time of day "-0:00"` + usage},
		{doc: `v: "12"`, wantErr: `line 1: column 4: not a time of day "12"` + usage},
		{doc: `v: "ab:cd"`, wantErr: `line 1: column 4: not a time of day "ab:cd"` + usage},
		{doc: `v: "12:00:00"`, wantErr: `line 1: column 4: not a time of day "12:00:00"` + usage},
		{doc: `v: ""`, wantErr: `line 1: column 4: not a time of day ""` + usage},
		{doc: "\nv: [1]", wantErr: `line 2: column 4: not a time of day ""` + usage},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			got, msg := unmarshalValue[TimeOfDay](t, tt.doc)
			if msg != tt.wantErr {
				t.Fatalf("error = %q, want %q", msg, tt.wantErr)
			}
			if tt.wantErr != "" {
				if got.IsSet() {
					t.Errorf("failed value is set: %v", got)
				}
				return
			}
			if !got.IsSet() || got.IsZero() {
				t.Errorf("IsSet() = %v, IsZero() = %v, want a set time", got.IsSet(), got.IsZero())
			}
			if got.Hour() != tt.hour || got.Minute() != tt.minute {
				t.Errorf("Hour(), Minute() = %d, %d, want %d, %d", got.Hour(), got.Minute(), tt.hour, tt.minute)
			}
			if want := NewTimeOfDay(tt.hour, tt.minute); got != want {
				t.Errorf("value = %#v, want NewTimeOfDay(%d, %d) = %#v", got, tt.hour, tt.minute, want)
			}
		})
	}
}

func TestTimeOfDayText(t *testing.T) {
	tests := []struct {
		t    TimeOfDay
		want string
	}{
		{NewTimeOfDay(0, 0), "00:00"},
		{NewTimeOfDay(7, 5), "07:05"},
		{NewTimeOfDay(24, 0), "24:00"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			text, err := tt.t.MarshalText()
			if err != nil || string(text) != tt.want || tt.t.String() != tt.want {
				t.Errorf("MarshalText() = %q, %v; String() = %q; want %q", text, err, tt.t.String(), tt.want)
			}
		})
	}
	if (TimeOfDay{}).IsSet() || !(TimeOfDay{}).IsZero() {
		t.Errorf("the zero TimeOfDay claims to be set")
	}
}

func TestWeekdayUnmarshal(t *testing.T) {
	const usage = " (use mon, tue, wed, thu, fri, sat or sun)"
	tests := []struct {
		doc     string
		want    time.Weekday
		wantErr string
	}{
		{doc: "v: mon", want: time.Monday},
		{doc: "v: Mon", want: time.Monday},
		{doc: "v: monday", want: time.Monday},
		{doc: "v: MONDAY", want: time.Monday},
		{doc: "v: tue", want: time.Tuesday},
		{doc: "v: wednesday", want: time.Wednesday},
		{doc: "v: Thu", want: time.Thursday},
		{doc: "v: friday", want: time.Friday},
		{doc: "v: sat", want: time.Saturday},
		{doc: "v: Sunday", want: time.Sunday},
		{doc: "v: funday", wantErr: `line 1: column 4: not a day of the week "funday"` + usage},
		{doc: "v: mo", wantErr: `line 1: column 4: not a day of the week "mo"` + usage},
		{doc: "v: mond", wantErr: `line 1: column 4: not a day of the week "mond"` + usage},
		{doc: "v: 1", wantErr: `line 1: column 4: not a day of the week "1"` + usage},
		{doc: `v: ""`, wantErr: `line 1: column 4: not a day of the week ""` + usage},
		{doc: "v: [mon]", wantErr: `line 1: column 4: not a day of the week ""` + usage},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			got, msg := unmarshalValue[Weekday](t, tt.doc)
			if msg != tt.wantErr {
				t.Fatalf("error = %q, want %q", msg, tt.wantErr)
			}
			if tt.wantErr == "" && got != Weekday(tt.want) {
				t.Errorf("day = %v, want %v", time.Weekday(got), tt.want)
			}
		})
	}
}

func TestWeekdayText(t *testing.T) {
	want := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	for day := time.Sunday; day <= time.Saturday; day++ {
		text, err := Weekday(day).MarshalText()
		if err != nil || string(text) != want[day] {
			t.Errorf("Weekday(%v).MarshalText() = %q, %v, want %q", day, text, err, want[day])
		}
	}
}

func TestDateTimeUnmarshal(t *testing.T) {
	berlin := mustLoadLocation(t, "Europe/Berlin")
	newYork := mustLoadLocation(t, "America/New_York")
	const usage = " (use 2026-12-01T22:00:00Z, or 2026-12-01T22:00 with timezone)"
	utc := func(year int, month time.Month, day, hour, minute, second int) time.Time {
		return time.Date(year, month, day, hour, minute, second, 0, time.UTC)
	}
	tests := []struct {
		name, doc string
		loc       *time.Location
		// want is the instant In(loc) returns; local is IsLocal().
		want    time.Time
		local   bool
		text    string
		wantErr string
	}{
		{name: "UTC", doc: "v: 2026-12-01T22:00:00Z", loc: berlin,
			want: utc(2026, 12, 1, 22, 0, 0), text: "2026-12-01T22:00:00Z"},
		{name: "offset ignores the zone", doc: `v: "2026-12-01T22:00:00+01:00"`, loc: newYork,
			want: utc(2026, 12, 1, 21, 0, 0), text: "2026-12-01T22:00:00+01:00"},
		{name: "local in winter time", doc: `v: "2026-12-01T22:00"`, loc: berlin, local: true,
			want: utc(2026, 12, 1, 21, 0, 0), text: "2026-12-01T22:00:00"},
		{name: "local in summer time", doc: `v: "2026-07-15T02:00"`, loc: berlin, local: true,
			want: utc(2026, 7, 15, 0, 0, 0), text: "2026-07-15T02:00:00"},
		{name: "local in UTC", doc: `v: "2026-12-01T22:00"`, loc: time.UTC, local: true,
			want: utc(2026, 12, 1, 22, 0, 0), text: "2026-12-01T22:00:00"},
		{name: "local past midnight UTC", doc: `v: "2026-12-01T22:00"`, loc: newYork, local: true,
			want: utc(2026, 12, 2, 3, 0, 0), text: "2026-12-01T22:00:00"},
		{name: "local with seconds", doc: `v: "2026-12-01T22:00:30"`, loc: berlin, local: true,
			want: utc(2026, 12, 1, 21, 0, 30), text: "2026-12-01T22:00:30"},
		{name: "local with a space", doc: `v: "2026-12-01 22:00"`, loc: berlin, local: true,
			want: utc(2026, 12, 1, 21, 0, 0), text: "2026-12-01T22:00:00"},
		{name: "local with a space and seconds", doc: `v: "2026-12-01 22:00:30"`, loc: berlin, local: true,
			want: utc(2026, 12, 1, 21, 0, 30), text: "2026-12-01T22:00:30"},
		// On 2026-03-29 Berlin clocks jump from 02:00 CET to 03:00 CEST
		// (01:00 UTC): 02:30 does not exist and is read with the offset
		// before the jump, +01:00, which is 03:30 CEST.
		{name: "local in the skipped hour", doc: `v: "2026-03-29T02:30"`, loc: berlin, local: true,
			want: utc(2026, 3, 29, 1, 30, 0), text: "2026-03-29T02:30:00"},
		// On 2026-10-25 02:30 happens twice (00:30 and 01:30 UTC): the
		// second one, in winter time, is taken.
		{name: "local in the repeated hour", doc: `v: "2026-10-25T02:30"`, loc: berlin, local: true,
			want: utc(2026, 10, 25, 1, 30, 0), text: "2026-10-25T02:30:00"},
		{name: "word", doc: "v: tomorrow", wantErr: `line 1: column 4: not a date and time "tomorrow"` + usage},
		{name: "date only", doc: "v: 2026-12-01", wantErr: `line 1: column 4: not a date and time "2026-12-01"` + usage},
		{name: "time only", doc: `v: "22:00"`, wantErr: `line 1: column 4: not a date and time "22:00"` + usage},
		{name: "month 13", doc: `v: "2026-13-01T00:00"`, wantErr: `line 1: column 4: not a date and time "2026-13-01T00:00"` + usage},
		{name: "offset without seconds", doc: `v: "2026-12-01T22:00Z"`, wantErr: `line 1: column 4: not a date and time "2026-12-01T22:00Z"` + usage},
		{name: "list", doc: "v: [2026-12-01T22:00]", wantErr: `line 1: column 4: not a date and time ""` + usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := unmarshalValue[DateTime](t, tt.doc)
			if msg != tt.wantErr {
				t.Fatalf("error = %q, want %q", msg, tt.wantErr)
			}
			if tt.wantErr != "" {
				if !got.IsZero() {
					t.Errorf("failed value is not zero: %v", got)
				}
				return
			}
			if got.IsZero() || got.IsLocal() != tt.local {
				t.Errorf("IsZero() = %v, IsLocal() = %v, want false, %v", got.IsZero(), got.IsLocal(), tt.local)
			}
			if at := got.In(tt.loc); !at.Equal(tt.want) {
				t.Errorf("In(%s) = %v, want %v", tt.loc, at.UTC(), tt.want)
			}
			text, err := got.MarshalText()
			if err != nil || string(text) != tt.text {
				t.Errorf("MarshalText() = %q, %v, want %q", text, err, tt.text)
			}
		})
	}
}

func TestLocationUnmarshal(t *testing.T) {
	tests := []struct {
		doc, want, wantErr string
	}{
		{doc: "v: Europe/Berlin", want: "Europe/Berlin"},
		{doc: "v: America/New_York", want: "America/New_York"},
		{doc: "v: UTC", want: "UTC"},
		{doc: "v: Mars/Olympus", wantErr: `line 1: column 4: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Berlin, or UTC)`},
		{doc: "v: Local", wantErr: "line 1: column 4: time zone Local depends on the machine; name the zone (e.g. Europe/Berlin or UTC)"},
		{doc: "v: +01:00", wantErr: `line 1: column 4: unknown time zone "+01:00" (use an IANA name such as Europe/Berlin, or UTC)`},
		{doc: `v: ""`, wantErr: "line 1: column 4: a time zone must be an IANA name such as Europe/Berlin or UTC"},
		{doc: "v: [UTC]", wantErr: "line 1: column 4: a time zone must be an IANA name such as Europe/Berlin or UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			got, msg := unmarshalValue[Location](t, tt.doc)
			if msg != tt.wantErr {
				t.Fatalf("error = %q, want %q", msg, tt.wantErr)
			}
			if tt.wantErr != "" {
				if !got.IsZero() {
					t.Errorf("failed value is set: %v", got)
				}
				return
			}
			text, err := got.MarshalText()
			if got.IsZero() || got.Get().String() != tt.want || err != nil || string(text) != tt.want {
				t.Errorf("location %v, MarshalText() = %q, %v; want %s", got.Get(), text, err, tt.want)
			}
		})
	}
	var unset Location
	if text, err := unset.MarshalText(); !unset.IsZero() || unset.Get() != time.UTC || len(text) != 0 || err != nil {
		t.Errorf("unset location: IsZero() = %v, Get() = %v, MarshalText() = %q, %v; want true, UTC, empty",
			unset.IsZero(), unset.Get(), text, err)
	}
}

// roundTripConfig sets every field this package added for SLOs, in every
// form the types accept.
const roundTripConfig = `
global:
  evaluation_interval: 1m
services:
  - name: shop
    maintenance:
      - weekly: {days: [Sat, sunday], start: "23:30", duration: 3h, timezone: Europe/Berlin}
      - weekly: {days: [wed], start: "02:00", duration: 30m}
      - once: {start: "2026-03-29T02:30", duration: 2h, timezone: Europe/Berlin}
      - once: {start: "2026-12-01 22:00:30", duration: 1h}
      - once: {start: "2026-12-01T22:00:00-05:00", duration: 1d}
    hours_of_operation: {days: [monday, Fri], start: "22:00", end: "06:00", timezone: America/New_York}
    probes:
      - {name: home, http: {url: "https://shop.example/"}}
      - {name: db, tcp: {address: "db.shop.example:5432"}}
    slos:
      - {name: availability, objective: 99.9, sli: {probes: [home, db]}}
      - {name: monthly, objective: 99.5, calendar: month, timezone: Europe/Berlin, sli: {probes: [home]}}
      - {name: weekly, objective: 99, calendar: week, sli: {probes: [db]}}
      - name: fast
        objective: 95
        window: 36h
        renamed_from: latency
        sli: {probes: [home], latency_below: 250ms}
  - name: office
    hours_of_operation: {start: "08:00", end: "24:00"}
    # A service without probes would come back with "probes: []", an
    # empty list in place of nil, which DeepEqual tells apart.
    probes: [{name: door, tcp: {address: "office.example:443"}}]
`

// TestStringRoundTripSLOs checks that what /config shows for SLOs,
// maintenance windows and hours of operation loads again to the same
// configuration, not merely to the same text.
func TestStringRoundTripSLOs(t *testing.T) {
	cfg, err := Parse([]byte(roundTripConfig), "first.yml")
	if err != nil {
		t.Fatal(err)
	}
	shop := cfg.Services[0]
	if len(shop.Maintenance) != 5 || len(shop.SLOs) != 4 || shop.HoursOfOperation == nil || cfg.Services[1].HoursOfOperation == nil {
		t.Fatalf("parsed %d maintenance windows, %d SLOs, hours %v; want 5, 4, set", len(shop.Maintenance), len(shop.SLOs), shop.HoursOfOperation)
	}
	if cfg.Global.EvaluationInterval != Duration(time.Minute) {
		t.Errorf("evaluation_interval = %s, want 1m", cfg.Global.EvaluationInterval)
	}
	out := cfg.String()
	for _, want := range []string{
		"evaluation_interval: 1m\n",
		"days:\n            - sat\n            - sun\n",
		"start: \"23:30\"\n",
		"start: 2026-03-29T02:30:00\n",
		"start: 2026-12-01T22:00:30\n",
		"start: \"2026-12-01T22:00:00-05:00\"\n",
		"timezone: America/New_York\n",
		"end: \"24:00\"\n",
		"window: 30d\n",
		"window: 1d12h\n",
		"calendar: month\n",
		"renamed_from: latency\n",
		"latency_below: 250ms\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
	again, err := Parse([]byte(out), "second.yml")
	if err != nil {
		t.Fatalf("String() output does not load: %v\n%s", err, out)
	}
	again.Filename = cfg.Filename
	if !reflect.DeepEqual(again, cfg) {
		t.Errorf("String() output loads to another configuration:\n%s\nwant:\n%s", again, out)
	}
	if got := again.Services[0].Maintenance[2].Once.StartTime(); !got.Equal(time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("reloaded local start = %v, want 01:30 UTC", got.UTC())
	}
}
