package config

import (
	"net/url"
	"strconv"
	"strings"
)

// prometheusSources checks the sources and returns their names, for the
// references of resources and backups.
func (v *validator) prometheusSources(sources []PrometheusSourceConfig) map[string]bool {
	seen := map[string]string{}
	for i := range sources {
		path := prometheusSourcePath(i)
		v.name(path+".name", "prometheus source", sources[i].Name, seen, path)
		v.prometheusSource(path, &sources[i])
	}
	names := make(map[string]bool, len(seen))
	for name := range seen {
		names[name] = true
	}
	return names
}

func (v *validator) prometheusSource(path string, s *PrometheusSourceConfig) {
	v.url(path+".url", s.URL)
	if u, err := url.Parse(s.URL); err == nil && s.URL != "" {
		switch {
		case u.User != nil:
			// The URL is shown on pages and in prometheus_source_info.
			v.addf(path+".url", "must not hold credentials: use basic_auth with a password_file, or bearer_token_file")
		case u.RawQuery != "" || u.Fragment != "":
			v.addf(path+".url", "must be the API's base URL, without a query or fragment, got %q", u.Redacted())
		case strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api/v1"):
			v.addf(path+".url", "must be the API's base URL, without /api/v1 (it is added to every query)")
		}
	}
	if s.Timeout <= 0 {
		v.addf(path+".timeout", "must be greater than 0")
	}
	for _, name := range sortedKeys(s.Headers) {
		headerPath := path + ".headers[" + strconv.Quote(name) + "]"
		switch {
		case !isToken(name):
			v.addf(headerPath, "invalid header name %q", name)
		case strings.EqualFold(name, "Authorization"):
			v.addf(headerPath, "credentials do not belong in headers: use bearer_token_file or basic_auth")
		}
		if strings.ContainsAny(s.Headers[name], "\r\n\x00") {
			v.addf(headerPath, "a header value must not contain CR, LF or NUL")
		}
	}
	v.tlsConfig(path+".tls_config", &s.TLSConfig)
	if s.BasicAuth != nil {
		if s.BasicAuth.Username == "" {
			v.addf(path+".basic_auth.username", "must be set")
		}
		if s.BasicAuth.PasswordFile == "" {
			v.addf(path+".basic_auth.password_file", "must be set")
		}
		if s.BearerTokenFile != "" {
			v.addf(path+".bearer_token_file", "basic_auth and bearer_token_file are mutually exclusive")
		}
	}
}

// prometheusRef checks a reference to a Prometheus source at path (the
// `source` field's parent).
func (v *validator) prometheusRef(path, source string) {
	switch {
	case source == "":
		v.addf(path+".source", "must be set: the name of one of prometheus_sources")
	case !v.promSources[source]:
		v.addf(path+".source", "no prometheus source named %q in prometheus_sources", source)
	}
}

// promQL checks that a query at path is set. The query itself is checked
// by the source when it runs: a syntax error is a failed query with reason
// status, as the API reports it.
func (v *validator) promQL(path, query string, required bool) {
	if strings.TrimSpace(query) == "" && (required || query != "") {
		v.addf(path, "must be a PromQL expression")
	}
}

// prometheusSLI checks an SLI counted from a Prometheus source of a
// service; svc tells whether the service has planned downtime.
func (v *validator) prometheusSLI(path string, s *SLIConfig, svc *ServiceConfig) {
	p := s.Prometheus
	if len(s.Probes) > 0 {
		v.addf(path+".probes", "probes and prometheus are mutually exclusive: an SLI counts probe runs or queried events")
	}
	if s.LatencyBelow != 0 {
		v.addf(path+".latency_below", "only applies to probes: count fast requests in the good query instead")
	}
	path += ".prometheus"
	v.prometheusRef(path, p.Source)
	switch {
	case p.Mode != SLIModeEvents && p.Mode != SLIModeWindow:
		v.addf(path+".mode", "must be events or window, got %q", p.Mode)
	case p.Mode == SLIModeWindow && (len(svc.Maintenance) > 0 || svc.HoursOfOperation != nil):
		// The source counts every request of a window; the engine cannot
		// take the planned downtime out of a figure it did not count.
		v.addf(path+".mode", "window mode cannot exclude the service's maintenance windows and hours of operation: use mode events")
	}
	switch {
	case p.Good == "" && p.Bad == "":
		v.addf(path, "needs a good or a bad query, and total")
	case p.Good != "" && p.Bad != "":
		v.addf(path+".bad", "good and bad are mutually exclusive: set one, the other is total minus it")
	}
	for _, q := range []struct{ field, expr string }{{"good", p.Good}, {"bad", p.Bad}, {"total", p.Total}} {
		switch {
		case q.field == "total" && strings.TrimSpace(q.expr) == "":
			v.addf(path+".total", "must be a PromQL expression")
		case q.expr == "":
		case !strings.Contains(q.expr, "$window") && !strings.Contains(q.expr, "{{.window}}"):
			v.addf(path+"."+q.field, "needs the $window placeholder (or {{.window}}) for the range events are counted over, e.g. increase(x[$window])")
		}
	}
}
