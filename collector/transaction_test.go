package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

// The login flow the tests probe: GET /login serves a form with a CSRF
// token; POST /login checks user, password and token, sets a session
// cookie and returns a bearer token as JSON; GET /api/orders wants both
// the cookie and the token.
const (
	shopUser     = "probe@example.com"
	shopPassword = "correct horse&battery" // needs urlquery in a form body
	shopCSRF     = "csrf-7f3a"
	shopSession  = "session-51e2"
	shopToken    = "token-9b1c"
)

// shopServer is the login flow on loopback, counting the connections it
// accepts.
type shopServer struct {
	*httptest.Server
	conns atomic.Int32
	// arrived and release hold GET /api/slow: the handler signals
	// arrived, then answers once release is closed.
	arrived, release chan struct{}
}

func newShopServer(t *testing.T) *shopServer {
	t.Helper()
	s := &shopServer{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(s.handler())
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *shopServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<form action="/login" method="post"><input type="hidden" name="csrf" value="%s"></form>`, shopCSRF)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.PostFormValue("user") != shopUser || r.PostFormValue("password") != shopPassword || r.PostFormValue("csrf") != shopCSRF {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error": "bad credentials"}`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: shopSession, Path: "/", HttpOnly: true})
		fmt.Fprintf(w, `{"data": {"token": %q, "user": {"email": %q}, "expires": null}}`, shopToken, shopUser)
	})
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie("session")
		if err != nil || cookie.Value != shopSession || r.Header.Get("Authorization") != "Bearer "+shopToken {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orders": [{"id": "o-1", "status": "paid", "total": 42.50}, {"id": "o-2", "status": "shipped", "total": 7}]}`)
	})
	mux.HandleFunc("GET /api/slow", func(w http.ResponseWriter, r *http.Request) {
		s.arrived <- struct{}{}
		<-s.release
	})
	mux.HandleFunc("GET /api/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /api/big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 2048))
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("session"); err != nil {
			io.WriteString(w, "session: none")
			return
		}
		io.WriteString(w, "session: present")
	})
	return mux
}

// tmpl parses a template, failing the test on error.
func tmpl(t testing.TB, text string) config.Template {
	t.Helper()
	parsed, err := config.ParseTemplate(text)
	if err != nil {
		t.Fatalf("ParseTemplate(%q): %v", text, err)
	}
	return parsed
}

func jsonPath(t testing.TB, text string) config.JSONPath {
	t.Helper()
	path, err := config.ParseJSONPath(text)
	if err != nil {
		t.Fatalf("ParseJSONPath(%q): %v", text, err)
	}
	return path
}

// txStep returns a step with the config defaults, changed by mutate.
func txStep(t testing.TB, name, method, url string, mutate func(*config.TransactionStep)) config.TransactionStep {
	t.Helper()
	step := config.DefaultTransactionStep
	step.Name, step.Method, step.URL = name, method, tmpl(t, url)
	if mutate != nil {
		mutate(&step)
	}
	return step
}

// loginFlow is the three steps of the shop's login flow, the password
// read from passwordFile.
func loginFlow(t testing.TB, baseURL, passwordFile string) *config.TransactionProbe {
	return &config.TransactionProbe{
		Secrets:   map[string]string{"password": passwordFile},
		Variables: map[string]string{"user": shopUser},
		Steps: []config.TransactionStep{
			txStep(t, "login-page", "GET", baseURL+"/login", func(s *config.TransactionStep) {
				s.Captures = []config.TransactionCapture{{Name: "csrf", Regexp: httpRegexp(t, `name="csrf" value="([^"]+)"`)}}
			}),
			txStep(t, "login", "POST", baseURL+"/login", func(s *config.TransactionStep) {
				s.Headers = map[string]config.Template{"Content-Type": tmpl(t, "application/x-www-form-urlencoded")}
				s.Body = tmpl(t, `user={{ var "user" | urlquery }}&password={{ secret "password" | urlquery }}&csrf={{ var "csrf" | urlquery }}`)
				s.ValidStatusCodes = []int{200}
				s.Captures = []config.TransactionCapture{
					{Name: "token", JSONPath: jsonPath(t, "data.token")},
					{Name: "session", Cookie: "session"},
				}
			}),
			txStep(t, "orders", "GET", baseURL+"/api/orders", func(s *config.TransactionStep) {
				s.Headers = map[string]config.Template{"Authorization": tmpl(t, `Bearer {{ var "token" }}`)}
				s.Assertions = []config.TransactionAssertion{
					{Header: "Content-Type", Regexp: httpRegexp(t, "^application/json$")},
					{JSONPath: jsonPath(t, "orders[0].status"), Equals: ptr("paid")},
				}
			}),
		},
	}
}

