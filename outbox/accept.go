package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Event is a platform event to store, raw.
type Event struct {
	Platform   string
	Key        string // unique per platform: the same Key is the same event
	Type       string
	ReceivedAt time.Time
	Body       []byte
	// MappingError, when set, stores the event as mapping_failed with this
	// message: it could not be mapped at all, and nothing is enqueued.
	MappingError string
	// Failures are the rules that failed to map the interaction; the
	// deliveries of the others are enqueued all the same. An event with
	// failures is stored as mapping_failed, each failure kept with it (see
	// RuleFailure) for Remap to map again.
	Failures []RuleFailure
	// Interaction is the normalized interaction the event completed, as
	// JSON, or nil; it is what Remap maps again.
	Interaction []byte
	// StateKey, when set, stores State as the platform's snapshot under
	// that key (see State), or deletes the snapshot when State is nil.
	StateKey string
	State    []byte
}

// NewDelivery is an activity record to enqueue for one target.
type NewDelivery struct {
	Target  string
	Key     string // idempotency key, unique per target
	Payload []byte
}

// Accepted is the result of Accept.
type Accepted struct {
	// EventID is the stored event's id (the earlier one for a duplicate).
	EventID int64
	// Duplicate reports that the event had been accepted before; nothing
	// was changed.
	Duplicate bool
	// Enqueued counts the deliveries added. Deliveries whose target and key
	// were already queued are not added again.
	Enqueued int
}

// Accept stores an event and enqueues its deliveries in one transaction, so
// that either both are durable or neither is. When it returns without error,
// the event is on disk (synchronous=FULL): it is safe to acknowledge.
func (db *DB) Accept(ctx context.Context, ev Event, ds []NewDelivery) (Accepted, error) {
	var res Accepted
	err := db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = db.accept(ctx, tx, ev, ds)
		return err
	})
	if err != nil {
		return Accepted{}, fmt.Errorf("accept event: %w", err)
	}
	return res, nil
}

func (db *DB) accept(ctx context.Context, tx *sql.Tx, ev Event, ds []NewDelivery) (Accepted, error) {
	state, errText := "processed", sql.NullString{}
	if msg := failureText(ev.MappingError, ev.Failures); msg != "" {
		state, errText = "mapping_failed", sql.NullString{String: msg, Valid: true}
	}
	var res Accepted
	// Exec rather than RETURNING: a statement without rows to read is
	// cheaper through database/sql, and the row id comes back all the same.
	r, err := db.stmt(ctx, tx, sqlInsertEvent).ExecContext(ctx,
		ev.Platform, ev.Key, ev.Type, ms(ev.ReceivedAt), ev.Body, state, errText, ev.Interaction)
	if err != nil {
		return res, err
	}
	if n, err := r.RowsAffected(); err != nil {
		return res, err
	} else if n == 0 {
		res.Duplicate = true
		err = tx.QueryRowContext(ctx, `SELECT id FROM events WHERE platform = ? AND event_key = ?`,
			ev.Platform, ev.Key).Scan(&res.EventID)
		return res, err
	}
	if res.EventID, err = r.LastInsertId(); err != nil {
		return res, err
	}
	if ev.StateKey != "" {
		if err := db.putState(ctx, tx, ev.Platform, ev.StateKey, ev.State, ev.ReceivedAt); err != nil {
			return res, err
		}
	}
	if ev.MappingError != "" {
		return res, nil
	}
	if err := putFailures(ctx, tx, res.EventID, ev.Failures, ev.ReceivedAt); err != nil {
		return res, err
	}
	res.Enqueued, err = db.enqueue(ctx, tx, res.EventID, ev.ReceivedAt, ds)
	return res, err
}

// enqueue inserts deliveries, skipping any whose target and key exist.
func (db *DB) enqueue(ctx context.Context, tx *sql.Tx, eventID int64, now time.Time, ds []NewDelivery) (int, error) {
	n := 0
	insert := db.stmt(ctx, tx, sqlInsertDelivery)
	for _, d := range ds {
		r, err := insert.ExecContext(ctx,
			eventID, d.Target, d.Key, d.Payload, ms(now), ms(now))
		if err != nil {
			return n, fmt.Errorf("enqueue %s %s: %w", d.Target, d.Key, err)
		}
		c, _ := r.RowsAffected()
		n += int(c)
	}
	return n, nil
}

// putState stores or, for nil data, deletes a snapshot.
func (db *DB) putState(ctx context.Context, tx *sql.Tx, platform, key string, data []byte, now time.Time) error {
	var err error
	if data == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM states WHERE platform = ? AND state_key = ?`, platform, key)
	} else {
		_, err = tx.ExecContext(ctx, `
			INSERT INTO states (platform, state_key, data, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (platform, state_key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
			platform, key, data, ms(now))
	}
	if err != nil {
		return fmt.Errorf("store state %s %s: %w", platform, key, err)
	}
	return nil
}

// State returns the snapshot stored for platform and key, or nil.
func (db *DB) State(ctx context.Context, platform, key string) ([]byte, error) {
	var data []byte
	err := db.read.QueryRowContext(ctx, `SELECT data FROM states WHERE platform = ? AND state_key = ?`,
		platform, key).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s %s: %w", platform, key, err)
	}
	return data, nil
}

// StoredState is one snapshot of the states table.
type StoredState struct {
	Platform  string
	Key       string
	Data      []byte
	UpdatedAt time.Time
}

// StaleStates returns up to limit snapshots of platform not updated since
// before, oldest first: those whose interaction may never be completed.
func (db *DB) StaleStates(ctx context.Context, platform string, before time.Time, limit int) ([]StoredState, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT platform, state_key, data, updated_at FROM states INDEXED BY states_updated
		WHERE updated_at < ? AND platform = ?
		ORDER BY updated_at, state_key LIMIT ?`, ms(before), platform, limit)
	if err != nil {
		return nil, fmt.Errorf("read stale states of %s: %w", platform, err)
	}
	defer rows.Close()
	var out []StoredState
	for rows.Next() {
		var s StoredState
		var at int64
		if err := rows.Scan(&s.Platform, &s.Key, &s.Data, &at); err != nil {
			return nil, fmt.Errorf("read stale states of %s: %w", platform, err)
		}
		s.UpdatedAt = fromMS(at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stale states of %s: %w", platform, err)
	}
	return out, nil
}
