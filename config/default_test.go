package config

import (
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		selfURL     string
		wantHealthy string
		wantAddress string
	}{
		{"http://127.0.0.1:10089", "http://127.0.0.1:10089/-/healthy", "127.0.0.1:10089"},
		{"http://127.0.0.1:10089/", "http://127.0.0.1:10089/-/healthy", "127.0.0.1:10089"},
		{"http://[::1]:10089", "http://[::1]:10089/-/healthy", "[::1]:10089"},
		{"https://localhost", "https://localhost/-/healthy", "localhost:443"},
		{"http://localhost", "http://localhost/-/healthy", "localhost:80"},
	}
	for _, tt := range tests {
		t.Run(tt.selfURL, func(t *testing.T) {
			cfg := Default(tt.selfURL)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Default(%q) does not validate: %v", tt.selfURL, err)
			}
			if cfg.Filename != "" {
				t.Errorf("Filename = %q, want empty", cfg.Filename)
			}
			if len(cfg.Services) != 1 || cfg.Services[0].Name != "reliabilityd" {
				t.Fatalf("services = %+v, want one named reliabilityd", cfg.Services)
			}
			probes := cfg.Services[0].Probes
			if len(probes) != 3 {
				t.Fatalf("%d probes, want 3", len(probes))
			}
			healthy, metrics, port := probes[0], probes[1], probes[2]
			checks := []struct {
				name      string
				got, want any
			}{
				{"healthy name", healthy.Name, "healthy"},
				{"healthy url", healthy.HTTP.URL, tt.wantHealthy},
				{"healthy method", healthy.HTTP.Method, "GET"},
				{"healthy codes", len(healthy.HTTP.ValidStatusCodes) == 1 && healthy.HTTP.ValidStatusCodes[0] == 200, true},
				{"metrics name", metrics.Name, "metrics"},
				{"metrics url", metrics.HTTP.URL, tt.wantHealthy[:len(tt.wantHealthy)-len("/-/healthy")] + "/metrics"},
				{"metrics regexp", metrics.HTTP.FailIfBodyNotMatches[0].String(), "reliabilityd_build_info"},
				{"port name", port.Name, "port"},
				{"port type", port.Type(), "tcp"},
				{"port address", port.TCP.Address, tt.wantAddress},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			for _, p := range probes {
				if p.Interval != Duration(5*time.Second) || p.Timeout != Duration(2*time.Second) {
					t.Errorf("probe %s: interval %s timeout %s, want 5s and 2s", p.Name, p.Interval, p.Timeout)
				}
			}
		})
	}
}

// TestDefaultRoundTrip checks the built-in config survives its own String()
// through Parse: the /config page shows something that loads.
func TestDefaultRoundTrip(t *testing.T) {
	cfg := Default("http://127.0.0.1:10089")
	out := cfg.String()
	again, err := Parse([]byte(out), "")
	if err != nil {
		t.Fatalf("Parse(Default().String()): %v\n%s", err, out)
	}
	if again.String() != out {
		t.Errorf("round trip changed the config:\n%s\nwant:\n%s", again, out)
	}
}

func TestDefaultDoesNotShareDefaults(t *testing.T) {
	cfg := Default("http://127.0.0.1:10089")
	cfg.Services[0].Probes[0].HTTP.Method = "HEAD"
	if DefaultHTTPProbe.Method != "GET" {
		t.Fatalf("changing a Default() probe changed DefaultHTTPProbe")
	}
	if Default("http://127.0.0.1:10089").Services[0].Probes[0].HTTP.Method != "GET" {
		t.Errorf("Default() configs share state")
	}
}

func TestDefaultBadSelfURL(t *testing.T) {
	if err := Default("not a url").Validate(); err == nil {
		t.Errorf("Default(\"not a url\") validates, want an error")
	}
}
