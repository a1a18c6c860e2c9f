package outbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

func TestDB_Backup_RefusesToOverwrite(t *testing.T) {
	db := MustOpenDB(t)
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(context.Background(), path); err == nil {
		t.Fatal("Backup over an existing file succeeded, want refused")
	}
	if b, _ := os.ReadFile(path); string(b) != "an older backup" {
		t.Fatalf("the existing file was changed to %q", b)
	}
	if err := db.Backup(context.Background(), ""); err == nil {
		t.Fatal("Backup to an empty name succeeded, want an error")
	}
}

// sendLog is a target that records how often each key was sent.
type sendLog struct {
	mu   sync.Mutex
	sent map[string]int
}

func (s *sendLog) send(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
	time.Sleep(time.Millisecond) // a CRM takes time: leave a backlog
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[string]int{}
	}
	s.sent[m.Key]++
	return outbox.Receipt{Status: 201}, nil
}

func (s *sendLog) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[key]
}

func startDispatcher(tb testing.TB, db *outbox.DB, target *sendLog) *outbox.Dispatcher {
	tb.Helper()
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), PollInterval: 10 * time.Millisecond,
		Targets: []outbox.Target{{Name: "crm", Concurrency: 2, Retry: outbox.DefaultRetryPolicy(), Send: target.send}}}
	if err := d.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close(context.Background()) })
	return d
}

// TestDB_BackupUnderLoad backs the outbox up while events are accepted and
// delivered, then restores the copy and delivers from it: it holds every
// event acknowledged before the backup began, it is intact, and delivering
// from it sends exactly what was waiting, each once, and nothing it shows
// delivered.
func TestDB_BackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	live := &sendLog{}
	d := startDispatcher(t, db, live)

	var acked atomic.Int64 // events 0 … acked-1 are acknowledged
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; i < 600; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprint("e", i)
			if _, err := db.Accept(ctx, event(key), []outbox.NewDelivery{{Target: "crm", Key: key, Payload: []byte(`{}`)}}); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(i + 1))
			d.Notify("crm")
		}
	}()
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		<-loadDone
	})
	t.Cleanup(stopLoad) // before the database closes
	waitFor(t, "some deliveries to be made", func() bool { return live.count("e50") > 0 })
	ackedBefore := acked.Load()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	stopLoad()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi.Mode(), err)
	}

	// Restore: the copy, opened as the database.
	restored := outbox.NewDB(path)
	if err := restored.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close() })
	var check string
	if err := outbox.RawForTest(restored).QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the copy = %q, %v", check, err)
	}
	atBackup := states(t, restored)
	for i := range ackedBefore {
		if _, ok := atBackup[fmt.Sprint("e", i)]; !ok {
			t.Fatalf("e%d was acknowledged before the backup began but is not in the copy", i)
		}
	}
	var delivered, waiting int
	for key, dl := range atBackup {
		if dl.State == outbox.StateDelivered {
			delivered++
			if live.count(key) == 0 {
				t.Errorf("%s is delivered in the copy but was never sent", key)
			}
		} else {
			waiting++
		}
	}
	if delivered == 0 || waiting == 0 {
		t.Fatalf("the copy holds %d delivered and %d waiting; the test needs both", delivered, waiting)
	}

	again := &sendLog{}
	startDispatcher(t, restored, again)
	waitFor(t, "the restored copy to deliver what was waiting", func() bool {
		for _, dl := range states(t, restored) {
			if dl.State != outbox.StateDelivered {
				return false
			}
		}
		return true
	})
	for key, dl := range atBackup {
		n := again.count(key)
		if dl.State == outbox.StateDelivered && n != 0 {
			t.Errorf("%s was delivered before the backup and sent again %d times from the copy", key, n)
		}
		if dl.State != outbox.StateDelivered && n != 1 {
			t.Errorf("%s was %s at the backup and sent %d times from the copy, want once", key, dl.State, n)
		}
	}
	t.Logf("copy: %d delivered, %d waiting (of %d acknowledged by the end)", delivered, waiting, acked.Load())
}

// BenchmarkBackup measures Backup of an outbox of 20,000 events, each with
// one delivery (1.2 kB bodies, about as big as a real call's), reporting
// the database's size copied per second.
func BenchmarkBackup(b *testing.B) {
	db := MustOpenDB(b)
	ctx := context.Background()
	body := make([]byte, 1200)
	for i := range 20000 {
		k := fmt.Sprint(i)
		if _, err := db.Accept(ctx, outbox.Event{Platform: "p", Key: k, Type: "t", ReceivedAt: t0, Body: body},
			[]outbox.NewDelivery{{Target: "crm", Key: k, Payload: body}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var size int64
	b.ResetTimer()
	for i := range b.N {
		path := filepath.Join(dir, fmt.Sprint(i, ".db"))
		if err := db.Backup(ctx, path); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		size = fileSize(b, path)
		os.Remove(path)
		b.StartTimer()
	}
	b.SetBytes(size)
}
