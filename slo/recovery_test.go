package slo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

const recoveryYAML = `
services:
  - name: shop
    maintenance:
      - once: {start: 2026-11-20T02:00:00Z, duration: 2h}
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
      - {name: api, http: {url: "http://127.0.0.1:1/api"}}
    recovery:
      rto: 10m
      rpo: 1h
      window: 1d
      outage: {open_after: 3, close_after: 2}
      backups:
        - {name: db, file: {glob: "/backups/*.dump"}}
      drills: {every: 7d}
`

func newTestRecovery(t *testing.T, yaml string, now time.Time) *Recovery {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r := NewRecovery(nil)
	r.Apply(RecoveryPlan(cfg), now)
	return r
}

// run records one run of probe at t.
func run(r *Recovery, probe string, t time.Time, ok bool) {
	result := collector.Result{Start: t, Success: ok}
	if !ok {
		result.Reason = collector.ReasonConnect
	}
	r.Record(collector.ProbeID{Service: "shop", Probe: probe}, result)
}

// runs records runs of probe every minute from start, ok or failed per
// the pattern ('.' success, 'x' failure), and returns the time after.
func runs(r *Recovery, probe string, start time.Time, pattern string) time.Time {
	for i, c := range pattern {
		run(r, probe, start.Add(time.Duration(i)*time.Minute), c == '.')
	}
	return start.Add(time.Duration(len(pattern)) * time.Minute)
}

func TestOutageRule(t *testing.T) {
	t0 := utc("2026-11-23T10:00:00Z")
	tests := []struct {
		name    string
		pattern string
		// want: outages opened and closed; the closed one's bounds in
		// minutes after t0, and whether one is still open.
		opened     uint64
		start, end int
		open       bool
	}{
		// Three failures at 2, 3, 4 open an outage starting at 2; two
		// successes at 5, 6 close it at 5; the lone failure at 7 opens none.
		{"open and close", "..xxx..x..", 1, 2, 5, false},
		// Never three in a row: no outage.
		{"flapping", ".xx.xx.xx.x.xx.", 0, 0, 0, false},
		// A failure between successes restarts the closing streak: the
		// outage opened at 0 closes at the first success of the last two.
		{"interrupted recovery", "xxx.x..", 1, 0, 5, false},
		// Still failing at the end: open, started at 1.
		{"still open", ".xxxxxx", 1, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRecovery(t, recoveryYAML, t0)
			end := runs(r, "home", t0, tt.pattern)
			s := r.Evaluate(end).Services[0]
			if s.Outages[0] != tt.opened {
				t.Errorf("outages opened %d, want %d", s.Outages[0], tt.opened)
			}
			if tt.open {
				if s.Current == nil || !s.Current.Start.Equal(t0.Add(time.Duration(tt.start)*time.Minute)) {
					t.Errorf("open outage %+v, want one from minute %d", s.Current, tt.start)
				}
				return
			}
			if s.Current != nil {
				t.Fatalf("an outage is still open: %+v", s.Current)
			}
			if tt.opened == 0 {
				return
			}
			o := r.Outages("shop")
			wantStart, wantEnd := t0.Add(time.Duration(tt.start)*time.Minute), t0.Add(time.Duration(tt.end)*time.Minute)
			if len(o) != 1 || !o[0].Start.Equal(wantStart) || !o[0].End.Equal(wantEnd) {
				t.Errorf("outages %+v, want one from %s to %s", o, wantStart, wantEnd)
			}
			if len(o) == 1 && (len(o[0].Probes) != 1 || o[0].Probes[0] != (OutageProbe{Probe: "home", Reason: "connect"})) {
				t.Errorf("outage probes %+v, want home failing with connect", o[0].Probes)
			}
		})
	}
}

