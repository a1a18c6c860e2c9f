package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

//go:embed defaults/mapping.toml
var defaultMapping []byte

// runServe runs the daemon until ctx ends.
func runServe(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs := newFlagSet("serve", stderr)
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	m := NewMain(cfg, newLogger(cfg.Log, stderr))
	if err := m.Open(); err != nil {
		m.Close(context.Background())
		return err
	}
	m.Logger.Info("ctibridge serving", "addr", m.Addr(), "store", cfg.Store.Path,
		"targets", cfg.targetNames(), "version", version())
	<-ctx.Done()
	m.Logger.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	return m.Close(shutdown)
}

// Main is the running daemon: every component, wired. Tests run it in
// process on 127.0.0.1:0.
type Main struct {
	Config Config
	Logger *slog.Logger

	DB         *outbox.DB
	Dispatcher *outbox.Dispatcher

	// mappings is the current mapping set, swapped whole on reload.
	mappings atomic.Pointer[mapping.Set]
	decoders map[string]decoder
	states   keyLocks // serializes the events of one interaction
	closers  []io.Closer

	ln     net.Listener
	server *http.Server
	cron   *cron.Cron

	// adminLn and adminServer are the admin API (admin.go).
	adminLn     net.Listener
	adminServer *http.Server
}

// decoder turns a platform's posted event into a connector.Event.
type decoder interface {
	Decode(body []byte, state connector.StateFunc) (connector.Event, error)
}

var _ decoder = brightpattern.Decoder{}

// NewMain returns a daemon for cfg. It does nothing until Open.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger}
}

// Open loads the mappings, opens the outbox and the targets, starts the
// dispatcher and the scheduled jobs, and listens. When it returns, the
// daemon accepts events.
func (m *Main) Open() error {
	cfg := m.Config
	set, err := loadMappings(m.Config)
	if err != nil {
		return err
	}
	m.mappings.Store(set)
	m.decoders = map[string]decoder{
		brightpattern.Platform: brightpattern.Decoder{LogOnEnd: cfg.Sources.BrightPattern.LogOnEnd},
	}

	m.DB = outbox.NewDB(cfg.Store.Path)
	m.DB.BusyTimeout = cfg.Store.BusyTimeout
	if err := m.DB.Open(); err != nil {
		return err
	}
	targets, err := m.openTargets()
	if err != nil {
		return err
	}
	m.Dispatcher = &outbox.Dispatcher{
		DB:      m.DB,
		Targets: targets,
		Logger:  m.Logger.With("component", "dispatcher"),
		Lease:   m.lease(),
	}
	if err := m.Dispatcher.Open(); err != nil {
		return err
	}
	if err := m.startJobs(); err != nil {
		return err
	}

	m.ln, err = net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.server = &http.Server{
		Handler:           m.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.server.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http server stopped", "err", err)
		}
	}()
	return m.openAdmin()
}

// Addr is the address the daemon listens on.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Close stops the daemon inputs first: it stops accepting events, then
// stops the jobs, lets deliveries in flight finish (or cancels them when ctx
// ends; they are retried at the next start), and closes the outbox.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http server: %w", err))
		}
	}
	if m.adminServer != nil {
		if err := m.adminServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop admin server: %w", err))
		}
	}
	if m.cron != nil {
		<-m.cron.Stop().Done()
	}
	if m.Dispatcher != nil {
		if err := m.Dispatcher.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range m.closers {
		errs = append(errs, c.Close())
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
	}
	return errors.Join(errs...)
}

// loadMappings loads cfg's mapping directory, or the embedded default.
func loadMappings(cfg Config) (*mapping.Set, error) {
	opts := mapping.Options{Targets: cfg.targetNames()}
	if cfg.Mapping.Dir == "" {
		return mapping.Load([]mapping.File{{Name: "(embedded default mapping)", Data: defaultMapping}}, opts)
	}
	return mapping.LoadDir(cfg.Mapping.Dir, opts)
}

// newLogger returns the daemon's logger, writing to w.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