func ptr[T any](v T) *T { return &v }

func newTestTransactionProber(t testing.TB, tx *config.TransactionProbe) Prober {
	t.Helper()
	prober, err := NewTransactionProber(config.ProbeConfig{Name: "checkout", Transaction: tx}, ProberDeps{})
	if err != nil {
		t.Fatalf("NewTransactionProber: %v", err)
	}
	return prober
}

func runTransaction(t testing.TB, prober Prober, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return prober.Probe(ctx)
}

// assertSteps compares the steps without their durations, and checks
// that the steps that ran, and only those, have one.
func assertSteps(t *testing.T, got, want []StepResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if (g.Duration > 0) != g.Ran || g.Duration > httpTestTimeout {
			t.Errorf("step %d: duration %v with ran = %v", i+1, g.Duration, g.Ran)
		}
		g.Duration = 0
		if g != want[i] {
			t.Errorf("step %d = %+v, want %+v", i+1, g, want[i])
		}
	}
}

// assertNoValues fails when err shows a secret or captured value.
func assertNoValues(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, value := range []string{shopPassword, shopCSRF, shopSession, shopToken, "correct"} {
		if strings.Contains(err.Error(), value) {
			t.Errorf("err %q shows the value %q", err, value)
		}
	}
}

func TestTransactionLoginFlow(t *testing.T) {
	srv := newShopServer(t)
	passwordFile := httpSecretFile(t, "password", shopPassword+"\n")
	prober := newTestTransactionProber(t, loginFlow(t, srv.URL, passwordFile))

	result := runTransaction(t, prober, httpTestTimeout)
	assertHTTPResult(t, result, "", "")
	assertSteps(t, result.Steps, []StepResult{
		{Name: "login-page", Ran: true, Success: true, StatusCode: 200},
		{Name: "login", Ran: true, Success: true, StatusCode: 200},
		{Name: "orders", Ran: true, Success: true, StatusCode: 200},
	})
	if result.StatusCode != 200 || result.TLS != nil {
		t.Errorf("status %d, TLS %+v; want 200 over plain HTTP", result.StatusCode, result.TLS)
	}
	var sum time.Duration
	for _, step := range result.Steps {
		sum += step.Duration
	}
	if sum > result.Duration {
		t.Errorf("steps take %v, more than the transaction's %v", sum, result.Duration)
	}
	assertHTTPPhases(t, result, []Phase{PhaseResolve, PhaseConnect, PhaseProcessing, PhaseTransfer}, []Phase{PhaseTLS})
	// The steps share one connection; the next run dials its own.
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("the run used %d connections, want 1", n)
	}
	result = runTransaction(t, prober, httpTestTimeout)
	assertHTTPResult(t, result, "", "")
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("two runs used %d connections, want 2", n)
	}
}

// TestTransactionConnections: steps share the run's connections only
// when they are dialled alike.
func TestTransactionConnections(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*config.TransactionProbe)
		wantConns int32
	}{
		{name: "alike", wantConns: 1},
		{name: "another address family setting", mutate: func(tx *config.TransactionProbe) {
			tx.Steps[2].IPProtocol = "ip4"
		}, wantConns: 2},
		// Step 3 goes back to step 1's idle connection.
		{name: "another TLS setting", mutate: func(tx *config.TransactionProbe) {
			tx.Steps[1].TLSConfig.ServerName = "shop.example"
		}, wantConns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newShopServer(t)
			tx := loginFlow(t, srv.URL, httpSecretFile(t, "password", shopPassword))
			if tt.mutate != nil {
				tt.mutate(tx)
			}
			result := runTransaction(t, newTestTransactionProber(t, tx), httpTestTimeout)
			assertHTTPResult(t, result, "", "")
			if n := srv.conns.Load(); n != tt.wantConns {
				t.Errorf("the run used %d connections, want %d", n, tt.wantConns)
			}
		})
	}
}

