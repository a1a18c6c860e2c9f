// Package tlsfile serves TLS with a certificate and key read from files and
// read again when either file changes, so that a renewed certificate is
// served without a restart.
//
// A change is a new modification time, size or file (as when certbot or a
// Kubernetes secret swaps a link, or a file is renamed over the old one). A
// new pair that does not load, such as a certificate written before its key,
// is reported and the previous pair kept until the files change again.
package tlsfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// checkEvery bounds how often the files are looked at: at most once a
// second, and only when a client connects.
const checkEvery = time.Second

// Reloader holds the certificate of a pair of files. Its GetCertificate
// goes in a tls.Config; Config returns one ready to serve.
type Reloader struct {
	// Logger is told of every reload and every pair that fails to load.
	// Set it before serving; the default discards.
	Logger *slog.Logger

	certFile, keyFile string
	now               func() time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	loaded   [2]os.FileInfo // the cert and key files as loaded
	tried    [2]os.FileInfo // the files as last found unloadable
	checked  time.Time
	loadedAt time.Time
	err      error
}

// New loads the pair and returns a Reloader serving it. It fails when the
// pair does not load, naming the files.
func New(certFile, keyFile string) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: both a certificate file and a key file are required")
	}
	r := &Reloader{Logger: slog.New(slog.DiscardHandler), certFile: certFile, keyFile: keyFile, now: time.Now}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.loaded, r.loadedAt, r.checked = cert, stamps, r.now(), r.now()
	return r, nil
}

// Config returns a server configuration that serves the pair, offers
// HTTP/2 and HTTP/1.1, and refuses TLS versions before 1.2.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.GetCertificate,
	}
}

// GetCertificate returns the current certificate, first loading the files
// again if they changed since they were last looked at, at most a second
// ago. It never fails: a pair that does not load leaves the old one served.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= checkEvery || now.Before(r.checked) {
		r.checked = now
		r.reload()
	}
	return r.cert, nil
}

// Status is what a Reloader serves and whether its files load.
type Status struct {
	// NotAfter is when the served certificate expires.
	NotAfter time.Time
	// LoadedAt is when the served pair was loaded.
	LoadedAt time.Time
	// Err is why the files on disk are not what is served, or "".
	Err string
}

// Status reports the served certificate and the last failure to load.
func (r *Reloader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{LoadedAt: r.loadedAt}
	if r.cert.Leaf != nil {
		s.NotAfter = r.cert.Leaf.NotAfter
	}
	if r.err != nil {
		s.Err = r.err.Error()
	}
	return s
}

// reload loads the pair if either file changed, keeping the old pair, and
// reporting once, when the new one does not load. r.mu is held.
func (r *Reloader) reload() {
	stamps, err := r.stat()
	if err == nil && same(stamps, r.loaded) {
		r.err = nil // back as they were: a failed change was undone
		return
	}
	if err == nil && same(stamps, r.tried) {
		return // reported already
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = r.load()
	}
	if err != nil {
		if r.err == nil || r.err.Error() != err.Error() {
			r.Logger.Error("TLS certificate files changed but do not load; still serving the previous certificate",
				"err", err)
		}
		r.err, r.tried = err, stamps
		return
	}
	r.cert, r.loaded, r.loadedAt, r.err, r.tried = cert, stamps, r.now(), nil, [2]os.FileInfo{}
	r.Logger.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", cert.Leaf.NotAfter)
}

func (r *Reloader) stat() ([2]os.FileInfo, error) {
	var fi [2]os.FileInfo
	for i, name := range [2]string{r.certFile, r.keyFile} {
		var err error
		if fi[i], err = os.Stat(name); err != nil {
			return fi, fmt.Errorf("tls: %w", err)
		}
	}
	return fi, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil { // filled in by LoadX509KeyPair unless GODEBUG says otherwise
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w", r.certFile, err)
		}
	}
	return &cert, nil
}

// same reports whether two looks at the pair found the same files unchanged.
func same(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) ||
			!a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
