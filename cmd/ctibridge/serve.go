package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/admin"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/dial"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/gws"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/jobs"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/logging"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/server"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/targets"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/tlsfile"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/connector/five9"
	"github.com/ctibridge/ctibridge/connector/genesys"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// runServe runs the daemon until ctx ends.
func runServe(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs := newFlagSet("serve")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	if _, err := parseFlags(fs, args, "[--config FILE]", stderr); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		return err
	}
	m := NewMain(cfg, newLogger(cfg.Log, stderr))
	if err := m.Open(); err != nil {
		m.Close(context.Background())
		return err
	}
	m.Logger.Info("ctibridge serving", "addr", m.Addr(), "store", cfg.Store.Path,
		"targets", cfg.TargetNames(), "version", version())
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
	Config config.Config
	Logger *slog.Logger
	// Now is the clock every component decides by; tests set it before
	// Open.
	Now func() time.Time

	DB         *outbox.DB
	Dispatcher *outbox.Dispatcher
	Pipeline   *ingest.Pipeline
	Server     *server.Server
	Admin      *admin.Server
	Dial       *dial.Relay
	Jobs       *jobs.Jobs
	Metrics    *metrics.Metrics
	// Mappings holds the current mapping set, swapped whole on reload.
	Mappings *mapping.Store
	// GWS is the Genesys Web Services subscription, when configured.
	GWS *gws.Subscription

	// gwsIngest, when a test sets it before Open, receives the GWS
	// envelopes instead of the pipeline.
	gwsIngest func(ctx context.Context, platform string, body []byte) error
	stopWatch context.CancelFunc
	closers   []io.Closer
}

// newDecoders returns the platforms' decoders, configured by cfg; an
// event with no time of its own was received at now().
func newDecoders(cfg config.Config, now func() time.Time) map[string]ingest.Decoder {
	return map[string]ingest.Decoder{
		brightpattern.Platform: brightpattern.Decoder{LogOnEnd: cfg.Sources.BrightPattern.LogOnEnd, Now: now},
		five9.Platform:         five9.Decoder{Now: now},
		genesys.Platform:       genesys.Decoder{DispositionKey: cfg.Sources.Genesys.DispositionKey, Now: now},
	}
}

// accessRules are the sources' tokens and allowed origins, by platform.
func accessRules(cfg config.Config) access.Sources {
	rules := access.Sources{}
	for name, a := range cfg.SourceAuths() {
		rules[name] = access.Rule{Token: a.Token, AllowedOrigins: a.AllowedOrigins}
	}
	return rules
}

// NewMain returns a daemon for cfg. It does nothing until Open.
func NewMain(cfg config.Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger, Now: time.Now}
}

