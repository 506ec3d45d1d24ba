package collector

// Recorder receives the result of every probe run. The scheduler calls
// Record from the goroutine that ran the probe, so implementations must be
// safe for concurrent use and must not block for long: they sit on the
// probing hot path.
type Recorder interface {
	Record(id ProbeID, result Result)
}

// Recorders fans one result out to several recorders, in order.
type Recorders []Recorder

// Record implements Recorder.
func (rs Recorders) Record(id ProbeID, result Result) {
	for _, r := range rs {
		r.Record(id, result)
	}
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(id ProbeID, result Result)

// Record implements Recorder.
func (f RecorderFunc) Record(id ProbeID, result Result) { f(id, result) }
