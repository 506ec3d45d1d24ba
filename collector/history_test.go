package collector

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// historyEpoch is a fixed start time so entries are comparable.
var historyEpoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// historyResult is the run numbered n: its Start is n seconds after the
// epoch, so tests can tell runs apart by Start.
func historyResult(n int, success bool) Result {
	r := Result{
		Start:    historyEpoch.Add(time.Duration(n) * time.Second),
		Duration: time.Duration(n) * time.Millisecond,
		Success:  success,
	}
	if !success {
		r.Reason = ReasonTimeout
		r.Err = fmt.Errorf("run %d timed out", n)
	}
	return r
}

// historyRuns describes a history as the run numbers of its entries, in order,
// with "f" marking failures: "5f 4 3f".
func historyRuns(entries []HistoryEntry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = fmt.Sprint(int(e.Start.Sub(historyEpoch) / time.Second))
		if !e.Success {
			parts[i] += "f"
		}
	}
	return strings.Join(parts, " ")
}

// historyRecordRuns records runs 1..len(pattern); pattern has "s" or "f" per run.
func historyRecordRuns(h *History, id ProbeID, pattern string) {
	for i, c := range pattern {
		h.Record(id, historyResult(i+1, c == 's'))
	}
}

func TestHistoryOrderingAndWrapAround(t *testing.T) {
	id := ProbeID{Service: "checkout", Probe: "home"}
	tests := []struct {
		name                 string
		successes, failures  int
		pattern              string
		wantList, wantFailed string
	}{
		{name: "empty", successes: 3, failures: 3, pattern: "", wantList: "", wantFailed: ""},
		{name: "below capacity", successes: 3, failures: 3, pattern: "sfs", wantList: "3 2f 1", wantFailed: "2f"},
		{name: "successes wrap", successes: 2, failures: 3, pattern: "ssssf", wantList: "5f 4 3", wantFailed: "5f"},
		{name: "both wrap several times", successes: 2, failures: 2, pattern: "sfsfsfsfsf", wantList: "10f 9 8f 7", wantFailed: "10f 8f"},
		{name: "failures outlive successes", successes: 2, failures: 3, pattern: "ffssssss", wantList: "8 7 2f 1f", wantFailed: "2f 1f"},
		{name: "zero capacity keeps none", successes: 0, failures: 0, pattern: "sfsf", wantList: "", wantFailed: ""},
		{name: "zero success capacity", successes: 0, failures: 2, pattern: "sfsfs", wantList: "4f 2f", wantFailed: "4f 2f"},
		{name: "negative capacity keeps none", successes: -1, failures: 1, pattern: "sf", wantList: "2f", wantFailed: "2f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistory(tt.successes, tt.failures)
			historyRecordRuns(h, id, tt.pattern)
			if got := historyRuns(h.List()); got != tt.wantList {
				t.Errorf("List() = %q, want %q", got, tt.wantList)
			}
			if got := historyRuns(h.Failures()); got != tt.wantFailed {
				t.Errorf("Failures() = %q, want %q", got, tt.wantFailed)
			}
		})
	}
}

