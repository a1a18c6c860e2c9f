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

// RuleFailure is one mapping rule that failed on an event, kept with the
// event until a remap maps it (or the rule is gone).
type RuleFailure struct {
	Rule   string `json:"rule"`
	Target string `json:"target"`
	Error  string `json:"error"`
}

// StoredEvent is an event as stored, for listing and re-mapping.
type StoredEvent struct {
	ID         int64      `json:"id"`
	Platform   string     `json:"platform"`
	Type       string     `json:"type"`
	Key        string     `json:"key"`
	ReceivedAt time.Time  `json:"receivedAt"`
	State      EventState `json:"state"`
	// Error says why the event is mapping_failed: the one error of an
	// event that could not be mapped at all, or a summary of Failures.
	Error string `json:"error,omitempty"`
	// Failures are the rules that failed, each with its error; the other
	// rules' activities were enqueued.
	Failures []RuleFailure `json:"failures,omitempty"`
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
	if err := db.loadFailures(ctx, out); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// loadFailures fills in the Failures of the mapping_failed events of evs
// (newest first, as Events lists them).
func (db *DB) loadFailures(ctx context.Context, evs []StoredEvent) error {
	at := map[int64]int{}
	for i, e := range evs {
		if e.State == EventMappingFailed {
			at[e.ID] = i
		}
	}
	if len(at) == 0 {
		return nil
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT event_id, rule, target, error FROM rule_failures
		WHERE event_id BETWEEN ? AND ? ORDER BY event_id, rule`, evs[len(evs)-1].ID, evs[0].ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var f RuleFailure
		if err := rows.Scan(&id, &f.Rule, &f.Target, &f.Error); err != nil {
			return err
		}
		if i, ok := at[id]; ok {
			evs[i].Failures = append(evs[i].Failures, f)
		}
	}
	return rows.Err()
}

// putFailures stores the failed rules of a mapping_failed event.
func putFailures(ctx context.Context, tx *sql.Tx, eventID int64, fs []RuleFailure, now time.Time) error {
	for _, f := range fs {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO rule_failures (event_id, rule, target, error, failed_at) VALUES (?, ?, ?, ?, ?)`,
			eventID, f.Rule, f.Target, f.Error, ms(now)); err != nil {
			return fmt.Errorf("store failure of rule %q: %w", f.Rule, err)
		}
	}
	return nil
}

// failureText is the events.error of an event: whole, the error of an
// event that could not be mapped at all; otherwise a summary of the failed
// rules; "" when nothing failed.
func failureText(whole string, fs []RuleFailure) string {
	switch {
	case whole != "":
		return whole
	case len(fs) == 0:
		return ""
	case len(fs) == 1:
		return fs[0].Error
	}
	return fmt.Sprintf("%d rules failed; first: %s", len(fs), fs[0].Error)
}

// ErrNotMappingFailed is returned by Remap for an event that is not in
// state mapping_failed.
var ErrNotMappingFailed = errors.New("event is not mapping_failed")

// Remap records the outcome of mapping a mapping_failed event again, in
// one transaction. With mapErr set (the event cannot be mapped at all), it
// keeps the event mapping_failed with that error. Otherwise it enqueues ds
// (skipping any whose target and key exist), replaces the event's rule
// failures with failures (those of the rules mapped again that fail
// still), and marks the event processed once none is left. It returns the
// deliveries enqueued.
func (db *DB) Remap(ctx context.Context, eventID int64, ds []NewDelivery, failures []RuleFailure, mapErr error, now time.Time) (int, error) {
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
		if _, err := tx.ExecContext(ctx, `DELETE FROM rule_failures WHERE event_id = ?`, eventID); err != nil {
			return err
		}
		if err := putFailures(ctx, tx, eventID, failures, now); err != nil {
			return err
		}
		if msg := failureText("", failures); msg != "" {
			_, err = tx.ExecContext(ctx, `UPDATE events SET error = ? WHERE id = ?`, msg, eventID)
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
