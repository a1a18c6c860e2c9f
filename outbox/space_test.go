package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// TestDB_JournalSizeLimit checks that the write-ahead log file is cut back
// to JournalSizeLimit once SQLite starts it over, instead of keeping the
// size of its biggest burst.
func TestDB_JournalSizeLimit(t *testing.T) {
	ctx := context.Background()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	db.JournalSizeLimit = 256 << 10
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	big := []byte(strings.Repeat("x", 512<<10))
	var ds []outbox.NewDelivery
	for i := range 8 {
		ds = append(ds, outbox.NewDelivery{Target: "crm", Key: fmt.Sprint(i), Payload: big})
	}
	if _, err := db.Accept(ctx, event("burst"), ds); err != nil {
		t.Fatal(err)
	}
	wal := db.Path + "-wal"
	if size := fileSize(t, wal); size < 4<<20 {
		t.Fatalf("after a 4 MiB burst the log is %d bytes; the test needs it bigger than the limit", size)
	}
	// A checkpoint that lets the log start over, then a write that does.
	if _, err := outbox.RawForTest(db).Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		t.Fatal(err)
	}
	mustAccept(t, db, "small", "crm", "small")
	if size := fileSize(t, wal); size > db.JournalSizeLimit {
		t.Fatalf("log after it started over = %d bytes, want at most the limit %d", size, db.JournalSizeLimit)
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// TestDB_DiskFillsAndEmpties runs the outbox on a small tmpfs, fills the
// disk with a ballast file while events arrive and deliveries run, then
// removes it: events are refused with ErrDiskFull and the readiness probe
// says so while the disk is full; once there is room the outbox recovers by
// itself, with nothing else writing, and every acknowledged event is
// delivered.
func TestDB_DiskFillsAndEmpties(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a full disk is tested on a tmpfs the test mounts, which needs root; run as root to test it")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the full-disk case is untested", err, strings.TrimSpace(string(out)))
	}
	// Registered before the database's Close, so it runs after it.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	ctx := context.Background()
	db := outbox.NewDB(filepath.Join(dir, "outbox.db"))
	db.MinFree = 1 << 20 // of the 8 MiB
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	var mu sync.Mutex
	sent := map[string]int{}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Lease: time.Second, PollInterval: 20 * time.Millisecond,
		Targets: []outbox.Target{{Name: "crm", Retry: outbox.DefaultRetryPolicy(),
			Send: func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
				mu.Lock()
				sent[m.Key]++
				mu.Unlock()
				return outbox.Receipt{Status: 200}, nil
			}}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(ctx) })

	body := []byte(strings.Repeat("x", 16<<10))
	var acked []string
	accept := func(key string) error {
		_, err := db.Accept(ctx, outbox.Event{Platform: "p", Key: key, Type: "END", ReceivedAt: t0, Body: body},
			[]outbox.NewDelivery{{Target: "crm", Key: key, Payload: body}})
		if err == nil {
			acked = append(acked, key)
			d.Notify("crm")
		}
		return err
	}
	for i := range 20 {
		if err := accept(fmt.Sprint("before-", i)); err != nil {
			t.Fatal(err)
		}
	}

	ballast := filepath.Join(dir, "ballast")
	fillDisk(t, ballast)
	var refused error
	for i := 0; i < 500 && refused == nil; i++ {
		refused = accept(fmt.Sprint("full-", i))
	}
	if !errors.Is(refused, outbox.ErrDiskFull) {
		t.Fatalf("Accept on a full disk = %v, want ErrDiskFull", refused)
	}
	if h := db.Health(); !h.DiskFull {
		t.Fatalf("Health on a full disk = %+v, want DiskFull", h)
	}
	if err := db.Probe(ctx, t0); !errors.Is(err, outbox.ErrDiskFull) {
		t.Fatalf("Probe on a full disk = %v, want ErrDiskFull", err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	// Nothing is written meanwhile: the outbox finds the room by itself.
	waitFor(t, "the outbox to find room again", func() bool { return !db.Health().DiskFull })
	if err := db.Probe(ctx, t0); err != nil {
		t.Fatalf("Probe once there is room: %v", err)
	}
	if size := fileSize(t, db.Path+"-wal"); size > 1<<20 {
		t.Errorf("log right after recovery = %d bytes, want it checkpointed (under 1 MiB)", size)
	}
	for i := range 20 {
		if err := accept(fmt.Sprint("after-", i)); err != nil {
			t.Fatalf("Accept after recovery: %v", err)
		}
	}

	waitFor(t, "every acknowledged event delivered", func() bool {
		st := states(t, db)
		for _, k := range acked {
			if st[k].State != outbox.StateDelivered {
				return false
			}
		}
		return true
	})
	st := states(t, db)
	if len(st) != len(acked) {
		t.Errorf("%d deliveries stored, want exactly the %d acknowledged (nothing refused half-written)", len(st), len(acked))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range acked {
		if sent[k] == 0 {
			t.Errorf("acknowledged %s marked delivered but never sent", k)
		}
	}
}

// fillDisk writes path until the filesystem has no room left, in smaller
// and smaller pieces so that not even a page is left over.
func fillDisk(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	for chunk := 1 << 20; chunk >= 512; chunk /= 2 {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
	}
}
