package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// A dispatcher claims up to sixteen deliveries per send slot ahead of the
// sends.
// None of them may be lost, sent twice, or charged an attempt it did not
// make: these tests hold it to that at shutdown, when the breaker opens,
// and when a claim waited too long to start.

// acceptKeys accepts events k1 … kn, each with one delivery to crm.
func acceptKeys(tb testing.TB, db *outbox.DB, n int) {
	tb.Helper()
	for i := range n {
		k := fmt.Sprintf("k%d", i+1)
		mustAccept(tb, db, k, "crm", k)
	}
}

func TestDispatcher_ClaimsAheadAndGivesThemBackAtClose(t *testing.T) {
	db := MustOpenDB(t)
	acceptKeys(t, db, 20)
	var sends atomic.Int32
	hang := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		sends.Add(1)
		<-ctx.Done()
		return outbox.Receipt{}, ctx.Err()
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: hang, Concurrency: 1,
		Retry: outbox.DefaultRetryPolicy()}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first send", func() bool { return sends.Load() == 1 })
	// One claim took the free slot's delivery and fifteen ahead: 1 + 16
	// rounded down to a claim size with a statement of its own.
	if n := len(mustList(t, db, outbox.Filter{State: outbox.StateRunning})); n != 16 {
		t.Fatalf("%d deliveries running, want 16: one sending and fifteen claimed ahead", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d.Close(ctx)
	got := states(t, db)
	if k1 := got["k1"]; k1.State != outbox.StateRetrying || k1.Attempts != 1 {
		t.Errorf("k1, whose send was cancelled, is %s with %d attempts; want retrying with 1", k1.State, k1.Attempts)
	}
	for i := 2; i <= 20; i++ {
		k := fmt.Sprintf("k%d", i)
		if d := got[k]; d.State != outbox.StatePending || d.Attempts != 0 {
			t.Errorf("%s is %s with %d attempts after Close; want pending with 0, as before its claim", k, d.State, d.Attempts)
		}
	}
	if n := sends.Load(); n != 1 {
		t.Errorf("%d sends, want 1", n)
	}
}

func TestDispatcher_OpenBreakerGivesBackClaimsAhead(t *testing.T) {
	db := MustOpenDB(t)
	acceptKeys(t, db, 5)
	var sends atomic.Int32
	down := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		sends.Add(1)
		return outbox.Receipt{Status: 503}, errors.New("503 Service Unavailable")
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: down, Concurrency: 1,
		Retry: outbox.DefaultRetryPolicy(), BreakerFailures: 1, BreakerCooldown: time.Hour}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	waitFor(t, "the claims ahead given back", func() bool {
		return len(mustList(t, db, outbox.Filter{State: outbox.StatePending})) == 4 &&
			len(mustList(t, db, outbox.Filter{State: outbox.StateRetrying})) == 1
	})
	if n := sends.Load(); n != 1 {
		t.Errorf("%d sends, want 1: the breaker opened after the first failure", n)
	}
	for k, dl := range states(t, db) {
		if want := map[outbox.State]int{outbox.StatePending: 0, outbox.StateRetrying: 1}[dl.State]; dl.Attempts != want {
			t.Errorf("%s is %s with %d attempts, want %d: a paused target burns no attempts", k, dl.State, dl.Attempts, want)
		}
	}
}

// TestDispatcher_StaleClaimsAheadAreNotSent holds the first send until the
// clock has moved past the whole lease and the rescuer has handed the
// deliveries claimed ahead out again: the sender must not go on with its
// stale copies, or each would be sent twice, once for each claim. (k1,
// whose send outlived its whole lease, is sent again by design: the lease
// is sized so that a send never does.)
func TestDispatcher_StaleClaimsAheadAreNotSent(t *testing.T) {
	db := MustOpenDB(t)
	acceptKeys(t, db, 4)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	hold := make(chan struct{})
	var mu sync.Mutex
	sent := map[string][]int{} // key → the attempt numbers it was sent with
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		mu.Lock()
		sent[m.Key] = append(sent[m.Key], m.Attempt)
		first := len(sent) == 1
		mu.Unlock()
		if first {
			<-hold
		}
		return outbox.Receipt{Status: 200}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: now, Lease: time.Minute, Targets: []outbox.Target{{Name: "crm", Send: send,
		Concurrency: 1, Retry: outbox.DefaultRetryPolicy()}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	waitFor(t, "the first send", func() bool { mu.Lock(); defer mu.Unlock(); return len(sent) == 1 })
	clock.Add(int64(61 * time.Second))
	if n, err := db.Rescue(context.Background(), now()); err != nil || n != 4 {
		t.Fatalf("Rescue = %d, %v; want the four expired claims handed out again", n, err)
	}
	close(hold)
	waitFor(t, "all four delivered", func() bool {
		return len(mustList(t, db, outbox.Filter{State: outbox.StateDelivered})) == 4
	})
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []string{"k2", "k3", "k4"} {
		if attempts := sent[k]; len(attempts) != 1 {
			t.Errorf("%s sent with attempt numbers %v, want once", k, attempts)
		}
	}
}

func TestDB_Release(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustAccept(t, db, "e1", "crm", "new")
	mustAccept(t, db, "e2", "crm", "again")
	// "again" failed once and is claimed for its second attempt.
	ms, err := db.Claim(ctx, "crm", 1, t0, time.Minute)
	if err != nil || len(ms) != 1 || ms[0].Key != "new" {
		t.Fatalf("Claim = %+v, %v", ms, err)
	}
	ms2, err := db.Claim(ctx, "crm", 1, t0, time.Minute)
	if err != nil || len(ms2) != 1 {
		t.Fatalf("Claim = %+v, %v", ms2, err)
	}
	if err := db.Record(ctx, ms2[0], outbox.Attempt{Outcome: outbox.OutcomeRetry, StartedAt: t0, Status: 503,
		Error: "503", NextAttemptAt: t0}, t0); err != nil {
		t.Fatal(err)
	}
	ms2, err = db.Claim(ctx, "crm", 1, t0, time.Minute)
	if err != nil || len(ms2) != 1 || ms2[0].Attempt != 2 {
		t.Fatalf("second claim of %q = %+v, %v", "again", ms2, err)
	}
	// A stale copy of the first claim of "again" changes nothing.
	stale := ms2[0]
	stale.Attempt = 1
	if err := db.Release(ctx, []outbox.Message{ms[0], ms2[0], stale}); err != nil {
		t.Fatal(err)
	}
	got := states(t, db)
	if d := got["new"]; d.State != outbox.StatePending || d.Attempts != 0 {
		t.Errorf("new after Release: %s, %d attempts; want pending, 0", d.State, d.Attempts)
	}
	if d := got["again"]; d.State != outbox.StateRetrying || d.Attempts != 1 || d.LastError != "503" {
		t.Errorf("again after Release: %s, %d attempts, last error %q; want retrying, 1, 503", d.State, d.Attempts, d.LastError)
	}
	// Both are due again.
	if ms, err := db.Claim(ctx, "crm", 2, t0, time.Minute); err != nil || len(ms) != 2 {
		t.Errorf("Claim after Release = %+v, %v; want both", ms, err)
	}
}
