package collector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// fakeSLIAPI answers queries "good [<n>ms]" and "total [<n>ms]" through
// answer, by the query's first word and the range in milliseconds, and
// tracks the queries in flight.
type fakeSLIAPI struct {
	answer            func(kind string, window time.Duration) (body string, ok bool)
	mu                sync.Mutex
	queries           []string
	inFlight, maxSeen atomic.Int32
}

func (f *fakeSLIAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for seen := f.maxSeen.Load(); n > seen && !f.maxSeen.CompareAndSwap(seen, n); seen = f.maxSeen.Load() {
	}
	time.Sleep(2 * time.Millisecond) // let the queries of a run overlap
	r.ParseForm()
	query := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, query)
	f.mu.Unlock()
	kind, rest, _ := strings.Cut(query, " [")
	ms, _ := strconv.ParseInt(strings.TrimSuffix(rest, "ms]"), 10, 64)
	body, ok := f.answer(kind, time.Duration(ms)*time.Millisecond)
	if !ok {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte(body))
}

// TestPrometheusSLIWindowProber: every window is queried whole at the
// run's time, at most four at a time; a failed or empty-total window is
// left out and fails the run with its reason, the others still count.
func TestPrometheusSLIWindowProber(t *testing.T) {
	api := &fakeSLIAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	src, _ := newTestPromSource(t, config.PrometheusSourceConfig{URL: srv.URL})
	lengths := []time.Duration{5 * time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour, 72 * time.Hour}
	clock := NewFakeClock(time.Unix(1_800_000_000, 123_456_789))
	prober := NewPrometheusSLIWindowProber(src, config.SLIPrometheus{Bad: "bad [$window]", Total: "total [{{.window}}]"},
		SLIWindowProberOptions{Windows: func(at time.Time) []time.Duration {
			if !at.Equal(time.Unix(1_800_000_000, 123_000_000)) {
				t.Errorf("windows asked at %v, want the run's time in whole milliseconds", at)
			}
			return lengths
		}, Clock: clock})

	// bad is a thousandth of total, total a request per second.
	api.answer = func(kind string, window time.Duration) (string, bool) {
		total := window.Seconds()
		if kind == "bad" {
			return vectorBody(strconv.FormatFloat(total/1000, 'g', -1, 64)), true
		}
		return vectorBody(strconv.FormatFloat(total, 'g', -1, 64)), true
	}
	result := prober.Probe(context.Background())
	if !result.Success || len(result.Windows) != len(lengths) {
		t.Fatalf("success %v, %d windows, err %v; want all %d", result.Success, len(result.Windows), result.Err, len(lengths))
	}
	// Longest first.
	longestFirst := []time.Duration{30 * 24 * time.Hour, 72 * time.Hour, 24 * time.Hour, time.Hour, 5 * time.Minute}
	for i, w := range result.Windows {
		wantTotal := longestFirst[i].Seconds()
		if w.Length != longestFirst[i] || w.Total != wantTotal || w.Good != wantTotal-wantTotal/1000 {
			t.Errorf("window %d: %+v, want length %s, total %v, good %v", i, w, longestFirst[i], wantTotal, wantTotal-wantTotal/1000)
		}
	}
	// The shortest window waits for a slot: four totals and a good query
	// of the longer ones come first.
	if i := slices.Index(api.queries, "total [300000ms]"); i < 5 {
		t.Errorf("the 5m window was queried as number %d of %q, want it last", i, api.queries)
	}
	if got := api.maxSeen.Load(); got > sliWindowConcurrency || got < 2 {
		t.Errorf("%d queries in flight at most, want 2 to %d", got, sliWindowConcurrency)
	}

	for _, tc := range []struct {
		name   string
		answer func(kind string, window time.Duration) (string, bool)
		reason Reason
		errHas string
	}{
		{"the 30d window fails", func(kind string, window time.Duration) (string, bool) {
			return vectorBody("10"), window != 30*24*time.Hour
		}, ReasonStatus, "window 30d: query"},
		{"no bad series: 0 bad", func(kind string, window time.Duration) (string, bool) {
			if kind == "bad" {
				return vectorBody(), true
			}
			return vectorBody("10"), true
		}, "", ""},
		{"the 1h total is empty", func(kind string, window time.Duration) (string, bool) {
			if kind == "total" && window == time.Hour {
				return vectorBody(), true
			}
			return vectorBody("10"), true
		}, ReasonEmpty, "window 1h: query"},
	} {
		api.answer = tc.answer
		result := prober.Probe(context.Background())
		want := len(lengths)
		if tc.reason != "" {
			want--
		}
		switch {
		case result.Reason != tc.reason || result.Success != (tc.reason == ""):
			t.Errorf("%s: success %v, reason %q, want %q", tc.name, result.Success, result.Reason, tc.reason)
		case len(result.Windows) != want:
			t.Errorf("%s: %d windows counted, want %d", tc.name, len(result.Windows), want)
		case tc.errHas != "" && !strings.Contains(fmt.Sprint(result.Err), tc.errHas):
			t.Errorf("%s: error %v, want it to contain %q", tc.name, result.Err, tc.errHas)
		}
		for _, w := range result.Windows {
			if tc.reason == "" && (w.Good != 10 || w.Total != 10) {
				t.Errorf("%s: window %s counted %+v, want 10 good of 10", tc.name, w.Length, w)
			}
		}
	}
}

