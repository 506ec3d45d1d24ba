package main

import (
	"bytes"
	"html/template"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/common/version"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/config"
	"github.com/reliabilityd/reliabilityd/slo"
)

// The report pages (docs/report.md): `/`, the summary (every service's
// status with its SLO, capacity and recovery figures, recent outages and
// failures), and `/service/{name}`, one service in full. `/` holds one row
// per service and bounded lists, never a row per probe or per kept run, so
// its size follows the number of services, not of probes or of the
// history. Both read the engines' published snapshots, computed at their
// last evaluation; the pages select and format figures and compute none
// of their own but the status rules (report_status.go).

// Bounds of the lists on the pages, so a long-lived daemon's page stays
// readable; the API and /metrics have the rest.
const (
	maxRecentOutages   = 20
	maxRecentFailures  = 20
	maxServiceOutages  = 50
	maxServiceDrills   = 20
	maxServiceFailures = 100
	maxServiceRuns     = 50
)

// reportData is what the report pages are built from: the configuration
// in force and the figures of every engine, read once per request. The
// slices are the engines' immutable snapshots or copies owned by the
// request.
type reportData struct {
	cfg       *config.Config
	probes    map[string][]collector.ProbeStatus
	slos      map[string][]*slo.SLOStatus
	resources map[string][]*slo.ResourceStatus
	recovery  map[string]*slo.RecoveryStatus
	schedule  map[string]slo.ServiceStatus
	failures  []collector.HistoryEntry
}

// collectReportData reads the configuration and the engines' figures: of
// every service when service is "", else of that service only.
func (d *daemon) collectReportData(service string) *reportData {
	data := &reportData{cfg: d.current.Load(), probes: map[string][]collector.ProbeStatus{}, slos: map[string][]*slo.SLOStatus{},
		resources: map[string][]*slo.ResourceStatus{}, recovery: map[string]*slo.RecoveryStatus{}, schedule: map[string]slo.ServiceStatus{}}
	wanted := func(name string) bool { return service == "" || name == service }
	for _, status := range d.probeMetrics.Status() {
		if wanted(status.ID.Service) {
			data.probes[status.ID.Service] = append(data.probes[status.ID.Service], status)
		}
	}
	snap := d.engine.Snapshot()
	for i := range snap.SLOs {
		if s := &snap.SLOs[i]; wanted(s.Service) {
			data.slos[s.Service] = append(data.slos[s.Service], s)
		}
	}
	for _, s := range snap.Services {
		if wanted(s.Service) {
			data.schedule[s.Service] = s
		}
	}
	capacity := d.capacity.Snapshot()
	for i := range capacity.Resources {
		if r := &capacity.Resources[i]; wanted(r.Service) {
			data.resources[r.Service] = append(data.resources[r.Service], r)
		}
	}
	recovery := d.recovery.Snapshot()
	for i := range recovery.Services {
		if r := &recovery.Services[i]; wanted(r.Service) {
			data.recovery[r.Service] = r
		}
	}
	data.failures = d.history.Failures()
	if service != "" {
		data.failures = slices.DeleteFunc(data.failures, func(e collector.HistoryEntry) bool { return e.ID.Service != service })
	}
	return data
}

// figures returns the engines' figures of service.
func (data *reportData) figures(service string) *serviceFigures {
	return &serviceFigures{SLOs: data.slos[service], Resources: data.resources[service], Recovery: data.recovery[service],
		Probes: data.probes[service], Schedule: data.schedule[service]}
}

// serviceRow is one service in the report table of `/`.
type serviceRow struct {
	Name, Owner, Priority string
	Assessment            assessment
	SLOs                  []sloView
	Capacity              []resourceView
	// Nearest is the resource the trend exhausts first; nil when none has
	// a forecast.
	Nearest  *resourceView
	Recovery *recoveryView
	// Probes counts the probes, those that ran and those whose last run
	// failed (named in Failing).
	Probes, ProbesRun int
	Failing           []string
}

