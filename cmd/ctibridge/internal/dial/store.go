package dial

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// The dials live in their own table of the outbox's SQLite file, through a
// connection of their own, rather than in the outbox package: a dial is a
// short-lived command (it is refused after ExpireAfter and purged a day
// later), not a record to deliver, and the outbox stays free of
// click-to-dial. Being in the same file, they survive a restart with the
// outbox and are backed up with it.
const schema = `
CREATE TABLE IF NOT EXISTS dial_commands (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	agent      TEXT NOT NULL,
	number     TEXT NOT NULL,
	object     TEXT,
	state      TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	tab        TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dial_commands_number ON dial_commands (number, created_at);
CREATE INDEX IF NOT EXISTS dial_commands_state ON dial_commands (state, created_at);
`

// States of a dial, as GET /v1/dial/{id} reports them.
const (
	// StateQueued: accepted, waiting for a desktop to take it.
	StateQueued = "queued"
	// StateAccepted: one desktop took it and is calling the SDK's dial.
	StateAccepted = "accepted"
	// StateDialing: the SDK's dial call succeeded.
	StateDialing = "dialing"
	// StateFailed: the SDK refused the dial; Reason says why.
	StateFailed = "failed"
	// StateExpired: no desktop took it in time; it will never be dialed.
	StateExpired = "expired"
)

// purgeAfter is how long finished dials are kept, for status and for
// linking calls back to the record clicked from.
const purgeAfter = 24 * time.Hour

// Command is one dial.
type Command struct {
	Seq     int64      `json:"-"`
	ID      string     `json:"id"`
	Agent   string     `json:"agent"`
	To      string     `json:"to"`
	Object  *CRMObject `json:"object,omitempty"`
	State   string     `json:"state"`
	Reason  string     `json:"reason,omitempty"`
	Created time.Time  `json:"created"`
}

// CRMObject is the record the agent clicked from, linked to the call's
// activity: the bridge passes it to the platform's dial (WWE userData,
// Five9 crmObject). IsWhat marks a record that is not a person (a case, an
// account); by default it is the "who".
type CRMObject struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	IsWhat bool   `json:"isWhat,omitempty"`
}

// store keeps the dials in SQLite, through two connections: claims commit
// with synchronous=FULL, so that a tab's taking a dial is on disk before it
// dials (and with it every earlier write, the write-ahead log being
// sequential); everything else commits with synchronous=NORMAL, which a
// daemon restart does not lose either, and keeps a second fsync off the
// click's path.
type store struct {
	db   *sql.DB // synchronous=FULL: claims
	lazy *sql.DB // synchronous=NORMAL: the rest

	mu     sync.Mutex
	purged time.Time // when insert last purged old dials
}

// openStore opens the dials' table in the SQLite file at path, creating it
// when needed.
func openStore(path string, busy time.Duration) (*store, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(" +
		strconv.FormatInt(busy.Milliseconds(), 10) + ")&_pragma=journal_mode(WAL)&_txlock=immediate&_pragma=synchronous"
	s := &store{}
	for _, c := range []struct {
		db   **sql.DB
		sync string
	}{{&s.db, "(FULL)"}, {&s.lazy, "(NORMAL)"}} {
		db, err := sql.Open("sqlite", dsn+c.sync)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("open dials in %s: %w", path, err)
		}
		db.SetMaxOpenConns(1) // one writer each; reads are few and short
		*c.db = db
	}
	if _, err := s.db.Exec(schema); err != nil {
		s.close()
		return nil, fmt.Errorf("open dials in %s: %w", path, err)
	}
	return s, nil
}

