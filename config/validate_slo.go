package config

import (
	"fmt"
	"time"
)

// Bounds of SLO settings. Windows are whole hours because the engine keeps
// an hourly bucket ring for them (docs/slo.md); the longest is a leap year.
const (
	MinSLOWindow          = Duration(time.Hour)
	MaxSLOWindow          = Duration(366 * 24 * time.Hour)
	MinEvaluationInterval = Duration(time.Second)
	MaxEvaluationInterval = Duration(time.Hour)
	maxWeeklyDuration     = Duration(7 * 24 * time.Hour)
	maxOnceDuration       = Duration(366 * 24 * time.Hour)
)

// Calendar periods an SLO window can be aligned to.
var calendarPeriods = []string{"week", "month", "quarter"}

// service checks what a service holds besides its probes: maintenance
// windows, hours of operation and SLOs. probeNames are its valid probes.
func (v *validator) service(i int, s *ServiceConfig, probeNames map[string]string) {
	path := servicePath(i)
	for j := range s.Maintenance {
		v.maintenance(fmt.Sprintf("%s.maintenance[%d]", path, j), &s.Maintenance[j])
	}
	if s.HoursOfOperation != nil {
		v.hoursOfOperation(path+".hours_of_operation", s.HoursOfOperation)
	}
	sloNames := map[string]string{}
	for j := range s.SLOs {
		v.name(sloPath(i, j)+".name", "SLO", s.SLOs[j].Name, sloNames, sloPath(i, j))
	}
	resourceNames := map[string]string{}
	for j := range s.Capacity {
		path := capacityPath(i, j)
		v.name(path+".name", "resource", s.Capacity[j].Name, resourceNames, path)
		v.capacity(path, &s.Capacity[j])
	}
	if s.Recovery != nil {
		v.recovery(servicePath(i)+".recovery", s.Recovery, probeNames)
	}
	renamed := map[string]string{}
	for j := range s.SLOs {
		slo := &s.SLOs[j]
		v.slo(sloPath(i, j), slo, s, probeNames)
		if slo.RenamedFrom != "" {
			v.renamedFrom(sloPath(i, j)+".renamed_from", slo, sloNames, renamed)
		}
	}
}

func (v *validator) slo(path string, s *SLOConfig, svc *ServiceConfig, probeNames map[string]string) {
	if !(s.Objective > 0 && s.Objective < 100) {
		v.addf(path+".objective", "must be a percentage greater than 0 and less than 100, got %v", s.Objective)
	}
	v.sloWindow(path, s)
	v.sli(path+".sli", &s.SLI, svc, probeNames)
}

func (v *validator) sloWindow(path string, s *SLOConfig) {
	switch {
	case s.Window != 0 && s.Calendar != "":
		// Located at calendar rather than at the SLO's first line, so the
		// position names one of the two conflicting settings.
		v.addf(path+".calendar", "window and calendar are mutually exclusive: set one")
	case s.Calendar != "":
		if !contains(calendarPeriods, s.Calendar) {
			v.addf(path+".calendar", "must be one of week, month, quarter, got %q", s.Calendar)
		}
	case s.Window < MinSLOWindow || s.Window > MaxSLOWindow:
		v.addf(path+".window", "must be between %s and %s, got %s", MinSLOWindow, MaxSLOWindow, s.Window)
	case s.Window%Duration(time.Hour) != 0:
		v.addf(path+".window", "must be a whole number of hours, got %s", s.Window)
	}
	if s.TimeZone.Location != nil && s.Calendar == "" {
		v.addf(path+".timezone", "only applies to calendar windows")
	}
}

func (v *validator) sli(path string, s *SLIConfig, svc *ServiceConfig, probeNames map[string]string) {
	if p := s.Prometheus; p != nil {
		v.prometheusSLI(path, s, svc)
		return
	}
	if len(s.Probes) == 0 {
		v.addf(path+".probes", "must name at least one probe of the service")
	}
	v.probeRefs(path+".probes", s.Probes, probeNames)
	if s.LatencyBelow < 0 {
		v.addf(path+".latency_below", "must be greater than 0")
	}
}