func newServiceRow(svc *config.ServiceConfig, f *serviceFigures, now time.Time) serviceRow {
	row := serviceRow{Name: svc.Name, Owner: svc.Owner, Priority: svc.Priority, Assessment: assess(f, now), Probes: len(svc.Probes)}
	for _, s := range f.SLOs {
		row.SLOs = append(row.SLOs, newSLOView(s))
	}
	nearest, nearestSeconds := -1, math.Inf(1)
	for i, r := range f.Resources {
		row.Capacity = append(row.Capacity, newResourceView(r))
		if seconds, ok := r.ExhaustionSeconds(); ok && (nearest < 0 || seconds < nearestSeconds) {
			nearest, nearestSeconds = i, seconds
		}
	}
	if nearest >= 0 {
		row.Nearest = &row.Capacity[nearest]
	}
	if f.Recovery != nil {
		row.Recovery = newRecoveryView(f.Recovery, now)
	}
	for _, p := range f.Probes {
		if p.Last.Start.IsZero() {
			continue
		}
		row.ProbesRun++
		if !p.Last.Success {
			row.Failing = append(row.Failing, p.ID.Probe)
		}
	}
	return row
}

// reportView is the report at the top of `/`.
type reportView struct {
	Rows []serviceRow
	// Summary counts the services by status, worst first.
	Summary []statusCount
	// Outages are the open and the last closed unplanned outage of every
	// service, newest first, at most maxRecentOutages (OutagesOmitted
	// more).
	Outages        []outageView
	OutagesOmitted int
}

func newReportView(data *reportData, now time.Time) reportView {
	var report reportView
	if data.cfg == nil {
		return report
	}
	var byStatus [statusFailing + 1]int
	for i := range data.cfg.Services {
		svc := &data.cfg.Services[i]
		row := newServiceRow(svc, data.figures(svc.Name), now)
		byStatus[row.Assessment.Status]++
		report.Rows = append(report.Rows, row)
		if r := data.recovery[svc.Name]; r != nil {
			for _, o := range []*slo.Outage{r.Current, r.Last} {
				if o != nil {
					report.Outages = append(report.Outages, newOutageView(o, r.RTO, now))
				}
			}
		}
	}
	for s := statusFailing; s >= statusNoData; s-- {
		report.Summary = append(report.Summary, statusCount{s, byStatus[s]})
	}
	slices.SortStableFunc(report.Outages, func(a, b outageView) int { return b.Start.Compare(a.Start) })
	if n := len(report.Outages); n > maxRecentOutages {
		report.OutagesOmitted = n - maxRecentOutages
		report.Outages = report.Outages[:maxRecentOutages]
	}
	return report
}

// statusCount is how many services have a status.
type statusCount struct {
	Status   status
	Services int
}

// outageView is one outage on the pages.
type outageView struct {
	Service       string
	Start, End    time.Time
	Open, Planned bool
	Duration      string
	// RTO is "" for a planned outage and without an RTO; RTOVerdict
	// tells how the outage stands against it, and RTOLeft is the time
	// left of it while the verdict is pending.
	RTO        string
	RTOVerdict rtoVerdict
	RTOLeft    string
	Probes     []slo.OutageProbe
}

func newOutageView(o *slo.Outage, rto time.Duration, now time.Time) outageView {
	v := outageView{Service: o.Service, Start: o.Start, End: o.End, Open: o.End.IsZero(), Planned: o.Planned,
		Duration: humanDuration(o.Duration(now)), Probes: o.Probes}
	if rto <= 0 || o.Planned {
		return v
	}
	v.RTO = humanDuration(rto)
	switch elapsed := o.Duration(now); {
	case elapsed > rto:
		// An open outage past the RTO has breached it already.
		v.RTOVerdict = rtoBreached
	case v.Open:
		// Still within the RTO, but it may yet outlast it.
		v.RTOVerdict, v.RTOLeft = rtoPending, humanDuration(rto-elapsed)
	default:
		v.RTOVerdict = rtoMet
	}
	return v
}

// rtoVerdict is how an unplanned outage stands against the RTO.
type rtoVerdict int

const (
	rtoMet rtoVerdict = iota
	// rtoPending: the outage is open and still within the RTO.
	rtoPending
	rtoBreached
)

// String is what the pages show.
func (v rtoVerdict) String() string {
	switch v {
	case rtoPending:
		return "pending"
	case rtoBreached:
		return "breached"
	default:
		return "met"
	}
}

// Class is the CSS class of the verdict: an open outage within the RTO is
// a risk, as in the status rules.
func (v rtoVerdict) Class() string {
	switch v {
	case rtoPending:
		return "risk"
	case rtoBreached:
		return "fail"
	default:
		return "ok"
	}
}

