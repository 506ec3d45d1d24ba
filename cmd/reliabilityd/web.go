package main

import (
	"context"
	"embed"
	"html/template"
	"math"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

	"github.com/reliabilityd/reliabilityd/collector"
	"github.com/reliabilityd/reliabilityd/slo"
)

//go:embed templates/*.html
var templateFiles embed.FS

// handler returns every HTTP endpoint of the daemon on its own mux (never
// http.DefaultServeMux, so nothing is mounted by a blank import).
func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	pages := template.Must(template.New("").Funcs(templateFuncs()).ParseFS(templateFiles, "templates/*.html"))

	metrics := newMetricsHandler(d.registry, d.flags.maxRequests, d.logger,
		d.probeMetrics.EachFamily, d.engine.EachFamily, d.capacity.EachFamily, d.recovery.EachFamily)
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(d.registry, metrics))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Healthy.\n"))
	})
	mux.HandleFunc("GET /-/ready", d.handleReady)
	mux.HandleFunc("/-/reload", d.handleReload)
	mux.HandleFunc("GET /config", d.handleConfig)
	mux.HandleFunc("/api/v1/outages", d.handleOutages)
	mux.HandleFunc("/api/v1/drills", d.handleDrills)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { d.handleLanding(w, pages) })
	if d.flags.enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (d *daemon) handleReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !d.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("Not ready.\n"))
		return
	}
	w.Write([]byte("Ready.\n"))
}

// handleReload implements POST /-/reload: it answers once the reload is
// done, with the error when it failed.
func (d *daemon) handleReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	if err := d.requestReload(ctx); err != nil {
		http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("Configuration reloaded.\n"))
}

// handleConfig shows the configuration in force, defaults applied. It
// holds no secrets: credentials are only ever file paths.
func (d *daemon) handleConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	cfg := d.current.Load()
	if cfg == nil {
		http.Error(w, "no configuration loaded yet", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte(cfg.String()))
}

// serviceView is one service on the landing page.
type serviceView struct {
	Name, Owner, Priority string
	Probes                []collector.ProbeStatus
	SLOs                  []sloView
	Capacity              []resourceView
	// Recovery is the service's recovery figures; nil without a section.
	Recovery *slo.RecoveryStatus
	// Schedule tells whether maintenance or the hours of operation
	// exclude the service's runs right now.
	Schedule slo.ServiceStatus
	Failing  int
	NotRun   int
}

// landingView is everything the landing page shows.
type landingView struct {
	Version    string
	ConfigFile string
	Now        time.Time
	Services   []serviceView
	Failures   []collector.HistoryEntry
	Recent     []collector.HistoryEntry
}

func (d *daemon) handleLanding(w http.ResponseWriter, pages *template.Template) {
	view := landingView{Version: version.Version, ConfigFile: d.flags.configFile, Now: time.Now()}
	if view.ConfigFile == "" {
		view.ConfigFile = "built-in (probes the daemon itself)"
	}
	byService := map[string][]collector.ProbeStatus{}
	for _, status := range d.probeMetrics.Status() {
		byService[status.ID.Service] = append(byService[status.ID.Service], status)
	}
	snap := d.engine.Snapshot()
	slosByService := map[string][]sloView{}
	for i := range snap.SLOs {
		s := &snap.SLOs[i]
		slosByService[s.Service] = append(slosByService[s.Service], newSLOView(s))
	}
	resourcesByService := map[string][]resourceView{}
	for i := range d.capacity.Snapshot().Resources {
		r := &d.capacity.Snapshot().Resources[i]
		resourcesByService[r.Service] = append(resourcesByService[r.Service], newResourceView(r))
	}
	recovery := map[string]*slo.RecoveryStatus{}
	recoverySnap := d.recovery.Snapshot()
	for i := range recoverySnap.Services {
		recovery[recoverySnap.Services[i].Service] = &recoverySnap.Services[i]
	}
	schedule := map[string]slo.ServiceStatus{}
	for _, s := range snap.Services {
		schedule[s.Service] = s
	}
	if cfg := d.current.Load(); cfg != nil {
		for _, svc := range cfg.Services {
			sv := serviceView{Name: svc.Name, Owner: svc.Owner, Priority: svc.Priority, Probes: byService[svc.Name],
				SLOs: slosByService[svc.Name], Capacity: resourcesByService[svc.Name], Schedule: schedule[svc.Name],
				Recovery: recovery[svc.Name]}
			for _, p := range sv.Probes {
				switch {
				case p.Last.Start.IsZero():
					sv.NotRun++
				case !p.Last.Success:
					sv.Failing++
				}
			}
			view.Services = append(view.Services, sv)
		}
	}
	view.Failures = d.history.Failures()
	view.Recent = d.history.List()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "index.html", view); err != nil {
		d.logger.Error("Rendering the landing page", "err", err)
	}
}