// TestPrometheusSLIProberBackfillsOlderPart: when the SLO's recorded
// events start after its window's start (the window grew), a run counts
// the new range first, then the part before them in hour chunks, newest
// first, so that the ranges counted always adjoin the recorded events; an
// empty total there is 0 events, not a failure.
func TestPrometheusSLIProberBackfillsOlderPart(t *testing.T) {
	api := &fakeSLIAPI{answer: func(kind string, window time.Duration) (string, bool) {
		if window > 10*time.Second {
			return vectorBody(), true // before the counters existed
		}
		return vectorBody("4"), true
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	src, metrics := newTestPromSource(t, config.PrometheusSourceConfig{URL: srv.URL})
	now := time.Unix(1_800_000_000, 0).Add(20 * time.Minute) // 20 minutes past the hour
	clock := NewFakeClock(now)
	prober := NewPrometheusSLIProber(src, config.SLIPrometheus{Good: "good [$window]", Total: "total [$window]"},
		SLIProberOptions{Interval: 10 * time.Second, Window: 3 * time.Hour, Clock: clock,
			Resume: func() SLICoverage {
				return SLICoverage{From: now.Add(-time.Hour), To: now.Add(-10*time.Second - time.Millisecond)}
			}})
	result := prober.Probe(context.Background())
	want := []string{
		"total [10000ms]", "good [10000ms]", // the new range
		"total [1200000ms]", "good [1200000ms]", // the hour to 1h ago (at :20)
		"total [3600000ms]", "good [3600000ms]", // a whole hour
		"total [2400000ms]", "good [2400000ms]", // 3h ago (at :20) to the hour
	}
	if !result.Success || strings.Join(api.queries, "|") != strings.Join(want, "|") {
		t.Fatalf("success %v (%v), queries %q, want %q", result.Success, result.Err, api.queries, want)
	}
	wantEvents := []EventCounts{
		{From: now.Add(-10 * time.Second), At: now.Add(-time.Millisecond), Good: 4},
		{From: now.Add(-time.Hour - 20*time.Minute), At: now.Add(-time.Hour - time.Millisecond)},
		{From: now.Add(-2*time.Hour - 20*time.Minute), At: now.Add(-time.Hour - 20*time.Minute - time.Millisecond)},
		{From: now.Add(-3 * time.Hour), At: now.Add(-2*time.Hour - 20*time.Minute - time.Millisecond)},
	}
	if fmt.Sprint(result.Events) != fmt.Sprint(wantEvents) {
		t.Errorf("events %v, want %v", result.Events, wantEvents)
	}
	if status := metrics.Status(); status[0].Failures != 0 {
		t.Errorf("%d failures counted, want none: empty backfilled ranges are 0 events", status[0].Failures)
	}
	// The next run counts only the new range.
	api.queries = nil
	clock.Advance(10 * time.Second)
	if result := prober.Probe(context.Background()); len(result.Events) != 1 || len(api.queries) != 2 {
		t.Errorf("second run: %d ranges, queries %q; want the last 10s only", len(result.Events), api.queries)
	}
}