// probeRefs checks a list of probe names: each names a probe of the
// service (probeNames), once.
func (v *validator) probeRefs(path string, names []string, probeNames map[string]string) {
	seen := map[string]bool{}
	for k, name := range names {
		itemPath := fmt.Sprintf("%s[%d]", path, k)
		switch {
		case probeNames[name] == "":
			v.addf(itemPath, "the service has no probe %q", name)
		case seen[name]:
			v.addf(itemPath, "probe %q is listed twice", name)
		}
		seen[name] = true
	}
}

// renamedFrom checks that an old name is a valid name that is neither in
// use nor claimed by another SLO: two SLOs cannot inherit one history.
func (v *validator) renamedFrom(path string, s *SLOConfig, sloNames, claimed map[string]string) {
	switch old := s.RenamedFrom; {
	case !validName(old):
		v.addf(path, "invalid SLO name %q", old)
	case old == s.Name:
		v.addf(path, "is the SLO's own name")
	case sloNames[old] != "":
		v.addf(path, "SLO %q still exists (%s); its events cannot move to another SLO", old, sloNames[old])
	case claimed[old] != "":
		v.addf(path, "SLO %q is already claimed by %s", old, claimed[old])
	default:
		claimed[old] = parentPath(path)
	}
}

func (v *validator) maintenance(path string, m *MaintenanceWindow) {
	switch {
	case m.Weekly == nil && m.Once == nil:
		v.addf(path, "a maintenance window needs weekly or once, found neither")
	case m.Weekly != nil && m.Once != nil:
		v.addf(path, "a maintenance window needs weekly or once, found both")
	case m.Weekly != nil:
		w := m.Weekly
		v.weekdays(path+".weekly.days", w.Days, true)
		v.timeOfDay(path+".weekly.start", w.Start, false)
		v.windowDuration(path+".weekly.duration", w.Duration, maxWeeklyDuration)
	default:
		o := m.Once
		if o.Start.IsZero() {
			v.addf(path+".once.start", "must be set")
		} else if !o.Start.IsLocal() && o.TimeZone.Location != nil {
			v.addf(path+".once.timezone", "the start has a UTC offset; timezone only applies to a start without one")
		}
		v.windowDuration(path+".once.duration", o.Duration, maxOnceDuration)
	}
}

func (v *validator) hoursOfOperation(path string, h *HoursOfOperation) {
	v.weekdays(path+".days", h.Days, false)
	v.timeOfDay(path+".start", h.Start, false)
	v.timeOfDay(path+".end", h.End, true)
	if h.Start.IsSet() && h.End.IsSet() && h.Start.Hour()%24 == h.End.Hour()%24 && h.Start.Minute() == h.End.Minute() {
		v.addf(path+".end", "equals start; for round-the-clock service leave hours_of_operation out")
	}
}

func (v *validator) weekdays(path string, days []Weekday, required bool) {
	if required && len(days) == 0 {
		v.addf(path, "must list at least one day")
	}
	seen := map[Weekday]bool{}
	for k, day := range days {
		if seen[day] {
			v.addf(fmt.Sprintf("%s[%d]", path, k), "%s is listed twice", time.Weekday(day))
		}
		seen[day] = true
	}
}

func (v *validator) timeOfDay(path string, t TimeOfDay, allowMidnightEnd bool) {
	switch {
	case !t.IsSet():
		v.addf(path, "must be set")
	case t.Hour() == 24 && !allowMidnightEnd:
		v.addf(path, "24:00 is only valid as an end; use 00:00")
	}
}

func (v *validator) windowDuration(path string, d, maximum Duration) {
	switch {
	case d <= 0:
		v.addf(path, "must be greater than 0")
	case d > maximum:
		v.addf(path, "must be at most %s, got %s", maximum, d)
	}
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}
