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
)

// templateFiles are the pages and the stylesheet they inline, so a page
// saved from the browser is whole and nothing is fetched from elsewhere.
//
//go:embed templates/*.html templates/report.css
var templateFiles embed.FS

// parsePages parses the page templates.
func parsePages() (*template.Template, error) {
	css, err := templateFiles.ReadFile("templates/report.css")
	if err != nil {
		return nil, err
	}
	funcs := templateFuncs()
	funcs["stylesheet"] = func() template.CSS { return template.CSS(css) }
	return template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/*.html")
}

// handler returns every HTTP endpoint of the daemon on its own mux (never
// http.DefaultServeMux, so nothing is mounted by a blank import).
func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	pages := template.Must(parsePages()) // embedded: an error is a build defect, caught by every test

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
	d.reportRoutes(mux, pages, time.Now)
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

func templateFuncs() template.FuncMap {
	return template.FuncMap{
		// ago shows how long before now t was, to the second: "2m 5s ago".
		"ago": func(now, t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return humanDuration(now.Sub(t).Truncate(time.Second)) + " ago"
		},
		// duration shows a duration in words: "3d 4h".
		"duration": humanDuration,
		// runtime shows how long a run took, to the millisecond: "1s 234ms".
		"runtime": runDuration,
		// pct shows a ratio in percent, "no data" when absent.
		"pct": func(ratio *float64) string {
			if ratio == nil {
				return "no data"
			}
			return strconv.FormatFloat(*ratio*100, 'f', 3, 64) + " %"
		},
		"target": asWritten,
		"rate": func(value *float64) string {
			if value == nil {
				return "no data"
			}
			return strconv.FormatFloat(*value, 'f', 2, 64)
		},
		"ptr": func(v float64) *float64 { return &v },
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
		// local shows a time in its own location, for calendar periods.
		"local": func(t time.Time) string { return t.Format("2006-01-02 15:04 MST") },
	}
}
