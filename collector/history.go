package collector

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// HistoryEntry is one recorded probe run, as the landing page shows it.
type HistoryEntry struct {
	ID       ProbeID
	Start    time.Time
	Duration time.Duration
	Success  bool
	Reason   Reason
	// Error is the text of Result.Err: the entry keeps no reference to the
	// error value, so nothing a prober allocated outlives the run.
	Error      string
	StatusCode int
	// Seq orders entries across both rings: it grows by one with every
	// recorded run, whether or not the run is kept.
	Seq uint64
}

// History keeps the most recent probe results in two fixed-capacity ring
// buffers, one for successes and one for failures, so a stream of
// successes never pushes out the failures an operator wants to read.
//
// Contract: History is safe for concurrent use. Record is O(1) and
// allocates nothing beyond the entry's error text. Slices returned by List
// and Failures are fresh copies owned by the caller: History never reads
// or writes them again, and later records do not change them. Memory is
// bounded by the capacities, never by uptime.
type History struct {
	mu        sync.Mutex
	successes ring
	failures  ring
	// lastSeq is the Seq of the last recorded run, 0 before the first.
	lastSeq uint64
}

// NewHistory returns an empty History keeping at most successes successful
// and failures failed runs. A capacity of zero (or less) keeps none, as
// does the zero History.
func NewHistory(successes, failures int) *History {
	return &History{successes: newRing(successes), failures: newRing(failures)}
}

// Record implements Recorder.
func (h *History) Record(id ProbeID, r Result) {
	entry := HistoryEntry{
		ID:         id,
		Start:      r.Start,
		Duration:   r.Duration,
		Success:    r.Success,
		Reason:     r.Reason,
		StatusCode: r.StatusCode,
	}
	if r.Err != nil {
		// Formatted outside the lock: Error() may be slow.
		entry.Error = r.Err.Error()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSeq++
	entry.Seq = h.lastSeq
	h.ringFor(entry.Success).push(entry)
}

// List returns every kept entry, successes and failures merged, newest
// (highest Seq) first.
func (h *History) List() []HistoryEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return mergeNewestFirst(h.successes.newestFirst(), h.failures.newestFirst())
}

// Failures returns the kept failed runs, newest first.
func (h *History) Failures() []HistoryEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failures.newestFirst()
}

// Resize changes the capacities (on reload), keeping the newest entries
// that fit. Sequence numbers carry on.
func (h *History) Resize(successes, failures int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.successes = h.successes.resized(successes)
	h.failures = h.failures.resized(failures)
}

// Forget drops the entries of every probe for which keep returns false,
// e.g. probes a reload removed. keep is called with the lock held, so it
// must not call History.
func (h *History) Forget(keep func(ProbeID) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.successes = h.successes.filtered(keep)
	h.failures = h.failures.filtered(keep)
}

func (h *History) ringFor(success bool) *ring {
	if success {
		return &h.successes
	}
	return &h.failures
}

// ring is a fixed-capacity circular buffer of entries in Seq order. The
// buffer is allocated once, at its full capacity.
type ring struct {
	buf   []HistoryEntry
	start int // index of the oldest entry
	n     int // number of entries held
}

func newRing(capacity int) ring {
	return ring{buf: make([]HistoryEntry, max(capacity, 0))}
}

// push adds e as the newest entry, overwriting the oldest when full.
func (r *ring) push(e HistoryEntry) {
	capacity := len(r.buf)
	switch {
	case capacity == 0:
	case r.n < capacity:
		r.buf[(r.start+r.n)%capacity] = e
		r.n++
	default:
		r.buf[r.start] = e
		r.start = (r.start + 1) % capacity
	}
}

// newestFirst returns a fresh copy of the entries, newest first.
func (r *ring) newestFirst() []HistoryEntry {
	out := make([]HistoryEntry, r.n)
	for i := range r.n {
		out[i] = r.buf[(r.start+r.n-1-i)%len(r.buf)]
	}
	return out
}

// resized returns a ring of the given capacity holding the newest entries
// of r that fit.
func (r *ring) resized(capacity int) ring {
	if max(capacity, 0) == len(r.buf) {
		return *r
	}
	return ringFromNewestFirst(r.newestFirst(), capacity)
}

// filtered returns a ring of the same capacity holding the entries of r
// whose probe keep accepts.
func (r *ring) filtered(keep func(ProbeID) bool) ring {
	kept := slices.DeleteFunc(r.newestFirst(), func(e HistoryEntry) bool { return !keep(e.ID) })
	return ringFromNewestFirst(kept, len(r.buf))
}

// ringFromNewestFirst builds a ring of the given capacity from entries
// sorted newest first, keeping the newest that fit.
func ringFromNewestFirst(entries []HistoryEntry, capacity int) ring {
	out := newRing(capacity)
	keep := min(len(entries), len(out.buf))
	for i := keep - 1; i >= 0; i-- {
		out.push(entries[i])
	}
	return out
}

