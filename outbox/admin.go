package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors of the operator's methods (Show, Retry). Match them with
// errors.Is; the messages name the delivery.
var (
	// ErrNotFound means no delivery has the given id.
	ErrNotFound = errors.New("not found")
	// ErrNotDead means the delivery is in a state Retry does not move.
	ErrNotDead = errors.New("not dead")
)

// ShowResult is everything the outbox knows about one delivery.
type ShowResult struct {
	Delivery Delivery `json:"delivery"`
	// AcceptedAt is when the event that produced the delivery was
	// accepted. Unlike Delivery.CreatedAt it does not move when an
	// operator retries the delivery. Zero when the event is gone.
	AcceptedAt time.Time `json:"acceptedAt,omitzero"`
	// Payload is the bytes sent on every attempt. As JSON it is embedded
	// as is when it is valid JSON, and as a string otherwise.
	Payload []byte `json:"payload"`
	// Attempts is every attempt, oldest first.
	Attempts []AttemptRecord `json:"attempts"`
}

// MarshalJSON embeds the payload as JSON rather than as base64.
func (r ShowResult) MarshalJSON() ([]byte, error) {
	type plain ShowResult
	var payload any = string(r.Payload)
	if json.Valid(r.Payload) {
		payload = json.RawMessage(r.Payload)
	}
	attempts := r.Attempts
	if attempts == nil {
		attempts = []AttemptRecord{}
	}
	return json.Marshal(struct {
		plain
		Payload  any             `json:"payload"`
		Attempts []AttemptRecord `json:"attempts"`
	}{plain(r), payload, attempts})
}

// AttemptRecord is one recorded delivery attempt.
type AttemptRecord struct {
	// Attempt is the attempt's number within its retry window, from 1.
	Attempt int `json:"attempt"`
	// Window numbers the delivery's retry windows, from 1: each time an
	// operator retries a dead delivery, a new window begins and Attempt
	// counts from 1 again (see Retry).
	Window    int           `json:"window"`
	StartedAt time.Time     `json:"startedAt"`
	Latency   time.Duration `json:"-"`
	// Status is the HTTP status, 0 when no response arrived.
	Status  int     `json:"status,omitempty"`
	Outcome Outcome `json:"outcome"`
	// ErrorClass is a short machine-readable class, such as "http_4xx".
	ErrorClass string `json:"errorClass,omitempty"`
	Error      string `json:"error,omitempty"`
	// ResponseBody is the start of the target's answer: the CRM's own
	// explanation of a failure.
	ResponseBody string `json:"responseBody,omitempty"`
	// RecordID is the target's id of the record this attempt wrote.
	RecordID string `json:"recordId,omitempty"`
}

// MarshalJSON writes Latency as whole milliseconds, "latencyMs".
func (a AttemptRecord) MarshalJSON() ([]byte, error) {
	type plain AttemptRecord
	return json.Marshal(struct {
		plain
		LatencyMS int64 `json:"latencyMs"`
	}{plain(a), a.Latency.Milliseconds()})
}

// Show returns delivery id with its payload and every attempt, oldest
// first. A missing id is an error wrapping ErrNotFound.
func (db *DB) Show(ctx context.Context, id int64) (ShowResult, error) {
	// One read transaction: the delivery and its attempts from the same
	// snapshot, even while the daemon writes.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ShowResult{}, fmt.Errorf("show delivery %d: %w", id, err)
	}
	defer tx.Rollback()
	return show(ctx, tx, id)
}

