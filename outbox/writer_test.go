package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func openTestDB(tb testing.TB) *DB {
	tb.Helper()
	db := NewDB(filepath.Join(tb.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestWrite_FailureIsIsolated checks that a write that fails inside a
// shared batch is rolled back alone: the writes committed with it stay.
func TestWrite_FailureIsIsolated(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO probe (id, at) VALUES (1, ?)
					ON CONFLICT (id) DO UPDATE SET at = at + 1`, 0); err != nil {
					return err
				}
				if i%4 == 0 {
					return boom // after its own update: that update must be undone
				}
				return nil
			})
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		switch {
		case i%4 == 0 && !errors.Is(err, boom):
			t.Errorf("write %d = %v, want boom", i, err)
		case i%4 != 0 && err != nil:
			t.Errorf("write %d = %v, want success", i, err)
		}
		if err != nil {
			failed++
		}
	}
	var at int
	if err := db.read.QueryRow(`SELECT at FROM probe`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	// The first successful write inserts 0; each later one adds 1.
	if want := len(errs) - failed - 1; at != want {
		t.Errorf("probe.at = %d, want %d: only the successful writes may count", at, want)
	}
}

// TestWrite_GroupsConcurrentWrites checks that concurrent writes share
// commits: far fewer transactions than writes.
func TestWrite_GroupsConcurrentWrites(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	before := db.commits.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := db.Accept(ctx, Event{Platform: "p", Key: fmt.Sprint(i), Type: "t", ReceivedAt: time.Now(), Body: []byte("{}")},
				[]NewDelivery{{Target: "crm", Key: fmt.Sprint(i), Payload: []byte("{}")}})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM deliveries`).Scan(&n); err != nil || n != 200 {
		t.Fatalf("deliveries = %d, %v; want 200", n, err)
	}
	if commits := db.commits.Load() - before; commits >= 200 {
		t.Errorf("200 concurrent accepts took %d commits, want them grouped into fewer", commits)
	} else {
		t.Logf("200 concurrent accepts in %d commits", commits)
	}
}

func TestWrite_AfterClose(t *testing.T) {
	db := NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := db.Probe(context.Background(), time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("Probe after Close = %v, want ErrClosed", err)
	}
}

// BenchmarkAccept measures durable acceptance of one event with one
// delivery, from many goroutines at once (run with -cpu and
// -test.benchtime as needed).
func BenchmarkAccept(b *testing.B) {
	db := openTestDB(b)
	ctx := context.Background()
	payload := make([]byte, 600)
	var n sync.Mutex
	i := 0
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			i++
			k := fmt.Sprint(i)
			n.Unlock()
			if _, err := db.Accept(ctx, Event{Platform: "p", Key: k, Type: "t", ReceivedAt: time.Now(), Body: payload},
				[]NewDelivery{{Target: "crm", Key: k, Payload: payload}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestDB_Checkpoint(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	for i := range 50 {
		if _, err := db.Accept(ctx, Event{Platform: "p", Key: fmt.Sprint(i), Type: "t", ReceivedAt: time.Now(), Body: []byte("{}")},
			[]NewDelivery{{Target: "crm", Key: fmt.Sprint(i), Payload: make([]byte, 2000)}}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Stat(db.Path + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("-wal before the checkpoint: %v; want it holding the writes", err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(db.Path + "-wal")
	if err != nil || st.Size() != 0 {
		t.Fatalf("-wal after a TRUNCATE checkpoint: %v, %v; want an empty file", st.Size(), err)
	}
	// Writes go on afterwards.
	if _, err := db.Accept(ctx, Event{Platform: "p", Key: "after", Type: "t", Body: []byte("{}")}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestWrite_SynchronousLevel reads the writer connection's synchronous
// level back: FULL (2) after a batch holding an accepted event, NORMAL (1)
// after one of only the dispatcher's bookkeeping. A 202 must mean fsynced.
func TestWrite_SynchronousLevel(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	level := func() int {
		var n int
		if err := db.wconn.QueryRow(`PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := level(); got != 2 {
		t.Fatalf("synchronous after Open = %d, want 2 (FULL)", got)
	}
	if _, err := db.Claim(ctx, "crm", 1, time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != 1 {
		t.Fatalf("synchronous after a bookkeeping-only batch = %d, want 1 (NORMAL)", got)
	}
	if _, err := db.Accept(ctx, Event{Platform: "p", Key: "k", Type: "t", ReceivedAt: time.Now(), Body: []byte("{}")}, nil); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != 2 {
		t.Fatalf("synchronous after an Accept = %d, want 2 (FULL)", got)
	}
}

// TestWrite_LazyLane queues a durable write and then a lazy one while the
// writer is busy, so that one batch gathers both: the lazy write must run
// first, in its own transaction at synchronous=NORMAL, and the durable one
// at FULL. The dispatcher's bookkeeping never waits for an accepted
// event's fsync, and an accepted event never commits without one.
func TestWrite_LazyLane(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	type seen struct {
		name  string
		level int
	}
	// lane queues both writes behind a busy writer and reports what each
	// saw and how many transactions committed after the writer was freed.
	lane := func() ([]seen, int64) {
		busy, release := make(chan struct{}), make(chan struct{})
		go db.write(ctx, func(context.Context, *sql.Tx) error {
			close(busy)
			<-release
			return nil
		})
		<-busy
		var mu sync.Mutex
		var got []seen
		observe := func(name string) func(context.Context, *sql.Tx) error {
			return func(ctx context.Context, tx *sql.Tx) error {
				var level int
				if err := tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO probe (id, at) VALUES (1, 0)
					ON CONFLICT (id) DO UPDATE SET at = at + 1`); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				got = append(got, seen{name, level})
				return nil
			}
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); db.write(ctx, observe("durable")) }()
		time.Sleep(20 * time.Millisecond) // queued first
		go func() { defer wg.Done(); db.writeLazy(ctx, observe("lazy")) }()
		time.Sleep(20 * time.Millisecond)
		before := db.commits.Load()
		close(release)
		wg.Wait()
		return got, db.commits.Load() - before
	}
	// The writes must be waiting when the writer is freed; a slow start of
	// either goroutine puts it in a batch of its own, so try again.
	for range 5 {
		got, commits := lane()
		if commits != 3 { // the blocker's batch, then one per lane
			continue
		}
		want := []seen{{"lazy", 1}, {"durable", 2}}
		if !slices.Equal(got, want) {
			t.Fatalf("writes of one batch ran as %v, want %v: the lazy one first, at NORMAL, then the durable one at FULL", got, want)
		}
		return
	}
	t.Fatal("the two writes never shared a batch in 5 tries")
}

// TestWrite_CancelledCallerSpoilsNothing cancels one caller's context
// while its write runs inside a shared batch: the other writes of the
// batch must still commit.
func TestWrite_CancelledCallerSpoilsNothing(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			cancel() // the caller goes away mid-write
			_, err := tx.ExecContext(ctx, `INSERT INTO probe (id, at) VALUES (1, 1)`)
			return err
		})
	}()
	<-started
	_, err := db.Accept(context.Background(), Event{Platform: "p", Key: "other", Type: "t", ReceivedAt: time.Now(),
		Body: []byte("{}")}, nil)
	wg.Wait()
	if err != nil {
		t.Fatalf("an unrelated Accept failed because another caller was cancelled: %v", err)
	}
	var n int
	db.read.QueryRow(`SELECT count(*) FROM events`).Scan(&n)
	if n != 1 {
		t.Fatalf("events = %d, want the unrelated event stored", n)
	}
}
