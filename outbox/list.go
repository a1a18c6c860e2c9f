package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// State is a delivery's state.
type State string

// Delivery states. A delivery moves pending → running → delivered, or
// running → retrying → running … until it is delivered or dead; an operator
// may move dead back to retrying.
const (
	StatePending   State = "pending"   // accepted, never tried
	StateRunning   State = "running"   // claimed by a dispatcher, lease held
	StateRetrying  State = "retrying"  // failed, waiting for its next attempt
	StateDelivered State = "delivered" // the target accepted it
	StateDead      State = "dead"      // given up; last_error says why
)

// ParseID parses a delivery id as an operator types it.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("invalid delivery ID %q: want a positive number", s)
	}
	return id, nil
}

// ParseState returns the State named s.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StatePending, StateRunning, StateRetrying, StateDelivered, StateDead:
		return st, nil
	}
	return "", fmt.Errorf("unknown state %q (want pending, running, retrying, delivered or dead)", s)
}

// Delivery is a delivery as listed for an operator.
type Delivery struct {
	ID            int64     `json:"id"`
	EventID       int64     `json:"eventId,omitempty"`
	Target        string    `json:"target"`
	Key           string    `json:"key"`
	State         State     `json:"state"`
	Attempts      int       `json:"attempts"`
	CreatedAt     time.Time `json:"createdAt"`
	NextAttemptAt time.Time `json:"nextAttemptAt"`
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
	LastStatus    int       `json:"lastStatus,omitempty"`
	LastError     string    `json:"lastError,omitempty"`
	// RecordID is the target's id of the record it wrote, once delivered
	// and when the target says.
	RecordID string `json:"recordId,omitempty"`
}

// Filter selects deliveries to list. Zero fields match everything.
type Filter struct {
	State  State
	Target string
	// Limit bounds the result; default 100.
	Limit int
}

// List returns deliveries matching f, newest first.
func (db *DB) List(ctx context.Context, f Filter) ([]Delivery, error) {
	var where []string
	var args []any
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if f.Target != "" {
		where, args = append(where, "target = ?"), append(args, f.Target)
	}
	q := `SELECT id, event_id, target, idem_key, state, attempts, created_at, next_attempt_at,
		finished_at, last_status, last_error, record_id FROM deliveries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var eventID, finished, status sql.NullInt64
		var created, next int64
		var lastErr, recordID sql.NullString
		if err := rows.Scan(&d.ID, &eventID, &d.Target, &d.Key, &d.State, &d.Attempts, &created, &next,
			&finished, &status, &lastErr, &recordID); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.EventID, d.LastStatus, d.LastError, d.RecordID = eventID.Int64, int(status.Int64), lastErr.String, recordID.String
		d.CreatedAt, d.NextAttemptAt, d.FinishedAt = fromMS(created), fromMS(next), fromNullMS(finished)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Purge deletes deliveries delivered before cutoff, with their attempts, in
// batches of batch rows so that the writer is never held for long. Events
// left with no delivery are deleted too, and so are snapshots of
// interactions not updated since cutoff (they never finished). It returns
// the deliveries deleted.
func (db *DB) Purge(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	total := 0
	for {
		var n int64
		err := db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, `
				DELETE FROM deliveries WHERE id IN (
					SELECT id FROM deliveries
					WHERE state = 'delivered' AND finished_at < ?
					LIMIT ?)`, ms(cutoff), batch)
			if err != nil {
				return err
			}
			n, _ = r.RowsAffected()
			_, err = tx.ExecContext(ctx, `
				DELETE FROM events WHERE state = 'processed' AND received_at < ?
				AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = events.id)`, ms(cutoff))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `DELETE FROM states WHERE updated_at < ?`, ms(cutoff))
			return err
		})
		if err != nil {
			return total, fmt.Errorf("purge delivered: %w", err)
		}
		total += int(n)
		if int(n) < batch {
			return total, nil
		}
	}
}