// TestOutageTwoProbes: the outage lasts while any probe is down and ends
// at the first success of the closing streak of the last one to recover.
func TestOutageTwoProbes(t *testing.T) {
	t0 := utc("2026-11-23T10:00:00Z")
	r := newTestRecovery(t, recoveryYAML, t0)
	// Minute by minute, in time order: home down from 0, up at 5 (streak
	// 5, 6); api down from 2, up at 8 (streak 8, 9).
	home, api := "xxxxx.....", "..xxxxxx.."
	for i := range home {
		at := t0.Add(time.Duration(i) * time.Minute)
		run(r, "home", at, home[i] == '.')
		run(r, "api", at, api[i] == '.')
	}
	o := r.Outages("shop")
	if len(o) != 1 || !o[0].Start.Equal(t0) || !o[0].End.Equal(t0.Add(8*time.Minute)) || len(o[0].Probes) != 2 {
		t.Fatalf("outages %+v, want one from 0 to 8 with both probes", o)
	}
}

// TestOutageOpenAfterDuration: a probe is down once it has failed for the
// configured time, whatever the number of runs.
func TestOutageOpenAfterDuration(t *testing.T) {
	t0 := utc("2026-11-23T10:00:00Z")
	r := newTestRecovery(t, `
services:
  - name: shop
    probes:
      - {name: home, http: {url: "http://127.0.0.1:1/"}}
    recovery:
      rto: 10m
      outage: {open_after_duration: 2m, close_after: 1}
`, t0)
	runs(r, "home", t0, "xx") // 0, 1: failing for 1 minute
	if s := r.Evaluate(t0.Add(2 * time.Minute)).Services[0]; s.Current != nil {
		t.Fatal("outage opened after 1 minute of failures, want 2")
	}
	run(r, "home", t0.Add(2*time.Minute), false)
	if s := r.Evaluate(t0.Add(2 * time.Minute)).Services[0]; s.Current == nil || !s.Current.Start.Equal(t0) {
		t.Fatalf("no outage from 0 after 2 minutes of failures: %+v", s.Current)
	}
}

// TestOutageRTOAndWindow: RTO breaches are counted when the open outage
// passes the RTO, once; MTTR, MTBF and downtime over the window, worked
// out by hand; a planned outage (starting in maintenance) counts in none
// of them.
func TestOutageRTOAndWindow(t *testing.T) {
	t0 := utc("2026-11-23T00:00:00Z")
	r := newTestRecovery(t, recoveryYAML, t0)
	// Outage 1: 01:00 to 01:05 (5 minutes, within the 10m RTO).
	runs(r, "home", t0.Add(time.Hour), "xxxxx..")
	// Outage 2: 06:00 to 06:20 (20 minutes): breached at 06:10.
	runs(r, "home", t0.Add(6*time.Hour), "xxxxxxxxxxx")
	s := r.Evaluate(t0.Add(6*time.Hour + 11*time.Minute)).Services[0]
	if s.RTOBreaches != 1 || s.Current == nil {
		t.Fatalf("at 06:11, %d RTO breaches (open %v), want 1 while open", s.RTOBreaches, s.Current != nil)
	}
	runs(r, "home", t0.Add(6*time.Hour+11*time.Minute), "xxxxxxxxx..")
	s = r.Evaluate(t0.Add(12 * time.Hour)).Services[0]
	if s.RTOBreaches != 1 {
		t.Errorf("%d RTO breaches after the outage closed, want still 1", s.RTOBreaches)
	}
	// Window (1d) at 12:00 holds both: downtime 5 + 20 = 25 min; MTTR 12.5
	// min; MTBF = (24h - 25m) / 2 = 11h47m30s.
	if s.Downtime != 25*time.Minute {
		t.Errorf("downtime %s, want 25m", s.Downtime)
	}
	if mttr, ok := s.MTTR(); !ok || mttr != 12*time.Minute+30*time.Second {
		t.Errorf("MTTR %s, want 12m30s", mttr)
	}
	if mtbf, ok := s.MTBF(); !ok || mtbf != 11*time.Hour+47*time.Minute+30*time.Second {
		t.Errorf("MTBF %s, want 11h47m30s", mtbf)
	}
	if s.Last == nil || s.Last.Duration(t0) != 20*time.Minute || !s.Last.RTOBreached {
		t.Errorf("last outage %+v, want the 20-minute one, RTO breached", s.Last)
	}
	// The next day at 01:03, the window starts at 01:03: outage 1 ended
	// at 01:05 and counts for its 2 minutes in the window.
	s = r.Evaluate(t0.Add(25*time.Hour + 3*time.Minute)).Services[0]
	if s.Downtime != 22*time.Minute || s.WindowOutages != 2 {
		t.Errorf("downtime %s over %d outages, want 22m over 2", s.Downtime, s.WindowOutages)
	}
}

