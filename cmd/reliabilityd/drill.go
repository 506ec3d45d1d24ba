package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// drillRecordCommand is kingpin's name of `reliabilityd drill record`.
const drillRecordCommand = "drill record"

// drillFlags are the flags of `reliabilityd drill record`.
type drillFlags struct {
	url          string
	service      string
	result       string
	duration     time.Duration
	at           string
	note         string
	username     string
	passwordFile string
	insecure     bool
	timeout      time.Duration
}

func addDrillCommand(app *kingpin.Application, f *drillFlags) {
	drill := app.Command("drill", "Disaster-recovery drills.")
	record := drill.Command("record", "Record a drill through the running daemon's API (POST /api/v1/drills).")
	record.Flag("url", "The running daemon's URL.").Default("http://127.0.0.1" + defaultListenAddress).StringVar(&f.url)
	record.Flag("service", "The service the drill recovered.").Required().StringVar(&f.service)
	record.Flag("result", "Whether the drill passed.").Required().EnumVar(&f.result, "pass", "fail")
	record.Flag("duration", "The recovery time the drill measured, e.g. 25m.").Required().DurationVar(&f.duration)
	record.Flag("time", "When the drill took place, RFC 3339; now when empty.").Default("").StringVar(&f.at)
	record.Flag("note", "A note kept with the drill (at most 1024 bytes).").Default("").StringVar(&f.note)
	record.Flag("username", "Basic auth user, when the daemon's --web.config.file asks for one.").Default("").StringVar(&f.username)
	record.Flag("password-file", "File holding the basic auth password.").Default("").StringVar(&f.passwordFile)
	record.Flag("insecure-skip-verify", "Do not verify the daemon's TLS certificate.").BoolVar(&f.insecure)
	record.Flag("timeout", "How long to wait for the daemon.").Default("10s").DurationVar(&f.timeout)
}

// recordDrillCommand posts a drill to the running daemon and prints what
// it recorded. Exit codes: 0 recorded, 1 refused or unreachable, 2 bad
// flags.
func recordDrillCommand(f *drillFlags, stdout, stderr io.Writer) int {
	body := drillJSON{Service: f.service, Result: f.result, DurationSeconds: f.duration.Seconds(), Note: f.note}
	if f.at != "" {
		at, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			fmt.Fprintf(stderr, "reliabilityd: --time %q: want RFC 3339, e.g. 2026-11-23T14:00:00Z\n", f.at)
			return 2
		}
		body.Time = at
	}
	if f.duration < 0 {
		fmt.Fprintln(stderr, "reliabilityd: --duration must not be negative")
		return 2
	}
	data, _ := json.Marshal(body) // plain data
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(f.url, "/")+"/api/v1/drills", bytes.NewReader(data))
	if err != nil {
		fmt.Fprintf(stderr, "reliabilityd: --url %q: %v\n", f.url, err)
		return 2
	}
	req.Header.Set("Content-Type", "application/json")
	if f.username != "" {
		password, err := os.ReadFile(f.passwordFile)
		if err != nil {
			fmt.Fprintf(stderr, "reliabilityd: reading --password-file: %v\n", err)
			return 2
		}
		req.SetBasicAuth(f.username, strings.TrimRight(string(password), "\r\n"))
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: f.insecure}}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "reliabilityd: recording the drill: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	var reply apiResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&reply); err != nil || resp.StatusCode != http.StatusOK {
		msg := reply.Error
		if msg == "" {
			msg = resp.Status
		}
		fmt.Fprintf(stderr, "reliabilityd: the daemon refused the drill: %s\n", msg)
		return 1
	}
	fmt.Fprintf(stdout, "Recorded a drill of %s: %s, recovered in %s.\n", f.service, f.result, f.duration)
	return 0
}