// mergeNewestFirst merges two slices sorted by descending Seq into a new
// one.
func mergeNewestFirst(a, b []HistoryEntry) []HistoryEntry {
	out := make([]HistoryEntry, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Seq > b[0].Seq {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// historyStateVersion is the version of the JSON written by MarshalState.
// Bump it on any incompatible change; UnmarshalState rejects others.
const historyStateVersion = 1

// historyState is the on-disk form of a History. It is separate from
// HistoryEntry so renaming a Go field never changes the file format.
type historyState struct {
	Version int            `json:"version"`
	LastSeq uint64         `json:"last_seq"`
	Entries []historyEntry `json:"entries"`
}

type historyEntry struct {
	Service    string    `json:"service"`
	Probe      string    `json:"probe"`
	Start      time.Time `json:"start"`
	DurationNS int64     `json:"duration_ns"`
	Success    bool      `json:"success"`
	Reason     Reason    `json:"reason,omitempty"`
	Error      string    `json:"error,omitempty"`
	StatusCode int       `json:"status_code,omitempty"`
	Seq        uint64    `json:"seq"`
}

// MarshalState encodes the kept entries for the durable state file, as
// versioned JSON, newest first.
func (h *History) MarshalState() ([]byte, error) {
	h.mu.Lock()
	state := historyState{Version: historyStateVersion, LastSeq: h.lastSeq}
	entries := mergeNewestFirst(h.successes.newestFirst(), h.failures.newestFirst())
	h.mu.Unlock()

	state.Entries = make([]historyEntry, len(entries))
	for i, e := range entries {
		state.Entries[i] = historyEntry{
			Service: e.ID.Service, Probe: e.ID.Probe, Start: e.Start,
			DurationNS: int64(e.Duration), Success: e.Success, Reason: e.Reason,
			Error: e.Error, StatusCode: e.StatusCode, Seq: e.Seq,
		}
	}
	data, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("encoding history state: %w", err)
	}
	return data, nil
}

// UnmarshalState replaces the kept entries with those of data, as written
// by MarshalState, keeping the newest that fit the current capacities. On
// any error the history is left unchanged.
func (h *History) UnmarshalState(data []byte) error {
	state, err := decodeHistoryState(data)
	if err != nil {
		return fmt.Errorf("decoding history state: %w", err)
	}
	var successes, failures []HistoryEntry
	for _, e := range state.Entries {
		entry := HistoryEntry{
			ID: ProbeID{Service: e.Service, Probe: e.Probe}, Start: e.Start,
			Duration: time.Duration(e.DurationNS), Success: e.Success, Reason: e.Reason,
			Error: e.Error, StatusCode: e.StatusCode, Seq: e.Seq,
		}
		if entry.Success {
			successes = append(successes, entry)
		} else {
			failures = append(failures, entry)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.successes = ringFromNewestFirst(successes, len(h.successes.buf))
	h.failures = ringFromNewestFirst(failures, len(h.failures.buf))
	h.lastSeq = state.LastSeq
	return nil
}

// decodeHistoryState parses and checks data. Entries come back sorted
// newest first.
func decodeHistoryState(data []byte) (historyState, error) {
	var state historyState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&state); err != nil {
		return historyState{}, err
	}
	if dec.More() {
		return historyState{}, fmt.Errorf("trailing data after the state object")
	}
	if state.Version != historyStateVersion {
		return historyState{}, fmt.Errorf("unsupported version %d (want %d)", state.Version, historyStateVersion)
	}
	// Sorted by Seq so duplicates sit next to each other, newest first.
	slices.SortFunc(state.Entries, func(a, b historyEntry) int { return cmp.Compare(b.Seq, a.Seq) })
	for i, e := range state.Entries {
		if err := checkHistoryEntry(e, state.LastSeq); err != nil {
			return historyState{}, fmt.Errorf("entry with seq %d: %w", e.Seq, err)
		}
		if i > 0 && state.Entries[i-1].Seq == e.Seq {
			return historyState{}, fmt.Errorf("entry with seq %d: duplicate seq", e.Seq)
		}
	}
	return state, nil
}

func checkHistoryEntry(e historyEntry, lastSeq uint64) error {
	switch {
	case e.Seq == 0 || e.Seq > lastSeq:
		return fmt.Errorf("seq out of range [1, last_seq %d]", lastSeq)
	case e.DurationNS < 0:
		return fmt.Errorf("negative duration")
	case e.Success && e.Reason != "":
		return fmt.Errorf("successful run with reason %q", e.Reason)
	case !e.Success && e.Reason != "" && !slices.Contains(Reasons(), e.Reason):
		return fmt.Errorf("unknown reason %q", e.Reason)
	}
	return nil
}
