package config

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestTLSProbeDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - name: shop
    probes:
      - name: cert
        tls: {address: "shop.example:443"}
`), "reliability.yml")
	if err != nil {
		t.Fatal(err)
	}
	probe := cfg.Services[0].Probes[0]
	want := DefaultTLSProbe
	want.Address = "shop.example:443"
	if !reflect.DeepEqual(*probe.TLS, want) {
		t.Errorf("tls = %+v, want %+v", *probe.TLS, want)
	}
	if probe.TLS.FailIfExpiresWithin != 0 {
		t.Errorf("fail_if_expires_within = %s, want no threshold", probe.TLS.FailIfExpiresWithin)
	}
	if probe.Type() != "tls" || probe.Section().Target() != "shop.example:443" {
		t.Errorf("Type() = %q, Target() = %q; want tls and the address", probe.Type(), probe.Section().Target())
	}
}

// TestTLSProbeExample loads examples/probes/tls.yml: it must load, and its
// values (paths resolved against its directory) are the documented ones.
// collector's TestTLSExample builds its probers.
func TestTLSProbeExample(t *testing.T) {
	cfg, err := Load("../examples/probes/tls.yml")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	probes := cfg.Services[0].Probes
	if len(probes) != 3 {
		t.Fatalf("%d probes, want 3", len(probes))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"public", *probes[0].TLS, TLSProbe{Address: "shop.example.com:443", FailIfExpiresWithin: Duration(21 * 24 * time.Hour), IPProtocolFallback: true}},
		{"internal", *probes[1].TLS, TLSProbe{
			Address: "10.0.12.7:8443",
			TLSConfig: TLSConfig{
				CAFile:     filepath.Join(examples, "tls/internal-ca.pem"),
				ServerName: "api.internal",
				MinVersion: "TLS13",
			},
			FailIfExpiresWithin: Duration(14 * 24 * time.Hour),
			IPProtocol:          "ip4",
			IPProtocolFallback:  true,
		}},
		{"self-signed", probes[2].TLS.TLSConfig.InsecureSkipVerify, true},
		{"self-signed threshold", probes[2].TLS.FailIfExpiresWithin, Duration(7 * 24 * time.Hour)},
		{"interval", probes[1].Interval, Duration(time.Hour)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// TestTLSProbeValidate checks a configuration built in code is held to the
// same rules as a loaded one, including what YAML cannot express.
func TestTLSProbeValidate(t *testing.T) {
	cfg := &Config{
		Global: DefaultGlobalConfig,
		Services: []ServiceConfig{{Name: "shop", Probes: []ProbeConfig{{
			Name: "cert", Interval: Duration(time.Minute), Timeout: Duration(time.Second),
			TLS: &TLSProbe{Address: "shop.example", FailIfExpiresWithin: Duration(-time.Hour)},
		}}}},
	}
	want := `services[0].probes[0].tls.address: must be host:port, got "shop.example"
services[0].probes[0].tls.fail_if_expires_within: must not be negative, got -1h`
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want:\n%s", err, want)
	}
}
