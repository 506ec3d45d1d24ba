package config

import (
	"strconv"
	"strings"
)

// DefaultGRPCProbe holds the defaults of a `grpc` probe.
var DefaultGRPCProbe = GRPCProbe{
	IPProtocolFallback: true,
}

// GRPCProbe configures a `grpc` probe: one grpc.health.v1.Health/Check
// call over a fresh connection.
type GRPCProbe struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Service is the health service name asked about; empty asks about
	// the server as a whole.
	Service string `yaml:"service,omitempty"`
	// TLS makes the connection over TLS; otherwise it is plaintext HTTP/2
	// (h2c).
	TLS       bool      `yaml:"tls,omitempty"`
	TLSConfig TLSConfig `yaml:"tls_config,omitempty"`
	// Metadata is sent with the call (gRPC request headers).
	Metadata map[string]string `yaml:"metadata,omitempty"`

	IPProtocol         string `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
}

// Target implements ProbeSection.
func (c *GRPCProbe) Target() string { return c.Address }

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *GRPCProbe) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultGRPCProbe
	type plain GRPCProbe
	return unmarshal((*plain)(c))
}

// resolvePaths implements pathResolver.
func (c *GRPCProbe) resolvePaths(resolve func(*string)) { c.TLSConfig.resolvePaths(resolve) }

func (v *validator) grpc(path string, c *GRPCProbe) {
	v.address(path+".address", c.Address)
	v.ipProtocol(path+".ip_protocol", c.IPProtocol)
	if c.TLSConfig != (TLSConfig{}) && !c.TLS {
		v.addf(path+".tls_config", "is only used with tls: true")
	}
	v.tlsConfig(path+".tls_config", &c.TLSConfig)
	for _, key := range sortedKeys(c.Metadata) {
		keyPath := path + ".metadata[" + strconv.Quote(key) + "]"
		if msg := grpcMetadataProblem(key, c.Metadata[key]); msg != "" {
			v.addf(keyPath, "%s", msg)
		}
	}
}

// grpcMetadataProblem returns what is wrong with a metadata entry, or "".
// The rules are gRPC's (PROTOCOL-HTTP2.md, "Custom-Metadata"), checked
// here so a bad entry fails the load instead of every run.
func grpcMetadataProblem(key, value string) string {
	switch {
	case key == "":
		return "a metadata key must not be empty"
	case !isGRPCMetadataKey(key):
		return "invalid metadata key " + strconv.Quote(key) + ": use lowercase letters, digits, '-', '_' and '.'"
	case strings.HasPrefix(key, "grpc-"):
		return "metadata key " + strconv.Quote(key) + " is reserved: keys starting with grpc- belong to gRPC"
	case grpcReservedHeaders[key]:
		return "metadata key " + strconv.Quote(key) + " is reserved: gRPC sets this header itself"
	case strings.HasSuffix(key, "-bin"):
		// Binary values: gRPC base64-encodes them on the wire.
		return ""
	case !isPrintableASCII(value):
		return "the value of a metadata key not ending in -bin must be printable ASCII (no CR, LF or other control characters)"
	}
	return ""
}

// grpcReservedHeaders are headers gRPC sets or drops itself, and the
// connection-specific headers HTTP/2 forbids (RFC 9113 section 8.2.2).
// Read-only.
var grpcReservedHeaders = map[string]bool{
	"content-type": true, "user-agent": true, "te": true, "host": true,
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true,
}

// isGRPCMetadataKey reports whether key is made of [0-9a-z-_.] only.
func isGRPCMetadataKey(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// isPrintableASCII reports whether s only holds bytes 0x20 to 0x7E.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
