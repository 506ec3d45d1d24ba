package slo

import (
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// parseService loads one service's configuration from YAML.
func parseService(t *testing.T, yaml string) *config.ServiceConfig {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return &cfg.Services[0]
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The expected instants below are worked out by hand from the time zone
// rules, not with the code under test: Europe/Berlin is UTC+1 in winter
// (CET) and UTC+2 in summer (CEST); in 2026 summer time starts on March 29
// at 02:00 CET (01:00Z) and ends on October 25 at 03:00 CEST (01:00Z).
func TestScheduleMaintenance(t *testing.T) {
	service := parseService(t, `
services:
  - name: shop
    maintenance:
      # Sunday 23:00 Berlin time, three hours: crosses midnight.
      - weekly: {days: [sun], start: "23:00", duration: 3h, timezone: Europe/Berlin}
      # Wednesday 01:30 Berlin, one hour; on the DST Sunday it does not apply.
      - weekly: {days: [wed], start: "01:30", duration: 1h, timezone: Europe/Berlin}
      # Sunday 02:30 Berlin: skipped on 2026-03-29, repeated on 2026-10-25.
      - weekly: {days: [sun], start: "02:30", duration: 30m, timezone: Europe/Berlin}
      - once: {start: 2026-12-01T22:00:00Z, duration: 4h}
      - once: {start: "2026-12-24T18:00", duration: 2h, timezone: America/New_York}
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
`)
	s := NewSchedule(service)
	tests := []struct {
		at   string
		want bool
	}{
		// Sunday 2026-11-22 23:00 CET = 22:00Z, until Monday 01:00Z.
		{"2026-11-22T21:59:59Z", false},
		{"2026-11-22T22:00:00Z", true},
		{"2026-11-22T23:59:59Z", true},
		{"2026-11-23T00:59:59Z", true},
		{"2026-11-23T01:00:00Z", false},
		// Summer: Sunday 2026-07-05 23:00 CEST = 21:00Z, until 00:00Z.
		{"2026-07-05T20:59:59Z", false},
		{"2026-07-05T21:00:00Z", true},
		{"2026-07-05T23:59:59Z", true},
		{"2026-07-06T00:00:00Z", false},
		// Wednesday 2026-11-25 01:30 CET = 00:30Z, for one hour.
		{"2026-11-25T00:29:59Z", false},
		{"2026-11-25T00:30:00Z", true},
		{"2026-11-25T01:29:59Z", true},
		{"2026-11-25T01:30:00Z", false},
		// Spring forward: 02:30 does not exist on 2026-03-29; time.Date reads
		// it with the winter offset, 01:30Z (03:30 CEST), for 30 minutes.
		{"2026-03-29T01:29:59Z", false},
		{"2026-03-29T01:30:00Z", true},
		{"2026-03-29T01:59:59Z", true},
		{"2026-03-29T02:00:00Z", false},
		// Fall back: 02:30 happens twice on 2026-10-25 (00:30Z and 01:30Z);
		// time.Date picks the second, winter one.
		{"2026-10-25T00:30:00Z", false},
		{"2026-10-25T01:30:00Z", true},
		{"2026-10-25T01:59:59Z", true},
		// The Sunday 23:00 window on the day summer time ends: 22:00Z.
		{"2026-10-25T21:59:59Z", false},
		{"2026-10-25T22:00:00Z", true},
		// Once, absolute.
		{"2026-12-01T21:59:59Z", false},
		{"2026-12-01T22:00:00Z", true},
		{"2026-12-02T01:59:59Z", true},
		{"2026-12-02T02:00:00Z", false},
		// Once, local: 18:00 in New York (EST, UTC-5) = 23:00Z.
		{"2026-12-24T22:59:59Z", false},
		{"2026-12-24T23:00:00Z", true},
		{"2026-12-25T00:59:59Z", true},
		{"2026-12-25T01:00:00Z", false},
	}
	for _, tt := range tests {
		if got := s.InMaintenance(utc(tt.at)); got != tt.want {
			t.Errorf("InMaintenance(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestScheduleWeeklyLongWindow(t *testing.T) {
	// A seven-day window starting on Mondays is always in force.
	s := NewSchedule(parseService(t, `
services:
  - name: shop
    maintenance:
      - weekly: {days: [mon], start: "00:00", duration: 7d}
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
`))
	for at := utc("2026-11-01T00:00:00Z"); at.Before(utc("2026-11-15T00:00:00Z")); at = at.Add(37 * time.Minute) {
		if !s.InMaintenance(at) {
			t.Fatalf("InMaintenance(%s) = false, want true", at)
		}
	}
}

func TestScheduleHoursOfOperation(t *testing.T) {
	tests := []struct {
		name  string
		hours string
		at    string
		want  bool
	}{
		{"office start", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-11-23T07:00:00Z", true},   // Mon 08:00 CET
		{"office before", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-11-23T06:59:59Z", false}, // Mon 07:59:59
		{"office end", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-11-23T17:00:00Z", false},    // Mon 18:00
		{"office last second", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-11-23T16:59:59Z", true},
		{"office saturday", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-11-28T10:00:00Z", false},
		{"office summer", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-07-06T06:00:00Z", true}, // Mon 08:00 CEST
		{"office summer before", `{days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00", timezone: Europe/Berlin}`, "2026-07-06T05:59:59Z", false},
		// Night shift starting Friday 22:00 UTC runs into Saturday.
		{"night friday", `{days: [fri], start: "22:00", end: "06:00"}`, "2026-11-27T22:00:00Z", true},
		{"night saturday morning", `{days: [fri], start: "22:00", end: "06:00"}`, "2026-11-28T05:59:59Z", true},
		{"night saturday end", `{days: [fri], start: "22:00", end: "06:00"}`, "2026-11-28T06:00:00Z", false},
		{"night friday morning", `{days: [fri], start: "22:00", end: "06:00"}`, "2026-11-27T05:00:00Z", false}, // the Thursday shift is not listed
		{"till midnight", `{start: "12:00", end: "24:00"}`, "2026-11-27T23:59:59Z", true},
		{"after midnight", `{start: "12:00", end: "24:00"}`, "2026-11-28T00:00:00Z", false},
		{"every day", `{start: "12:00", end: "24:00"}`, "2026-11-29T12:00:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSchedule(parseService(t, `
services:
  - name: shop
    hours_of_operation: `+tt.hours+`
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
`))
			if got := s.InHours(utc(tt.at)); got != tt.want {
				t.Errorf("InHours(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestScheduleExclusionPrecedence(t *testing.T) {
	s := NewSchedule(parseService(t, `
services:
  - name: shop
    maintenance:
      - once: {start: 2026-11-28T10:00:00Z, duration: 1h}
    hours_of_operation: {days: [mon,tue,wed,thu,fri], start: "08:00", end: "18:00"}
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
`))
	tests := []struct {
		at   string
		want Exclusion
	}{
		{"2026-11-27T10:00:00Z", Included},             // Friday, in hours
		{"2026-11-27T19:00:00Z", ExcludedOutsideHours}, // Friday evening
		{"2026-11-28T10:30:00Z", ExcludedMaintenance},  // Saturday: both; maintenance wins
		{"2026-11-28T11:00:00Z", ExcludedOutsideHours}, // Saturday after maintenance
	}
	for _, tt := range tests {
		if got := s.Exclusion(utc(tt.at)); got != tt.want {
			t.Errorf("Exclusion(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if empty := NewSchedule(&config.ServiceConfig{}); empty.Exclusion(utc("2026-11-28T10:30:00Z")) != Included {
		t.Error("a service without maintenance or hours excludes events")
	}
}