func TestHistoryRecordCopiesResult(t *testing.T) {
	h := NewHistory(1, 1)
	id := ProbeID{Service: "checkout", Probe: "api"}
	h.Record(id, Result{
		Start: historyEpoch, Duration: 1500 * time.Millisecond, Reason: ReasonStatus,
		Err: errors.New("status 503"), StatusCode: 503,
	})
	h.Record(id, Result{Start: historyEpoch.Add(time.Second), Duration: time.Second, Success: true, StatusCode: 200})
	want := []HistoryEntry{
		{ID: id, Start: historyEpoch.Add(time.Second), Duration: time.Second, Success: true, StatusCode: 200, Seq: 2},
		{ID: id, Start: historyEpoch, Duration: 1500 * time.Millisecond, Reason: ReasonStatus, Error: "status 503", StatusCode: 503, Seq: 1},
	}
	got := h.List()
	if len(got) != len(want) {
		t.Fatalf("List() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("List()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestHistoryResize(t *testing.T) {
	id := ProbeID{Service: "checkout", Probe: "home"}
	tests := []struct {
		name                string
		successes, failures int
		wantBefore          string
		wantAfter           string
		// more runs recorded after the resize, numbered on from 7.
		more     string
		wantMore string
	}{
		{name: "shrink keeps newest", successes: 1, failures: 1, wantBefore: "6f 5 4 3f", wantAfter: "6f 5", more: "ss", wantMore: "8 6f"},
		{name: "grow keeps all and makes room", successes: 4, failures: 4, wantBefore: "6f 5 4 3f", wantAfter: "6f 5 4 3f", more: "ssf", wantMore: "9f 8 7 6f 5 4 3f"},
		{name: "same capacity", successes: 2, failures: 2, wantBefore: "6f 5 4 3f", wantAfter: "6f 5 4 3f", more: "s", wantMore: "7 6f 5 3f"},
		{name: "to zero", successes: 0, failures: 0, wantBefore: "6f 5 4 3f", wantAfter: "", more: "sf", wantMore: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistory(2, 2)
			historyRecordRuns(h, id, "sffssf")
			if got := historyRuns(h.List()); got != tt.wantBefore {
				t.Fatalf("before Resize: List() = %q, want %q", got, tt.wantBefore)
			}
			h.Resize(tt.successes, tt.failures)
			if got := historyRuns(h.List()); got != tt.wantAfter {
				t.Errorf("after Resize: List() = %q, want %q", got, tt.wantAfter)
			}
			for i, c := range tt.more {
				h.Record(id, historyResult(7+i, c == 's'))
			}
			if got := historyRuns(h.List()); got != tt.wantMore {
				t.Errorf("after more runs: List() = %q, want %q", got, tt.wantMore)
			}
		})
	}
}

func TestHistoryForget(t *testing.T) {
	kept := ProbeID{Service: "checkout", Probe: "home"}
	removed := ProbeID{Service: "checkout", Probe: "old"}
	h := NewHistory(3, 3)
	for n, step := range []struct {
		id      ProbeID
		success bool
	}{{kept, true}, {removed, false}, {removed, true}, {kept, false}, {removed, true}} {
		h.Record(step.id, historyResult(n+1, step.success))
	}
	h.Forget(func(id ProbeID) bool { return id != removed })
	if got, want := historyRuns(h.List()), "4f 1"; got != want {
		t.Errorf("after Forget: List() = %q, want %q", got, want)
	}
	// The freed slots are usable again: capacity is unchanged.
	h.Record(kept, historyResult(6, true))
	h.Record(kept, historyResult(7, true))
	if got, want := historyRuns(h.List()), "7 6 4f 1"; got != want {
		t.Errorf("after more runs: List() = %q, want %q", got, want)
	}
	if got := h.List()[0].Seq; got != 7 {
		t.Errorf("Seq after Forget = %d, want 7 (sequence carries on)", got)
	}
}

func TestHistoryListNotAliased(t *testing.T) {
	id := ProbeID{Service: "checkout", Probe: "home"}
	h := NewHistory(2, 2)
	historyRecordRuns(h, id, "sf")
	list := h.List()
	failures := h.Failures()

	// Mutating what was returned changes nothing inside.
	list[0].Error = "scribbled"
	list[1].Seq = 99
	failures[0].Reason = ReasonDNS
	if got, want := historyRuns(h.List()), "2f 1"; got != want {
		t.Fatalf("List() = %q, want %q", got, want)
	}
	if got := h.List()[0]; got.Error != "run 2 timed out" || got.Reason != ReasonTimeout {
		t.Errorf("entry changed through a returned slice: %+v", got)
	}

	// Recording more, wrapping both rings, leaves earlier results alone.
	before := h.List()
	historyRecordRuns(h, id, "sfsfsf")
	if got, want := historyRuns(before), "2f 1"; got != want {
		t.Errorf("earlier List() = %q after more records, want %q", got, want)
	}
	if before[0].Error != "run 2 timed out" {
		t.Errorf("earlier List()[0].Error = %q, want %q", before[0].Error, "run 2 timed out")
	}
}

func TestHistoryStateRoundTrip(t *testing.T) {
	id := ProbeID{Service: "checkout", Probe: "home"}
	tests := []struct {
		name                string
		successes, failures int // capacities of the restoring history
		want                string
		wantSeq             uint64 // Seq of a run recorded after the restore
	}{
		{name: "same capacities", successes: 2, failures: 3, want: "7f 6 5 4f 2f", wantSeq: 8},
		{name: "smaller capacities keep newest", successes: 1, failures: 1, want: "7f 6", wantSeq: 8},
		{name: "zero capacities", successes: 0, failures: 0, want: "", wantSeq: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := NewHistory(2, 3)
			historyRecordRuns(src, id, "sfsfssf")
			data, err := src.MarshalState()
			if err != nil {
				t.Fatalf("MarshalState: %v", err)
			}
			dst := NewHistory(tt.successes, tt.failures)
			dst.Record(id, historyResult(100, true)) // replaced by the restore
			if err := dst.UnmarshalState(data); err != nil {
				t.Fatalf("UnmarshalState: %v", err)
			}
			if got := historyRuns(dst.List()); got != tt.want {
				t.Errorf("restored List() = %q, want %q", got, tt.want)
			}
			srcList, dstList := src.List(), dst.List()
			for i := range dstList {
				a, b := srcList[i], dstList[i]
				if a.ID != b.ID || !a.Start.Equal(b.Start) || a.Duration != b.Duration || a.Success != b.Success ||
					a.Reason != b.Reason || a.Error != b.Error || a.StatusCode != b.StatusCode || a.Seq != b.Seq {
					t.Errorf("restored entry %d = %+v, want %+v", i, b, a)
				}
			}
			// The sequence carries on from the restored one, whether or
			// not the new run is kept.
			dst.Record(id, historyResult(8, true))
			after, err := dst.MarshalState()
			if err != nil {
				t.Fatalf("MarshalState after restore: %v", err)
			}
			if want := fmt.Sprintf(`"last_seq":%d`, tt.wantSeq); !strings.Contains(string(after), want) {
				t.Errorf("state after restore and one run = %s, want it to hold %s", after, want)
			}
		})
	}
}

func TestHistoryUnmarshalStateInvalid(t *testing.T) {
	entry := func(fields string) string {
		return `{"version":1,"last_seq":5,"entries":[{"service":"s","probe":"p","start":"2026-11-01T12:00:00Z","duration_ns":1,` + fields + `}]}`
	}
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{name: "empty", data: "", wantErr: "EOF"},
		{name: "not json", data: "\x00\x01garbage", wantErr: "invalid character"},
		{name: "truncated", data: `{"version":1,"last_seq":5,"entries":[{"service":"s"`, wantErr: "unexpected EOF"},
		{name: "unknown version", data: `{"version":2,"last_seq":5,"entries":[]}`, wantErr: "unsupported version 2"},
		{name: "missing version", data: `{"last_seq":5,"entries":[]}`, wantErr: "unsupported version 0"},
		{name: "unknown field", data: `{"version":1,"last_seq":5,"entries":[],"extra":1}`, wantErr: `unknown field "extra"`},
		{name: "trailing data", data: `{"version":1,"last_seq":5,"entries":[]} {}`, wantErr: "trailing data"},
		{name: "seq beyond last_seq", data: entry(`"success":true,"seq":6`), wantErr: "entry with seq 6: seq out of range"},
		{name: "seq zero", data: entry(`"success":true,"seq":0`), wantErr: "entry with seq 0: seq out of range"},
		{name: "negative duration", data: strings.Replace(entry(`"success":true,"seq":1`), `"duration_ns":1`, `"duration_ns":-1`, 1), wantErr: "negative duration"},
		{name: "success with reason", data: entry(`"success":true,"reason":"dns","seq":1`), wantErr: `successful run with reason "dns"`},
		{name: "unknown reason", data: entry(`"success":false,"reason":"boom","seq":1`), wantErr: `unknown reason "boom"`},
		{
			name:    "duplicate seq",
			data:    `{"version":1,"last_seq":5,"entries":[{"success":true,"seq":3},{"success":false,"seq":3}]}`,
			wantErr: "entry with seq 3: duplicate seq",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := ProbeID{Service: "checkout", Probe: "home"}
			h := NewHistory(3, 3)
			historyRecordRuns(h, id, "sfs")
			err := h.UnmarshalState([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("UnmarshalState error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "decoding history state: ") {
				t.Errorf("error %q does not name the history state", err)
			}
			if got, want := historyRuns(h.List()), "3 2f 1"; got != want {
				t.Errorf("history changed by a failed restore: List() = %q, want %q", got, want)
			}
			h.Record(id, historyResult(4, true))
			if got := h.List()[0].Seq; got != 4 {
				t.Errorf("Seq after failed restore = %d, want 4", got)
			}
		})
	}
}

func TestHistoryConcurrentRecord(t *testing.T) {
	const writers, perWriter = 8, 200
	h := NewHistory(10, 20)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ProbeID{Service: "svc", Probe: fmt.Sprint("p", w)}
			for i := range perWriter {
				h.Record(id, historyResult(i, i%3 != 0))
				if i%50 == 0 {
					_ = h.List()
					_ = h.Failures()
				}
			}
		}()
	}
	// A reader and a reloader run alongside the writers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			h.Resize(10+i%3, 20)
			if _, err := h.MarshalState(); err != nil {
				t.Errorf("MarshalState: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	h.Resize(10, 20)

	list := h.List()
	if len(list) != 30 {
		t.Fatalf("len(List()) = %d, want 30 (both rings full)", len(list))
	}
	if got, want := list[0].Seq, uint64(writers*perWriter); got != want {
		t.Errorf("newest Seq = %d, want %d (one Seq per Record)", got, want)
	}
	for i := 1; i < len(list); i++ {
		if list[i].Seq >= list[i-1].Seq {
			t.Fatalf("List() not newest first at %d: Seq %d after %d", i, list[i].Seq, list[i-1].Seq)
		}
	}
	if got := len(h.Failures()); got != 20 {
		t.Errorf("len(Failures()) = %d, want 20", got)
	}
}

func TestHistoryZeroValue(t *testing.T) {
	var h History
	h.Record(ProbeID{Service: "s", Probe: "p"}, historyResult(1, false))
	if got := h.List(); len(got) != 0 {
		t.Errorf("zero History kept %d entries, want 0", len(got))
	}
	data, err := h.MarshalState()
	if err != nil {
		t.Fatalf("MarshalState: %v", err)
	}
	if err := NewHistory(1, 1).UnmarshalState(data); err != nil {
		t.Errorf("UnmarshalState of a zero History's state: %v", err)
	}
}
