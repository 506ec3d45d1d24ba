package collector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Test certificates for probers that speak TLS (HTTP, TCP). Everything is
// generated in the test with ECDSA P-256 keys (fast) and written under
// t.TempDir(); nothing is shared between tests.
//
// Typical use:
//
//	ca := newTestCA(t)
//	leaf := ca.leaf(t, leafOptions{})                              // valid for 127.0.0.1, ::1, localhost
//	expired := ca.leaf(t, leafOptions{notAfter: time.Now().Add(-time.Hour)})
//	wrongHost := ca.leaf(t, leafOptions{hosts: []string{"wrong.example"}})
//	self := selfSignedLeaf(t, leafOptions{})                       // signed by no CA
//	clientCA := newTestCA(t)
//	client := clientCA.leaf(t, leafOptions{client: true})           // for cert_file/key_file
//	server.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.cert},
//		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.pool()}
//	probe config: tls_config.ca_file = ca.certFile

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// certFile is the CA certificate in PEM, for tls_config.ca_file.
	certFile string
}

// leafOptions shape a leaf certificate. The zero value gives a server
// certificate valid from an hour ago for a day, for 127.0.0.1, ::1 and
// localhost.
type leafOptions struct {
	// hosts are DNS names or IP literals; empty means 127.0.0.1, ::1 and
	// localhost.
	hosts []string
	// notBefore and notAfter default to an hour ago and a day from now.
	notBefore, notAfter time.Time
	// client makes a client-authentication certificate instead of a server one.
	client bool
}

// testLeaf is a generated leaf certificate with its key.
type testLeaf struct {
	// cert is ready for tls.Config.Certificates (server or client side).
	cert tls.Certificate
	// x509 is the parsed certificate, e.g. to compare NotAfter, which the
	// encoding truncates to the second.
	x509 *x509.Certificate
	// certFile and keyFile are PEM files, for tls_config.cert_file/key_file.
	certFile, keyFile string
}

// newTestCA makes a self-signed CA valid from an hour ago for a day.
func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key := newTestKey(t)
	template := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "reliabilityd test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating test CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing test CA: %v", err)
	}
	dir := t.TempDir()
	return &testCA{cert: cert, key: key, certFile: writePEM(t, dir, "ca.pem", "CERTIFICATE", der)}
}

// pool returns a pool holding only this CA (tls.Config.RootCAs/ClientCAs).
func (ca *testCA) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// leaf makes a certificate signed by ca.
func (ca *testCA) leaf(t testing.TB, opts leafOptions) testLeaf {
	t.Helper()
	return makeLeaf(t, opts, ca.cert, ca.key)
}

// selfSignedLeaf makes a certificate signed by its own key, trusted by no pool.
func selfSignedLeaf(t testing.TB, opts leafOptions) testLeaf {
	t.Helper()
	return makeLeaf(t, opts, nil, nil)
}

func makeLeaf(t testing.TB, opts leafOptions, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) testLeaf {
	t.Helper()
	key := newTestKey(t)
	template := leafTemplate(t, opts)
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("creating test certificate: %v", err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing test certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshalling test key: %v", err)
	}
	dir := t.TempDir()
	return testLeaf{
		cert:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: parsed},
		x509:     parsed,
		certFile: writePEM(t, dir, "cert.pem", "CERTIFICATE", der),
		keyFile:  writePEM(t, dir, "key.pem", "PRIVATE KEY", keyDER),
	}
}

func leafTemplate(t testing.TB, opts leafOptions) *x509.Certificate {
	t.Helper()
	hosts := opts.hosts
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	notBefore, notAfter := opts.notBefore, opts.notAfter
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	usage := x509.ExtKeyUsageServerAuth
	if opts.client {
		usage = x509.ExtKeyUsageClientAuth
	}
	template := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, host := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, host)
		}
	}
	return template
}

func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating test key: %v", err)
	}
	return key
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("generating serial number: %v", err)
	}
	return serial
}

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return path
}
