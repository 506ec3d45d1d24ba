package slo

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
)

// Bounds of what the recovery engine keeps per service.
const (
	MaxOutagesKept = 1000
	MaxDrillsKept  = 100
)

// RecoveryDefinition is one service's recovery section as the engine uses
// it, resolved from the configuration. Read-only once built.
type RecoveryDefinition struct {
	Service       string
	RTO, RPO      time.Duration
	Window        time.Duration
	Probes        []string // watched; every probe of the service when not configured
	OpenAfter     int
	OpenAfterTime time.Duration
	CloseAfter    int
	Backups       []string
	DrillEvery    time.Duration // 0: no drill schedule
	Schedule      *Schedule
}

// RecoveryPlan resolves the recovery sections of a validated
// configuration, in configuration order.
func RecoveryPlan(cfg *config.Config) []*RecoveryDefinition {
	var defs []*RecoveryDefinition
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		r := svc.Recovery
		if r == nil {
			continue
		}
		def := &RecoveryDefinition{Service: svc.Name, RTO: r.RTO.Duration(), RPO: r.RPO.Duration(), Window: r.Window.Duration(),
			Probes: r.Outage.Probes, OpenAfter: r.Outage.OpenAfter, OpenAfterTime: r.Outage.OpenAfterDuration.Duration(),
			CloseAfter: r.Outage.CloseAfter, Schedule: NewSchedule(svc)}
		if len(def.Probes) == 0 {
			for _, p := range svc.Probes {
				def.Probes = append(def.Probes, p.Name)
			}
		}
		for _, b := range r.Backups {
			def.Backups = append(def.Backups, b.Name)
		}
		if r.Drills != nil {
			def.DrillEvery = r.Drills.Every.Duration()
		}
		defs = append(defs, def)
	}
	return defs
}

// Outage is one outage of a service: from the first failed run of the
// first probe to go down to the first success of the closing streak of
// the last probe to recover. End is zero while it is open.
type Outage struct {
	Service string        `json:"service"`
	Start   time.Time     `json:"start"`
	End     time.Time     `json:"end,omitzero"`
	Planned bool          `json:"planned"`
	Probes  []OutageProbe `json:"probes"`
	// RTOBreached is set once the outage (unplanned) outlasted the RTO.
	RTOBreached bool `json:"rto_breached"`
}

// OutageProbe is a probe that went down during an outage, with the reason
// of its last failure.
type OutageProbe struct {
	Probe  string `json:"probe"`
	Reason string `json:"reason"`
}

// Duration is how long the outage lasted, or has lasted by now if open.
func (o *Outage) Duration(now time.Time) time.Duration {
	if o.End.IsZero() {
		return now.Sub(o.Start)
	}
	return o.End.Sub(o.Start)
}

// Drill is one recorded disaster-recovery drill.
type Drill struct {
	Service  string        `json:"service"`
	Time     time.Time     `json:"time"`
	Passed   bool          `json:"passed"`
	Duration time.Duration `json:"duration_ns"`
	Note     string        `json:"note,omitempty"`
}

// probeStreak is where a watched probe stands in the outage rule.
type probeStreak struct {
	Failures     int       `json:"failures"`
	FirstFailure time.Time `json:"first_failure,omitzero"`
	Successes    int       `json:"successes"`
	FirstSuccess time.Time `json:"first_success,omitzero"`
	Down         bool      `json:"down"`
	LastReason   string    `json:"last_reason,omitempty"`
}

// backupState is what the checks of one backup found.
type backupState struct {
	Point     time.Time                   `json:"point,omitzero"`
	LastCheck time.Time                   `json:"last_check,omitzero"`
	LastOK    bool                        `json:"last_ok"`
	Checks    uint64                      `json:"checks"`
	Failures  map[collector.Reason]uint64 `json:"failures,omitempty"`
}

// serviceRecovery is one service's recovery state. Its mutex guards all
// of it.
type serviceRecovery struct {
	mu      sync.Mutex
	def     *RecoveryDefinition
	probes  map[string]*probeStreak
	current *Outage
	history []Outage // closed outages, oldest first, at most MaxOutagesKept
	// outages counts outages opened, unplanned [0] and planned [1].
	outages     [2]uint64
	rtoBreaches uint64
	backups     map[string]*backupState
	drills      []Drill // oldest first, at most MaxDrillsKept
}

func newServiceRecovery(def *RecoveryDefinition) *serviceRecovery {
	return &serviceRecovery{def: def, probes: map[string]*probeStreak{}, backups: map[string]*backupState{}}
}

