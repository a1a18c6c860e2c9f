package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// TracedEvent is one stored event with everything that became of it: the
// raw body as posted, the interaction it completed, and each delivery it
// made with every attempt.
type TracedEvent struct {
	StoredEvent
	Body        []byte       `json:"-"`
	Deliveries  []ShowResult `json:"deliveries"`
	Interaction []byte       `json:"-"`
}

// Trace returns the newest events (at most limit) whose stored interaction
// has the value q at one of paths (SQLite JSON paths such as "$.id"), or
// whose key is q, each with its deliveries and their attempts, so that an
// operator can follow a call from the platform's event to the CRM's record.
// It reads every event's interaction: it is for an operator's search, not
// for a hot path.
func (db *DB) Trace(ctx context.Context, q string, paths []string, limit int) ([]TracedEvent, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	if limit <= 0 {
		limit = 20
	}
	conds := []string{"event_key = ?"}
	args := []any{q}
	for _, p := range paths {
		conds = append(conds, "json_extract(interaction, ?) = ?")
		args = append(args, p, q)
	}
	args = append(args, limit)
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `
		SELECT id, platform, event_type, event_key, received_at, state, error, interaction, body FROM events
		WHERE `+strings.Join(conds, " OR ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	var out []TracedEvent
	for rows.Next() {
		var e TracedEvent
		var at int64
		var errText sql.NullString
		if err := rows.Scan(&e.ID, &e.Platform, &e.Type, &e.Key, &at, &e.State, &errText, &e.Interaction, &e.Body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trace: %w", err)
		}
		e.ReceivedAt, e.Error = fromMS(at), errText.String
		e.StoredEvent.Interaction = e.Interaction
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	evs := make([]StoredEvent, len(out))
	for i := range out {
		evs[i] = out[i].StoredEvent
	}
	if err := db.loadFailures(ctx, evs); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	for i := range out {
		out[i].Failures = evs[i].Failures
	}
	for i := range out {
		ids, err := deliveryIDs(ctx, tx, out[i].ID)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		for _, id := range ids {
			res, err := show(ctx, tx, id)
			if err != nil {
				return nil, fmt.Errorf("trace: %w", err)
			}
			out[i].Deliveries = append(out[i].Deliveries, res)
		}
	}
	return out, nil
}

func deliveryIDs(ctx context.Context, tx *sql.Tx, eventID int64) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM deliveries WHERE event_id = ? ORDER BY id`, eventID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// FailedAttempt is a recent failed attempt, for the dashboard.
type FailedAttempt struct {
	DeliveryID   int64     `json:"deliveryId"`
	Target       string    `json:"target"`
	Key          string    `json:"key"`
	StartedAt    time.Time `json:"startedAt"`
	Status       int       `json:"status,omitempty"`
	Outcome      Outcome   `json:"outcome"`
	Error        string    `json:"error,omitempty"`
	ResponseBody string    `json:"responseBody,omitempty"`
}

// RecentFailures returns the newest failed attempts (retried or given up),
// at most limit, newest first.
func (db *DB) RecentFailures(ctx context.Context, limit int) ([]FailedAttempt, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT a.delivery_id, d.target, d.idem_key, a.started_at, a.status, a.outcome, a.error, a.response_body
		FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
		WHERE a.outcome != 'delivered' ORDER BY a.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("recent failures: %w", err)
	}
	defer rows.Close()
	var out []FailedAttempt
	for rows.Next() {
		var f FailedAttempt
		var at int64
		var status sql.NullInt64
		var errText, body sql.NullString
		if err := rows.Scan(&f.DeliveryID, &f.Target, &f.Key, &at, &status, &f.Outcome, &errText, &body); err != nil {
			return nil, fmt.Errorf("recent failures: %w", err)
		}
		f.StartedAt, f.Status, f.Error, f.ResponseBody = fromMS(at), int(status.Int64), errText.String, body.String
		out = append(out, f)
	}
	return out, rows.Err()
}