// show reads delivery id with its attempts in tx.
func show(ctx context.Context, tx *sql.Tx, id int64) (ShowResult, error) {
	var res ShowResult
	d := &res.Delivery
	var eventID, finished, status, accepted sql.NullInt64
	var created, next int64
	var lastErr, recordID sql.NullString
	err := tx.QueryRowContext(ctx, `
		SELECT d.id, d.event_id, d.target, d.idem_key, d.state, d.attempts, d.created_at,
			d.next_attempt_at, d.finished_at, d.last_status, d.last_error, d.record_id, d.payload, e.received_at
		FROM deliveries d LEFT JOIN events e ON e.id = d.event_id
		WHERE d.id = ?`, id).Scan(&d.ID, &eventID, &d.Target, &d.Key, &d.State, &d.Attempts, &created,
		&next, &finished, &status, &lastErr, &recordID, &res.Payload, &accepted)
	if errors.Is(err, sql.ErrNoRows) {
		return ShowResult{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return ShowResult{}, fmt.Errorf("show delivery %d: %w", id, err)
	}
	d.EventID, d.LastStatus, d.LastError, d.RecordID = eventID.Int64, int(status.Int64), lastErr.String, recordID.String
	d.CreatedAt, d.NextAttemptAt, d.FinishedAt = fromMS(created), fromMS(next), fromNullMS(finished)
	res.AcceptedAt = fromNullMS(accepted)

	rows, err := tx.QueryContext(ctx, `
		SELECT attempt, started_at, latency_ms, status, outcome, error_class, error, response_body, record_id
		FROM attempts WHERE delivery_id = ? ORDER BY id`, id)
	if err != nil {
		return ShowResult{}, fmt.Errorf("show delivery %d: %w", id, err)
	}
	defer rows.Close()
	window := 1
	for rows.Next() {
		var a AttemptRecord
		var started, latency int64
		var status sql.NullInt64
		var class, errText, body, recordID sql.NullString
		if err := rows.Scan(&a.Attempt, &started, &latency, &status, &a.Outcome, &class, &errText, &body, &recordID); err != nil {
			return ShowResult{}, fmt.Errorf("show delivery %d: %w", id, err)
		}
		a.StartedAt, a.Latency, a.Status = fromMS(started), time.Duration(latency)*time.Millisecond, int(status.Int64)
		a.ErrorClass, a.Error, a.ResponseBody, a.RecordID = class.String, errText.String, body.String, recordID.String
		a.Window = window
		// A delivery leaves dead only when an operator retries it, so
		// the attempt after a dead one opens the next window.
		if a.Outcome == OutcomeDead {
			window++
		}
		res.Attempts = append(res.Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return ShowResult{}, fmt.Errorf("show delivery %d: %w", id, err)
	}
	return res, nil
}

// Retry moves the given dead deliveries back to retrying, due at now, and
// returns how many it moved. Ids that are missing or not dead are left
// alone and reported in the error, one wrapped ErrNotFound or ErrNotDead
// each (joined with errors.Join); the others are moved all the same.
//
// A retried delivery gets a fresh retry window: the dispatcher gives up on
// a delivery by its attempt count and its age (RetryPolicy.Next), so a
// delivery that was given up would otherwise be given up again after its
// first failure. Retry therefore resets the delivery's attempts to 0 and
// its created_at to now. Nothing of its history is lost: the earlier
// attempts stay in the attempts table with their numbers (Show numbers the
// windows), the last error stays until the next attempt, and the time the
// event was accepted stays in the event (ShowResult.AcceptedAt). Keeping
// the lifetime count in the row instead would need either a schema change
// or a retry policy that reads the attempt history.
func (db *DB) Retry(ctx context.Context, ids []int64, now time.Time) (int, error) {
	return db.retry(ctx, ids, now, false)
}

// RetryForce is Retry that also takes deliveries waiting in retrying and
// makes them due at now, without resetting their retry window: it only
// skips the wait.
func (db *DB) RetryForce(ctx context.Context, ids []int64, now time.Time) (int, error) {
	return db.retry(ctx, ids, now, true)
}

func (db *DB) retry(ctx context.Context, ids []int64, now time.Time, force bool) (int, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var moved int
	var errs []error
	err := db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		moved, errs = 0, nil
		for _, id := range ids {
			var st State
			err := tx.QueryRowContext(ctx, `SELECT state FROM deliveries WHERE id = ?`, id).Scan(&st)
			if errors.Is(err, sql.ErrNoRows) {
				errs = append(errs, fmt.Errorf("delivery %d: %w", id, ErrNotFound))
				continue
			}
			if err != nil {
				return err
			}
			var r sql.Result
			switch {
			case st == StateDead:
				r, err = tx.ExecContext(ctx, redriveSQL+` WHERE id = ? AND state = 'dead'`, ms(now), ms(now), id)
			case st == StateRetrying && force:
				r, err = tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?
					WHERE id = ? AND state = 'retrying'`, ms(now), id)
			default:
				errs = append(errs, fmt.Errorf("delivery %d is %s, %w", id, st, ErrNotDead))
				continue
			}
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			moved += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("retry deliveries: %w", err)
	}
	return moved, errors.Join(errs...)
}

// redriveSQL moves dead deliveries to retrying with a fresh retry window
// (see Retry). Its parameters are created_at and next_attempt_at.
const redriveSQL = `UPDATE deliveries
	SET state = 'retrying', attempts = 0, created_at = ?, next_attempt_at = ?, finished_at = NULL`

// RetryDead retries, as Retry does, every dead delivery, or only those of
// target when target is not empty. It returns how many it moved.
func (db *DB) RetryDead(ctx context.Context, target string, now time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, redriveSQL+` WHERE state = 'dead' AND (? = '' OR target = ?)`,
			ms(now), ms(now), target, target)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry dead deliveries: %w", err)
	}
	return int(n), nil
}

// Stats is a summary of the outbox, for operators and monitoring.
type Stats struct {
	// Targets has one entry per target with deliveries, by name.
	Targets []TargetStats `json:"targets"`
	// Dead counts dead deliveries of every target.
	Dead int `json:"dead"`
	// Events counts the stored events; MappingFailed those of them whose
	// mapping failed (kept, to be mapped again after a fix).
	Events        int `json:"events"`
	MappingFailed int `json:"mappingFailed"`
}

// TargetStats counts one target's deliveries by state.
type TargetStats struct {
	Target    string `json:"target"`
	Pending   int    `json:"pending"`
	Running   int    `json:"running"`
	Retrying  int    `json:"retrying"`
	Delivered int    `json:"delivered"`
	Dead      int    `json:"dead"`
	// OldestWaiting is the CreatedAt of the oldest pending or retrying
	// delivery, zero when none waits; OldestWaitingAge is its age at the
	// time given to Stats.
	OldestWaiting    time.Time     `json:"oldestWaiting,omitzero"`
	OldestWaitingAge time.Duration `json:"-"`
}

// MarshalJSON writes OldestWaitingAge as whole seconds,
// "oldestWaitingSeconds".
func (s TargetStats) MarshalJSON() ([]byte, error) {
	type plain TargetStats
	return json.Marshal(struct {
		plain
		Age int64 `json:"oldestWaitingSeconds"`
	}{plain(s), int64(s.OldestWaitingAge / time.Second)})
}

// Stats counts deliveries per target and state, and events, as of now
// (which only dates the ages).
func (db *DB) Stats(ctx context.Context, now time.Time) (Stats, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `
		SELECT target, state, count(*),
			min(CASE WHEN state IN ('pending', 'retrying') THEN created_at END)
		FROM deliveries GROUP BY target, state ORDER BY target`)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	defer rows.Close()
	var s Stats
	for rows.Next() {
		var target string
		var st State
		var n int
		var oldest sql.NullInt64
		if err := rows.Scan(&target, &st, &n, &oldest); err != nil {
			return Stats{}, fmt.Errorf("outbox stats: %w", err)
		}
		if len(s.Targets) == 0 || s.Targets[len(s.Targets)-1].Target != target {
			s.Targets = append(s.Targets, TargetStats{Target: target})
		}
		t := &s.Targets[len(s.Targets)-1]
		switch st {
		case StatePending:
			t.Pending = n
		case StateRunning:
			t.Running = n
		case StateRetrying:
			t.Retrying = n
		case StateDelivered:
			t.Delivered = n
		case StateDead:
			t.Dead = n
			s.Dead += n
		}
		if oldest.Valid && (t.OldestWaiting.IsZero() || fromMS(oldest.Int64).Before(t.OldestWaiting)) {
			t.OldestWaiting = fromMS(oldest.Int64)
			t.OldestWaitingAge = max(now.Sub(t.OldestWaiting), 0)
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	if s.Targets == nil {
		s.Targets = []TargetStats{}
	}
	err = tx.QueryRowContext(ctx, `
		SELECT count(*), count(*) FILTER (WHERE state = 'mapping_failed') FROM events`).
		Scan(&s.Events, &s.MappingFailed)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	return s, nil
}
