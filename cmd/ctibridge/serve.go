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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/connector/five9"
	"github.com/ctibridge/ctibridge/connector/genesys"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

//go:embed defaults/mapping.toml
var defaultMapping []byte

// runServe runs the daemon until ctx ends.
func runServe(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs := newFlagSet("serve")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	if _, err := parseFlags(fs, args, "[--config FILE]", stderr); err != nil {
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
	// SIGHUP reloads the mapping files at once, as the watcher would.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			m.ReloadMappings()
			continue
		case <-ctx.Done():
		}
		break
	}
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

	// mappings holds the current mapping set, swapped whole on reload.
	mappings  *mapping.Store
	stopWatch context.CancelFunc
	decoders  map[string]decoder
	states    keyLocks      // serializes the events of one interaction
	commands  *commandHub   // dial commands for the bridges
	inFlight  chan struct{} // a slot per event post being handled
	closers   []io.Closer

	ln      net.Listener
	server  *http.Server
	cron    *cron.Cron
	metrics *metrics

	// adminLn and adminServer are the admin API (admin.go).
	adminLn     net.Listener
	adminServer *http.Server

	// gws is the Genesys Web Services subscription (gws.go), when configured.
	gws *gwsSource
}

// decoder turns a platform's posted event into a connector.Event.
type decoder interface {
	Decode(body []byte, state connector.StateFunc) (connector.Event, error)
}

var (
	_ decoder = brightpattern.Decoder{}
	_ decoder = five9.Decoder{}
	_ decoder = genesys.Decoder{}
)

// newDecoders returns the platforms' decoders, configured by cfg.
func newDecoders(cfg Config) map[string]decoder {
	return map[string]decoder{
		brightpattern.Platform: brightpattern.Decoder{LogOnEnd: cfg.Sources.BrightPattern.LogOnEnd},
		five9.Platform:         five9.Decoder{},
		genesys.Platform:       genesys.Decoder{DispositionKey: cfg.Sources.Genesys.DispositionKey},
	}
}

// NewMain returns a daemon for cfg. It does nothing until Open.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger}
}

// Open loads the mappings, opens the outbox and the targets, starts the
// dispatcher and the scheduled jobs, and listens. When it returns, the
// daemon accepts events.
func (m *Main) Open() error {
	cfg := m.Config
	m.mappings = newMappingStore(cfg)
	if _, err := m.mappings.Reload(); err != nil {
		return err
	}
	m.metrics = newMetrics(m)
	m.decoders = newDecoders(cfg)

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
		DB:        m.DB,
		Targets:   targets,
		Logger:    m.Logger.With("component", "dispatcher"),
		Lease:     m.lease(),
		OnAttempt: m.metrics.attempt,
	}
	if err := m.Dispatcher.Open(); err != nil {
		return err
	}
	if err := m.startGWS(); err != nil {
		return err
	}
	if err := m.startJobs(); err != nil {
		return err
	}
	var watchCtx context.Context
	watchCtx, m.stopWatch = context.WithCancel(context.Background())
	go m.mappings.Watch(watchCtx, time.Second, m.reportReload)

	m.ln, err = net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.commands = newCommandHub()
	m.inFlight = make(chan struct{}, cfg.Server.MaxInFlight)
	m.server = &http.Server{
		Handler:           m.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for open connections: end the bridges' command
	// streams, or it would wait for its whole timeout.
	m.server.RegisterOnShutdown(m.commands.close)
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
	if err := m.closeGWS(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop gws subscription: %w", err))
	}
	if m.stopWatch != nil {
		m.stopWatch()
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

// newMappingStore returns a store for cfg's mapping directory, or for the
// embedded default.
func newMappingStore(cfg Config) *mapping.Store {
	s := &mapping.Store{Dir: cfg.Mapping.Dir, Options: mapping.Options{
		Targets: cfg.targetNames(), DefaultRegion: cfg.Mapping.DefaultRegion}}
	if s.Dir == "" {
		s.Fixed = []mapping.File{{Name: "(embedded default mapping)", Data: defaultMapping}}
	}
	return s
}

// loadMappings loads cfg's mappings once, for commands that do not serve.
func loadMappings(cfg Config) (*mapping.Set, error) {
	s := newMappingStore(cfg)
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s.Current(), nil
}

// ReloadMappings loads the mapping files again now (SIGHUP does it), and
// reports whether they changed. A failure keeps the current mappings.
func (m *Main) ReloadMappings() (bool, error) {
	changed, err := m.mappings.Reload()
	m.reportReload(changed, err)
	return changed, err
}

// reportReload logs the outcome of a mapping reload.
func (m *Main) reportReload(changed bool, err error) {
	switch {
	case err != nil:
		m.metrics.reloads.WithLabelValues("failed").Inc()
		m.Logger.Error("mapping reload failed; the previous mappings stay in use", "err", err)
	case changed:
		m.metrics.reloads.WithLabelValues("ok").Inc()
		st := m.mappings.Status()
		m.Logger.Info("mappings reloaded", "files", st.Files, "rules", st.Rules)
	}
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
