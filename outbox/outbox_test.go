package outbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// MustOpenDB opens a fresh outbox in a temporary directory.
func MustOpenDB(tb testing.TB) *outbox.DB {
	tb.Helper()
	db := outbox.NewDB(filepath.Join(tb.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// t0 is the tests' fixed "now", far from any day the tests run on: a test
// that compared it with the real clock would fail at once, not weeks later.
var t0 = time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)

// clockAt is a clock that reads start when it is made and runs on in real
// time, for a Dispatcher whose deliveries were accepted at t0: its timers
// are real while its dates agree with the test's on any day.
func clockAt(start time.Time) func() time.Time {
	began := time.Now()
	return func() time.Time { return start.Add(time.Since(began)) }
}

func event(key string) outbox.Event {
	return outbox.Event{Platform: "test", Key: key, Type: "END", ReceivedAt: t0, Body: []byte(`{"k":"` + key + `"}`)}
}

func TestDB_Accept(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		res, err := db.Accept(ctx, event("e1"), []outbox.NewDelivery{
			{Target: "crm", Key: "k1", Payload: []byte(`{"a":1}`)},
			{Target: "file", Key: "k1", Payload: []byte(`{"a":1}`)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate || res.Enqueued != 2 || res.EventID == 0 {
			t.Fatalf("Accept = %+v, want a new event with 2 deliveries", res)
		}
	})
	t.Run("DuplicateEventChangesNothing", func(t *testing.T) {
		db := MustOpenDB(t)
		first, err := db.Accept(ctx, event("e1"), []outbox.NewDelivery{{Target: "crm", Key: "k1", Payload: []byte(`1`)}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := db.Accept(ctx, event("e1"), []outbox.NewDelivery{{Target: "crm", Key: "k2", Payload: []byte(`2`)}})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.EventID != first.EventID || again.Enqueued != 0 {
			t.Fatalf("second Accept = %+v, want duplicate of event %d with nothing enqueued", again, first.EventID)
		}
		if got := mustList(t, db, outbox.Filter{}); len(got) != 1 || got[0].Key != "k1" {
			t.Fatalf("deliveries = %+v, want only k1", got)
		}
	})
	t.Run("SameKeyFromAnotherEventIsNotEnqueuedTwice", func(t *testing.T) {
		db := MustOpenDB(t)
		d := []outbox.NewDelivery{{Target: "crm", Key: "k1", Payload: []byte(`1`)}}
		if _, err := db.Accept(ctx, event("e1"), d); err != nil {
			t.Fatal(err)
		}
		res, err := db.Accept(ctx, event("e2"), d)
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate || res.Enqueued != 0 {
			t.Fatalf("Accept = %+v, want a new event that enqueues nothing", res)
		}
	})
	t.Run("MappingFailedKeepsEventWithoutDeliveries", func(t *testing.T) {
		db := MustOpenDB(t)
		ev := event("e1")
		ev.MappingError = "rule x: field y: boom"
		res, err := db.Accept(ctx, ev, []outbox.NewDelivery{{Target: "crm", Key: "k1", Payload: []byte(`1`)}})
		if err != nil || res.Enqueued != 0 {
			t.Fatalf("Accept = %+v, %v; want the event kept with nothing enqueued", res, err)
		}
	})
}

func TestDB_ClaimAndRecord(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustAccept(t, db, "e1", "crm", "k1")
	mustAccept(t, db, "e2", "crm", "k2")
	mustAccept(t, db, "e3", "other", "k3")

	msgs, err := db.Claim(ctx, "crm", 10, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Key != "k1" || msgs[1].Key != "k2" || msgs[0].Attempt != 1 {
		t.Fatalf("Claim = %+v, want k1 and k2 of target crm, attempt 1", msgs)
	}
	if again, _ := db.Claim(ctx, "crm", 10, t0, time.Minute); len(again) != 0 {
		t.Fatalf("second Claim = %+v, want nothing: both are running", again)
	}

	if err := db.Record(ctx, msgs[0], outbox.Attempt{Outcome: outbox.OutcomeDelivered, StartedAt: t0, Status: 201}, t0); err != nil {
		t.Fatal(err)
	}
	retryAt := t0.Add(time.Minute)
	if err := db.Record(ctx, msgs[1], outbox.Attempt{Outcome: outbox.OutcomeRetry, StartedAt: t0, Status: 503,
		Class: "http_5xx", Error: "HTTP 503: down", NextAttemptAt: retryAt}, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Claim(ctx, "crm", 10, retryAt.Add(-time.Millisecond), time.Minute); len(got) != 0 {
		t.Fatalf("Claim before the retry is due = %+v, want nothing", got)
	}
	got, err := db.Claim(ctx, "crm", 10, retryAt, time.Minute)
	if err != nil || len(got) != 1 || got[0].Key != "k2" || got[0].Attempt != 2 {
		t.Fatalf("Claim when due = %+v, %v; want k2 attempt 2", got, err)
	}
	if err := db.Record(ctx, got[0], outbox.Attempt{Outcome: outbox.OutcomeDead, StartedAt: retryAt, Status: 400,
		Class: "http_4xx", Error: `HTTP 400: {"message":"REQUIRED_FIELD_MISSING"}`}, retryAt); err != nil {
		t.Fatal(err)
	}

	states := map[string]outbox.Delivery{}
	for _, d := range mustList(t, db, outbox.Filter{}) {
		states[d.Key] = d
	}
	if d := states["k1"]; d.State != outbox.StateDelivered || d.LastStatus != 201 || d.FinishedAt.IsZero() {
		t.Errorf("k1 = %+v, want delivered with status 201", d)
	}
	if d := states["k2"]; d.State != outbox.StateDead || d.Attempts != 2 || !strings.Contains(d.LastError, "REQUIRED_FIELD_MISSING") {
		t.Errorf("k2 = %+v, want dead after 2 attempts with the CRM's message", d)
	}
	if d := states["k3"]; d.State != outbox.StatePending {
		t.Errorf("k3 = %+v, want pending: another target's claim must not touch it", d)
	}
}

// Claims of sizes with and without a statement of their own (see
// literalClaim) take as many as asked, oldest first.
func TestDB_ClaimSizes(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	for i := range 40 {
		mustAccept(t, db, fmt.Sprintf("e%02d", i), "crm", fmt.Sprintf("k%02d", i))
	}
	next := 0
	for _, n := range []int{-1, 0, 17, 16, 1, 32} {
		msgs, err := db.Claim(ctx, "crm", n, t0, time.Minute)
		if err != nil {
			t.Fatalf("Claim(%d): %v", n, err)
		}
		want := max(min(n, 40-next), 0)
		if len(msgs) != want {
			t.Fatalf("Claim(%d) took %d, want %d", n, len(msgs), want)
		}
		for _, m := range msgs {
			if k := fmt.Sprintf("k%02d", next); m.Key != k {
				t.Fatalf("Claim(%d) took %s, want %s: oldest first", n, m.Key, k)
			}
			next++
		}
	}
	if next != 40 {
		t.Fatalf("claimed %d of 40", next)
	}
}

func TestDB_RecordIgnoresStaleClaim(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustAccept(t, db, "e1", "crm", "k1")
	first, _ := db.Claim(ctx, "crm", 1, t0, time.Minute)
	// The lease expires, the rescuer returns the row, and a second claim takes it.
	if n, err := db.Rescue(ctx, t0.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("Rescue = %d, %v; want 1", n, err)
	}
	second, _ := db.Claim(ctx, "crm", 1, t0.Add(2*time.Minute), time.Minute)
	if len(second) != 1 || second[0].Attempt != 2 {
		t.Fatalf("second claim = %+v", second)
	}
	// The first, slow attempt finishes late: it must not overwrite the second's state.
	if err := db.Record(ctx, first[0], outbox.Attempt{Outcome: outbox.OutcomeDead, StartedAt: t0, Error: "late"}, t0); err != nil {
		t.Fatal(err)
	}
	if d := mustList(t, db, outbox.Filter{})[0]; d.State != outbox.StateRunning {
		t.Fatalf("after a stale Record, state = %s, want running (owned by the second claim)", d.State)
	}
}

func TestDB_Rescue(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustAccept(t, db, "e1", "crm", "k1")
	if _, err := db.Claim(ctx, "crm", 1, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Rescue(ctx, t0.Add(30*time.Second)); n != 0 {
		t.Fatalf("Rescue within the lease returned %d rows, want 0", n)
	}
	if n, _ := db.Rescue(ctx, t0.Add(61*time.Second)); n != 1 {
		t.Fatalf("Rescue after the lease returned %d rows, want 1", n)
	}
	d := mustList(t, db, outbox.Filter{})[0]
	if d.State != outbox.StateRetrying || !strings.Contains(d.LastError, "interrupted while running") {
		t.Fatalf("rescued delivery = %+v, want retrying with an explanation", d)
	}
}

func TestSchema_RefusesInvalidTransitions(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustAccept(t, db, "e1", "crm", "k1")
	raw := outbox.RawForTest(db)
	for _, stmt := range []string{
		`UPDATE deliveries SET state = 'delivered', finished_at = 1`, // pending → delivered skips running
		`UPDATE deliveries SET state = 'bogus'`,
		`UPDATE deliveries SET state = 'running'`,               // running needs a lease
		`UPDATE deliveries SET state = 'dead', finished_at = 1`, // dead needs an error
	} {
		if _, err := raw.ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s: succeeded, want the schema to refuse it", stmt)
		}
	}
	if d := mustList(t, db, outbox.Filter{})[0]; d.State != outbox.StatePending {
		t.Fatalf("state = %s after refused updates, want pending", d.State)
	}
}

func TestDB_Purge(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	for _, k := range []string{"a", "b", "c"} {
		mustAccept(t, db, "e"+k, "crm", k)
	}
	msgs, _ := db.Claim(ctx, "crm", 2, t0, time.Minute)
	for _, m := range msgs {
		if err := db.Record(ctx, m, outbox.Attempt{Outcome: outbox.OutcomeDelivered, StartedAt: t0}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.Purge(ctx, t0, 1); err != nil || n != 0 {
		t.Fatalf("Purge(cutoff = delivery time) = %d, %v; want 0", n, err)
	}
	n, err := db.Purge(ctx, t0.Add(time.Second), 1)
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2 delivered rows deleted", n, err)
	}
	left := mustList(t, db, outbox.Filter{})
	if len(left) != 1 || left[0].Key != "c" || left[0].State != outbox.StatePending {
		t.Fatalf("left = %+v, want only the pending c", left)
	}
}

func TestDB_ReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	db := outbox.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustAccept(t, db, "e1", "crm", "k1")
	db.Close()
	db = outbox.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if got := mustList(t, db, outbox.Filter{}); len(got) != 1 {
		t.Fatalf("after reopen: %d deliveries, want 1", len(got))
	}
}

// TestDB_FilesPrivate: the database and its -wal and -shm files hold
// phone numbers and notes, and only the daemon's user may read them, even
// under a permissive umask.
func TestDB_FilesPrivate(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "o.db")
	db := outbox.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustAccept(t, db, "e1", "crm", "k1") // the WAL exists once written
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func mustAccept(tb testing.TB, db *outbox.DB, eventKey, target, key string) {
	tb.Helper()
	if _, err := db.Accept(context.Background(), event(eventKey),
		[]outbox.NewDelivery{{Target: target, Key: key, Payload: []byte(`{"key":"` + key + `"}`)}}); err != nil {
		tb.Fatal(err)
	}
}

func mustList(tb testing.TB, db *outbox.DB, f outbox.Filter) []outbox.Delivery {
	tb.Helper()
	got, err := db.List(context.Background(), f)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

func TestDB_State(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	ev := event("e1")
	ev.StateKey, ev.State = "call-1", []byte(`{"step":1}`)
	if _, err := db.Accept(ctx, ev, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := db.State(ctx, "test", "call-1"); err != nil || string(got) != `{"step":1}` {
		t.Fatalf("State = %s, %v; want step 1", got, err)
	}
	// A duplicate event must not touch the state.
	dup := event("e1")
	dup.StateKey, dup.State = "call-1", []byte(`{"step":99}`)
	db.Accept(ctx, dup, nil)
	if got, _ := db.State(ctx, "test", "call-1"); string(got) != `{"step":1}` {
		t.Fatalf("after a duplicate, State = %s, want step 1 unchanged", got)
	}
	done := event("e2")
	done.StateKey = "call-1" // nil State: the interaction is done
	if _, err := db.Accept(ctx, done, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := db.State(ctx, "test", "call-1"); err != nil || got != nil {
		t.Fatalf("State after done = %s, %v; want nil", got, err)
	}
	if got, err := db.State(ctx, "test", "never"); err != nil || got != nil {
		t.Fatalf("State of an unknown key = %s, %v; want nil", got, err)
	}
}
