package collector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// TestPrometheusSLIProber: every run counts the range since the previous
// successful one, fractions carry over, a failed run records nothing and
// the next covers its range, and an empty bad result counts 0.
func TestPrometheusSLIProber(t *testing.T) {
	var mu sync.Mutex
	answers := map[string]string{} // by the query's first word
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		query := r.Form.Get("query")
		mu.Lock()
		defer mu.Unlock()
		queries = append(queries, query)
		answer, ok := answers[strings.Fields(query)[0]]
		if !ok {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	answer := func(good, total string) {
		mu.Lock()
		defer mu.Unlock()
		clear(answers)
		queries = nil
		if good != "" {
			answers["good"], answers["bad"] = good, good
		}
		if total != "" {
			answers["total"] = total
		}
	}
	lastQueries := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return queries
	}
	src, metrics := newTestPromSource(t, config.PrometheusSourceConfig{URL: srv.URL})
	start := time.Unix(1_800_000_000, 0) // on the hour
	clock := NewFakeClock(start)
	prober := NewPrometheusSLIProber(src, config.SLIPrometheus{Source: "main", Good: "good [$window]", Total: "total [{{.window}}]"},
		SLIProberOptions{Interval: 10 * time.Second, Window: time.Hour, Clock: clock,
			Resume: func() SLICoverage { return SLICoverage{To: start.Add(-10*time.Second - time.Millisecond)} }})

	for i, step := range []struct {
		advance     time.Duration
		good, total string
		want        [][2]uint64 // good, bad per range
		wantQueries []string
		reason      Reason
	}{
		{good: vectorBody("9.6"), total: vectorBody("10.4"), want: [][2]uint64{{9, 1}},
			wantQueries: []string{"total [10000ms]", "good [10000ms]"}},
		{advance: 10 * time.Second, good: vectorBody("9.6"), total: vectorBody("10.4"), want: [][2]uint64{{10, 0}},
			wantQueries: []string{"total [10000ms]", "good [10000ms]"}},
		{advance: 10 * time.Second, reason: ReasonStatus, wantQueries: []string{"total [10000ms]"}},
		{advance: 10 * time.Second, good: vectorBody("20"), total: vectorBody("20.2"), want: [][2]uint64{{20, 1}},
			wantQueries: []string{"total [20000ms]", "good [20000ms]"}},
		{advance: 10 * time.Second, good: vectorBody(), total: vectorBody("5"), want: [][2]uint64{{0, 5}},
			wantQueries: []string{"total [10000ms]", "good [10000ms]"}},
		// An empty total now: the counters are gone, no events and a
		// failure; the range is not asked for again.
		{advance: 10 * time.Second, good: vectorBody("1"), total: vectorBody(), reason: ReasonEmpty, want: [][2]uint64{{0, 0}},
			wantQueries: []string{"total [10000ms]"}},
		{advance: 10 * time.Second, good: vectorBody("1"), total: vectorBody("1"), want: [][2]uint64{{1, 0}},
			wantQueries: []string{"total [10000ms]", "good [10000ms]"}},
		// Two hours later: the last hour only, in chunks up to the hour.
		{advance: 2 * time.Hour, good: vectorBody("1"), total: vectorBody("1"), want: [][2]uint64{{1, 0}, {1, 0}},
			wantQueries: []string{"total [3540000ms]", "good [3540000ms]", "total [60000ms]", "good [60000ms]"}},
	} {
		clock.Advance(step.advance)
		answer(step.good, step.total)
		result := prober.Probe(context.Background())
		var got [][2]uint64
		for _, ev := range result.Events {
			got = append(got, [2]uint64{ev.Good, ev.Bad})
		}
		switch {
		case step.reason != "" && (result.Success || result.Reason != step.reason || fmt.Sprint(got) != fmt.Sprint(step.want)):
			t.Errorf("step %d: %+v, want a %s failure with events %v", i, result, step.reason, step.want)
		case result.Duration < 0 || result.Duration > time.Minute:
			t.Errorf("step %d: took %v by the real clock", i, result.Duration)
		case step.reason == "" && (!result.Success || fmt.Sprint(got) != fmt.Sprint(step.want)):
			t.Errorf("step %d: success %v, events %v, err %v; want %v", i, result.Success, got, result.Err, step.want)
		case step.reason == "" && !result.Events[len(result.Events)-1].At.Equal(clock.Now().Add(-time.Millisecond)):
			t.Errorf("step %d: last range at %v, want just before now", i, result.Events[len(result.Events)-1].At)
		}
		if got := lastQueries(); strings.Join(got, "|") != strings.Join(step.wantQueries, "|") {
			t.Errorf("step %d: queries %q, want %q", i, got, step.wantQueries)
		}
	}
	if status := metrics.Status(); status[0].Failures != 2 {
		t.Errorf("%d failures counted, want 2 (the 503 and the empty total)", status[0].Failures)
	}

	// Bad mode: total minus bad is good.
	answer(vectorBody("2"), vectorBody("10"))
	badProber := NewPrometheusSLIProber(src, config.SLIPrometheus{Source: "main", Bad: "bad [$window]", Total: "total [$window]"},
		SLIProberOptions{Interval: 10 * time.Second, Window: time.Hour, Clock: clock, Resume: func() SLICoverage { return SLICoverage{To: clock.Now().Add(-5 * time.Second)} }})
	if result := badProber.Probe(context.Background()); len(result.Events) != 1 || result.Events[0].Good != 8 || result.Events[0].Bad != 2 {
		t.Errorf("bad mode: events %+v, err %v; want 8 good, 2 bad", result.Events, result.Err)
	}

	// A new SLO backfills its window in hour chunks, at most 24 a run: 48h
	// from half past the hour are 49 ranges.
	answer(vectorBody("0"), vectorBody("0"))
	clock.Advance(30*time.Minute - clock.Now().Sub(clock.Now().Truncate(time.Hour)))
	backfill := NewPrometheusSLIProber(src, config.SLIPrometheus{Source: "main", Good: "good [$window]", Total: "total [$window]"},
		SLIProberOptions{Interval: 10 * time.Second, Window: 48 * time.Hour, Clock: clock, Resume: func() SLICoverage { return SLICoverage{} }})
	for run, wantRanges := range []int{24, 24, 1} {
		answer(vectorBody("0"), vectorBody("0"))
		if run == 2 {
			clock.Advance(10 * time.Second)
		}
		result := backfill.Probe(context.Background())
		if len(result.Events) != wantRanges || !result.Success {
			t.Errorf("backfill run %d: %d ranges (success %v), want %d", run, len(result.Events), result.Success, wantRanges)
		}
		if queries := lastQueries(); run == 0 && queries[0] != "total [1800000ms]" {
			t.Errorf("backfill run 0 starts with %q, want the half hour up to the hour 48h ago", queries[0])
		}
	}
}
