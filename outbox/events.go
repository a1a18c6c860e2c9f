package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// EventState is a stored event's state.
type EventState string

// Event states.
const (
	EventProcessed     EventState = "processed"      // mapped, into zero or more deliveries
	EventMappingFailed EventState = "mapping_failed" // kept with the error, to be mapped again
)

// StoredEvent is an event as stored, for listing and re-mapping.
type StoredEvent struct {
	ID         int64      `json:"id"`
	Platform   string     `json:"platform"`
	Type       string     `json:"type"`
	Key        string     `json:"key"`
	ReceivedAt time.Time  `json:"receivedAt"`
	State      EventState `json:"state"`
	Error      string     `json:"error,omitempty"`
	// Interaction is the normalized interaction (JSON) the event
	// completed, or nil.
	Interaction []byte `json:"-"`
}

// EventFilter selects events to list. Zero fields match everything.
type EventFilter struct {
	State EventState
	// WithInteraction keeps only events that completed an interaction.
	WithInteraction bool
	// BeforeID, when positive, keeps only events older than that id: the
	// cursor for the next page.
	BeforeID int64
	// Limit bounds the result; default 100.
	Limit int
}

// Events returns stored events matching f, newest first.
func (db *DB) Events(ctx context.Context, f EventFilter) ([]StoredEvent, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT id, platform, event_type, event_key, received_at, state, error, interaction FROM events
		WHERE (? = '' OR state = ?) AND (? = 0 OR interaction IS NOT NULL) AND (? <= 0 OR id < ?)
		ORDER BY id DESC LIMIT ?`, f.State, f.State, f.WithInteraction, f.BeforeID, f.BeforeID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []StoredEvent
	for rows.Next() {
		var e StoredEvent
		var at int64
		var errText sql.NullString
		if err := rows.Scan(&e.ID, &e.Platform, &e.Type, &e.Key, &at, &e.State, &errText, &e.Interaction); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.ReceivedAt, e.Error = fromMS(at), errText.String
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// ErrNotMappingFailed is returned by Remap for an event that is not in
// state mapping_failed.
var ErrNotMappingFailed = errors.New("event is not mapping_failed")

// Remap records the outcome of mapping a mapping_failed event again: with
// mapErr nil, it enqueues ds (skipping any whose target and key exist) and
// marks the event processed; otherwise it keeps the event mapping_failed
// with the new error. Both happen in one transaction. It returns the
// deliveries enqueued.
func (db *DB) Remap(ctx context.Context, eventID int64, ds []NewDelivery, mapErr error, now time.Time) (int, error) {
	var n int
	err := db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var state EventState
		err := tx.QueryRowContext(ctx, `SELECT state FROM events WHERE id = ?`, eventID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("event %d: %w", eventID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if state != EventMappingFailed {
			return fmt.Errorf("event %d is %s: %w", eventID, state, ErrNotMappingFailed)
		}
		if mapErr != nil {
			_, err := tx.ExecContext(ctx, `UPDATE events SET error = ? WHERE id = ?`, mapErr.Error(), eventID)
			return err
		}
		if n, err = db.enqueue(ctx, tx, eventID, now, ds); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE events SET state = 'processed', error = NULL WHERE id = ?`, eventID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remap event: %w", err)
	}
	return n, nil
}