func TestOutagePlanned(t *testing.T) {
	t0 := utc("2026-11-20T02:30:00Z") // inside the maintenance window
	r := newTestRecovery(t, recoveryYAML, t0)
	end := runs(r, "home", t0, "xxxxxxxxxxxxxxxxxxxx..")
	s := r.Evaluate(end).Services[0]
	if s.Outages != [2]uint64{0, 1} || s.RTOBreaches != 0 || s.Downtime != 0 || s.Last != nil {
		t.Errorf("a planned 20-minute outage: outages %v, breaches %d, downtime %s, last %+v; want it counted as planned only",
			s.Outages, s.RTOBreaches, s.Downtime, s.Last)
	}
	if o := r.Outages("shop"); len(o) != 1 || !o[0].Planned {
		t.Errorf("outages %+v, want one planned", o)
	}
}

// TestOutageSurvivesRestart: an outage open when the daemon stops resumes
// after a restart with its start kept, and closes on the restored streaks.
func TestOutageSurvivesRestart(t *testing.T) {
	t0 := utc("2026-11-23T10:00:00Z")
	before := newTestRecovery(t, recoveryYAML, t0)
	runs(before, "home", t0, "xxxxx")
	before.Evaluate(t0.Add(5 * time.Minute))
	state, err := before.MarshalState()
	if err != nil {
		t.Fatal(err)
	}

	after := NewRecovery(nil)
	if err := after.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	cfg, _ := config.Parse([]byte(recoveryYAML), "test.yml")
	after.Apply(RecoveryPlan(cfg), t0.Add(30*time.Minute))
	s := after.Evaluate(t0.Add(30 * time.Minute)).Services[0]
	if s.Current == nil || !s.Current.Start.Equal(t0) {
		t.Fatalf("after a restart the open outage is %+v, want the one started at %s", s.Current, t0)
	}
	if s.RTOBreaches != 1 {
		t.Errorf("30 minutes into the outage: %d RTO breaches, want 1", s.RTOBreaches)
	}
	runs(after, "home", t0.Add(31*time.Minute), "..")
	o := after.Outages("shop")
	if len(o) != 1 || !o[0].Start.Equal(t0) || !o[0].End.Equal(t0.Add(31*time.Minute)) {
		t.Errorf("outages %+v, want one from %s to 31 minutes later", o, t0)
	}
	if err := NewRecovery(nil).UnmarshalState([]byte(`{"version": 2}`)); err == nil {
		t.Error("an unknown version was accepted")
	}
	if err := NewRecovery(nil).UnmarshalState(state[:len(state)/2]); err == nil {
		t.Error("a truncated state was accepted")
	}
}

