package config

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestGRPCProbeDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - name: api
    probes:
      - name: health
        grpc: {address: "api.example:50051"}
`), "reliability.yml")
	if err != nil {
		t.Fatal(err)
	}
	probe := cfg.Services[0].Probes[0]
	want := DefaultGRPCProbe
	want.Address = "api.example:50051"
	if !reflect.DeepEqual(*probe.GRPC, want) {
		t.Errorf("grpc = %+v, want %+v", *probe.GRPC, want)
	}
	if probe.Type() != "grpc" || probe.Section().Target() != "api.example:50051" {
		t.Errorf("Type() = %q, Target() = %q; want grpc and the address", probe.Type(), probe.Section().Target())
	}
}

// TestGRPCProbeExample loads examples/probes/grpc.yml: it must load, and
// its values (paths resolved against its directory) are the documented
// ones. collector's TestGRPCExample builds its probers.
func TestGRPCProbeExample(t *testing.T) {
	cfg, err := Load("../examples/probes/grpc.yml")
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
	plain, mtls, public := probes[0].GRPC, probes[1].GRPC, probes[2].GRPC
	checks := []struct {
		name      string
		got, want any
	}{
		{"plain", *plain, GRPCProbe{Address: "payments.internal:50051", IPProtocolFallback: true}},
		{"mtls service", mtls.Service, "payments.v1.Payments"},
		{"mtls tls", mtls.TLS, true},
		{"mtls tls_config", mtls.TLSConfig, TLSConfig{
			CAFile:     filepath.Join(examples, "tls/internal-ca.pem"),
			CertFile:   filepath.Join(examples, "tls/prober.pem"),
			KeyFile:    filepath.Join(examples, "tls/prober-key.pem"),
			ServerName: "payments.internal",
			MinVersion: "TLS13",
		}},
		{"mtls metadata", mtls.Metadata, map[string]string{"x-tenant": "acme", "x-probe": "reliabilityd"}},
		{"mtls timeout", probes[1].Timeout, Duration(3 * time.Second)},
		{"public ip_protocol", [2]any{public.IPProtocol, public.IPProtocolFallback}, [2]any{"ip6", true}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestGRPCMetadataProblem(t *testing.T) {
	tests := []struct {
		key, value string
		want       string // "" for a valid entry
	}{
		{key: "x-tenant", value: "acme"},
		{key: "authorization", value: "Bearer abc.def"},
		{key: "x_a.b-9", value: " !~"},
		{key: "x-token-bin", value: "\x00\xff\r\n"},
		{key: "x-empty", value: ""},
		{key: "", value: "v", want: "a metadata key must not be empty"},
		{key: "X-Tenant", value: "acme", want: `invalid metadata key "X-Tenant": use lowercase letters, digits, '-', '_' and '.'`},
		{key: "x tenant", value: "acme", want: `invalid metadata key "x tenant": use lowercase letters, digits, '-', '_' and '.'`},
		{key: ":authority", value: "x", want: `invalid metadata key ":authority": use lowercase letters, digits, '-', '_' and '.'`},
		{key: "grpc-timeout", value: "1S", want: `metadata key "grpc-timeout" is reserved: keys starting with grpc- belong to gRPC`},
		{key: "content-type", value: "x", want: `metadata key "content-type" is reserved: gRPC sets this header itself`},
		{key: "te", value: "x", want: `metadata key "te" is reserved: gRPC sets this header itself`},
		{key: "x-trace", value: "a\nb", want: "the value of a metadata key not ending in -bin must be printable ASCII (no CR, LF or other control characters)"},
		{key: "x-trace", value: "a\x7fb", want: "the value of a metadata key not ending in -bin must be printable ASCII (no CR, LF or other control characters)"},
		{key: "x-name", value: "café", want: "the value of a metadata key not ending in -bin must be printable ASCII (no CR, LF or other control characters)"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			if got := grpcMetadataProblem(tt.key, tt.value); got != tt.want {
				t.Errorf("grpcMetadataProblem(%q, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
			}
		})
	}
}

// TestGRPCProbeValidate checks a configuration built in code is held to
// the same rules as a loaded one.
func TestGRPCProbeValidate(t *testing.T) {
	cfg := &Config{
		Global: DefaultGlobalConfig,
		Services: []ServiceConfig{{Name: "api", Probes: []ProbeConfig{{
			Name: "health", Interval: Duration(time.Minute), Timeout: Duration(time.Second),
			GRPC: &GRPCProbe{Address: "api.example:50051", TLSConfig: TLSConfig{ServerName: "api"}, Metadata: map[string]string{"Key": "v"}},
		}}}},
	}
	want := `services[0].probes[0].grpc.tls_config: is only used with tls: true
services[0].probes[0].grpc.metadata["Key"]: invalid metadata key "Key": use lowercase letters, digits, '-', '_' and '.'`
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want:\n%s", err, want)
	}
}
