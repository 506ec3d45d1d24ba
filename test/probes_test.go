package test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// loginServer is a shop with a login flow: a form with a CSRF token, a
// form POST checked against the password that sets a session cookie and
// returns a JSON token, and an API that wants both.
func loginServer(t *testing.T, password string) *httptest.Server {
	t.Helper()
	const csrf, session, token = "csrf-4711", "session-1", "token-42"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<form method="post"><input type="hidden" name="csrf" value="%s"></form>`, csrf)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("user") != "probe@example.com" || r.FormValue("password") != password || r.FormValue("csrf") != csrf {
			http.Error(w, "wrong credentials", http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: session, Path: "/"})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"token": token}})
	})
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie("session")
		if err != nil || cookie.Value != session || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "not logged in", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orders":[{"id":1,"status":"paid"}]}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// dnsServer answers A queries for shop.test. on UDP and refuses nothing
// else: other names get NXDOMAIN.
func dnsServer(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		reply := new(dns.Msg)
		reply.SetReply(req)
		if q := req.Question[0]; q.Name == "shop.test." && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR("shop.test. 300 IN A 192.0.2.10")
			reply.Answer = append(reply.Answer, rr)
		} else {
			reply.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(reply)
	})
	srv := &dns.Server{PacketConn: conn, Handler: handler}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return conn.LocalAddr().String()
}

// grpcHealthServer serves grpc.health.v1 with the server SERVING and the
// service "orders" NOT_SERVING.
func grpcHealthServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthServer.SetServingStatus("orders", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, healthServer)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// icmpAllowed reports whether this process may send ICMP echo requests to
// 127.0.0.1 with a datagram or a raw socket, and why not.
func icmpAllowed() (bool, string) {
	var reasons []string
	for _, network := range []string{"udp4", "ip4:icmp"} {
		conn, err := icmp.ListenPacket(network, "127.0.0.1")
		if err == nil {
			conn.Close()
			return true, ""
		}
		reasons = append(reasons, fmt.Sprintf("%s: %v", network, err))
	}
	return false, strings.Join(reasons, "; ")
}

const catalogueConfig = `
global:
  probe_interval: 1s
  probe_timeout: 900ms
services:
  - name: shop
    probes:
      - name: checkout
        transaction:
          secrets: {password: %[1]s}
          variables: {user: probe@example.com}
          steps:
            - name: login-page
              url: %[2]s/login
              captures:
                - {name: csrf, regexp: 'name="csrf" value="([^"]+)"'}
            - name: login
              method: POST
              url: %[2]s/login
              headers: {Content-Type: application/x-www-form-urlencoded}
              body: 'user={{ var "user" | urlquery }}&password={{ secret "password" | urlquery }}&csrf={{ var "csrf" | urlquery }}'
              captures:
                - {name: token, json_path: data.token}
            - name: orders
              url: %[2]s/api/orders
              headers: {Authorization: 'Bearer {{ var "token" }}'}
              assertions:
                - {json_path: 'orders[0].status', equals: paid}
      - name: checkout-wrong-password
        transaction:
          secrets: {password: %[3]s}
          variables: {user: probe@example.com}
          steps:
            - name: login-page
              url: %[2]s/login
              captures:
                - {name: csrf, regexp: 'name="csrf" value="([^"]+)"'}
            - name: login
              method: POST
              url: %[2]s/login
              headers: {Content-Type: application/x-www-form-urlencoded}
              body: 'user={{ var "user" | urlquery }}&password={{ secret "password" | urlquery }}&csrf={{ var "csrf" | urlquery }}'
            - name: orders
              url: %[2]s/api/orders
      - name: resolver
        dns:
          server: %[4]s
          query_name: shop.test
          query_type: A
      - name: api-health
        grpc:
          address: %[5]s
      - name: orders-health
        grpc:
          address: %[5]s
          service: orders
      - name: certificate
        tls:
          address: %[6]s
          tls_config: {ca_file: %[7]s, server_name: example.com}
`

const icmpProbeConfig = `
      - name: loopback-ping
        icmp:
          host: 127.0.0.1
          packets: 2
          packet_interval: 10ms
`

// TestProbeCatalogueEndToEnd runs the binary with a probe of every type
// but http and tcp (covered elsewhere) against real peers on loopback: a
// login flow, a DNS server, a gRPC health server, a TLS server and, where
// the machine permits ICMP, 127.0.0.1. Their figures reach /metrics,
// which promtool accepts, and a failing transaction step is named on the
// landing page and in the log.
func TestProbeCatalogueEndToEnd(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "password"), "s3cret\n")
	writeFile(t, filepath.Join(dir, "wrong-password"), "guess\n")
	shop := loginServer(t, "s3cret")
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsServer.Close)
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsServer.Certificate().Raw})))

	config := fmt.Sprintf(catalogueConfig, filepath.Join(dir, "password"), shop.URL, filepath.Join(dir, "wrong-password"),
		dnsServer(t), grpcHealthServer(t), tlsServer.Listener.Addr().String(), caFile)
	patterns := []string{
		`^probe_success\{probe="checkout",service="shop"\} 1$`,
		`^probe_step_success\{probe="checkout",service="shop",step="orders"\} 1$`,
		`^probe_success\{probe="checkout-wrong-password",service="shop"\} 0$`,
		`^probe_step_success\{probe="checkout-wrong-password",service="shop",step="login"\} 0$`,
		`^probe_step_failures_total\{probe="checkout-wrong-password",reason="status",service="shop",step="login"\} [1-9]`,
		`^probe_success\{probe="resolver",service="shop"\} 1$`,
		`^probe_dns_records\{probe="resolver",section="answer",service="shop"\} 1$`,
		`^probe_dns_rcode\{probe="resolver",service="shop"\} 0$`,
		`^probe_success\{probe="api-health",service="shop"\} 1$`,
		`^probe_grpc_healthcheck_response\{probe="api-health",service="shop",serving_status="SERVING"\} 1$`,
		`^probe_success\{probe="orders-health",service="shop"\} 0$`,
		`^probe_grpc_healthcheck_response\{probe="orders-health",service="shop",serving_status="NOT_SERVING"\} 1$`,
		`^probe_success\{probe="certificate",service="shop"\} 1$`,
		`^probe_tls_version_info\{probe="certificate",service="shop",version="TLS 1.3"\} 1$`,
		fmt.Sprintf(`^probe_tls_leaf_cert_expiry_timestamp_seconds\{probe="certificate",service="shop"\} %s$`,
			strings.ReplaceAll(fmt.Sprint(float64(tlsServer.Certificate().NotAfter.Unix())), "+", `\+`)),
	}
	if ok, why := icmpAllowed(); ok {
		config += icmpProbeConfig
		patterns = append(patterns,
			`^probe_success\{probe="loopback-ping",service="shop"\} 1$`,
			`^probe_icmp_packet_loss_ratio\{probe="loopback-ping",service="shop"\} 0$`,
			`^probe_icmp_rtt_seconds\{probe="loopback-ping",service="shop",stat="max"\} `)
	} else {
		t.Logf("no icmp probe in this run: this process may open no ICMP socket (%s)", why)
	}
	configFile := filepath.Join(dir, "reliability.yml")
	writeFile(t, configFile, config)
	d := startDaemon(t, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"))
	body := d.waitFor(30*time.Second, patterns...)

	promtool := lookPromtool(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	// The report names the failing probe and, in its recent failures, the
	// step it failed at; the service page shows every step's outcome.
	_, page := d.get("/")
	for _, want := range []string{`step 2 &#34;login&#34;`, "checkout-wrong-password"} {
		if !strings.Contains(page, want) {
			t.Errorf("the landing page lacks %q", want)
		}
	}
	_, page = d.get("/service/shop")
	for _, want := range []string{`step 2 &#34;login&#34;`, "checkout-wrong-password", "login: status"} {
		if !strings.Contains(page, want) {
			t.Errorf("shop's page lacks %q", want)
		}
	}
	if log := d.log(); !strings.Contains(log, `step 2 \"login\"`) {
		t.Errorf("the log does not name the failing step:\n%s", log)
	}
}

// TestProbeCatalogueConfigCheck: --config.check builds every example probe
// configuration of examples/probes, as the daemon would.
func TestProbeCatalogueConfigCheck(t *testing.T) {
	files, err := filepath.Glob("../examples/probes/*.yml")
	if err != nil || len(files) < 5 {
		t.Fatalf("examples/probes has %d files (%v), want one per probe type", len(files), err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "icmp.yml") {
			if ok, why := icmpAllowed(); !ok {
				t.Logf("skipping %s: this process may open no ICMP socket (%s)", file, why)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, binary, "--config.check", "--config.file="+file).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), ": OK (") {
			t.Errorf("--config.check of %s: %v\n%s", file, err, out)
		}
	}
	if _, err := os.Stat("../examples/probes/README.md"); err != nil {
		t.Errorf("examples/probes lacks a README: %v", err)
	}
}