// sloView is one SLO's row on the landing page; absent figures (no data)
// are nil.
type sloView struct {
	Name, Kind, Period string
	Objective          float64
	Events             uint64
	SLI, Remaining     *float64
	Burn1h, Burn5m     *float64
}

func newSLOView(s *slo.SLOStatus) sloView {
	v := sloView{Name: s.Name, Kind: s.SLIKind(), Period: s.Period(), Objective: s.Objective, Events: s.Windows[slo.WindowFull].Total()}
	optional := func(value float64, ok bool) *float64 {
		if !ok {
			return nil
		}
		return &value
	}
	v.SLI = optional(s.SLI(slo.WindowFull))
	v.Burn1h = optional(s.BurnRate(slo.Window1h))
	v.Burn5m = optional(s.BurnRate(slo.Window5m))
	budget := s.Budget()
	v.Remaining = optional(budget.RemainingRatio, budget.HasData)
	return v
}

// resourceView is one capacity resource's row on the landing page;
// absent figures are nil.
type resourceView struct {
	Name, Source        string
	Usage, Limit        *float64
	Utilization         *float64
	HeadroomTarget      float64
	TargetMet           bool
	Exhaustion          string
	Failures            uint64
	LastSample          time.Time
	PlanIn12, TrendIn12 *float64
}

func newResourceView(r *slo.ResourceStatus) resourceView {
	optional := func(value float64, ok bool) *float64 {
		if !ok {
			return nil
		}
		return &value
	}
	v := resourceView{Name: r.Name, Source: r.Source, HeadroomTarget: r.HeadroomTarget, LastSample: r.LastSample,
		Usage: optional(r.Usage, r.HasUsage), Limit: optional(r.Limit, r.HasUsage && r.Limit > 0)}
	v.Utilization = optional(r.Utilization())
	if headroom, ok := r.Headroom(); ok {
		v.TargetMet = headroom >= r.HeadroomTarget
	}
	switch seconds, ok := r.ExhaustionSeconds(); {
	case !ok:
		v.Exhaustion = "no forecast yet"
	case math.IsInf(seconds, 1):
		v.Exhaustion = "never (flat or shrinking)"
	default:
		v.Exhaustion = time.Duration(seconds * float64(time.Second)).Round(time.Minute).String()
	}
	for _, n := range r.Failures {
		v.Failures += n
	}
	v.PlanIn12 = optional(r.ProjectedPlan(1))
	v.TrendIn12 = optional(r.ProjectedTrend(1))
	return v
}

func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"ago": func(now, t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return now.Sub(t).Truncate(time.Second).String() + " ago"
		},
		"ms": func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() },
		// pct shows a ratio in percent, "no data" when absent.
		"pct": func(ratio *float64) string {
			if ratio == nil {
				return "no data"
			}
			return strconv.FormatFloat(*ratio*100, 'f', 3, 64) + " %"
		},
		"rate": func(value *float64) string {
			if value == nil {
				return "no data"
			}
			return strconv.FormatFloat(*value, 'f', 2, 64)
		},
		"ptr":   func(v float64) *float64 { return &v },
		"since": func(now, t time.Time) string { return now.Sub(t).Truncate(time.Second).String() },
		"num": func(value *float64) string {
			if value == nil {
				return "–"
			}
			if *value == math.Trunc(*value) && math.Abs(*value) < 1e18 {
				return strconv.FormatFloat(*value, 'f', 0, 64)
			}
			return strconv.FormatFloat(*value, 'f', 3, 64)
		},
		"deref": func(v *float64) float64 { return *v },
		"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	}
}
