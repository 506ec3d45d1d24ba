package config

// DefaultTLSProbe holds the defaults of a `tls` probe.
var DefaultTLSProbe = TLSProbe{
	IPProtocolFallback: true,
}

// TLSProbe configures a `tls` probe: a TLS handshake with host:port, its
// certificate chain verified (unless tls_config says otherwise) and
// checked for expiry.
type TLSProbe struct {
	// Address is host:port.
	Address   string    `yaml:"address"`
	TLSConfig TLSConfig `yaml:"tls_config,omitempty"`
	// FailIfExpiresWithin fails the run with reason cert_expiry when the
	// earliest NotAfter of the chain is less than this far away. Zero
	// sets no threshold.
	FailIfExpiresWithin Duration `yaml:"fail_if_expires_within,omitempty"`

	IPProtocol         string `yaml:"ip_protocol,omitempty"`
	IPProtocolFallback bool   `yaml:"ip_protocol_fallback"`
}

// Target implements ProbeSection.
func (c *TLSProbe) Target() string { return c.Address }

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *TLSProbe) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultTLSProbe
	type plain TLSProbe
	return unmarshal((*plain)(c))
}

// resolvePaths implements pathResolver.
func (c *TLSProbe) resolvePaths(resolve func(*string)) { c.TLSConfig.resolvePaths(resolve) }

func (v *validator) tlsProbe(path string, c *TLSProbe) {
	v.address(path+".address", c.Address)
	v.ipProtocol(path+".ip_protocol", c.IPProtocol)
	v.tlsConfig(path+".tls_config", &c.TLSConfig)
	if c.FailIfExpiresWithin < 0 {
		v.addf(path+".fail_if_expires_within", "must not be negative, got %s", c.FailIfExpiresWithin)
	}
}
