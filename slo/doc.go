// Package slo computes error budgets, burn rates and other service-level
// figures from what the probes record, and owns the daemon's durable state.
//
// Today only the state store exists: Store reads and atomically writes the
// state file in --storage.path, and Flusher periodically collects named
// sections of opaque bytes from the components that own them (the landing
// page's probe history now; SLO event buckets, capacity history and outages
// later) and saves them through the Store. The file format, flush, crash and
// corruption behaviour are described in docs/state.md.
package slo
