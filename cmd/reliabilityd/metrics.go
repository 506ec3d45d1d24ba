package main

import (
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/reliabilityd/reliabilityd/collector"
)

// metricsHandler serves /metrics: the registry's families (the daemon's
// own metrics, Go and process collectors), then the probe, SLO and
// capacity families streamed one at a time (ProbeMetrics, slo.Engine and
// slo.Capacity EachFamily). Those bypass the registry on purpose: at
// 10,000 probes or SLOs, gathering them into one tree and re-sorting it
// costs seconds and a hundred megabytes per scrape (docs/benchmarks.md).
// Their names never clash with the registry's (probe_*, slo_* and
// capacity_* against reliabilityd_*, go_*, process_*, promhttp_*).
type metricsHandler struct {
	registry *prometheus.Registry
	// streamed are the families written after the registry's, one at a
	// time: probe, SLO and capacity metrics.
	streamed []func(emit func(*dto.MetricFamily) error) error
	logger   *slog.Logger
	// inFlight bounds concurrent scrapes; nil means no bound.
	inFlight chan struct{}
	// gzipPool reuses compressors (about 1 MB each) across scrapes.
	gzipPool sync.Pool
}

// gzipWriter returns a compressor writing to w at gzip.BestSpeed: at
// hundreds of thousands of series the default level doubles a scrape's
// time for about 15% fewer bytes, and scrapes travel over a LAN.
func (h *metricsHandler) gzipWriter(w io.Writer) *gzip.Writer {
	if gz, ok := h.gzipPool.Get().(*gzip.Writer); ok {
		gz.Reset(w)
		return gz
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // the level is valid
	return gz
}

func newMetricsHandler(registry *prometheus.Registry, maxRequests int, logger *slog.Logger,
	streamed ...func(emit func(*dto.MetricFamily) error) error) *metricsHandler {
	h := &metricsHandler{registry: registry, logger: logger, streamed: streamed}
	if maxRequests > 0 {
		h.inFlight = make(chan struct{}, maxRequests)
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, "Limit of concurrent scrapes reached; try again later.", http.StatusServiceUnavailable)
			return
		}
	}
	families, err := h.registry.Gather()
	if err != nil {
		h.logger.Error("Gathering the daemon's metrics", "err", err)
		http.Error(w, "error gathering metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz := h.gzipWriter(w)
		defer h.gzipPool.Put(gz)
		defer gz.Close()
		out = gz
	}
	encoder := expfmt.NewEncoder(out, format)
	for _, mf := range families {
		if err := encoder.Encode(mf); err != nil {
			h.logger.Debug("Writing /metrics", "err", err) // the scraper went away
			return
		}
	}
	// The streamed families are hundreds of thousands of series at scale:
	// the text formats go through collector.FamilyWriter, which writes what
	// expfmt writes several times faster; other formats through expfmt.
	encode := encoder.Encode
	switch format.FormatType() {
	case expfmt.TypeTextPlain, expfmt.TypeOpenMetrics:
		encode = collector.NewFamilyWriter(out, format.FormatType() == expfmt.TypeOpenMetrics).Encode
	}
	for _, families := range h.streamed {
		if err := families(encode); err != nil {
			h.logger.Debug("Writing /metrics", "err", err)
			return
		}
	}
	if closer, ok := encoder.(expfmt.Closer); ok {
		closer.Close() // OpenMetrics' "# EOF"
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		encoding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(encoding), "gzip") && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
			return true
		}
	}
	return false
}
