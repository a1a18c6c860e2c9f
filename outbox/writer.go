package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("outbox is closed")

// maxBatch bounds the writes one transaction commits together.
const maxBatch = 256

// Statements the writer runs for nearly every write, prepared once on the
// writer connection: parsing them each time cost more than running them.
const (
	sqlSavepoint   = `SAVEPOINT w`
	sqlRelease     = `RELEASE w`
	sqlRollbackTo  = `ROLLBACK TO w`
	sqlInsertEvent = `
		INSERT INTO events (platform, event_key, event_type, received_at, body, state, error, interaction)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (platform, event_key) DO NOTHING`
	sqlInsertDelivery = `
		INSERT INTO deliveries (event_id, target, idem_key, payload, created_at, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (target, idem_key) DO NOTHING`
	sqlInsertAttempt = `
		INSERT INTO attempts (delivery_id, attempt, started_at, latency_ms, status, outcome,
			error_class, error, response_body, record_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlClaim = `
		UPDATE deliveries
		SET state = 'running', attempts = attempts + 1, lease_until = ?
		WHERE id IN (
			SELECT id FROM deliveries
			WHERE target = ? AND state IN ('pending', 'retrying') AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id
			LIMIT ?)
		RETURNING id, target, idem_key, payload, attempts, created_at`
	// The record statements move a delivery on only while it is still
	// running under the claim that made the attempt.
	sqlRecordDelivered = `
		UPDATE deliveries SET state = 'delivered', lease_until = NULL, finished_at = ?,
			last_status = ?, last_error = NULL, record_id = coalesce(?, record_id)
		WHERE id = ? AND state = 'running' AND attempts = ?`
	sqlRecordRetry = `
		UPDATE deliveries SET state = 'retrying', lease_until = NULL, next_attempt_at = ?,
			last_status = ?, last_error = ?
		WHERE id = ? AND state = 'running' AND attempts = ?`
	sqlRecordDead = `
		UPDATE deliveries SET state = 'dead', lease_until = NULL, finished_at = ?,
			last_status = ?, last_error = ?
		WHERE id = ? AND state = 'running' AND attempts = ?`
	// sqlReleaseClaim undoes a claim whose delivery was not sent.
	sqlReleaseClaim = `
		UPDATE deliveries SET state = CASE attempts WHEN 1 THEN 'pending' ELSE 'retrying' END,
			attempts = attempts - 1, lease_until = NULL
		WHERE id = ? AND state = 'running' AND attempts = ?`
)

// prepare prepares the hot statements on the writer connection. It runs
// before the writer goroutine starts, while the connection is free.
func (db *DB) prepare() error {
	db.stmts, db.bound = map[string]*sql.Stmt{}, map[string]*sql.Stmt{}
	for _, q := range []string{sqlSavepoint, sqlRelease, sqlRollbackTo, sqlInsertEvent, sqlInsertDelivery,
		sqlInsertAttempt, sqlClaim, sqlRecordDelivered, sqlRecordRetry, sqlRecordDead, sqlReleaseClaim} {
		st, err := db.wconn.Prepare(q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		db.stmts[q] = st
	}
	for n := 1; n <= maxLiteralClaim; n = nextLiteralClaim(n) {
		q := claimSQL(n)
		st, err := db.wconn.Prepare(q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		db.stmts[q] = st
	}
	return nil
}

// Claim sizes with a statement of their own, with the size written in:
// SQLite makes a new plan on every run of a statement whose LIMIT is a
// bound parameter, and once for a literal one. Every size up to 16 has
// one, for dispatchers that claim their concurrency; above that the powers
// of two up to maxLiteralClaim, for claims ahead (see literalClaim).
const (
	denseLiteralClaims = 16
	maxLiteralClaim    = 1024
)

func nextLiteralClaim(n int) int {
	if n < denseLiteralClaims {
		return n + 1
	}
	return 2 * n
}

// literalClaim returns the largest claim size up to n with a statement of
// its own, or 0 for n < 1.
func literalClaim(n int) int {
	lit := 0
	for m := 1; m <= min(n, maxLiteralClaim); m = nextLiteralClaim(m) {
		lit = m
	}
	return lit
}

// claimSQL is sqlClaim with the literal limit n.
func claimSQL(n int) string {
	return strings.Replace(sqlClaim, "LIMIT ?)", "LIMIT "+strconv.Itoa(n)+")", 1)
}

// stmt returns the prepared statement q bound to tx. Binding allocates and
// takes locks, so each statement is bound once per transaction. Only the
// writer goroutine calls it.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if tx != db.boundTx {
		db.boundTx = tx
		clear(db.bound)
	}
	st := db.bound[q]
	if st == nil {
		st = tx.StmtContext(ctx, db.stmts[q])
		db.bound[q] = st
	}
	return st
}

// writeReq is one write waiting for the writer goroutine.
type writeReq struct {
	ctx context.Context
	// fn runs with the writer's own context, never the caller's: an
	// interrupted statement would roll back the whole shared transaction.
	fn func(context.Context, *sql.Tx) error
	// lazy writes may commit without an fsync (see writeLazy).
	lazy bool
	// bare, instead of fn, runs outside any transaction, for statements
	// that cannot run inside one (wal_checkpoint).
	bare func(*sql.DB) error
	err  error
	done chan struct{}
}

// write runs fn in a transaction on the single writer connection and
// returns once that transaction is durably committed (or has failed).
//
// Writes that arrive while a commit is in progress are committed together
// in the next transaction: group commit. With synchronous=FULL each commit
// costs an fsync, so sharing it is what lets many concurrent requests be
// acknowledged quickly while every acknowledgement still means "on disk".
// Each write runs inside its own SAVEPOINT, so one failing write is rolled
// back alone and never spoils the others in its batch.
func (db *DB) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return db.queue(ctx, &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// writeLazy is write for the dispatcher's bookkeeping (claims, attempt
// records, rescues). Such writes commit in a transaction of their own,
// with synchronous=NORMAL: it survives a crash of the process, and a power
// or OS failure can lose only its last commits, whose deliveries are then
// sent again under the same idempotency key. Every other write commits with
// synchronous=FULL, so an acknowledged event is always on disk.
func (db *DB) writeLazy(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return db.queue(ctx, &writeReq{ctx: ctx, fn: fn, lazy: true, done: make(chan struct{})})
}

// writeBare runs fn on the writer connection outside a transaction, between
// two batches.
func (db *DB) writeBare(ctx context.Context, fn func(*sql.DB) error) error {
	return db.queue(ctx, &writeReq{ctx: ctx, bare: fn, done: make(chan struct{})})
}

func (db *DB) queue(ctx context.Context, req *writeReq) error {
	select {
	case db.writes <- req:
	case <-db.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the write may
	// commit, and the caller must not report failure for stored data.
	<-req.done
	return req.err
}

// writeLoop is the writer goroutine: it takes every queued write, up to
// maxBatch, and commits them in one transaction.
//
// While the disk is full, the writer also tries a write of its own every
// db.fullRetry, so that it finds the space back, checkpoints the log and
// clears Health even when nothing else writes anything.
func (db *DB) writeLoop() {
	defer close(db.writerDone)
	batch := make([]*writeReq, 0, maxBatch)
	var retry <-chan time.Time
	for {
		if db.full.Load() == nil {
			retry = nil
		} else if retry == nil {
			retry = time.After(db.fullRetry)
		}
		select {
		case req := <-db.writes:
			batch = append(batch[:0], req)
		case <-retry:
			retry = nil
			batch = append(batch[:0], &writeReq{ctx: context.Background(), fn: probe(time.Now()), done: make(chan struct{})})
		case <-db.closed:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case req := <-db.writes:
				batch = append(batch, req)
			default:
				break gather
			}
		}
		db.commitLanes(batch)
	}
}

// commitLanes commits batch as up to two transactions: the lazy writes
// first, then the others. The dispatcher's claims and records thus never
// wait for an fsync, nor for the statements of a burst of accepted events:
// only for the transaction in progress when they were queued.
func (db *DB) commitLanes(batch []*writeReq) {
	lazy := batch[:0:0]
	for _, r := range batch {
		if r.lazy {
			lazy = append(lazy, r)
		}
	}
	if len(lazy) == 0 || len(lazy) == len(batch) {
		db.commit(batch)
		return
	}
	db.commit(lazy)
	db.commit(slices.DeleteFunc(batch, func(r *writeReq) bool { return r.lazy }))
}

// commit runs batch in one transaction and reports to each request. Bare
// requests run first, each on its own.
func (db *DB) commit(batch []*writeReq) {
	txs := batch[:0:0]
	for _, r := range batch {
		if r.bare == nil {
			txs = append(txs, r)
			continue
		}
		r.err = r.ctx.Err()
		if r.err == nil {
			r.err = r.bare(db.wconn)
		}
		if db.isDiskFull(r.err) {
			db.setFull(r.err)
			r.err = fmt.Errorf("%w: %w", ErrDiskFull, r.err)
		}
		close(r.done)
	}
	if batch = txs; len(batch) == 0 {
		return
	}
	wasFull := db.full.Load() != nil
	var changesBefore int64
	checkpointed := false
	if wasFull {
		// Space may be back. A TRUNCATE checkpoint moves the write-ahead
		// log into the database and gives the log's room back, so that
		// deliveries and rescues are not left waiting on a log that cannot
		// grow; the writes below then grow the log from nothing.
		busy, err := db.truncateLog(context.Background())
		checkpointed = err == nil && !busy
		db.wconn.QueryRow(`SELECT total_changes()`).Scan(&changesBefore)
	}
	finish := func(batchErr error, committed bool) {
		var fullErr error
		for _, r := range batch {
			if db.isDiskFull(r.err) {
				fullErr = r.err
			}
		}
		if db.isDiskFull(batchErr) {
			fullErr = batchErr
		}
		if fullErr != nil && batchErr != nil {
			batchErr = fmt.Errorf("%w: %w", ErrDiskFull, batchErr)
		}
		// The state first: a caller told of its write may read Health next.
		switch {
		case fullErr != nil:
			db.setFull(fullErr)
		case wasFull && committed && db.roomAgain():
			// A commit that changed nothing wrote nothing, and so proves
			// nothing about the room left.
			var changes int64
			if db.wconn.QueryRow(`SELECT total_changes()`).Scan(&changes) == nil && changes > changesBefore {
				db.full.Store(nil)
				if !checkpointed {
					db.truncateLog(context.Background())
				}
			}
		}
		for _, r := range batch {
			switch {
			case r.err == nil:
				r.err = batchErr
			case db.isDiskFull(r.err):
				r.err = fmt.Errorf("%w: %w", ErrDiskFull, r.err)
			}
			close(r.done)
		}
	}
	lazy := true
	for _, r := range batch {
		lazy = lazy && r.lazy
	}
	// synchronous may only change outside a transaction, and SQLite applies
	// it when the PRAGMA is prepared, not when it runs: never prepare it.
	if lazy != db.lazySync {
		level := "FULL"
		if lazy {
			level = "NORMAL"
		}
		if _, err := db.wconn.Exec(`PRAGMA synchronous = ` + level); err != nil {
			finish(fmt.Errorf("set synchronous: %w", err), false)
			return
		}
		db.lazySync = lazy
	}
	// The transaction must not die with any one caller's context.
	ctx := context.Background()
	tx, err := db.wconn.BeginTx(ctx, nil)
	if err != nil {
		finish(fmt.Errorf("begin: %w", err), false)
		return
	}
	ok := 0
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if _, err := db.stmt(ctx, tx, sqlSavepoint).ExecContext(ctx); err != nil {
			r.err = err
			continue
		}
		if err := r.fn(ctx, tx); err != nil {
			r.err = err
			if _, rbErr := db.stmt(ctx, tx, sqlRollbackTo).ExecContext(ctx); rbErr != nil {
				tx.Rollback()
				finish(fmt.Errorf("roll back a failed write: %w", rbErr), false)
				return
			}
		}
		if _, err := db.stmt(ctx, tx, sqlRelease).ExecContext(ctx); err != nil {
			tx.Rollback()
			finish(fmt.Errorf("release savepoint: %w", err), false)
			return
		}
		if r.err == nil {
			ok++
		}
	}
	if ok == 0 {
		tx.Rollback()
		finish(nil, false)
		return
	}
	if err := tx.Commit(); err != nil {
		// Nothing of this batch is on disk, including the writes whose
		// own part went well.
		finish(fmt.Errorf("commit: %w", err), false)
		return
	}
	db.commits.Add(1)
	finish(nil, true)
}

// truncateLog checkpoints the whole write-ahead log into the database and
// truncates the log file. busy reports that readers kept it from finishing.
// Only the writer goroutine calls it.
func (db *DB) truncateLog(ctx context.Context) (busy bool, err error) {
	var b, logFrames, checkpointed int
	err = db.wconn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&b, &logFrames, &checkpointed)
	return b != 0, err
}
