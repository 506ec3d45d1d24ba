package collector

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/reliabilityd/reliabilityd/config"
)

var tlsVersions = map[string]uint16{
	"TLS10": tls.VersionTLS10,
	"TLS11": tls.VersionTLS11,
	"TLS12": tls.VersionTLS12,
	"TLS13": tls.VersionTLS13,
}

// NewTLSConfig builds the client *tls.Config of cfg, reading the CA and
// client certificate files once. serverName is used when cfg sets none
// (the host of the target), so every prober gets its own tls.Config and no
// lazily filled ServerName is shared between targets.
func NewTLSConfig(cfg config.TLSConfig, serverName string) (*tls.Config, error) {
	tlsConfig := &tls.Config{
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // the user asked for it
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.ServerName != "" {
		tlsConfig.ServerName = cfg.ServerName
	}
	if cfg.MinVersion != "" {
		version, ok := tlsVersions[cfg.MinVersion]
		if !ok {
			return nil, fmt.Errorf("unknown TLS version %q (want TLS10, TLS11, TLS12 or TLS13)", cfg.MinVersion)
		}
		tlsConfig.MinVersion = version
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %q holds no PEM certificate", cfg.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("cert_file and key_file must be set together")
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	return tlsConfig, nil
}