// recordRun feeds one run of a watched probe to the outage rule.
func (s *serviceRecovery) recordRun(probe string, r *collector.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.def.Probes, probe) {
		return
	}
	p := s.probes[probe]
	if p == nil {
		p = &probeStreak{}
		s.probes[probe] = p
	}
	t := r.Start
	if r.Success {
		p.Failures, p.FirstFailure = 0, time.Time{}
		if !p.Down {
			return
		}
		if p.Successes == 0 {
			p.FirstSuccess = t
		}
		p.Successes++
		if p.Successes >= s.def.CloseAfter {
			p.Down, p.Successes = false, 0
			s.maybeClose(p.FirstSuccess)
		}
		return
	}
	p.Successes, p.FirstSuccess = 0, time.Time{}
	if p.Failures == 0 {
		p.FirstFailure = t
	}
	p.Failures++
	p.LastReason = string(r.Reason)
	if p.Down {
		if s.current != nil {
			s.current.noteProbe(probe, p.LastReason) // the latest reason of a probe that is down
		}
		return
	}
	byCount := s.def.OpenAfter > 0 && p.Failures >= s.def.OpenAfter
	byTime := s.def.OpenAfterTime > 0 && t.Sub(p.FirstFailure) >= s.def.OpenAfterTime
	if byCount || byTime {
		p.Down = true
		s.open(probe, p)
	}
}

// clone returns a copy of o that shares nothing with it: the open outage
// keeps changing under the engine's lock.
func (o *Outage) clone() Outage {
	c := *o
	c.Probes = slices.Clone(o.Probes)
	return c
}

func (o *Outage) noteProbe(probe, reason string) {
	for i := range o.Probes {
		if o.Probes[i].Probe == probe {
			o.Probes[i].Reason = reason
			return
		}
	}
	o.Probes = append(o.Probes, OutageProbe{Probe: probe, Reason: reason})
}

// open starts an outage at the probe's first failure, or adds the probe to
// the open one.
func (s *serviceRecovery) open(probe string, p *probeStreak) {
	if s.current == nil {
		// From the probe's first failure, but never before the previous
		// outage ended: a failure inside that outage is part of it, and
		// outages must not overlap (downtime would count twice).
		start := p.FirstFailure
		if n := len(s.history); n > 0 && start.Before(s.history[n-1].End) {
			start = s.history[n-1].End
		}
		planned := s.def.Schedule != nil && s.def.Schedule.InMaintenance(start)
		s.current = &Outage{Service: s.def.Service, Start: start, Planned: planned}
		s.outages[boolIndex(planned)]++
	}
	s.current.noteProbe(probe, p.LastReason)
}

// maybeClose ends the open outage at end when no watched probe is down.
func (s *serviceRecovery) maybeClose(end time.Time) {
	if s.current == nil {
		return
	}
	for _, p := range s.probes {
		if p.Down {
			return
		}
	}
	closed := *s.current
	closed.End = end
	if !closed.Planned && s.def.RTO > 0 && closed.Duration(end) > s.def.RTO && !closed.RTOBreached {
		closed.RTOBreached = true
		s.rtoBreaches++
	}
	s.history = append(s.history, closed)
	if len(s.history) > MaxOutagesKept {
		s.history = slices.Delete(s.history, 0, len(s.history)-MaxOutagesKept)
	}
	s.current = nil
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// recordBackup folds one check of a backup in.
func (s *serviceRecovery) recordBackup(name string, r *collector.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.def.Backups, name) {
		return
	}
	b := s.backups[name]
	if b == nil {
		b = &backupState{}
		s.backups[name] = b
	}
	b.Checks++
	b.LastCheck = r.Start
	b.LastOK = r.Success && !r.RecoveryPoint.IsZero()
	if b.LastOK {
		if r.RecoveryPoint.After(b.Point) {
			b.Point = r.RecoveryPoint
		}
		return
	}
	reason := r.Reason
	if reason == "" {
		reason = collector.ReasonInternal
	}
	if b.Failures == nil {
		b.Failures = map[collector.Reason]uint64{}
	}
	b.Failures[reason]++
}

