package config

// ICMPProbe configures a `icmp` probe. (Skeleton: filled in by its owner.)
type ICMPProbe struct {
	Placeholder string `yaml:"placeholder,omitempty"`
}

// Target implements ProbeSection.
func (c *ICMPProbe) Target() string { return c.Placeholder }

func (v *validator) icmp(path string, c *ICMPProbe) {}
