package config

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Default returns the configuration the daemon runs when started without a
// configuration file: one service, reliabilityd, probing the daemon itself
// at selfURL (an absolute URL such as "http://127.0.0.1:10089") with two
// SLOs over those probes and two capacity resources (its own file
// descriptors and the host's memory), so a fresh install has something to
// show. Its Filename is empty.
func Default(selfURL string) *Config {
	base := strings.TrimSuffix(selfURL, "/")

	healthy := DefaultHTTPProbe
	healthy.URL = base + "/-/healthy"
	healthy.ValidStatusCodes = []int{200}

	metrics := DefaultHTTPProbe
	metrics.URL = base + "/metrics"
	metrics.FailIfBodyNotMatches = []Regexp{{regexp.MustCompile(`reliabilityd_build_info`)}}

	port := DefaultTCPProbe
	port.Address = hostPort(selfURL)

	probe := func(name string, http *HTTPProbe, tcp *TCPProbe) ProbeConfig {
		return ProbeConfig{
			Name:     name,
			Interval: Duration(5 * time.Second),
			Timeout:  Duration(2 * time.Second),
			HTTP:     http,
			TCP:      tcp,
		}
	}
	return &Config{
		Global: DefaultGlobalConfig,
		Services: []ServiceConfig{{
			Name: "reliabilityd",
			Probes: []ProbeConfig{
				probe("healthy", &healthy, nil),
				probe("metrics", &metrics, nil),
				probe("port", nil, &port),
			},
			SLOs: []SLOConfig{
				{Name: "availability", Objective: 99.9, Window: DefaultSLOWindow,
					SLI: SLIConfig{Probes: []string{"healthy", "port"}}},
				{Name: "metrics-latency", Objective: 99, Window: Duration(7 * 24 * time.Hour),
					SLI: SLIConfig{Probes: []string{"metrics"}, LatencyBelow: Duration(500 * time.Millisecond)}},
			},
			// Outages of the daemon's own endpoints, against a 5-minute RTO.
			Recovery: &RecoveryConfig{RTO: Duration(5 * time.Minute), Window: DefaultRecoveryWindow,
				Outage: DefaultOutageRule},
			Capacity: []CapacityConfig{
				capacity("open-fds", CapacitySource{Process: &ProcessSource{Self: true, Resource: "open_fds"}}, 50),
				capacity("host-memory", CapacitySource{Memory: true}, 20),
			},
		}},
	}
}

// capacity returns a resource of the built-in configuration, sampled
// every 15 seconds.
func capacity(name string, source CapacitySource, headroomPercent float64) CapacityConfig {
	c := DefaultCapacityConfig
	c.Name, c.Source, c.HeadroomTarget = name, source, Percent(headroomPercent)
	c.Interval = Duration(15 * time.Second)
	return c
}

// hostPort returns the host:port a URL connects to, with the scheme's
// default port when it names none. An unparsable URL comes back as is, for
// validation to reject.
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return rawURL
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