// recoveryView is a service's recovery figures, durations in words.
type recoveryView struct {
	*slo.RecoveryStatus
	RTOText, RPOText, WindowText string
	// DownFor is the open unplanned outage's elapsed time, "" when none;
	// DownOverRTO tells whether it passed the RTO.
	DownFor     string
	DownOverRTO bool
	// LastFor is the last closed unplanned outage's duration, "" when
	// none.
	LastFor    string
	LastRTOMet bool
	// MTTR and MTBF are "" when no outage ended within the window.
	MTTR, MTBF   string
	DowntimeText string
	Backups      []backupView
	DrillDue     bool
	DrillEvery   string
	DrillRTO     bool // the last drill passed within the RTO
}

// backupView is one backup's recovery point against the RPO.
type backupView struct {
	Name string
	// Age is the latest good recovery point's age, "" when none found.
	Age            string
	Point          time.Time
	RPOMet         bool
	Checked        bool
	LastOK         bool
	LastCheck      time.Time
	Checks         uint64
	FailureReasons map[collector.Reason]uint64
}

func newRecoveryView(r *slo.RecoveryStatus, now time.Time) *recoveryView {
	v := &recoveryView{RecoveryStatus: r, WindowText: humanDuration(r.Window), DowntimeText: humanDuration(r.Downtime),
		DrillDue: r.DrillOverdue(now)}
	if r.RTO > 0 {
		v.RTOText = humanDuration(r.RTO)
	}
	if r.RPO > 0 {
		v.RPOText = humanDuration(r.RPO)
	}
	if c := r.Current; c != nil && !c.Planned {
		v.DownFor = humanDuration(c.Duration(now))
		v.DownOverRTO = r.RTO > 0 && c.Duration(now) > r.RTO
	}
	if l := r.Last; l != nil {
		v.LastFor = humanDuration(l.Duration(now))
		v.LastRTOMet = r.RTO <= 0 || l.Duration(now) <= r.RTO
	}
	if mttr, ok := r.MTTR(); ok {
		v.MTTR = humanDuration(mttr)
	}
	if mtbf, ok := r.MTBF(); ok {
		v.MTBF = humanDuration(mtbf)
	}
	if r.DrillEvery > 0 {
		v.DrillEvery = humanDuration(r.DrillEvery)
	}
	if d := r.LastDrill; d != nil {
		v.DrillRTO = d.Passed && (r.RTO <= 0 || d.Duration <= r.RTO)
	}
	for i := range r.Backups {
		b := &r.Backups[i]
		bv := backupView{Name: b.Name, Point: b.Point, Checked: b.Checks > 0, LastOK: b.LastOK, LastCheck: b.LastCheck,
			Checks: b.Checks, FailureReasons: b.Failures}
		if age, ok := b.RecoveryPointAge(now); ok {
			bv.Age = humanDuration(age)
			bv.RPOMet = age <= r.RPO
		}
		v.Backups = append(v.Backups, bv)
	}
	return v
}

// landingView is everything `/` shows: the report and the recent
// failures.
type landingView struct {
	Version    string
	ConfigFile string
	Now        time.Time
	Report     reportView
	// Failures are the newest failed runs, at most maxRecentFailures of
	// the FailuresKept the history holds.
	Failures     []collector.HistoryEntry
	FailuresKept int
	// PrometheusSources are the configured Prometheus sources with their
	// last query, sorted by name.
	PrometheusSources []collector.PrometheusSourceStatus
}

// reportRoutes mounts the report pages on mux; now is the clock the pages
// are rendered at.
func (d *daemon) reportRoutes(mux *http.ServeMux, pages *template.Template, now func() time.Time) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { d.handleLanding(w, pages, now()) })
	mux.HandleFunc("GET /service/{name}", func(w http.ResponseWriter, r *http.Request) { d.handleService(w, r, pages, now()) })
}

// handleLanding serves `/` as of now.
func (d *daemon) handleLanding(w http.ResponseWriter, pages *template.Template, now time.Time) {
	data := d.collectReportData("")
	view := landingView{Version: version.Version, ConfigFile: d.flags.configFile, Now: now,
		Report: newReportView(data, now), FailuresKept: len(data.failures), PrometheusSources: d.promSources.Status()}
	view.Failures = data.failures[:min(len(data.failures), maxRecentFailures)]
	if view.ConfigFile == "" {
		view.ConfigFile = "built-in (probes the daemon itself)"
	}
	d.render(w, pages, http.StatusOK, "index.html", view)
}

