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
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestServe_LogsHoldNoSecret runs the daemon with every kind of secret
// configured, at debug level, against a CRM that echoes the request's
// headers in its errors, and checks that no secret reaches the log.
func TestServe_LogsHoldNoSecret(t *testing.T) {
	const (
		sourceToken  = "src-tok-5f2a9c"
		adminToken   = "adm-tok-71be0d"
		clientSecret = "cli-sec-93aa41"
		headerValue  = "hdr-val-c0ffee"
	)
	crm := connectortest.NewFakeCRM(t)
	crm.Respond(func(r connectortest.Request) connectortest.Response {
		return connectortest.Response{Status: 400, Body: fmt.Sprintf("bad request; you sent %v", r.Header)}
	})
	token := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"acc-tok-44d1e2","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(token.Close)
	path := writeConfigWith(t, t.TempDir(), testMapping, `
[admin]
token = "${ADMIN_TOKEN}"

[sources.brightpattern]
token = "${SOURCE_TOKEN}"

[targets.crm]
type = "webhook"
url = "`+crm.URL+`"
secret = "${CRM_SECRET}"
headers = { "X-Api-Key" = "${HEADER_VALUE}" }
token_url = "`+token.URL+`"
client_id = "ctibridge"
client_secret = "${CLIENT_SECRET}"
`)
	// The config writer put an [admin] table already: merge by environment.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "\n[admin]\ntoken = \"${ADMIN_TOKEN}\"\n", "\n", 1)), 0o600)
	environ := append(testEnviron, "CTIBRIDGE_ADMIN__TOKEN="+adminToken, "SOURCE_TOKEN="+sourceToken,
		"HEADER_VALUE="+headerValue, "CLIENT_SECRET="+clientSecret)
	cfg, err := config.Load(path, environ)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	m := NewMain(cfg, slog.New(slog.NewTextHandler(&lockedBuffer{b: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })

	req, _ := http.NewRequest("POST", "http://"+m.Addr()+"/v1/events/brightpattern", bytes.NewReader(readExample(t)))
	req.Header.Set("Authorization", "Bearer "+sourceToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %v, %v", resp, err)
	}
	waitFor(t, "the delivery to be dead", func() bool {
		ds := mustList(t, m.DB)
		return len(ds) == 1 && ds[0].State == outbox.StateDead
	})
	m.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "delivery failed permanently") {
		t.Fatalf("the log does not show the failure:\n%s", out)
	}
	for _, secret := range []string{sourceToken, adminToken, clientSecret, headerValue, "acc-tok-44d1e2",
		strings.TrimPrefix(testSecret, "whsec_")} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, out)
		}
	}
}

// lockedBuffer is a bytes.Buffer for the daemon's goroutines.
type lockedBuffer struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