// Open loads the mappings, opens the outbox and the targets, starts the
// dispatcher and the scheduled jobs, and listens. When it returns, the
// daemon accepts events.
func (m *Main) Open() error {
	cfg := m.Config
	m.Mappings = cfg.MappingStore()
	if _, err := m.Mappings.Reload(); err != nil {
		return err
	}
	m.DB = openDB(cfg.Store)
	if err := m.DB.Open(); err != nil {
		return err
	}
	m.Metrics = metrics.New(metrics.Sources{DB: m.DB, Targets: m.targetStatus, Mappings: m.Mappings.Status,
		GWS: m.gwsStatus})
	ts, closers, err := targets.Open(cfg.Targets, cfg.TargetNames(), m.Logger, m.Metrics.CRMUsage)
	m.closers = append(m.closers, closers...)
	if err != nil {
		return err
	}
	m.Dispatcher = &outbox.Dispatcher{
		Now:       m.Now,
		DB:        m.DB,
		Targets:   ts,
		Logger:    m.Logger.With("component", "dispatcher"),
		Lease:     targets.Lease(cfg.Targets),
		OnAttempt: m.Metrics.Attempt,
	}
	if err := m.Dispatcher.Open(); err != nil {
		return err
	}
	if err := m.openDial(); err != nil {
		return err
	}
	m.Pipeline = &ingest.Pipeline{
		DB:       m.DB,
		Decoders: newDecoders(cfg, m.Now),
		Mappings: m.Mappings.Current,
		Notify:   m.Dispatcher.Notify,
		Logger:   m.Logger,
		OnEvent:  m.Metrics.Event,
		Now:      m.Now,
		Link:     m.Dial.Link,
	}
	if err := m.startGWS(); err != nil {
		return err
	}
	m.Jobs = &jobs.Jobs{
		DB:                 m.DB,
		Notify:             m.Dispatcher.Notify,
		Targets:            cfg.TargetNames(),
		Retention:          cfg.Store.Retention,
		PurgeSchedule:      cfg.Store.PurgeSchedule,
		CheckpointSchedule: cfg.Store.CheckpointSchedule,
		RedriveSchedule:    cfg.Store.RedriveSchedule,
		SummarySchedule:    cfg.Store.SummarySchedule,
		FlushSchedule:      cfg.Store.FlushSchedule,
		Flush:              m.flushStale,
		Logger:             m.Logger,
		Now:                m.Now,
	}
	if err := m.Jobs.Start(); err != nil {
		return err
	}
	var watchCtx context.Context
	watchCtx, m.stopWatch = context.WithCancel(context.Background())
	go m.Mappings.Watch(watchCtx, time.Second, m.reportReload)

	var tls *tlsfile.Reloader
	if cfg.Server.TLSCertFile != "" {
		if tls, err = tlsfile.New(cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile); err != nil {
			return fmt.Errorf("server.tls_cert_file: %w", err)
		}
		tls.Logger = m.Logger
	}
	rules := accessRules(cfg)
	m.Server = &server.Server{
		Pipeline:     m.Pipeline,
		Access:       rules,
		Dial:         m.Dial,
		DB:           m.DB,
		Mappings:     m.Mappings,
		Metrics:      m.Metrics,
		Targets:      m.targetStatus,
		GWS:          m.gwsStatus,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		MaxInFlight:  cfg.Server.MaxInFlight,
		Logger:       m.Logger,
		Now:          m.Now,
		TLS:          tls,
	}
	if err := m.Server.Open(cfg.Server.Listen); err != nil {
		return err
	}
	m.Admin = &admin.Server{
		Token:     cfg.Admin.Token,
		TokenFile: cfg.Store.Path + adminTokenSuffix,
		DB:        m.DB,
		Notify:    m.Dispatcher.Notify,
		Targets:   cfg.TargetNames(),
		Mappings:  m.Mappings,
		Decoders:  m.Pipeline.Decoders,
		OnReload:  m.Metrics.Reload,
		Breakers:  m.targetStatus,
		Activity:  m.Metrics.Activity,
		Logger:    m.Logger,
		Now:       m.Now,

		DefaultRegion: cfg.Mapping.DefaultRegion,
	}
	return m.Admin.Open(cfg.Admin.Listen)
}

// openDB returns the outbox of the store's config, not yet open.
func openDB(cfg config.StoreConfig) *outbox.DB {
	db := outbox.NewDB(cfg.Path)
	db.BusyTimeout, db.JournalSizeLimit, db.MinFree = cfg.BusyTimeout, cfg.JournalSizeLimit, cfg.MinFree
	return db
}

// openDial opens click-to-dial: its dials live in the outbox's file.
func (m *Main) openDial() error {
	cfg := m.Config
	var ext *regexp.Regexp
	if cfg.Dial.ExtensionPattern != "" {
		ext = regexp.MustCompile(cfg.Dial.ExtensionPattern) // validated with the config
	}
	users := make(map[string]string, len(cfg.Dial.Users))
	for _, u := range cfg.Dial.Users {
		users[u.CRMUser] = u.Agent
	}
	m.Dial = &dial.Relay{
		Access:      accessRules(cfg),
		Numbers:     dial.Numbers{Region: cfg.Mapping.DefaultRegion, Extension: ext},
		PerMinute:   cfg.Dial.RateLimit,
		Quarantine:  cfg.Dial.Quarantine,
		AckTimeout:  cfg.Dial.AckTimeout,
		ExpireAfter: cfg.Dial.ExpireAfter,
		LinkWindow:  cfg.Dial.LinkWindow,
		Users:       users,
		StorePath:   cfg.Store.Path,
		BusyTimeout: cfg.Store.BusyTimeout,
		KeyFile:     cfg.DialKeyFile(),
		Logger:      m.Logger.With("component", "dial"),
	}
	if err := m.Dial.Open(); err != nil {
		return err
	}
	m.closers = append(m.closers, m.Dial)
	return nil
}