// Recovery tracks every service's outages, backups and drills. Probe
// workers call Record, backup checks RecordBackup, the web API
// RecordDrill; the evaluator Evaluate; the flusher MarshalState; a reload
// Apply. Safe for concurrent use.
type Recovery struct {
	logger   *slog.Logger
	services atomic.Pointer[map[string]*serviceRecovery]
	snapshot atomic.Pointer[RecoverySnapshot]

	evalMu sync.Mutex
	mu     sync.Mutex // serialises Apply and state (un)marshalling
	// kept holds every service's state, configured or not: a service whose
	// recovery section is removed keeps its history in the state file.
	kept map[string]*serviceRecovery
}

// NewRecovery returns an engine without services.
func NewRecovery(logger *slog.Logger) *Recovery {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Recovery{logger: logger, kept: map[string]*serviceRecovery{}}
	r.services.Store(&map[string]*serviceRecovery{})
	r.snapshot.Store(&RecoverySnapshot{})
	return r
}

// Apply makes defs the configured recovery sections. A service keeps its
// outage history, streaks, backups and drills across reloads; a probe no
// longer watched drops its streak (and may close the open outage).
func (r *Recovery) Apply(defs []*RecoveryDefinition, now time.Time) {
	r.mu.Lock()
	active := make(map[string]*serviceRecovery, len(defs))
	for _, def := range defs {
		s := r.kept[def.Service]
		if s == nil {
			s = newServiceRecovery(def)
			r.kept[def.Service] = s
		}
		s.mu.Lock()
		s.def = def
		for probe := range s.probes {
			if !slices.Contains(def.Probes, probe) {
				delete(s.probes, probe)
				s.maybeClose(now)
			}
		}
		s.mu.Unlock()
		active[def.Service] = s
	}
	r.services.Store(&active)
	r.mu.Unlock()
	r.Evaluate(now)
}

// Record implements collector.Recorder for probe results.
func (r *Recovery) Record(id collector.ProbeID, result collector.Result) {
	if s := (*r.services.Load())[id.Service]; s != nil {
		s.recordRun(id.Probe, &result)
	}
}

// RecordBackup takes the result of a backup check; the ID's Probe is the
// backup's name.
func (r *Recovery) RecordBackup(id collector.ProbeID, result collector.Result) {
	if s := (*r.services.Load())[id.Service]; s != nil {
		s.recordBackup(id.Probe, &result)
	}
}

// ErrUnknownService is returned by RecordDrill for a service without a
// recovery section.
var ErrUnknownService = errors.New("no such service with a recovery section")

// RecordDrill records a disaster-recovery drill.
func (r *Recovery) RecordDrill(d Drill) error {
	s := (*r.services.Load())[d.Service]
	switch {
	case s == nil:
		return fmt.Errorf("service %q: %w", d.Service, ErrUnknownService)
	case d.Time.IsZero():
		return errors.New("a drill needs a time")
	case d.Duration < 0:
		return errors.New("a drill's duration cannot be negative")
	case d.Time.After(time.Now().Add(5 * time.Minute)):
		// It would keep drills from ever being overdue and push the real
		// ones out of the bounded list.
		return errors.New("a drill cannot be in the future")
	case len(d.Note) > 1024:
		return errors.New("a drill's note is limited to 1024 bytes")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drills = append(s.drills, d)
	slices.SortStableFunc(s.drills, func(a, b Drill) int { return a.Time.Compare(b.Time) })
	if len(s.drills) > MaxDrillsKept {
		s.drills = slices.Delete(s.drills, 0, len(s.drills)-MaxDrillsKept)
	}
	r.logger.Info("Disaster-recovery drill recorded", "service", d.Service, "passed", d.Passed, "duration", d.Duration)
	return nil
}

// Outages returns the recorded outages of service (every service when
// empty), oldest first, the open ones last.
func (r *Recovery) Outages(service string) []Outage {
	var out []Outage
	for _, s := range r.sorted(service) {
		s.mu.Lock()
		for _, o := range s.history {
			out = append(out, o.clone())
		}
		if s.current != nil {
			out = append(out, s.current.clone())
		}
		s.mu.Unlock()
	}
	return out
}

// Drills returns the recorded drills of service (every service when
// empty), oldest first.
func (r *Recovery) Drills(service string) []Drill {
	var out []Drill
	for _, s := range r.sorted(service) {
		s.mu.Lock()
		out = append(out, s.drills...)
		s.mu.Unlock()
	}
	return out
}

func (r *Recovery) sorted(service string) []*serviceRecovery {
	services := *r.services.Load()
	var out []*serviceRecovery
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if service == "" || name == service {
			out = append(out, services[name])
		}
	}
	return out
}
