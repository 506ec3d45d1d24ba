package config

// TransactionProbe configures a `transaction` probe. (Skeleton: filled in by its owner.)
type TransactionProbe struct {
	Placeholder string `yaml:"placeholder,omitempty"`
}

// Target implements ProbeSection.
func (c *TransactionProbe) Target() string { return c.Placeholder }

func (v *validator) transaction(path string, c *TransactionProbe) {}
