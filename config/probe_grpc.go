package config

// GRPCProbe configures a `grpc` probe. (Skeleton: filled in by its owner.)
type GRPCProbe struct {
	Placeholder string `yaml:"placeholder,omitempty"`
}

// Target implements ProbeSection.
func (c *GRPCProbe) Target() string { return c.Placeholder }

func (v *validator) grpc(path string, c *GRPCProbe) {}
