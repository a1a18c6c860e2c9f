package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/jobs"
	"github.com/ctibridge/ctibridge/outbox"
)

// t0 is the tests' fixed "now", far from any day the tests run on.
var t0 = time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)

func openDB(t *testing.T) *outbox.DB {
	t.Helper()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// enqueue accepts an event received at "at" with one delivery of key to
// target.
func enqueue(t *testing.T, db *outbox.DB, target, key string, at time.Time) {
	t.Helper()
	ev := outbox.Event{Platform: "test", Key: key, Type: "END", ReceivedAt: at, Body: []byte(`{}`)}
	if _, err := db.Accept(context.Background(), ev,
		[]outbox.NewDelivery{{Target: target, Key: key, Payload: []byte(`{"key":"` + key + `"}`)}}); err != nil {
		t.Fatal(err)
	}
}

// finish enqueues key for target at "at", then claims it and records an
// attempt with outcome o at the same time.
func finish(t *testing.T, db *outbox.DB, target, key string, at time.Time, o outbox.Outcome) {
	t.Helper()
	ctx := context.Background()
	enqueue(t, db, target, key, at)
	msgs, err := db.Claim(ctx, target, 1, at, time.Minute)
	if err != nil || len(msgs) != 1 || msgs[0].Key != key {
		t.Fatalf("claim %s = %+v, %v; want only %s", target, msgs, err, key)
	}
	if err := db.Record(ctx, msgs[0], outbox.Attempt{Outcome: o, StartedAt: at, Status: 403, Error: "HTTP 403"}, at); err != nil {
		t.Fatal(err)
	}
}

// states returns the state of every delivery, by key.
func states(t *testing.T, db *outbox.DB) map[string]outbox.Delivery {
	t.Helper()
	ds, err := db.List(context.Background(), outbox.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]outbox.Delivery{}
	for _, d := range ds {
		m[d.Key] = d
	}
	return m
}

// logLines returns the JSON log lines written to buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestCheckSchedule(t *testing.T) {
	for _, spec := range []string{"@every 1h", "0 0 * * *", "*/5 * * * *", "30 0 3 * * *", "@daily", "TZ=UTC 0 3 * * *"} {
		if err := jobs.CheckSchedule(spec); err != nil {
			t.Errorf("CheckSchedule(%q) = %v, want nil", spec, err)
		}
	}
	// robfig/cron panics on "TZ=UTC" alone: CheckSchedule must turn that
	// into an error, not crash the config check.
	for _, spec := range []string{"", "garbage", "61 * * * *", "* * *", "@every never", "TZ=UTC", "CRON_TZ=UTC"} {
		err := jobs.CheckSchedule(spec)
		if err == nil {
			t.Errorf("CheckSchedule(%q) = nil, want an error", spec)
			continue
		}
		if !strings.Contains(err.Error(), `"`+spec+`"`) {
			t.Errorf("CheckSchedule(%q) = %q, want the spec named", spec, err)
		}
	}
}

func TestPurge_DeletesOnlyDeliveredRowsOlderThanRetention(t *testing.T) {
	db := openDB(t)
	finish(t, db, "crm", "old-delivered", t0, outbox.OutcomeDelivered)
	finish(t, db, "crm", "old-dead", t0, outbox.OutcomeDead)
	finish(t, db, "crm", "recent-delivered", t0.Add(50*time.Hour), outbox.OutcomeDelivered)
	enqueue(t, db, "crm", "old-pending", t0)

	var logs bytes.Buffer
	j := &jobs.Jobs{DB: db, Retention: 24 * time.Hour, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Now: func() time.Time { return t0.Add(60 * time.Hour) }} // cutoff t0+36h
	j.Purge()

	got := states(t, db)
	if _, ok := got["old-delivered"]; ok {
		t.Error("old-delivered is still there; delivered 60h ago with a retention of 24h, it should be purged")
	}
	for _, key := range []string{"old-dead", "recent-delivered", "old-pending"} {
		if _, ok := got[key]; !ok {
			t.Errorf("%s was purged; only delivered rows older than the retention may be", key)
		}
	}
	lines := logLines(t, &logs)
	if len(lines) != 1 || lines[0]["msg"] != "purged delivered rows" || lines[0]["count"] != 1.0 {
		t.Errorf("log = %v, want one line saying 1 row was purged", lines)
	}

	// Nothing more to purge: nothing more is deleted, and nothing logged.
	logs.Reset()
	j.Purge()
	if n := len(states(t, db)); n != 3 {
		t.Errorf("second purge left %d deliveries, want 3", n)
	}
	if logs.Len() != 0 {
		t.Errorf("a purge of nothing logged %q", logs.String())
	}
}

