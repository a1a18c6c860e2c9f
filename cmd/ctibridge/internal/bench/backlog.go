package bench

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/outbox"
)

// runBacklog seeds a database with --backlog pending deliveries while no
// daemon runs, starts the daemon on it with the CRM down (or up with
// --backlog-crm-up), lets it run --backlog-run, and records its memory.
func (b *bench) runBacklog(ctx context.Context, res *benchResult, crm *benchCRM) error {
	o := b.opts
	res.backlog.n, res.backlog.crmUp = o.Backlog, o.BacklogCRMUp
	crmURL := crm.url
	if !o.BacklogCRMUp {
		crm.close()
		var err error
		if crmURL, err = closedURL(); err != nil {
			return err
		}
	}
	path, err := b.writeConfig("backlog", crmURL)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.logf("backlog: seeding %d pending deliveries (written directly, no daemon running)", o.Backlog)
	t0 := time.Now()
	if err := b.seedBacklog(ctx, path, o.Backlog); err != nil {
		return err
	}
	res.backlog.seed = time.Since(t0)
	b.logf("backlog: seeded in %s; running the daemon against it for %s (CRM %s)",
		res.backlog.seed.Round(time.Second), o.BacklogRun, map[bool]string{true: "up", false: "down"}[o.BacklogCRMUp])
	before := len(crm.arrivals())
	d, err := b.startDaemon(ctx, path)
	if err != nil {
		return err
	}
	defer d.kill()
	res.backlog.startup = d.started
	// A trickle of new events: a daemon with a backlog must keep accepting.
	eventsURL := "http://" + d.addr + "/v1/events/brightpattern"
	end := time.Now().Add(o.BacklogRun)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		if err := b.post(ctx, eventsURL, b.event(fmt.Sprintf("bench-backlog-new-%08d", i))); err == nil {
			res.backlog.ingestAcks++
		}
		time.Sleep(10 * time.Millisecond)
	}
	peak, rss, err := procMemory(d.cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.backlog.peakRSS, res.backlog.rss = peak, rss
	res.backlog.delivered = len(crm.arrivals()) - before
	if err := d.stop(); err != nil {
		b.logf("%v", err)
	}
	return ctx.Err()
}

// closedURL returns a URL on which nothing listens.
func closedURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/activities", nil
}

// seedBacklog creates the outbox of the config at path and writes n
// accepted events, each with its pending delivery, exactly as the daemon
// would store them, but in large unsynced transactions: this is set-up,
// not measurement.
func (b *bench) seedBacklog(ctx context.Context, path string, n int) error {
	cfg, err := config.Load(path, b.environ)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// The daemon's own decoder and mapping make the template delivery.
	set, err := cfg.LoadMappings()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	const tmplID = "bench-backlog-TEMPLATE"
	ev, err := brightpattern.Decoder{LogOnEnd: cfg.Sources.BrightPattern.LogOnEnd}.Decode(b.event(tmplID), nil)
	if err != nil {
		return fmt.Errorf("bench: decode --event: %w", err)
	}
	ds, err := ingest.EncodeActivities(set, ev.Interaction)
	if err != nil || len(ds) != 1 {
		return fmt.Errorf("bench: the bench mapping gives %d activities for --event, want 1 (%v)", len(ds), err)
	}
	odb := outbox.NewDB(cfg.Store.Path) // creates the schema
	if err := odb.Open(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := odb.Close(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: cfg.Store.Path}).EscapedPath()+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UnixMilli()
	old := []byte(tmplID)
	const batch = 10_000
	for done := 0; done < n; done += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			insEv, err := tx.PrepareContext(ctx, `INSERT INTO events (id, platform, event_key, event_type, received_at, body, state)
				VALUES (?, ?, ?, ?, ?, ?, 'processed')`)
			if err != nil {
				return err
			}
			insDel, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (event_id, target, idem_key, payload, created_at, next_attempt_at)
				VALUES (?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			for i := done; i < min(done+batch, n); i++ {
				id := []byte(fmt.Sprintf("bench-backlog-%08d", i))
				_, err := insEv.ExecContext(ctx, i+1, ev.Platform, string(bytes.ReplaceAll([]byte(ev.Key), old, id)), ev.Type,
					now, b.event(string(id)))
				if err != nil {
					return err
				}
				_, err = insDel.ExecContext(ctx, i+1, ds[0].Target, string(bytes.ReplaceAll([]byte(ds[0].Key), old, id)),
					bytes.ReplaceAll(ds[0].Payload, old, id), now, now)
				if err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return fmt.Errorf("bench: seed backlog: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("bench: seed backlog: %w", err)
	}
	return nil
}
