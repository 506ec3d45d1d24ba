package config

// DNSProbe configures a `dns` probe. (Skeleton: filled in by its owner.)
type DNSProbe struct {
	Placeholder string `yaml:"placeholder,omitempty"`
}

// Target implements ProbeSection.
func (c *DNSProbe) Target() string { return c.Placeholder }

func (v *validator) dns(path string, c *DNSProbe) {}