// servicePage is everything `/service/{name}` shows.
type servicePage struct {
	Version string
	Now     time.Time
	Row     serviceRow
	// Schedule tells whether the service's runs count right now.
	Schedule slo.ServiceStatus
	SLOs     []sloDetail
	Recovery *recoveryView
	// Outages are the service's outages, newest first, at most
	// maxServiceOutages of OutagesTotal; Drills likewise.
	Outages      []outageView
	OutagesTotal int
	Drills       []slo.Drill
	DrillsTotal  int
	Probes       []probeView
	// Failures are the service's newest failed runs, at most
	// maxServiceFailures of the FailuresKept the history holds.
	Failures     []collector.HistoryEntry
	FailuresKept int
	// Runs are the service's newest runs, successes and failures, at
	// most maxServiceRuns of the RunsKept the history holds.
	Runs     []collector.HistoryEntry
	RunsKept int
}

// probeView is a probe with the step at which its last run failed (nil
// when none did: not a transaction, or it succeeded).
type probeView struct {
	collector.ProbeStatus
	FailedStep *collector.StepResult
}

// sloDetail is one SLO on the service page: every window and the budget.
type sloDetail struct {
	sloView
	LatencyBelow time.Duration
	Probes       []string
	Calendar     string
	Timezone     string
	WindowStart  time.Time
	WindowEnd    time.Time
	Windows      []windowView
	Budget       slo.Budget
	// QuerySource names the Prometheus source of a queried SLI; empty
	// for probe SLIs. QueriedWindows tells its mode, FiguresAt when a
	// window-mode SLI's figures were read.
	QuerySource    string
	QueriedWindows bool
	FiguresAt      time.Time
	// Exhaustion is the time left at the 1-hour burn rate, "" without one.
	Exhaustion string
}

// windowView is one window of an SLO.
type windowView struct {
	Name   string
	Counts slo.WindowEvents
	SLI    *float64
	Burn   *float64
}

func newSLODetail(s *slo.SLOStatus) sloDetail {
	v := sloDetail{sloView: newSLOView(s), LatencyBelow: s.LatencyBelow, Probes: s.Definition.Probes, Calendar: s.Calendar,
		WindowStart: s.WindowStart, WindowEnd: s.WindowStart.Add(s.WindowLength), Budget: s.Budget(),
		QuerySource: s.QuerySource, QueriedWindows: s.QueriedWindows, FiguresAt: s.FiguresAt}
	if s.Location != nil {
		// A calendar period starts at midnight in the SLO's time zone.
		v.Timezone = s.Location.String()
		v.WindowStart, v.WindowEnd = v.WindowStart.In(s.Location), v.WindowEnd.In(s.Location)
	}
	for w, name := range slo.WindowNames {
		wv := windowView{Name: name, Counts: s.Windows[w]}
		wv.SLI = optional(s.SLI(w))
		wv.Burn = optional(s.BurnRate(w))
		v.Windows = append(v.Windows, wv)
	}
	if v.Budget.HasExhaustion {
		if v.Budget.ExhaustionSeconds <= 0 {
			v.Exhaustion = "already spent"
		} else {
			v.Exhaustion = humanSeconds(v.Budget.ExhaustionSeconds)
		}
	}
	return v
}

// handleService serves `/service/{name}` as of now.
func (d *daemon) handleService(w http.ResponseWriter, r *http.Request, pages *template.Template, now time.Time) {
	name := r.PathValue("name")
	data := d.collectReportData(name)
	var svc *config.ServiceConfig
	if data.cfg != nil {
		for i := range data.cfg.Services {
			if data.cfg.Services[i].Name == name {
				svc = &data.cfg.Services[i]
				break
			}
		}
	}
	if svc == nil {
		d.render(w, pages, http.StatusNotFound, "notfound.html", struct{ Version, Service string }{version.Version, name})
		return
	}
	f := data.figures(name)
	page := servicePage{Version: version.Version, Now: now, Row: newServiceRow(svc, f, now), Schedule: f.Schedule}
	for _, s := range f.SLOs {
		page.SLOs = append(page.SLOs, newSLODetail(s))
	}
	if f.Recovery != nil {
		page.Recovery = newRecoveryView(f.Recovery, now)
		outages := d.recovery.Outages(name)
		page.OutagesTotal = len(outages)
		for i := len(outages) - 1; i >= 0 && len(page.Outages) < maxServiceOutages; i-- {
			page.Outages = append(page.Outages, newOutageView(&outages[i], f.Recovery.RTO, now))
		}
		drills := d.recovery.Drills(name)
		page.DrillsTotal = len(drills)
		for i := len(drills) - 1; i >= 0 && len(page.Drills) < maxServiceDrills; i-- {
			page.Drills = append(page.Drills, drills[i])
		}
	}
	for _, p := range f.Probes {
		page.Probes = append(page.Probes, probeView{ProbeStatus: p, FailedStep: failedStep(p.Last.Steps)})
	}
	page.FailuresKept = len(data.failures)
	page.Failures = data.failures[:min(len(data.failures), maxServiceFailures)]
	for _, e := range d.history.List() {
		if e.ID.Service != name {
			continue
		}
		if page.RunsKept++; len(page.Runs) < maxServiceRuns {
			page.Runs = append(page.Runs, e)
		}
	}
	d.render(w, pages, http.StatusOK, "service.html", page)
}

