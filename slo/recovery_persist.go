package slo

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// RecoveryStateSection names the recovery engine's section in the state
// file.
const RecoveryStateSection = "recovery"

// recoveryStateVersion is the version of the section (docs/state.md). The
// section is JSON: it holds bounded lists of outages and drills per
// service, small next to the event slots, and JSON keeps them readable
// when someone inspects the state by hand.
const recoveryStateVersion = 1

type recoveryState struct {
	Version  int                             `json:"version"`
	Services map[string]serviceRecoveryState `json:"services"`
}

type serviceRecoveryState struct {
	Probes      map[string]*probeStreak `json:"probes,omitempty"`
	Current     *Outage                 `json:"current,omitempty"`
	History     []Outage                `json:"history,omitempty"`
	Outages     [2]uint64               `json:"outages"`
	RTOBreaches uint64                  `json:"rto_breaches"`
	Backups     map[string]*backupState `json:"backups,omitempty"`
	Drills      []Drill                 `json:"drills,omitempty"`
}

// MarshalState implements Snapshotter: every service's recovery state,
// configured or not (a removed recovery section keeps its history).
func (r *Recovery) MarshalState() ([]byte, error) {
	r.mu.Lock()
	kept := maps.Clone(r.kept)
	r.mu.Unlock()
	state := recoveryState{Version: recoveryStateVersion, Services: make(map[string]serviceRecoveryState, len(kept))}
	for _, name := range slices.Sorted(maps.Keys(kept)) {
		s := kept[name]
		s.mu.Lock()
		saved := serviceRecoveryState{Probes: map[string]*probeStreak{}, Current: s.current, History: s.history,
			Outages: s.outages, RTOBreaches: s.rtoBreaches, Backups: map[string]*backupState{}, Drills: s.drills}
		for k, v := range s.probes {
			copied := *v
			saved.Probes[k] = &copied
		}
		for k, v := range s.backups {
			copied := *v
			copied.Failures = copyFailures(v.Failures)
			saved.Backups[k] = &copied
		}
		data, err := json.Marshal(saved) // encode under the lock: the slices are shared
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		var raw serviceRecoveryState
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, err
		}
		state.Services[name] = raw
	}
	return json.Marshal(state)
}

// UnmarshalState restores what MarshalState saved. Call it before the
// first Apply; it replaces nothing already configured. An open outage
// resumes with its start kept. On error nothing is restored.
func (r *Recovery) UnmarshalState(data []byte) error {
	var state recoveryState
	if err := json.Unmarshal(data, &state); err != nil {
		return fmt.Errorf("recovery state: %w", err)
	}
	if state.Version != recoveryStateVersion {
		return fmt.Errorf("recovery state: unknown version %d (this build reads version %d)", state.Version, recoveryStateVersion)
	}
	restored := map[string]*serviceRecovery{}
	for name, saved := range state.Services {
		if len(saved.History) > MaxOutagesKept || len(saved.Drills) > MaxDrillsKept {
			return fmt.Errorf("recovery state: service %q holds more outages or drills than kept", name)
		}
		s := newServiceRecovery(&RecoveryDefinition{Service: name})
		s.current, s.history, s.outages, s.rtoBreaches, s.drills = saved.Current, saved.History, saved.Outages, saved.RTOBreaches, saved.Drills
		for k, v := range saved.Probes {
			if v != nil {
				s.probes[k] = v
			}
		}
		for k, v := range saved.Backups {
			if v != nil {
				s.backups[k] = v
			}
		}
		restored[name] = s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, s := range restored {
		if _, running := r.kept[name]; !running {
			r.kept[name] = s
		}
	}
	return nil
}
