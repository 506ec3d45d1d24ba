package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/reliabilityd/reliabilityd/slo"
)

// apiResponse is the envelope of /api/v1, as Prometheus' HTTP API has it.
type apiResponse struct {
	Status string `json:"status"`
	Data   any    `json:"data,omitempty"`
	Error  string `json:"error,omitempty"`
}

func writeAPI(w http.ResponseWriter, code int, resp apiResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(resp)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeAPI(w, code, apiResponse{Status: "error", Error: msg})
}

// outageJSON is an outage as /api/v1/outages returns it.
type outageJSON struct {
	slo.Outage
	DurationSeconds float64 `json:"duration_seconds"`
	Open            bool    `json:"open"`
}

// handleOutages serves GET /api/v1/outages[?service=S]: the recorded
// outages, oldest first, open ones last with their duration so far.
func (d *daemon) handleOutages(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		apiError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	now := time.Now()
	outages := d.recovery.Outages(r.URL.Query().Get("service"))
	out := make([]outageJSON, len(outages))
	for i := range outages {
		out[i] = outageJSON{Outage: outages[i], DurationSeconds: outages[i].Duration(now).Seconds(), Open: outages[i].End.IsZero()}
	}
	writeAPI(w, http.StatusOK, apiResponse{Status: "success", Data: out})
}

// drillJSON is a drill as /api/v1/drills takes and returns it.
type drillJSON struct {
	Service string `json:"service"`
	// Time is RFC 3339; now when omitted on POST.
	Time time.Time `json:"time,omitzero"`
	// Result is pass or fail.
	Result string `json:"result"`
	// DurationSeconds is the recovery time the drill measured.
	DurationSeconds float64 `json:"duration_seconds"`
	Note            string  `json:"note,omitempty"`
}

// maxDrillBody bounds a POSTed drill.
const maxDrillBody = 16 << 10

// handleDrills serves GET /api/v1/drills[?service=S] and POST
// /api/v1/drills, which records a drill (as `reliabilityd drill record`
// does). Both sit behind the same --web.config.file authentication as
// every other endpoint.
func (d *daemon) handleDrills(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		drills := d.recovery.Drills(r.URL.Query().Get("service"))
		out := make([]drillJSON, len(drills))
		for i, dr := range drills {
			out[i] = drillJSON{Service: dr.Service, Time: dr.Time, Result: drillResult(dr.Passed), DurationSeconds: dr.Duration.Seconds(), Note: dr.Note}
		}
		writeAPI(w, http.StatusOK, apiResponse{Status: "success", Data: out})
	case http.MethodPost:
		d.recordDrill(w, r)
	default:
		apiError(w, http.StatusMethodNotAllowed, "use GET or POST")
	}
}

func drillResult(passed bool) string {
	if passed {
		return "pass"
	}
	return "fail"
}

// maxDrillDuration bounds a drill's recovery time: a week is already an
// outage, not a drill, and it keeps the conversion to a time.Duration far
// from overflowing.
const maxDrillDuration = 7 * 24 * time.Hour

// validateDrill returns what is wrong with a drill, or "". A drill in the
// future would keep the drill from ever being overdue, and push real ones
// out of the bounded list: it is refused.
func validateDrill(in *drillJSON, now time.Time) string {
	switch {
	case in.Result != "pass" && in.Result != "fail":
		return `result must be "pass" or "fail"`
	case !(in.DurationSeconds >= 0 && in.DurationSeconds <= maxDrillDuration.Seconds()):
		return fmt.Sprintf("duration_seconds must be from 0 to %.0f (a week)", maxDrillDuration.Seconds())
	case in.Time.After(now.Add(5 * time.Minute)):
		return "time is in the future"
	case in.Time.Before(now.AddDate(-10, 0, 0)):
		return "time is more than ten years ago"
	}
	return ""
}

func (d *daemon) recordDrill(w http.ResponseWriter, r *http.Request) {
	var in drillJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, maxDrillBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "invalid drill: "+err.Error())
		return
	}
	if dec.More() {
		apiError(w, http.StatusBadRequest, "invalid drill: one JSON object expected, found more")
		return
	}
	now := time.Now()
	if in.Time.IsZero() {
		in.Time = now
	}
	if msg := validateDrill(&in, now); msg != "" {
		apiError(w, http.StatusBadRequest, "invalid drill: "+msg)
		return
	}
	drill := slo.Drill{Service: in.Service, Time: in.Time, Passed: in.Result == "pass",
		Duration: time.Duration(in.DurationSeconds * float64(time.Second)), Note: in.Note}
	if err := d.recovery.RecordDrill(drill); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, slo.ErrUnknownService) {
			code = http.StatusNotFound
		}
		apiError(w, code, err.Error())
		return
	}
	// A drill is rare and valuable: flush now rather than risk it to a
	// crash before the next flush.
	if err := d.flusher.Flush(); err != nil {
		d.logger.Warn("Drill recorded but the state flush failed; it will be retried", "err", err)
	}
	in.DurationSeconds = drill.Duration.Seconds()
	writeAPI(w, http.StatusOK, apiResponse{Status: "success", Data: in})
}