func (s *store) close() error {
	var errs []error
	for _, db := range []*sql.DB{s.db, s.lazy} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// insert stores a new queued dial and sets its Seq; once an hour it also
// purges the dials older than purgeAfter (a write of its own, kept off
// most dials' path).
func (s *store) insert(ctx context.Context, c *Command) error {
	var obj any
	if c.Object != nil {
		b, err := json.Marshal(c.Object)
		if err != nil {
			return err
		}
		obj = string(b)
	}
	at := c.Created.UnixMilli()
	res, err := s.lazy.ExecContext(ctx, `INSERT INTO dial_commands (id, agent, number, object, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Agent, c.To, obj, StateQueued, at, at)
	if err != nil {
		return fmt.Errorf("store dial: %w", err)
	}
	if c.Seq, err = res.LastInsertId(); err != nil {
		return err
	}
	s.mu.Lock()
	due := c.Created.Sub(s.purged) >= time.Hour
	if due {
		s.purged = c.Created
	}
	s.mu.Unlock()
	if due {
		_, err = s.lazy.ExecContext(ctx, `DELETE FROM dial_commands WHERE created_at < ?`, at-purgeAfter.Milliseconds())
	}
	return err
}

const columns = `seq, id, agent, number, object, state, reason, created_at`

func scan(row interface{ Scan(...any) error }) (Command, error) {
	var c Command
	var obj sql.NullString
	var at int64
	if err := row.Scan(&c.Seq, &c.ID, &c.Agent, &c.To, &obj, &c.State, &c.Reason, &at); err != nil {
		return Command{}, err
	}
	c.Created = time.UnixMilli(at).UTC()
	if obj.Valid {
		c.Object = new(CRMObject)
		if err := json.Unmarshal([]byte(obj.String), c.Object); err != nil {
			return Command{}, fmt.Errorf("dial %s: stored object: %w", c.ID, err)
		}
	}
	return c, nil
}

// get returns dial id; ok is false when there is none.
func (s *store) get(ctx context.Context, id string) (c Command, ok bool, err error) {
	c, err = scan(s.lazy.QueryRowContext(ctx, `SELECT `+columns+` FROM dial_commands WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Command{}, false, nil
	}
	return c, err == nil, err
}

// queued returns the dials still queued, oldest first.
func (s *store) queued(ctx context.Context) ([]Command, error) {
	return s.list(ctx, `SELECT `+columns+` FROM dial_commands WHERE state = ? ORDER BY seq`, StateQueued)
}

// recent returns the dials to number created between from and to, newest
// first, that a desktop took.
func (s *store) recent(ctx context.Context, number string, from, to time.Time) ([]Command, error) {
	return s.list(ctx, `SELECT `+columns+` FROM dial_commands WHERE number = ? AND created_at BETWEEN ? AND ?
		AND state IN (?, ?) ORDER BY created_at DESC LIMIT 20`,
		number, from.UnixMilli(), to.UnixMilli(), StateAccepted, StateDialing)
}

func (s *store) list(ctx context.Context, query string, args ...any) ([]Command, error) {
	rows, err := s.lazy.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Command
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// claim gives dial id to the desktop tab: it succeeds once, for the first
// tab that asks while the dial is queued, and again for that same tab
// (whose first answer was lost). Any other tab is refused: that is what
// keeps a dial from being made twice.
func (s *store) claim(ctx context.Context, id, tab string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE dial_commands SET state = ?, tab = ?, updated_at = ?
		WHERE id = ? AND (state = ? OR (state = ? AND tab = ?))`,
		StateAccepted, tab, now.UnixMilli(), id, StateQueued, StateAccepted, tab)
	if err != nil {
		return false, fmt.Errorf("claim dial: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// finish records what the tab that took dial id says of it: dialing, or
// failed with the SDK's reason. It reports false when that tab does not
// hold the dial.
func (s *store) finish(ctx context.Context, id, tab, state, reason string, now time.Time) (bool, error) {
	res, err := s.lazy.ExecContext(ctx, `UPDATE dial_commands SET state = ?, reason = ?, updated_at = ?
		WHERE id = ? AND tab = ? AND state IN (?, ?, ?)`,
		state, reason, now.UnixMilli(), id, tab, StateAccepted, StateDialing, StateFailed)
	if err != nil {
		return false, fmt.Errorf("dial outcome: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// expire gives up on dial id if it is still queued.
func (s *store) expire(ctx context.Context, id, reason string, now time.Time) error {
	_, err := s.lazy.ExecContext(ctx, `UPDATE dial_commands SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?`,
		StateExpired, reason, now.UnixMilli(), id, StateQueued)
	return err
}
