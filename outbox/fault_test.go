package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// TestDB_DiskFull fills the database (SQLite's max_page_count makes the
// writer see exactly what a full disk gives it: SQLITE_FULL), checks that a
// refused Accept says so and leaves nothing half-written, and that writes
// succeed again once there is room, without a restart.
func TestDB_DiskFull(t *testing.T) {
	ctx := context.Background()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	// The writer's own probe row always fits under max_page_count: it
	// must not clear the state while the test looks.
	outbox.SetFullRetryForTest(db, time.Hour)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := outbox.RawForTest(db)
	var pages int
	if err := raw.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("x", 64<<10)) // needs new pages
	_, err := db.Accept(ctx, outbox.Event{Platform: "p", Key: "full", Type: "t", Body: big},
		[]outbox.NewDelivery{{Target: "crm", Key: "k-full", Payload: big}})
	if !errors.Is(err, outbox.ErrDiskFull) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Accept on a full database = %v, want ErrDiskFull saying it is full", err)
	}
	if h := db.Health(); !h.DiskFull || h.Since.IsZero() || !strings.Contains(h.LastError, "full") {
		t.Fatalf("Health after a refused Accept = %+v, want disk full with the error", h)
	}
	if got := mustList(t, db, outbox.Filter{}); len(got) != 0 {
		t.Fatalf("after a refused Accept: %d deliveries, want none", len(got))
	}
	var events int
	raw.QueryRow(`SELECT count(*) FROM events`).Scan(&events)
	if events != 0 {
		t.Fatalf("after a refused Accept: %d events, want none (nothing half-written)", events)
	}
	// A write that changes nothing commits without writing: no proof of room.
	if _, err := db.Claim(ctx, "crm", 1, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if h := db.Health(); !h.DiskFull {
		t.Fatalf("Health after a claim that changed nothing = %+v, want still full", h)
	}

	if _, err := raw.Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	res, err := db.Accept(ctx, outbox.Event{Platform: "p", Key: "full", Type: "t", Body: big},
		[]outbox.NewDelivery{{Target: "crm", Key: "k-full", Payload: big}})
	if err != nil || res.Duplicate || res.Enqueued != 1 {
		t.Fatalf("Accept once there is room = %+v, %v; want it stored", res, err)
	}
	if h := db.Health(); h.DiskFull {
		t.Fatalf("Health after a stored Accept = %+v, want no longer full", h)
	}
}