// adminTokenSuffix names the generated admin token's file: <store.path>
// plus it.
const adminTokenSuffix = ".admin-token"

// Addr is the address the daemon listens on.
func (m *Main) Addr() string {
	if m.Server == nil {
		return ""
	}
	return m.Server.Addr()
}

// AdminAddr is the address the admin API listens on.
func (m *Main) AdminAddr() string {
	if m.Admin == nil {
		return ""
	}
	return m.Admin.Addr()
}

// Close stops the daemon inputs first: it stops accepting events, then
// stops the jobs, lets deliveries in flight finish (or cancels them when ctx
// ends; they are retried at the next start), and closes the outbox.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.Server != nil {
		if err := m.Server.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http server: %w", err))
		}
	}
	if m.Admin != nil {
		if err := m.Admin.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop admin server: %w", err))
		}
	}
	if m.GWS != nil {
		if err := m.GWS.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop gws subscription: %w", err))
		}
	}
	if m.stopWatch != nil {
		m.stopWatch()
	}
	if m.Jobs != nil {
		m.Jobs.Stop()
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

// startGWS subscribes to the configured GWS channels when
// sources.genesys.gws.url is set. It does not wait for GWS: /readyz shows
// how the subscription goes.
func (m *Main) startGWS() error {
	cfg := m.Config.Sources.Genesys.GWS
	if cfg.URL == "" {
		return nil
	}
	ingestGWS := m.gwsIngest
	if ingestGWS == nil {
		if _, ok := m.Pipeline.Decoders[gws.Platform]; !ok {
			return fmt.Errorf("sources.genesys.gws.url is set, but this build has no %s decoder to read GWS notifications", gws.Platform)
		}
		ingestGWS = func(ctx context.Context, platform string, body []byte) error {
			_, err := m.Pipeline.Ingest(ctx, platform, body)
			return err
		}
	}
	m.GWS = &gws.Subscription{URL: cfg.URL, Username: cfg.Username, Password: cfg.Password, Channels: cfg.Channels,
		Ingest: ingestGWS, Logger: m.Logger.With("component", "gws")}
	if err := m.GWS.Open(); err != nil {
		return fmt.Errorf("sources.genesys.gws: %w", err)
	}
	return nil
}

// gwsStatus is the subscription's health, nil when there is none.
func (m *Main) gwsStatus() *cometd.Status {
	if m.GWS == nil {
		return nil
	}
	st := m.GWS.Status()
	return &st
}

// targetStatus is each target's health.
func (m *Main) targetStatus() map[string]outbox.TargetStatus {
	return m.Dispatcher.Status()
}

// flushStale logs the interactions whose completing event never came.
func (m *Main) flushStale(ctx context.Context) {
	m.Pipeline.FlushStale(ctx, m.Config.FlushAfter())
}

// ReloadMappings loads the mapping files again now (SIGHUP does it), and
// reports whether they changed. A failure keeps the current mappings.
func (m *Main) ReloadMappings() (bool, error) {
	changed, err := m.Mappings.Reload()
	m.reportReload(changed, err)
	return changed, err
}

// reportReload logs the outcome of a mapping reload.
func (m *Main) reportReload(changed bool, err error) {
	switch {
	case err != nil:
		m.Metrics.Reload("failed")
		m.Logger.Error("mapping reload failed; the previous mappings stay in use", "err", err)
	case changed:
		m.Metrics.Reload("ok")
		st := m.Mappings.Status()
		m.Logger.Info("mappings reloaded", "files", st.Files, "rules", st.Rules)
	}
}

// newLogger returns the daemon's logger, writing to w.
func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	return logging.New(w, c.Format, level)
}
