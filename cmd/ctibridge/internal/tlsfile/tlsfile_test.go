package tlsfile_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/tlsfile"
)

// t0 is the tests' "now": certificates are valid around it and the client
// checks them at it, so the tests pass on any day.
var t0 = time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)

// pair is a self-signed certificate for 127.0.0.1 and its key, as PEM.
type pair struct {
	cert            *x509.Certificate
	certPEM, keyPEM []byte
}

func newPair(tb testing.TB, serial int64) pair {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "ctibridge test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pair{cert: cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

// replace writes data to path as a renewal tool does: a new file renamed
// over the old one.
func replace(tb testing.TB, path string, data []byte) {
	tb.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// clock is a settable clock for the Reloader.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReloader_SwapWhileServing serves HTTPS over loopback with a
// Reloader, replaces the certificate while serving, then writes a broken
// pair and a good one again, checking what each new connection is served.
func TestReloader_SwapWhileServing(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b, c := newPair(t, 1), newPair(t, 2), newPair(t, 3)
	replace(t, certFile, a.certPEM)
	replace(t, keyFile, a.keyPEM)

	r, err := tlsfile.New(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	tlsfile.SetClockForTest(r, clk.Now)
	var logs syncBuffer
	r.Logger = slog.New(slog.NewTextHandler(&logs, nil))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: r.Config(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			io.WriteString(w, req.Proto)
		}),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	roots := x509.NewCertPool()
	for _, p := range []pair{a, b, c} {
		roots.AddCert(p.cert)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Time: func() time.Time { return t0 }},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	// served returns the serial of the certificate a new connection gets.
	served := func() int64 {
		t.Helper()
		tr.CloseIdleConnections()
		resp, err := client.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.Proto != "HTTP/2.0" || string(body) != "HTTP/2.0" || resp.TLS.NegotiatedProtocol != "h2" {
			t.Fatalf("response over %s (server saw %s, ALPN %q), want HTTP/2 negotiated as h2",
				resp.Proto, body, resp.TLS.NegotiatedProtocol)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}

	if got := served(); got != 1 {
		t.Fatalf("served certificate %d, want 1", got)
	}

	replace(t, certFile, b.certPEM)
	replace(t, keyFile, b.keyPEM)
	if got := served(); got != 1 {
		t.Fatalf("within a second of the last look, served %d; want 1 (files looked at once a second)", got)
	}
	clk.Advance(time.Second)
	if got := served(); got != 2 {
		t.Fatalf("after the swap, served %d, want 2", got)
	}
	if st := r.Status(); st.Err != "" || !st.NotAfter.Equal(b.cert.NotAfter) {
		t.Fatalf("Status after the swap = %+v, want no error and certificate 2's expiry", st)
	}

	// A certificate written before its key: the pair does not match.
	replace(t, certFile, c.certPEM)
	clk.Advance(time.Second)
	if got := served(); got != 2 {
		t.Fatalf("with a mismatched pair on disk, served %d; want the previous certificate 2", got)
	}
	clk.Advance(time.Second)
	served()
	if st := r.Status(); !strings.Contains(st.Err, "does not match") {
		t.Fatalf("Status with a mismatched pair = %+v, want it to say the key does not match", st)
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Fatalf("the mismatched pair was logged %d times, want once:\n%s", n, logs.String())
	}

	replace(t, keyFile, c.keyPEM)
	clk.Advance(time.Second)
	if got := served(); got != 3 {
		t.Fatalf("once the key followed, served %d, want 3", got)
	}
	if st := r.Status(); st.Err != "" {
		t.Fatalf("Status once the pair matches = %+v, want no error", st)
	}
	if n := strings.Count(logs.String(), "reloaded"); n != 2 {
		t.Errorf("logged %d reloads, want 2:\n%s", n, logs.String())
	}
}

func TestNew_Errors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a := newPair(t, 1)
	replace(t, certFile, a.certPEM)

	if _, err := tlsfile.New(certFile, keyFile); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("New with no key file = %v, want not-exist naming %s", err, keyFile)
	}
	replace(t, keyFile, []byte("not a key"))
	if _, err := tlsfile.New(certFile, keyFile); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("New with a bad key file = %v, want an error naming %s", err, keyFile)
	}
	if _, err := tlsfile.New(certFile, ""); err == nil {
		t.Error("New without a key file name succeeded")
	}
}