func TestRedrive_RetriesDeadDeliveriesAndWakesTargets(t *testing.T) {
	db := openDB(t)
	finish(t, db, "crm", "crm-dead", t0, outbox.OutcomeDead)
	finish(t, db, "erp", "erp-dead", t0, outbox.OutcomeDead)
	finish(t, db, "crm", "crm-delivered", t0, outbox.OutcomeDelivered)

	var mu sync.Mutex
	var notified []string
	now := t0.Add(time.Hour)
	j := &jobs.Jobs{DB: db, Targets: []string{"crm", "erp"}, Logger: slog.New(slog.DiscardHandler),
		Notify: func(target string) {
			mu.Lock()
			defer mu.Unlock()
			notified = append(notified, target)
		},
		Now: func() time.Time { return now }}
	j.Redrive()

	got := states(t, db)
	for _, key := range []string{"crm-dead", "erp-dead"} {
		d := got[key]
		if d.State != outbox.StateRetrying || d.Attempts != 0 || !d.NextAttemptAt.Equal(now) {
			t.Errorf("%s after redrive = %s, %d attempts, next at %v; want retrying, 0 attempts, next at %v",
				key, d.State, d.Attempts, d.NextAttemptAt, now)
		}
	}
	if d := got["crm-delivered"]; d.State != outbox.StateDelivered {
		t.Errorf("crm-delivered after redrive = %s, want delivered", d.State)
	}
	slices.Sort(notified)
	if !slices.Equal(notified, []string{"crm", "erp"}) {
		t.Errorf("notified %v, want crm and erp once each", notified)
	}

	// With nothing dead, no target is woken.
	notified = nil
	j.Redrive()
	if len(notified) != 0 {
		t.Errorf("redrive of nothing notified %v", notified)
	}
}

func TestSummary_LogsOneLine(t *testing.T) {
	db := openDB(t)
	finish(t, db, "crm", "delivered", t0, outbox.OutcomeDelivered)
	finish(t, db, "crm", "dead", t0, outbox.OutcomeDead)
	enqueue(t, db, "crm", "pending", t0.Add(30*time.Minute))
	finish(t, db, "erp", "erp-delivered", t0, outbox.OutcomeDelivered)

	var logs bytes.Buffer
	j := &jobs.Jobs{DB: db, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Now: func() time.Time { return t0.Add(2 * time.Hour) }}
	j.Summary()

	lines := logLines(t, &logs)
	if len(lines) != 1 {
		t.Fatalf("summary logged %d lines, want 1:\n%s", len(lines), logs.String())
	}
	l := lines[0]
	if l["msg"] != "outbox summary" || l["events"] != 4.0 || l["mapping_failed"] != 0.0 || l["dead"] != 1.0 {
		t.Errorf("summary = %v, want 4 events, 0 mapping_failed, 1 dead", l)
	}
	crm, _ := l["crm"].(map[string]any)
	want := map[string]any{"delivered": 1.0, "waiting": 1.0, "dead": 1.0,
		"oldest_waiting": float64(90 * time.Minute)} // created at t0+30m, read at t0+2h
	for k, v := range want {
		if crm[k] != v {
			t.Errorf("summary crm.%s = %v, want %v (line %v)", k, crm[k], v, l)
		}
	}
	erp, _ := l["erp"].(map[string]any)
	if erp["delivered"] != 1.0 || erp["waiting"] != 0.0 {
		t.Errorf("summary erp = %v, want 1 delivered, 0 waiting", erp)
	}
}

func TestStart_RefusesBadSchedule(t *testing.T) {
	j := &jobs.Jobs{DB: openDB(t), Logger: slog.New(slog.DiscardHandler), PurgeSchedule: "every day"}
	if err := j.Start(); err == nil {
		j.Stop()
		t.Fatal("Start with purge schedule \"every day\" = nil, want an error")
	}
}

// TestStart_JobRunsAgainAfterPanic runs Flush every second: its first run
// panics, and it must run again (robfig/cron's chain order decides this).
func TestStart_JobRunsAgainAfterPanic(t *testing.T) {
	var logs syncBuffer
	runs := make(chan bool, 10) // whether the run's context has a deadline
	calls := 0
	j := &jobs.Jobs{DB: openDB(t), Logger: slog.New(slog.NewTextHandler(&logs, nil)), FlushSchedule: "* * * * * *",
		Flush: func(ctx context.Context) {
			calls++ // runs never overlap: SkipIfStillRunning
			_, ok := ctx.Deadline()
			runs <- ok
			if calls == 1 {
				panic("first run fails")
			}
		}}
	if err := j.Start(); err != nil {
		t.Fatal(err)
	}
	defer j.Stop()
	for i := range 2 {
		select {
		case hasDeadline := <-runs:
			if !hasDeadline {
				t.Errorf("run %d: Flush's context has no deadline", i+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Flush ran %d times in 10s, want it again after its panic", i)
		}
	}
	j.Stop()
	if !strings.Contains(logs.String(), "first run fails") {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the cron goroutines' logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