// failedStep returns the step a transaction failed at, nil when none.
func failedStep(steps []collector.StepResult) *collector.StepResult {
	for i := range steps {
		if steps[i].Ran && !steps[i].Success {
			return &steps[i]
		}
	}
	return nil
}

// render executes a page into memory first, so a template error becomes
// a 500 instead of half a page with a 200.
func (d *daemon) render(w http.ResponseWriter, pages *template.Template, code int, name string, view any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, view); err != nil {
		d.logger.Error("Rendering a page", "page", name, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// sloView is one SLO's figures on the pages; absent figures (no data) are
// nil.
type sloView struct {
	Name, Kind, Period string
	Objective          float64
	Events             float64
	SLI, Remaining     *float64
	Burn1h, Burn5m     *float64
	// Met tells whether the SLI is at least the objective (false without
	// data).
	Met bool
}

func newSLOView(s *slo.SLOStatus) sloView {
	v := sloView{Name: s.Name, Kind: s.SLIKind(), Period: s.Period(), Objective: s.Objective, Events: s.Windows[slo.WindowFull].Total()}
	v.SLI = optional(s.SLI(slo.WindowFull))
	v.Met = v.SLI != nil && *v.SLI >= s.Objective
	v.Burn1h = optional(s.BurnRate(slo.Window1h))
	v.Burn5m = optional(s.BurnRate(slo.Window5m))
	budget := s.Budget()
	v.Remaining = optional(budget.RemainingRatio, budget.HasData)
	return v
}

// resourceView is one capacity resource's figures on the pages; absent
// figures are nil.
type resourceView struct {
	Name, Source          string
	Usage, Limit          *float64
	Utilization, Headroom *float64
	HeadroomTarget        float64
	TargetMet             bool
	Exhaustion            string
	Samples, Failures     uint64
	FailureReasons        map[collector.Reason]uint64
	LastSample            time.Time
	PlanIn12, TrendIn12   *float64
	// Projections are the plan's and the trend's utilization at 6, 12
	// and 24 months.
	Projections []projectionView
}

// projectionView is one growth horizon of a resource.
type projectionView struct {
	Horizon     string
	Plan, Trend *float64
}

func newResourceView(r *slo.ResourceStatus) resourceView {
	v := resourceView{Name: r.Name, Source: r.Source, HeadroomTarget: r.HeadroomTarget, LastSample: r.LastSample,
		Usage: optional(r.Usage, r.HasUsage), Limit: optional(r.Limit, r.HasUsage && r.Limit > 0), Samples: r.Samples,
		FailureReasons: r.Failures}
	v.Utilization = optional(r.Utilization())
	v.Headroom = optional(r.Headroom())
	if v.Headroom != nil {
		v.TargetMet = *v.Headroom >= r.HeadroomTarget
	}
	switch seconds, ok := r.ExhaustionSeconds(); {
	case !ok:
		v.Exhaustion = "no forecast yet"
	case math.IsInf(seconds, 1):
		v.Exhaustion = "never (flat or shrinking)"
	case seconds <= 0:
		v.Exhaustion = "at the limit"
	default:
		v.Exhaustion = humanSeconds(seconds)
	}
	for _, n := range r.Failures {
		v.Failures += n
	}
	for h, name := range []string{"6 months", "12 months", "24 months"} {
		v.Projections = append(v.Projections, projectionView{Horizon: name,
			Plan: optional(r.ProjectedPlan(h)), Trend: optional(r.ProjectedTrend(h))})
	}
	v.PlanIn12, v.TrendIn12 = v.Projections[1].Plan, v.Projections[1].Trend
	return v
}

// optional returns a pointer to value when ok, nil otherwise: the pages
// show nil as "no data".
func optional(value float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &value
}