func TestBackupsAndDrills(t *testing.T) {
	t0 := utc("2026-11-23T10:00:00Z")
	r := newTestRecovery(t, recoveryYAML, t0)
	id := collector.ProbeID{Service: "shop", Probe: "db"}
	r.RecordBackup(id, collector.Result{Start: t0, Success: true, RecoveryPoint: t0.Add(-20 * time.Minute)})
	// A failing check never freshens the recovery point.
	r.RecordBackup(id, collector.Result{Start: t0.Add(time.Minute), Reason: collector.ReasonNotFound})
	s := r.Evaluate(t0.Add(50 * time.Minute)).Services[0]
	b := s.Backups[0]
	if age, ok := b.RecoveryPointAge(t0.Add(50 * time.Minute)); !ok || age != 70*time.Minute || b.LastOK || b.Failures[collector.ReasonNotFound] != 1 {
		t.Errorf("backup %+v: age %s, want 70m, last check failed with not_found", b, age)
	}
	// Drills: none yet: overdue.
	if !s.DrillOverdue(t0) {
		t.Error("no drill recorded, but not overdue")
	}
	if err := r.RecordDrill(Drill{Service: "nope", Time: t0}); !errors.Is(err, ErrUnknownService) {
		t.Errorf("a drill of an unknown service: %v", err)
	}
	if err := r.RecordDrill(Drill{Service: "shop", Time: t0.Add(-6 * 24 * time.Hour), Passed: true, Duration: 8 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	s = r.Evaluate(t0).Services[0]
	if s.DrillOverdue(t0) || s.LastDrill == nil || s.Drills != [2]uint64{0, 1} {
		t.Errorf("after a drill 6 days ago (every 7d): overdue %v, last %+v", s.DrillOverdue(t0), s.LastDrill)
	}
	if !s.DrillOverdue(t0.Add(25 * time.Hour)) {
		t.Error("a drill 7 days and an hour ago is not overdue")
	}
}

// TestOutageAcrossMaintenance: an outage that starts before a maintenance
// window and runs into it stays unplanned; one that starts inside is
// planned even when it outlasts the window.
func TestOutageAcrossMaintenance(t *testing.T) {
	// The window is 2026-11-20 02:00-04:00 UTC.
	before := utc("2026-11-20T01:50:00Z")
	r := newTestRecovery(t, recoveryYAML, before)
	runs(r, "home", before, strings.Repeat("x", 30)+"..") // 01:50 to 02:20
	inside := utc("2026-11-20T03:50:00Z")
	runs(r, "home", inside, strings.Repeat("x", 30)+"..") // 03:50 to 04:20
	o := r.Outages("shop")
	if len(o) != 2 || o[0].Planned || !o[1].Planned {
		t.Fatalf("outages %+v, want the first unplanned, the second planned", o)
	}
	s := r.Evaluate(utc("2026-11-20T05:00:00Z")).Services[0]
	if s.Outages != [2]uint64{1, 1} || s.RTOBreaches != 1 || s.Downtime != 30*time.Minute {
		t.Errorf("outages %v, breaches %d, downtime %s; want one of each, 1 breach (the unplanned 30m), 30m",
			s.Outages, s.RTOBreaches, s.Downtime)
	}
}

// TestOutagesDoNotOverlap: a probe whose failures began inside the outage
// that just closed opens the next one at that outage's end, so downtime
// is never counted twice; a probe that failed without going down is not
// listed in the outage.
func TestOutagesDoNotOverlap(t *testing.T) {
	t0 := utc("2026-11-23T10:00:00Z")
	r := newTestRecovery(t, recoveryYAML, t0)
	// home: down 0-2, up at 3 (closing streak 3, 4). api: fails 2, 3, 4
	// (down at 4, first failure at 2, inside home's outage), up at 5, 6.
	home, api := "xxx......", "..xxx...."
	for i := range home {
		at := t0.Add(time.Duration(i) * time.Minute)
		run(r, "home", at, home[i] == '.')
		run(r, "api", at, api[i] == '.')
	}
	o := r.Outages("shop")
	if len(o) != 2 || !o[0].End.Equal(t0.Add(3*time.Minute)) || !o[1].Start.Equal(o[0].End) || !o[1].End.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("outages %+v, want 0-3 and 3-5", o)
	}
	if len(o[0].Probes) != 1 || o[0].Probes[0].Probe != "home" {
		t.Errorf("first outage probes %+v, want only home (api had not gone down)", o[0].Probes)
	}
	if s := r.Evaluate(t0.Add(10 * time.Minute)).Services[0]; s.Downtime != 5*time.Minute {
		t.Errorf("downtime %s, want 5m", s.Downtime)
	}
}
