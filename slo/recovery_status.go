package slo

import (
	"time"
)

// RecoverySnapshot is one evaluation of every service's recovery figures,
// sorted by service. Immutable once published.
type RecoverySnapshot struct {
	Time     time.Time
	Services []RecoveryStatus
}

// RecoveryStatus is one service's recovery figures at a snapshot's time.
type RecoveryStatus struct {
	*RecoveryDefinition
	// Current is the open outage, nil when none.
	Current *Outage
	// Last is the latest closed unplanned outage, nil when none.
	Last *Outage
	// Outages counts outages opened, unplanned [0] and planned [1].
	Outages     [2]uint64
	RTOBreaches uint64
	// Window figures: unplanned outages that ended within the window, and
	// the unplanned downtime inside it (the open outage's included).
	WindowOutages    int
	WindowRepairTime time.Duration
	Downtime         time.Duration
	Backups          []BackupStatus
	LastDrill        *Drill
	Drills           [2]uint64 // failed [0], passed [1]
}

// BackupStatus is one backup's figures.
type BackupStatus struct {
	Name string
	backupState
}

// MTTR is the mean duration of the unplanned outages that ended within
// the window; false when none did.
func (s *RecoveryStatus) MTTR() (time.Duration, bool) {
	if s.WindowOutages == 0 {
		return 0, false
	}
	return s.WindowRepairTime / time.Duration(s.WindowOutages), true
}

// MTBF is the time the service was up within the window divided by the
// unplanned outages that ended in it; false when none did.
func (s *RecoveryStatus) MTBF() (time.Duration, bool) {
	if s.WindowOutages == 0 {
		return 0, false
	}
	return (s.Window - s.Downtime) / time.Duration(s.WindowOutages), true
}

// DrillOverdue tells whether a drill is due: the last one is older than
// the schedule, or none was ever recorded. False without a schedule.
func (s *RecoveryStatus) DrillOverdue(now time.Time) bool {
	if s.DrillEvery <= 0 {
		return false
	}
	return s.LastDrill == nil || now.Sub(s.LastDrill.Time) > s.DrillEvery
}

// status computes the service's figures at now. It also counts an RTO
// breach as soon as the open unplanned outage outlasts the RTO, so the
// counter rises when the breach happens, not when the outage ends.
func (s *serviceRecovery) status(now time.Time) RecoveryStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := RecoveryStatus{RecoveryDefinition: s.def, Outages: s.outages}
	if c := s.current; c != nil {
		if !c.Planned && s.def.RTO > 0 && c.Duration(now) > s.def.RTO && !c.RTOBreached {
			c.RTOBreached = true
			s.rtoBreaches++
		}
		copied := c.clone()
		st.Current = &copied
	}
	st.RTOBreaches = s.rtoBreaches
	windowStart := now.Add(-s.def.Window)
	for i := len(s.history) - 1; i >= 0; i-- {
		o := &s.history[i]
		if o.Planned {
			continue
		}
		if st.Last == nil {
			last := o.clone()
			st.Last = &last
		}
		if o.End.Before(windowStart) {
			break // history is in time order: the rest ended earlier
		}
		st.WindowOutages++
		st.WindowRepairTime += o.Duration(now)
		st.Downtime += o.End.Sub(maxTime(o.Start, windowStart))
	}
	if c := s.current; c != nil && !c.Planned {
		st.Downtime += now.Sub(maxTime(c.Start, windowStart))
	}
	for _, name := range s.def.Backups {
		b := BackupStatus{Name: name}
		if state := s.backups[name]; state != nil {
			b.backupState = *state
			b.Failures = copyFailures(state.Failures)
		}
		st.Backups = append(st.Backups, b)
	}
	if n := len(s.drills); n > 0 {
		last := s.drills[n-1]
		st.LastDrill = &last
	}
	for _, d := range s.drills {
		st.Drills[boolIndex(d.Passed)]++
	}
	return st
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Evaluate computes every service's recovery figures at now and publishes
// them.
func (r *Recovery) Evaluate(now time.Time) *RecoverySnapshot {
	r.evalMu.Lock()
	defer r.evalMu.Unlock()
	services := r.sorted("")
	snap := &RecoverySnapshot{Time: now, Services: make([]RecoveryStatus, len(services))}
	for i, s := range services {
		snap.Services[i] = s.status(now)
	}
	r.snapshot.Store(snap)
	return snap
}

// Snapshot returns the latest published snapshot; never nil.
func (r *Recovery) Snapshot() *RecoverySnapshot { return r.snapshot.Load() }

// RecoveryPointAge returns how old the backup's latest good recovery
// point is at now; false when none was ever found.
func (b *BackupStatus) RecoveryPointAge(now time.Time) (time.Duration, bool) {
	if b.Point.IsZero() {
		return 0, false
	}
	return now.Sub(b.Point), true
}
