// Package server is the daemon's HTTP surface toward the contact center:
// the platforms' event posts (source authentication, CORS, size and
// concurrency limits), the browser bridges' scripts, the click-to-dial
// relay's endpoints, health, readiness and metrics. All its routes are in
// routes.go.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/dial"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/tlsfile"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Server serves the ingest listener. Set its fields, then Open it.
type Server struct {
	Pipeline *ingest.Pipeline
	Access   access.Sources
	Dial     *dial.Relay
	DB       *outbox.DB
	Mappings *mapping.Store
	Metrics  *metrics.Metrics
	// Targets returns each target's health (outbox.Dispatcher.Status).
	Targets func() map[string]outbox.TargetStatus
	// GWS returns the GWS subscription's health, nil when there is none.
	GWS func() *cometd.Status
	// MaxBodyBytes bounds an event post; MaxInFlight the posts handled at
	// once, past which a post is answered 503 rather than queued.
	MaxBodyBytes int64
	MaxInFlight  int
	Logger       *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// TLS, when set, serves HTTPS and HTTP/2 with its certificate.
	TLS *tlsfile.Reloader

	inFlight chan struct{} // a slot per event post being handled
	ln       net.Listener
	srv      *http.Server
}

// Open listens on addr and serves. It listens synchronously, so an address
// already taken is an error of Open.
func (s *Server) Open(addr string) error {
	if s.Now == nil {
		s.Now = time.Now
	}
	s.inFlight = make(chan struct{}, s.MaxInFlight)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for open connections: end the bridges' command
	// streams, or it would wait for its whole timeout.
	s.srv.RegisterOnShutdown(s.Dial.EndStreams)
	serve := func() error { return s.srv.Serve(ln) }
	if s.TLS != nil {
		s.srv.TLSConfig = s.TLS.Config()
		serve = func() error { return s.srv.ServeTLS(ln, "", "") }
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on, "" before Open.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// InFlight is how many event posts are being handled now.
func (s *Server) InFlight() int { return len(s.inFlight) }

// Close stops accepting requests and waits for those in flight until ctx
// ends.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}
