package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns the certificate, for a client to trust.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ctibridge test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestServe_TLS: with a certificate configured, the ingest listener takes
// events over HTTPS and speaks HTTP/2 to a client that offers it.
func TestServe_TLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir)
	crm := connectortest.NewFakeCRM(t)
	path := writeConfigWith(t, dir, testMapping, `
[targets.crm]
type = "webhook"
url = "`+crm.URL+`"
`)
	cfg, err := config.Load(path, append(testEnviron,
		"CTIBRIDGE_SERVER__TLS_CERT_FILE="+certFile, "CTIBRIDGE_SERVER__TLS_KEY_FILE="+keyFile))
	if err != nil {
		t.Fatal(err)
	}
	m := MustRunMainConfig(t, cfg)

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Post("https://"+m.Addr()+"/v1/events/brightpattern", "application/json", bytes.NewReader(readExample(t)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Proto != "HTTP/2.0" {
		t.Fatalf("POST over TLS = %d %s, want 202 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	crm.WaitAccepted(t, 10*time.Second, callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"))
	if r, err := http.Get("http://" + m.Addr() + "/healthz"); err == nil && r.StatusCode == http.StatusOK {
		t.Error("plain HTTP is served beside TLS")
	}
}

// TestBackup: `ctibridge backup` copies the live outbox while the daemon
// runs; the copy holds what was accepted, and a second backup to the same
// file is refused rather than overwriting it.
func TestBackup(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	crm.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{Status: 503} })
	dir := t.TempDir()
	path := writeConfig(t, dir, crm.URL)
	m := MustRunMain(t, path)
	for _, id := range []string{"B-1", "B-2"} {
		postCall(t, m, id)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if code, out, errOut := runCLI(t, "backup", "--config", path, copyPath); code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup = %d\n%s%s", code, out, errOut)
	}
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy: %v, mode %v; want a file only its owner reads", err, fi.Mode().Perm())
	}
	db := outbox.NewDB(copyPath)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err := db.List(context.Background(), outbox.Filter{})
	if err != nil || len(ds) != 2 {
		t.Fatalf("the copy lists %d deliveries (%v), want the 2 accepted", len(ds), err)
	}
	if code, _, errOut := runCLI(t, "backup", "--config", path, copyPath); code != 1 || !strings.Contains(errOut, "exist") {
		t.Errorf("a second backup to the same file = %d %q, want 1 refusing to overwrite", code, errOut)
	}
}
