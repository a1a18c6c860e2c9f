// Package outbox is ctibridge's durable queue: a SQLite file that holds every
// accepted event and every activity record still to be delivered, and the
// dispatcher that delivers them with retries until each one is delivered or
// dead.
//
// It knows nothing of platforms, CRMs or mappings: a delivery is a target
// name, an idempotency key and payload bytes. Targets report failures through
// error behaviour (Permanent, RetryAfter), not through types of this package.
package outbox

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the outbox database. It keeps one writer connection, because SQLite
// allows one writer at a time and a single connection never sees SQLITE_BUSY
// from its own pool, and a pool of read-only connections for listing.
type DB struct {
	// Path is the SQLite file.
	Path string
	// BusyTimeout is how long a statement waits for a lock held by another
	// process (such as `ctibridge outbox retry` while the daemon runs).
	BusyTimeout time.Duration
	// JournalSizeLimit is the size, in bytes, the write-ahead log file is
	// cut back to each time SQLite starts it over, so that one burst (or a
	// long backup holding a snapshot) does not keep its disk space for good.
	JournalSizeLimit int64
	// MinFree is the free space, in bytes, the database's filesystem must
	// have again before a disk found full counts as usable (see Health).
	MinFree int64

	wconn *sql.DB // the one writer connection, used by the writer goroutine
	read  *sql.DB // read-only connections

	writes     chan *writeReq
	closed     chan struct{}
	writerDone chan struct{}
	commits    atomic.Int64 // transactions committed by the writer
	stmts      map[string]*sql.Stmt
	bound      map[string]*sql.Stmt // stmts bound to boundTx (see stmt)
	boundTx    *sql.Tx
	lazySync   bool                     // the writer connection is at synchronous=NORMAL
	full       atomic.Pointer[diskFull] // set while the disk is full (see Health)
	fullRetry  time.Duration            // how often the writer tries a write while full
	closeOnce  sync.Once
}

// NewDB returns a DB for the file at path. Call Open before use.
func NewDB(path string) *DB {
	return &DB{Path: path, BusyTimeout: 5 * time.Second, JournalSizeLimit: 32 << 20, MinFree: 16 << 20}
}

// Open opens the database, creating it if needed, and applies the embedded
// migrations.
func (db *DB) Open() error {
	if db.Path == "" {
		return errors.New("open outbox: path required")
	}
	// The outbox holds phone numbers and notes: only the daemon's user may
	// read it. SQLite creates the -wal and -shm files with the database
	// file's mode, so creating that one 0600 covers all three.
	f, err := os.OpenFile(db.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open outbox: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("open outbox: %w", err)
	}
	if db.fullRetry <= 0 {
		db.fullRetry = time.Second
	}
	// WAL lets readers run while the writer commits; synchronous=FULL makes
	// every commit durable before we acknowledge it.
	w, err := sql.Open("sqlite", db.dsn()+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"+
		"&_pragma=journal_size_limit("+strconv.FormatInt(db.JournalSizeLimit, 10)+")")
	if err != nil {
		return fmt.Errorf("open outbox %s: %w", db.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db.wconn = w
	if err := db.migrate(); err != nil {
		w.Close()
		return fmt.Errorf("open outbox %s: %w", db.Path, err)
	}
	if err := db.prepare(); err != nil {
		w.Close()
		return fmt.Errorf("open outbox %s: %w", db.Path, err)
	}
	r, err := sql.Open("sqlite", db.dsn()+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fmt.Errorf("open outbox %s: %w", db.Path, err)
	}
	r.SetMaxOpenConns(4)
	db.read = r
	db.writes = make(chan *writeReq)
	db.closed = make(chan struct{})
	db.writerDone = make(chan struct{})
	go db.writeLoop()
	return nil
}

// dsn is the database's address for the driver, with the busy timeout.
func (db *DB) dsn() string {
	return "file:" + (&url.URL{Path: db.Path}).EscapedPath() +
		"?_pragma=busy_timeout(" + strconv.FormatInt(db.BusyTimeout.Milliseconds(), 10) + ")"
}

// Close waits for the writes in progress and closes the database. Writes
// after Close fail with ErrClosed. Close is idempotent.
func (db *DB) Close() error {
	first := false
	db.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	if db.closed != nil {
		close(db.closed)
		<-db.writerDone
	}
	var errs []error
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.wconn != nil {
		errs = append(errs, db.wconn.Close())
	}
	return errors.Join(errs...)
}

// migrate applies, in order and each in its own transaction, the migrations
// newer than the database's user_version.
func (db *DB) migrate() error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var version int
	if err := db.wconn.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("schema version %d is newer than this ctibridge (%d): upgrade ctibridge", version, len(names))
	}
	for i := version; i < len(names); i++ {
		sqlText, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		tx, err := db.wconn.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(string(sqlText)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if _, err := tx.Exec(`PRAGMA user_version = ` + strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
	}
	return nil
}

// Probe proves the database is writable by committing a write. While the
// disk is full (see Health) it fails with ErrDiskFull even when its own
// small write found room, since events may not.
func (db *DB) Probe(ctx context.Context, now time.Time) error {
	if err := db.write(ctx, probe(now)); err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	if h := db.Health(); h.DiskFull {
		return fmt.Errorf("write probe: %w since %s: %s", ErrDiskFull, h.Since.UTC().Format(time.RFC3339), h.LastError)
	}
	return nil
}

// probe returns the write of the probe row.
func probe(now time.Time) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, ms(now))
		return err
	}
}

// Checkpoint copies the write-ahead log into the database file and
// truncates it, so that the -wal file does not grow without bound.
func (db *DB) Checkpoint(ctx context.Context) error {
	var busy bool
	err := db.writeBare(ctx, func(*sql.DB) error {
		var err error
		busy, err = db.truncateLog(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy {
		return errors.New("checkpoint: readers kept it from finishing; the next one will try again")
	}
	return nil
}

// ms and fromMS convert between time.Time and the stored Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