func TestTransactionFailures(t *testing.T) {
	srv := newShopServer(t)
	goodPassword := httpSecretFile(t, "password", shopPassword)
	closedAddr := closedLoopbackAddr(t)
	ran := func(name string) StepResult { return StepResult{Name: name, Ran: true, Success: true, StatusCode: 200} }
	failed := func(name string, reason Reason, status int) StepResult {
		return StepResult{Name: name, Ran: true, Reason: reason, StatusCode: status}
	}
	tests := []struct {
		name       string
		password   string // the secret file; "" for goodPassword
		mutate     func(*config.TransactionProbe)
		wantReason Reason
		wantErr    string
		wantSteps  []StepResult
	}{
		{
			name:       "wrong password",
			password:   httpSecretFile(t, "wrong", "incorrect"),
			wantReason: ReasonStatus,
			wantErr:    `step 2 "login": status 401 not in [200]`,
			wantSteps:  []StepResult{ran("login-page"), failed("login", ReasonStatus, 401), {Name: "orders"}},
		},
		{
			name:       "secret file missing",
			password:   filepath.Join(t.TempDir(), "missing"),
			wantReason: ReasonSecret,
			wantErr:    `step 2 "login": reading secret "password": open `,
			wantSteps:  []StepResult{ran("login-page"), failed("login", ReasonSecret, 0), {Name: "orders"}},
		},
		{
			name: "capture finds nothing",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[1].Captures[0].JSONPath = jsonPath(t, "data.missing")
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "login": capture "token": json_path "data.missing" not found`,
			wantSteps:  []StepResult{ran("login-page"), failed("login", ReasonAssertion, 200), {Name: "orders"}},
		},
		{
			name: "capture of a null",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[1].Captures[0].JSONPath = jsonPath(t, "data.expires")
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "login": capture "token": json_path "data.expires" is null`,
			wantSteps:  []StepResult{ran("login-page"), failed("login", ReasonAssertion, 200), {Name: "orders"}},
		},
		{
			name: "capture regexp does not match",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[0].Captures[0].Regexp = httpRegexp(t, `name="token" value="([^"]+)"`)
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 1 "login-page": capture "csrf": regexp "name=\"token\" value=\"([^\"]+)\"" does not match the body`,
			wantSteps:  []StepResult{failed("login-page", ReasonAssertion, 200), {Name: "login"}, {Name: "orders"}},
		},
		{
			name: "missing cookie",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[1].Captures[1].Cookie = "sid"
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "login": capture "session": no cookie "sid"`,
			wantSteps:  []StepResult{ran("login-page"), failed("login", ReasonAssertion, 200), {Name: "orders"}},
		},
		{
			name: "header assertion",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].Assertions[0].Regexp = httpRegexp(t, "^text/html")
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 3 "orders": header "Content-Type" does not match regexp "^text/html"`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonAssertion, 200)},
		},
		{
			name: "header missing",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].Assertions[0].Header = "x-request-id"
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 3 "orders": header "X-Request-Id" missing`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonAssertion, 200)},
		},
		{
			name: "json value differs",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].Assertions[1].JSONPath = jsonPath(t, "orders[-1].status")
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 3 "orders": json_path "orders[-1].status" does not equal "paid"`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonAssertion, 200)},
		},
		{
			name: "json path not found",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].Assertions[1].JSONPath = jsonPath(t, "orders[2].status")
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 3 "orders": json_path "orders[2].status" not found`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonAssertion, 200)},
		},
		{
			name: "body is not JSON",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[0].Assertions = []config.TransactionAssertion{{JSONPath: jsonPath(t, "csrf")}}
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 1 "login-page": body is not JSON: invalid character '<' looking for beginning of value`,
			wantSteps:  []StepResult{failed("login-page", ReasonAssertion, 200), {Name: "login"}, {Name: "orders"}},
		},
		{
			name: "body regexp",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].Assertions = []config.TransactionAssertion{{BodyRegexp: httpRegexp(t, `"refunded"`)}}
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 3 "orders": body does not match body_regexp "\"refunded\""`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonAssertion, 200)},
		},
		{
			name: "body not regexp",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].Assertions = []config.TransactionAssertion{{BodyNotRegexp: httpRegexp(t, `"shipped"`)}}
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 3 "orders": body matches body_not_regexp "\"shipped\""`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonAssertion, 200)},
		},
		{
			name: "body too large",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[2].URL = tmpl(t, srv.URL+"/api/big")
				tx.Steps[2].BodySizeLimit = 1024
			},
			wantReason: ReasonBodyTooLarge,
			wantErr:    `step 3 "orders": body exceeds body_size_limit of 1024 bytes`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonBodyTooLarge, 200)},
		},
		{
			name: "status without the token",
			mutate: func(tx *config.TransactionProbe) {
				delete(tx.Steps[2].Headers, "Authorization")
			},
			wantReason: ReasonStatus,
			wantErr:    `step 3 "orders": status 403 not in 2xx`,
			wantSteps:  []StepResult{ran("login-page"), ran("login"), failed("orders", ReasonStatus, 403)},
		},
		{
			name: "connection refused",
			mutate: func(tx *config.TransactionProbe) {
				tx.Steps[0].URL = tmpl(t, "http://"+closedAddr+"/login")
			},
			wantReason: ReasonConnect,
			wantErr:    `step 1 "login-page": Get "http://` + closedAddr + `/login": dial tcp `,
			wantSteps:  []StepResult{failed("login-page", ReasonConnect, 0), {Name: "login"}, {Name: "orders"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			password := tt.password
			if password == "" {
				password = goodPassword
			}
			tx := loginFlow(t, srv.URL, password)
			if tt.mutate != nil {
				tt.mutate(tx)
			}
			result := runTransaction(t, newTestTransactionProber(t, tx), httpTestTimeout)
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if !strings.HasPrefix(result.Err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want it to start with %q", result.Err, tt.wantErr)
			}
			assertSteps(t, result.Steps, tt.wantSteps)
			assertNoValues(t, result.Err)
		})
	}
}

// closedLoopbackAddr returns an address on loopback nobody listens on.
func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	return addr
}

func TestTransactionMaxDuration(t *testing.T) {
	srv := newShopServer(t)
	const bound = 10 * time.Millisecond
	tests := []struct {
		name        string
		maxDuration time.Duration
		// hold is how long the server holds the response after the
		// request arrived: at least the step's duration, so a hold above
		// the bound fails the step whatever the machine's speed.
		hold       time.Duration
		wantReason Reason
	}{
		{name: "exceeded", maxDuration: bound, hold: 2 * bound, wantReason: ReasonAssertion},
		{name: "within", maxDuration: httpTestTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &config.TransactionProbe{Steps: []config.TransactionStep{
				txStep(t, "slow", "GET", srv.URL+"/api/slow", func(s *config.TransactionStep) {
					s.Assertions = []config.TransactionAssertion{{MaxDuration: config.Duration(tt.maxDuration)}}
				}),
			}}
			prober := newTestTransactionProber(t, tx)
			done := make(chan Result, 1)
			go func() { done <- runTransaction(t, prober, httpTestTimeout) }()
			<-srv.arrived
			<-time.After(tt.hold)
			srv.release <- struct{}{}
			result := <-done
			assertHTTPResult(t, result, tt.wantReason, "")
			if tt.wantReason == "" {
				return
			}
			if want := `step 1 "slow": took `; !strings.HasPrefix(result.Err.Error(), want) ||
				!strings.HasSuffix(result.Err.Error(), ", more than max_duration 10ms") {
				t.Errorf("err = %q, want %q... more than max_duration 10ms", result.Err, want)
			}
			if d := result.Steps[0].Duration; d < tt.hold {
				t.Errorf("step duration %v, shorter than the server held the response (%v)", d, tt.hold)
			}
		})
	}
}

func TestTransactionTimeoutMidStep(t *testing.T) {
	srv := newShopServer(t)
	tx := loginFlow(t, srv.URL, httpSecretFile(t, "password", shopPassword))
	tx.Steps[2].URL = tmpl(t, srv.URL+"/api/hang")
	result := runTransaction(t, newTestTransactionProber(t, tx), httpShortTimeout)
	assertHTTPResult(t, result, ReasonTimeout, `step 3 "orders": Get "`+srv.URL+`/api/hang": `)
	assertSteps(t, result.Steps, []StepResult{
		{Name: "login-page", Ran: true, Success: true, StatusCode: 200},
		{Name: "login", Ran: true, Success: true, StatusCode: 200},
		{Name: "orders", Ran: true, Reason: ReasonTimeout},
	})
	if result.Duration < httpShortTimeout/2 || result.Duration > 10*httpShortTimeout {
		t.Errorf("duration = %v, want about %v", result.Duration, httpShortTimeout)
	}
}

// TestTransactionCookiesPerRun: every run starts with an empty cookie
// jar, so a session cookie of one run is never sent by the next.
func TestTransactionCookiesPerRun(t *testing.T) {
	srv := newShopServer(t)
	tx := loginFlow(t, srv.URL, httpSecretFile(t, "password", shopPassword))
	whoami := func(name, want string) config.TransactionStep {
		return txStep(t, name, "GET", srv.URL+"/whoami", func(s *config.TransactionStep) {
			s.Assertions = []config.TransactionAssertion{{BodyRegexp: httpRegexp(t, "^session: "+want+"$")}}
		})
	}
	tx.Steps = []config.TransactionStep{whoami("before", "none"), tx.Steps[0], tx.Steps[1], whoami("after", "present")}
	prober := newTestTransactionProber(t, tx)
	for run := 1; run <= 2; run++ {
		result := runTransaction(t, prober, httpTestTimeout)
		assertHTTPResult(t, result, "", "")
	}
}

// TestTransactionSecretRotation: the secret file is read at every run.
func TestTransactionSecretRotation(t *testing.T) {
	srv := newShopServer(t)
	passwordFile := httpSecretFile(t, "password", "old password")
	prober := newTestTransactionProber(t, loginFlow(t, srv.URL, passwordFile))
	result := runTransaction(t, prober, httpTestTimeout)
	assertHTTPResult(t, result, ReasonStatus, `step 2 "login": status 401`)
	if err := os.WriteFile(passwordFile, []byte(shopPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	result = runTransaction(t, prober, httpTestTimeout)
	assertHTTPResult(t, result, "", "")
}

func TestTransactionTLS(t *testing.T) {
	ca := newTestCA(t)
	shop := &shopServer{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	srv := newHTTPSServer(t, httpsServerTLS(ca.leaf(t, leafOptions{}), nil, 0), shop.handler())
	tests := []struct {
		name       string
		tlsConfig  config.TLSConfig
		wantReason Reason
		wantErr    string
	}{
		{name: "ca_file", tlsConfig: config.TLSConfig{CAFile: ca.certFile}},
		{name: "unknown CA", wantReason: ReasonTLS, wantErr: `step 1 "login-page": Get "` + srv.URL + `/login": tls: failed to verify certificate`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := loginFlow(t, srv.URL, httpSecretFile(t, "password", shopPassword))
			for i := range tx.Steps {
				tx.Steps[i].TLSConfig = tt.tlsConfig
			}
			result := runTransaction(t, newTestTransactionProber(t, tx), httpTestTimeout)
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if tt.wantReason != "" {
				return
			}
			if result.TLS == nil || result.TLS.Version != "TLS 1.3" {
				t.Errorf("TLS = %+v, want TLS 1.3", result.TLS)
			}
			assertHTTPPhases(t, result, []Phase{PhaseResolve, PhaseConnect, PhaseTLS, PhaseProcessing, PhaseTransfer}, nil)
		})
	}
}

func TestTransactionRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: shopSession, Path: "/"})
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("session"); err != nil {
			http.Error(w, "no session", http.StatusForbidden)
		}
	})
	mux.HandleFunc("GET /loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		name       string
		step       config.TransactionStep
		wantReason Reason
		wantErr    string
		wantStatus int
	}{
		{
			name: "followed with the cookie the redirect set",
			step: txStep(t, "login", "POST", srv.URL+"/login", func(s *config.TransactionStep) {
				s.Captures = []config.TransactionCapture{{Name: "session", Cookie: "session"}}
			}),
			wantStatus: 200,
		},
		{
			name: "not followed",
			step: txStep(t, "login", "POST", srv.URL+"/login", func(s *config.TransactionStep) {
				s.FollowRedirects = false
				s.ValidStatusCodes = []int{303}
				s.Assertions = []config.TransactionAssertion{{Header: "Location", Equals: ptr("/account")}}
			}),
			wantStatus: 303,
		},
		{
			name: "too many",
			step: txStep(t, "loop", "GET", srv.URL+"/loop", func(s *config.TransactionStep) {
				s.MaxRedirects = 2
			}),
			wantReason: ReasonRedirect,
			wantErr:    `step 1 "loop": Get "` + srv.URL + `/loop": too many redirects (max_redirects 2)`,
			wantStatus: 302,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &config.TransactionProbe{Steps: []config.TransactionStep{tt.step}}
			result := runTransaction(t, newTestTransactionProber(t, tx), httpTestTimeout)
			assertHTTPResult(t, result, tt.wantReason, tt.wantErr)
			if result.StatusCode != tt.wantStatus || result.Steps[0].StatusCode != tt.wantStatus {
				t.Errorf("status = %d (step %d), want %d", result.StatusCode, result.Steps[0].StatusCode, tt.wantStatus)
			}
		})
	}
}

// TestTransactionTemplates: what the template functions send, and the
// rendered values a run refuses.
func TestTransactionTemplates(t *testing.T) {
	var got atomic.Pointer[http.Request]
	var gotBody atomic.Pointer[string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		text := string(body)
		got.Store(r)
		gotBody.Store(&text)
		w.Header().Set("Link", `</page/2>; rel="next"`)
		w.Header().Add("Link", `</page/9>; rel="last"`)
		io.WriteString(w, `{"id": 42, "ok": true, "tags": ["a", "b"], "note": "line\nbreak", "big": "`+strings.Repeat("y", config.MaxTransactionValueSize+1)+`"}`)
	}))
	defer srv.Close()
	secretFile := httpSecretFile(t, "key", "s3cret:key\n")
	tests := []struct {
		name       string
		captures   []config.TransactionCapture
		next       func(*config.TransactionStep)
		wantReason Reason
		wantErr    string
		check      func(t *testing.T, r *http.Request, body string)
	}{
		{
			name: "functions",
			captures: []config.TransactionCapture{
				{Name: "id", JSONPath: jsonPath(t, "id")},
				{Name: "tags", JSONPath: jsonPath(t, "tags")},
				{Name: "ok", JSONPath: jsonPath(t, "ok")},
				{Name: "last", Header: "Link", Regexp: httpRegexp(t, `<([^>]+)>; rel="last"`)},
				{Name: "first-link", Header: "Link"},
			},
			next: func(s *config.TransactionStep) {
				s.URL = tmpl(t, srv.URL+`/items/{{ var "id" }}?q={{ "a b&c" | urlquery }}`)
				s.Headers = map[string]config.Template{
					"Authorization": tmpl(t, `Basic {{ printf "%s:%s" "user" (secret "key") | base64 }}`),
					"X-Link":        tmpl(t, `{{ var "last" }} {{ var "first-link" }}`),
					"Host":          tmpl(t, "shop.example"),
				}
				s.Body = tmpl(t, `{"tags": {{ var "tags" }}, "ok": {{ var "ok" }}, "quoted": {{ "say \"hi\" <b>" | json }}}`)
			},
			check: func(t *testing.T, r *http.Request, body string) {
				if r.URL.String() != "/items/42?q=a+b%26c" || r.Host != "shop.example" {
					t.Errorf("request %s to host %s", r.URL, r.Host)
				}
				if user, pass, ok := r.BasicAuth(); !ok || user != "user" || pass != "s3cret:key" {
					t.Errorf("basic auth %q %q %v", user, pass, ok)
				}
				if link := r.Header.Get("X-Link"); link != `/page/9 </page/2>; rel="next"` {
					t.Errorf("X-Link = %q", link)
				}
				if want := `{"tags": ["a","b"], "ok": true, "quoted": "say \"hi\" <b>"}`; body != want {
					t.Errorf("body = %s, want %s", body, want)
				}
				if r.UserAgent() != "reliabilityd" {
					t.Errorf("User-Agent = %q", r.UserAgent())
				}
			},
		},
		{
			name:     "captured value too large",
			captures: []config.TransactionCapture{{Name: "big", JSONPath: jsonPath(t, "big")}},
			next: func(s *config.TransactionStep) {
				s.Body = tmpl(t, `{{ var "big" }}`)
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 1 "first": capture "big": the value exceeds 65536 bytes`,
		},
		{
			name:     "rendered value too large",
			captures: []config.TransactionCapture{{Name: "id", JSONPath: jsonPath(t, "id")}},
			next: func(s *config.TransactionStep) {
				// html makes 4 bytes of each "<": 80,000 bytes from 20,000.
				s.Body = tmpl(t, `{{ html "`+strings.Repeat("<", 20000)+`" }}`)
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "next": body: the rendered value exceeds 65536 bytes`,
		},
		{
			name:     "header with a line break",
			captures: []config.TransactionCapture{{Name: "note", JSONPath: jsonPath(t, "note")}},
			next: func(s *config.TransactionStep) {
				s.Headers = map[string]config.Template{"X-Note": tmpl(t, `{{ var "note" }}`)}
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "next": headers["X-Note"]: the rendered value holds CR, LF or NUL`,
		},
		{
			name:     "not a URL",
			captures: []config.TransactionCapture{{Name: "id", JSONPath: jsonPath(t, "id")}},
			next: func(s *config.TransactionStep) {
				s.URL = tmpl(t, `{{ var "id" }}/items`)
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "next": url: the rendered value is not an absolute http or https URL`,
		},
		{
			name:     "template error",
			captures: []config.TransactionCapture{{Name: "id", JSONPath: jsonPath(t, "id")}},
			next: func(s *config.TransactionStep) {
				s.Body = tmpl(t, `{{ index (var "id") 5 }}`)
			},
			wantReason: ReasonAssertion,
			wantErr:    `step 2 "next": body: template: steps[1].body:1:3: executing "steps[1].body" at <index (var "id") 5>: error calling index: index out of range: 5`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &config.TransactionProbe{
				Secrets: map[string]string{"key": secretFile},
				Steps: []config.TransactionStep{
					txStep(t, "first", "GET", srv.URL+"/first", func(s *config.TransactionStep) { s.Captures = tt.captures }),
					txStep(t, "next", "POST", srv.URL+"/next", tt.next),
				},
			}
			result := runTransaction(t, newTestTransactionProber(t, tx), httpTestTimeout)
			assertHTTPResult(t, result, tt.wantReason, "")
			if tt.wantErr != "" && result.Err.Error() != tt.wantErr {
				t.Errorf("err = %q, want %q", result.Err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, got.Load(), *gotBody.Load())
			}
			if result.Err != nil && strings.Contains(result.Err.Error(), "s3cret") {
				t.Errorf("err %q shows the secret", result.Err)
			}
		})
	}
}

func TestJSONText(t *testing.T) {
	doc, err := parseJSONBody([]byte(`{"s": "a\"b", "n": 1.50, "i": -3, "t": true, "f": false, "z": null, "o": {"b": 1, "a": [1, "x"]}, "e": []}`))
	if err != nil {
		t.Fatal(err)
	}
	object := doc.(map[string]any)
	for key, want := range map[string]string{
		"s": `a"b`, "n": "1.50", "i": "-3", "t": "true", "f": "false", "z": "null", "o": `{"a":[1,"x"],"b":1}`, "e": "[]",
	} {
		if got := jsonText(object[key]); got != want {
			t.Errorf("jsonText(%s) = %q, want %q", key, got, want)
		}
	}
	for body, wantErr := range map[string]string{
		"":           "body is empty, not JSON",
		"  ":         "body is empty, not JSON",
		`{"a": 1} x`: "body is not JSON: data after the first value",
		`{"a": }`:    "body is not JSON: invalid character '}' looking for beginning of value",
		"[1, 2] ":    "",
	} {
		_, err := parseJSONBody([]byte(body))
		if (err == nil && wantErr != "") || (err != nil && err.Error() != wantErr) {
			t.Errorf("parseJSONBody(%q) error = %v, want %q", body, err, wantErr)
		}
	}
}

func TestNewTransactionProberErrors(t *testing.T) {
	tests := []struct {
		name    string
		tx      *config.TransactionProbe
		wantErr string
	}{
		{name: "no section", wantErr: `probe "checkout": no transaction section`},
		{name: "no steps", tx: &config.TransactionProbe{}, wantErr: `probe "checkout": a transaction needs at least one step`},
		{
			name:    "relative URL",
			tx:      &config.TransactionProbe{Steps: []config.TransactionStep{txStep(t, "a", "GET", "/login", nil)}},
			wantErr: `probe "checkout": steps[0] ("a"): url "/login": scheme must be http or https`,
		},
		{
			name: "templated Host",
			tx: &config.TransactionProbe{Steps: []config.TransactionStep{txStep(t, "a", "GET", "http://shop.example/", func(s *config.TransactionStep) {
				s.Headers = map[string]config.Template{"host": tmpl(t, `{{ "x" }}`)}
			})}},
			wantErr: `probe "checkout": steps[0] ("a"): the Host header cannot be templated`,
		},
		{
			name: "assertion of two kinds",
			tx: &config.TransactionProbe{Steps: []config.TransactionStep{txStep(t, "a", "GET", "http://shop.example/", func(s *config.TransactionStep) {
				s.Assertions = []config.TransactionAssertion{{Header: "A", MaxDuration: config.Duration(time.Second)}}
			})}},
			wantErr: `probe "checkout": steps[0] ("a"): assertions[0]: an assertion needs exactly one of body_regexp, body_not_regexp, header, json_path and max_duration, found 2`,
		},
		{
			name: "capture group out of range",
			tx: &config.TransactionProbe{Steps: []config.TransactionStep{txStep(t, "a", "GET", "http://shop.example/", func(s *config.TransactionStep) {
				s.Captures = []config.TransactionCapture{{Name: "x", Regexp: httpRegexp(t, "(a)"), Group: ptr(2)}}
			})}},
			wantErr: `probe "checkout": steps[0] ("a"): captures[0]: group 2: regexp "(a)" has 1 groups`,
		},
		{
			name: "bad CA file",
			tx: &config.TransactionProbe{Steps: []config.TransactionStep{txStep(t, "a", "GET", "https://shop.example/", func(s *config.TransactionStep) {
				s.TLSConfig.CAFile = filepath.Join(t.TempDir(), "missing.pem")
			})}},
			wantErr: `probe "checkout": steps[0] ("a"): tls_config: reading CA file: open `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTransactionProber(config.ProbeConfig{Name: "checkout", Transaction: tt.tx}, ProberDeps{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to start with %q", err, tt.wantErr)
			}
		})
	}
}

// TestTransactionExample: the example configuration builds a prober.
func TestTransactionExample(t *testing.T) {
	cfg, err := config.Load("../examples/probes/transaction.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewProber(cfg.Services[0].Probes[0], ProberDeps{}); err != nil {
		t.Fatal(err)
	}
}

// TestStepCapture: what each source captures, on a response built in the
// test.
func TestStepCapture(t *testing.T) {
	target, err := url.Parse("https://shop.example/account")
	if err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	jar.SetCookies(target, []*http.Cookie{{Name: "earlier", Value: "from-the-jar"}})
	header := http.Header{
		"Link":       {`</page/1>; rel="prev"`, `</page/3>; rel="next"`},
		"Set-Cookie": {"session=abc; Path=/", "gone=x; Max-Age=0", "old=y; Expires=Thu, 01 Jan 1970 00:00:00 GMT"},
	}
	response := func() *stepResponse {
		return &stepResponse{
			resp: &http.Response{Header: header, Request: &http.Request{URL: target}},
			body: bytes.NewBufferString(`{"id": "acct-42", "n": null, "o": {"b": [true], "a": 1}, "t": "token=t-1;"}`),
		}
	}
	tests := []struct {
		name    string
		capture config.TransactionCapture
		want    string
		wantErr string
	}{
		{name: "body, whole match", capture: config.TransactionCapture{Regexp: httpRegexp(t, `token=[^;]+`)}, want: "token=t-1"},
		{name: "body, group 1 by default", capture: config.TransactionCapture{Regexp: httpRegexp(t, `token=([^;]+)`)}, want: "t-1"},
		{name: "body, group 0", capture: config.TransactionCapture{Regexp: httpRegexp(t, `token=([^;]+)`), Group: ptr(0)}, want: "token=t-1"},
		{name: "body, group not in the match", capture: config.TransactionCapture{Regexp: httpRegexp(t, `token=(x)?`)},
			wantErr: `regexp "token=(x)?" does not match the body`},
		{name: "json string", capture: config.TransactionCapture{JSONPath: jsonPath(t, "id")}, want: "acct-42"},
		{name: "json with regexp", capture: config.TransactionCapture{JSONPath: jsonPath(t, "id"), Regexp: httpRegexp(t, `\d+`)}, want: "42"},
		{name: "json object", capture: config.TransactionCapture{JSONPath: jsonPath(t, "o")}, want: `{"a":1,"b":[true]}`},
		{name: "json null", capture: config.TransactionCapture{JSONPath: jsonPath(t, "n")}, wantErr: `json_path "n" is null`},
		{name: "json regexp fails", capture: config.TransactionCapture{JSONPath: jsonPath(t, "id"), Regexp: httpRegexp(t, `^\d+$`)},
			wantErr: `regexp "^\\d+$" does not match the value`},
		{name: "header, first value", capture: config.TransactionCapture{Header: "link"}, want: `</page/1>; rel="prev"`},
		{name: "header, first value matching", capture: config.TransactionCapture{Header: "Link", Regexp: httpRegexp(t, `<([^>]+)>; rel="next"`)}, want: "/page/3"},
		{name: "header missing", capture: config.TransactionCapture{Header: "Location"}, wantErr: `header "Location" missing`},
		{name: "cookie set by the response", capture: config.TransactionCapture{Cookie: "session"}, want: "abc"},
		{name: "cookie from the jar", capture: config.TransactionCapture{Cookie: "earlier"}, want: "from-the-jar"},
		{name: "cookie deleted by Max-Age", capture: config.TransactionCapture{Cookie: "gone"}, wantErr: `no cookie "gone"`},
		{name: "cookie deleted by Expires", capture: config.TransactionCapture{Cookie: "old"}, wantErr: `no cookie "old"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.capture.Name = "x"
			c, err := newStepCapture(&tt.capture)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.capture(response(), jar)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("capture = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("capture = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestTransactionErrNeverQuotesRenderedValues: a value captured from a
// response (a token, a session id) that ends up in a templated URL is not
// quoted by the error of the step it breaks, whether the host does not
// resolve, the port is not a number or the path is not a valid escape.
func TestTransactionErrNeverQuotesRenderedValues(t *testing.T) {
	const captured = "SECRETTOKEN123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"t":"`+captured+`"}`)
	}))
	defer srv.Close()
	tests := []struct {
		url        string
		wantReason Reason
	}{
		{`http://{{ var "t" }}.invalid/`, ReasonDNS},
		{`http://host:{{ var "t" }}/`, ReasonAssertion},
		{`http://127.0.0.1/%{{ var "t" }}`, ReasonAssertion},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			tx := &config.TransactionProbe{Steps: []config.TransactionStep{
				txStep(t, "a", "GET", srv.URL, func(s *config.TransactionStep) {
					s.Captures = []config.TransactionCapture{{Name: "t", JSONPath: jsonPath(t, "t")}}
				}),
				txStep(t, "b", "GET", tt.url, nil),
			}}
			r := runTransaction(t, newTestTransactionProber(t, tx), 5*time.Second)
			if r.Reason != tt.wantReason || r.Err == nil {
				t.Fatalf("reason %q (err %v), want %q", r.Reason, r.Err, tt.wantReason)
			}
			// "%SE" is what url.Parse quotes of the third URL.
			for _, part := range []string{captured, "%SE"} {
				if strings.Contains(r.Err.Error(), part) {
					t.Errorf("Err quotes the captured value (%q): %s", part, r.Err)
				}
			}
			if !strings.HasPrefix(r.Err.Error(), `step 2 "b": `) {
				t.Errorf("Err %q does not name the step", r.Err)
			}
		})
	}
}
