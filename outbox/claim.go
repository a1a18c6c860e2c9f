package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Message is a claimed delivery, ready to send.
type Message struct {
	ID      int64
	Target  string
	Key     string
	Payload []byte
	// Attempt is this attempt's number, counting from 1.
	Attempt   int
	CreatedAt time.Time
}

// Claim marks up to n due deliveries of target as running, leased until
// now+lease, and returns them oldest first. It never returns a delivery
// whose next attempt is after now. One statement does it, so two claimers
// can never take the same row. An n below 1 claims nothing.
func (db *DB) Claim(ctx context.Context, target string, n int, now time.Time, lease time.Duration) ([]Message, error) {
	if n < 1 {
		return nil, nil // SQLite reads a negative LIMIT as none
	}
	var msgs []Message
	err := db.writeLazy(ctx, func(ctx context.Context, tx *sql.Tx) error {
		msgs = msgs[:0]
		q, args := sqlClaim, []any{ms(now.Add(lease)), target, ms(now), n}
		if literalClaim(n) == n {
			q, args = claimSQL(n), args[:3]
		}
		rows, err := db.stmt(ctx, tx, q).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m Message
			var created int64
			if err := rows.Scan(&m.ID, &m.Target, &m.Key, &m.Payload, &m.Attempt, &created); err != nil {
				return err
			}
			m.CreatedAt = fromMS(created)
			msgs = append(msgs, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", target, err)
	}
	// RETURNING yields rows in no promised order.
	slices.SortFunc(msgs, func(a, b Message) int { return cmp.Compare(a.ID, b.ID) })
	return msgs, nil
}

// Outcome is what happened to one attempt.
type Outcome string

// Outcomes of an attempt.
const (
	OutcomeDelivered Outcome = "delivered"
	OutcomeRetry     Outcome = "retry"
	OutcomeDead      Outcome = "dead"
)

// Attempt is the record of one delivery attempt.
type Attempt struct {
	Outcome   Outcome
	StartedAt time.Time
	Latency   time.Duration
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Class is a short machine-readable error class, such as "http_5xx".
	Class string
	// Error is the error message.
	Error string
	// ResponseBody is the start of the target's response body, if any.
	ResponseBody string
	// NextAttemptAt is when to retry, for OutcomeRetry.
	NextAttemptAt time.Time
	// RecordID is the target's id of the record, when it said.
	RecordID string
}

// MaxErrorText bounds the error text and the response body kept per
// attempt.
const MaxErrorText = 4 << 10

// Record stores an attempt and moves the delivery to its next state. It
// applies only while the delivery is still running under this attempt's
// claim: if a rescuer released the row in the meantime, the attempt is still
// recorded but the state is left to whoever owns it now.
func (db *DB) Record(ctx context.Context, m Message, a Attempt, now time.Time) error {
	return db.writeLazy(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return db.record(ctx, tx, m, a, now)
	})
}

// recordEach is Record for several attempts, in one write: all are
// recorded, or none.
func (db *DB) recordEach(ctx context.Context, rs []record) error {
	return db.writeLazy(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, r := range rs {
			if err := db.record(ctx, tx, r.m, r.a, r.now); err != nil {
				return err
			}
		}
		return nil
	})
}

func (db *DB) record(ctx context.Context, tx *sql.Tx, m Message, a Attempt, now time.Time) error {
	errText := truncate(a.Error, MaxErrorText)
	_, err := db.stmt(ctx, tx, sqlInsertAttempt).ExecContext(ctx,
		m.ID, m.Attempt, ms(a.StartedAt), a.Latency.Milliseconds(), nullInt(a.Status), a.Outcome,
		nullString(a.Class), nullString(errText), nullString(truncate(a.ResponseBody, MaxErrorText)),
		nullString(a.RecordID))
	if err != nil {
		return fmt.Errorf("record attempt %d of delivery %d: %w", m.Attempt, m.ID, err)
	}
	switch a.Outcome {
	case OutcomeDelivered:
		_, err = db.stmt(ctx, tx, sqlRecordDelivered).ExecContext(ctx,
			ms(now), nullInt(a.Status), nullString(a.RecordID), m.ID, m.Attempt)
	case OutcomeRetry:
		_, err = db.stmt(ctx, tx, sqlRecordRetry).ExecContext(ctx,
			ms(a.NextAttemptAt), nullInt(a.Status), errText, m.ID, m.Attempt)
	case OutcomeDead:
		_, err = db.stmt(ctx, tx, sqlRecordDead).ExecContext(ctx,
			ms(now), nullInt(a.Status), errText, m.ID, m.Attempt)
	default:
		return fmt.Errorf("record delivery %d: unknown outcome %q", m.ID, a.Outcome)
	}
	if err != nil {
		return fmt.Errorf("record delivery %d: %w", m.ID, err)
	}
	return nil
}

// Release gives back claimed deliveries that were not sent: each returns
// to its state before the claim (pending or retrying, due as it was) with
// its attempt count as it was. A delivery no longer running under that
// claim is left alone.
func (db *DB) Release(ctx context.Context, ms []Message) error {
	if len(ms) == 0 {
		return nil
	}
	err := db.writeLazy(ctx, func(ctx context.Context, tx *sql.Tx) error {
		st := db.stmt(ctx, tx, sqlReleaseClaim)
		for _, m := range ms {
			if _, err := st.ExecContext(ctx, m.ID, m.Attempt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release %d claimed deliveries: %w", len(ms), err)
	}
	return nil
}

// Rescue returns deliveries whose lease expired while running (the process
// that claimed them died) to retrying, due at once. It guards on the current
// state so that it never touches a row that was finished meanwhile.
func (db *DB) Rescue(ctx context.Context, now time.Time) (int, error) {
	return db.rescue(ctx, now, now)
}

// rescue returns the running deliveries whose lease ends before
// leaseBefore to retrying, due at now.
func (db *DB) rescue(ctx context.Context, leaseBefore, now time.Time) (int, error) {
	var n int64
	err := db.writeLazy(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `
			UPDATE deliveries
			SET state = 'retrying', lease_until = NULL, next_attempt_at = ?,
				last_error = coalesce(last_error, 'interrupted while running (process stopped or crashed)')
			WHERE state = 'running' AND lease_until < ?`, ms(now), ms(leaseBefore))
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rescue expired leases: %w", err)
	}
	return int(n), nil
}

// NextDue returns when target's earliest waiting delivery is due, or the
// zero time when none waits.
func (db *DB) NextDue(ctx context.Context, target string) (time.Time, error) {
	var v sql.NullInt64
	err := db.read.QueryRowContext(ctx, `
		SELECT min(next_attempt_at) FROM deliveries
		WHERE target = ? AND state IN ('pending', 'retrying')`, target).Scan(&v)
	if err != nil {
		return time.Time{}, fmt.Errorf("next due %s: %w", target, err)
	}
	return fromNullMS(v), nil
}

func nullInt(v int) sql.NullInt64 { return sql.NullInt64{Int64: int64(v), Valid: v != 0} }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
