package config

// TLSProbe configures a `tls` probe. (Skeleton: filled in by its owner.)
type TLSProbe struct {
	Placeholder string `yaml:"placeholder,omitempty"`
}

// Target implements ProbeSection.
func (c *TLSProbe) Target() string { return c.Placeholder }

func (v *validator) tlsProbe(path string, c *TLSProbe) {}
