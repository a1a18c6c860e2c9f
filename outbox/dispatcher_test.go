package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

type testErr struct {
	permanent bool
	after     time.Duration
}

func (e testErr) Error() string             { return "test failure" }
func (e testErr) Permanent() bool           { return e.permanent }
func (e testErr) RetryAfter() time.Duration { return e.after }

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func states(tb testing.TB, db *outbox.DB) map[string]outbox.Delivery {
	m := map[string]outbox.Delivery{}
	for _, d := range mustList(tb, db, outbox.Filter{Limit: 1000}) {
		m[d.Key] = d
	}
	return m
}

func TestDispatcher(t *testing.T) {
	db := MustOpenDB(t)
	var mu sync.Mutex
	sent := map[string]int{}
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		mu.Lock()
		sent[m.Key]++
		n := sent[m.Key]
		mu.Unlock()
		switch m.Key {
		case "flaky":
			if n == 1 {
				return outbox.Receipt{Status: 503}, testErr{after: time.Millisecond}
			}
		case "bad":
			return outbox.Receipt{Status: 400}, testErr{permanent: true}
		}
		return outbox.Receipt{Status: 201, RecordID: "rec-" + m.Key}, nil
	}
	policy := outbox.DefaultRetryPolicy()
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: send, Retry: policy}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ok", "flaky", "bad"} {
		mustAccept(t, db, "e-"+k, "crm", k)
	}
	d.Notify("crm")
	waitFor(t, "all deliveries to finish", func() bool {
		s := states(t, db)
		return s["ok"].State == outbox.StateDelivered && s["flaky"].State == outbox.StateDelivered &&
			s["bad"].State == outbox.StateDead
	})
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := states(t, db)
	if s["flaky"].Attempts != 2 || s["ok"].Attempts != 1 || s["bad"].Attempts != 1 {
		t.Errorf("attempts: ok %d, flaky %d, bad %d; want 1, 2, 1", s["ok"].Attempts, s["flaky"].Attempts, s["bad"].Attempts)
	}
	if sent["ok"] != 1 || sent["flaky"] != 2 || sent["bad"] != 1 {
		t.Errorf("sends = %v, want ok 1, flaky 2, bad 1", sent)
	}
	if s["ok"].RecordID != "rec-ok" || s["flaky"].RecordID != "rec-flaky" || s["bad"].RecordID != "" {
		t.Errorf("record ids: ok %q, flaky %q, bad %q; want the target's ids of the delivered records only",
			s["ok"].RecordID, s["flaky"].RecordID, s["bad"].RecordID)
	}
	res, err := db.Show(context.Background(), s["flaky"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Attempts); n != 2 || res.Attempts[0].RecordID != "" || res.Attempts[1].RecordID != "rec-flaky" {
		t.Errorf("flaky attempts = %+v, want the record id on the delivering attempt only", res.Attempts)
	}
}

func TestDispatcher_SlowTargetDoesNotBlockOthers(t *testing.T) {
	db := MustOpenDB(t)
	release := make(chan struct{})
	var sending atomic.Int32
	slow := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		sending.Add(1)
		defer sending.Add(-1)
		select {
		case <-release:
			return outbox.Receipt{Status: 200}, nil
		case <-ctx.Done():
			return outbox.Receipt{}, ctx.Err()
		}
	}
	fast := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		return outbox.Receipt{Status: 200}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{
		{Name: "slow", Send: slow, Concurrency: 1, Retry: outbox.DefaultRetryPolicy()},
		{Name: "fast", Send: fast, Retry: outbox.DefaultRetryPolicy()},
	}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	for i := range 3 {
		mustAccept(t, db, "s"+string(rune('a'+i)), "slow", "s"+string(rune('a'+i)))
		mustAccept(t, db, "f"+string(rune('a'+i)), "fast", "f"+string(rune('a'+i)))
	}
	d.Notify("slow")
	d.Notify("fast")
	waitFor(t, "the fast target's deliveries", func() bool {
		n := 0
		for _, dl := range mustList(t, db, outbox.Filter{Target: "fast"}) {
			if dl.State == outbox.StateDelivered {
				n++
			}
		}
		return n == 3
	})
	// Running rows may include deliveries claimed ahead; sends in flight
	// are what the concurrency bounds.
	if n := sending.Load(); n != 1 {
		t.Errorf("slow target has %d sends in flight, want 1 (its concurrency)", n)
	}
	close(release)
}

func TestDispatcher_CloseCancelsInflightAndKeepsThem(t *testing.T) {
	db := MustOpenDB(t)
	var started atomic.Int32
	hang := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		started.Add(1)
		<-ctx.Done()
		return outbox.Receipt{}, ctx.Err()
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: hang, Retry: outbox.DefaultRetryPolicy()}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	mustAccept(t, db, "e1", "crm", "k1")
	d.Notify("crm")
	waitFor(t, "the send to start", func() bool { return started.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline reported", err)
	}
	got := states(t, db)["k1"]
	if got.State != outbox.StateRetrying || got.LastError == "" {
		t.Fatalf("after a cancelled send the delivery is %+v, want retrying, due at the next start", got)
	}
}

func TestDispatcher_OpenReturnsRunningRowsOfADeadProcess(t *testing.T) {
	db := MustOpenDB(t)
	mustAccept(t, db, "e1", "crm", "k1")
	// A previous process claimed k1 with a long lease and died.
	if _, err := db.Claim(context.Background(), "crm", 1, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	delivered := make(chan string, 1)
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		delivered <- m.Key
		return outbox.Receipt{Status: 200}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: send, Retry: outbox.DefaultRetryPolicy()}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	select {
	case k := <-delivered:
		if k != "k1" {
			t.Fatalf("delivered %q, want k1", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interrupted delivery was not sent again after Open; it waits for its one-hour lease")
	}
}

func TestDispatcher_OnePerDatabase(t *testing.T) {
	db := MustOpenDB(t)
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		return outbox.Receipt{Status: 200}, nil
	}
	newD := func() *outbox.Dispatcher {
		return &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: send, Retry: outbox.DefaultRetryPolicy()}}}
	}
	first := newD()
	if err := first.Open(); err != nil {
		t.Fatal(err)
	}
	if err := newD().Open(); err == nil || !strings.Contains(err.Error(), "another ctibridge") {
		t.Fatalf("second Open = %v, want it refused while the first runs", err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := newD()
	if err := second.Open(); err != nil {
		t.Fatalf("Open after the first closed = %v, want success", err)
	}
	second.Close(context.Background())
}

// TestDispatcher_BreakerPausesFailingTarget checks that a target that
// keeps failing is paused after BreakerFailures attempts in a row: its
// other deliveries wait without using attempts, and resume once a probe
// succeeds.
func TestDispatcher_BreakerPausesFailingTarget(t *testing.T) {
	db := MustOpenDB(t)
	var mu sync.Mutex
	down := true
	sends := 0
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		mu.Lock()
		defer mu.Unlock()
		sends++
		if down {
			return outbox.Receipt{Status: 503}, testErr{after: time.Millisecond}
		}
		return outbox.Receipt{Status: 200}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: send, Concurrency: 1,
		Retry: outbox.DefaultRetryPolicy(), BreakerFailures: 3, BreakerCooldown: 300 * time.Millisecond}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	for i := range 10 {
		mustAccept(t, db, fmt.Sprint("e", i), "crm", fmt.Sprint("k", i))
	}
	d.Notify("crm")
	waitFor(t, "the breaker to open", func() bool { return d.Status()["crm"].Breaker == outbox.BreakerOpen })
	mu.Lock()
	atOpen := sends
	mu.Unlock()
	time.Sleep(150 * time.Millisecond) // within the cooldown
	mu.Lock()
	if sends != atOpen {
		t.Errorf("%d sends while the breaker was open, want none", sends-atOpen)
	}
	down = false
	mu.Unlock()
	waitFor(t, "every delivery after recovery", func() bool {
		return len(mustList(t, db, outbox.Filter{State: outbox.StateDelivered})) == 10
	})
	if st := d.Status()["crm"]; st.Breaker != outbox.BreakerClosed {
		t.Errorf("breaker = %+v after recovery, want closed", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if sends > 10+3+1 {
		t.Errorf("%d sends for 10 deliveries: the paused target was hammered", sends)
	}
}

func TestDispatcher_RateLimit(t *testing.T) {
	db := MustOpenDB(t)
	var mu sync.Mutex
	var at []time.Time
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return outbox.Receipt{Status: 200}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Send: send, Concurrency: 8,
		Retry: outbox.DefaultRetryPolicy(), RateLimit: 20}}}
	for i := range 30 {
		mustAccept(t, db, fmt.Sprint("e", i), "crm", fmt.Sprint("k", i))
	}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	waitFor(t, "all 30 deliveries", func() bool {
		return len(mustList(t, db, outbox.Filter{State: outbox.StateDelivered})) == 30
	})
	mu.Lock()
	defer mu.Unlock()
	// 20 at once (the burst), then 10 more at 20/s: at least ~0.5s.
	if span := at[len(at)-1].Sub(at[0]); span < 400*time.Millisecond {
		t.Errorf("30 sends at 20/s took %v, want at least ~500ms", span)
	}
}

// TestDispatcher_BreakerProbesNewDeliveries reproduces a review finding:
// the only failed delivery retries in an hour, the breaker's cooldown ends,
// and a new delivery arrives. It must be sent as the probe, not wait
// forever behind a half-open breaker whose probe found nothing due.
func TestDispatcher_BreakerProbesNewDeliveries(t *testing.T) {
	db := MustOpenDB(t)
	var mu sync.Mutex
	sent := map[string]int{}
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		mu.Lock()
		defer mu.Unlock()
		sent[m.Key]++
		if m.Key == "first" {
			return outbox.Receipt{Status: 503}, testErr{after: time.Hour}
		}
		return outbox.Receipt{Status: 200}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), PollInterval: 20 * time.Millisecond, Targets: []outbox.Target{{Name: "crm", Send: send,
		Retry: outbox.DefaultRetryPolicy(), BreakerFailures: 1, BreakerCooldown: 50 * time.Millisecond}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	mustAccept(t, db, "e1", "crm", "first")
	d.Notify("crm")
	waitFor(t, "the breaker to open", func() bool { return d.Status()["crm"].Breaker == outbox.BreakerOpen })
	time.Sleep(150 * time.Millisecond) // the cooldown ends with nothing due
	mustAccept(t, db, "e2", "crm", "second")
	d.Notify("crm")
	waitFor(t, "the new delivery to be sent", func() bool {
		return states(t, db)["second"].State == outbox.StateDelivered
	})
	if st := d.Status()["crm"]; st.Breaker != outbox.BreakerClosed {
		t.Errorf("breaker = %+v after the probe succeeded, want closed", st)
	}
}

func TestDispatcher_SendBatch(t *testing.T) {
	db := MustOpenDB(t)
	var mu sync.Mutex
	var sizes []int
	tries := map[string]int{}
	sendBatch := func(ctx context.Context, ms []outbox.Message) ([]outbox.Receipt, []error) {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(ms))
		rs, errs := make([]outbox.Receipt, len(ms)), make([]error, len(ms))
		for i, m := range ms {
			tries[m.Key]++
			switch {
			case m.Key == "k7":
				rs[i], errs[i] = outbox.Receipt{Status: 200}, testErr{permanent: true}
			case m.Key == "k8" && tries[m.Key] == 1:
				rs[i], errs[i] = outbox.Receipt{Status: 200}, testErr{after: time.Millisecond}
			default:
				rs[i] = outbox.Receipt{Status: 201, RecordID: "rec-" + m.Key}
			}
		}
		return rs, errs
	}
	for i := range 450 {
		mustAccept(t, db, fmt.Sprint("e", i), "crm", fmt.Sprint("k", i))
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", SendBatch: sendBatch,
		Concurrency: 2, Retry: outbox.DefaultRetryPolicy()}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	waitFor(t, "every delivery to finish", func() bool {
		return len(mustList(t, db, outbox.Filter{State: outbox.StateDelivered, Limit: 1000})) == 449
	})
	s := states(t, db)
	if s["k7"].State != outbox.StateDead || s["k8"].Attempts != 2 || s["k1"].Attempts != 1 || s["k1"].RecordID != "rec-k1" {
		t.Errorf("k7 %s, k8 %d attempts, k1 %d attempts %q: want dead, 2, 1 rec-k1", s["k7"].State, s["k8"].Attempts, s["k1"].Attempts, s["k1"].RecordID)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		if n > 200 {
			t.Errorf("a batch of %d, want at most BatchSize 200", n)
		}
		total += n
	}
	if total != 451 || len(sizes) > 4 {
		t.Errorf("batches %v: want 451 messages (k8 twice) in at most 4 batches", sizes)
	}
}

func TestDispatcher_SendBatchShortAnswer(t *testing.T) {
	db := MustOpenDB(t)
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Retry: outbox.DefaultRetryPolicy(),
		SendBatch: func(ctx context.Context, ms []outbox.Message) ([]outbox.Receipt, []error) { return nil, nil }}}}
	mustAccept(t, db, "e1", "crm", "k1")
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	waitFor(t, "the attempt to be recorded", func() bool { return states(t, db)["k1"].State == outbox.StateRetrying })
	res, err := db.Show(context.Background(), states(t, db)["k1"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Attempts[0]; a.Outcome != outbox.OutcomeRetry || !strings.Contains(a.Error, "0 receipts and 0 errors for a batch of 1") {
		t.Errorf("attempt = %+v, want a retry saying the target's answer was short", a)
	}
}

// bodyErr is a failure that carries the target's answer, as
// connector.DeliveryError does.
type bodyErr struct{ body string }

func (e bodyErr) Error() string        { return "HTTP 400: " + e.body }
func (e bodyErr) Permanent() bool      { return true }
func (e bodyErr) ResponseBody() string { return e.body }

// TestDispatcher_LogsNoRecordData: a CRM that quotes the record in its
// answer (a name, a number) has that answer kept with the attempt, but the
// log above debug names the delivery and the class of failure, not the
// answer.
func TestDispatcher_LogsNoRecordData(t *testing.T) {
	db := MustOpenDB(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	const answer = `{"message":"duplicate of Maria Lopez, +14155550142"}`
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		return outbox.Receipt{Status: 400}, bodyErr{answer}
	}
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Logger: logger,
		Targets: []outbox.Target{{Name: "crm", Send: send, Retry: outbox.DefaultRetryPolicy()}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	mustAccept(t, db, "e1", "crm", "k1")
	d.Notify("crm")
	waitFor(t, "the delivery to be dead", func() bool { return states(t, db)["k1"].State == outbox.StateDead })
	res, err := db.Show(context.Background(), states(t, db)["k1"].ID)
	if err != nil || len(res.Attempts) != 1 || res.Attempts[0].ResponseBody != answer {
		t.Fatalf("attempts = %+v, %v; want the CRM's answer kept", res.Attempts, err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if strings.Contains(out, "Maria") || strings.Contains(out, "4155550142") {
		t.Errorf("the log shows the record's data:\n%s", out)
	}
	if !strings.Contains(out, "delivery failed permanently") || !strings.Contains(out, "outbox show 1") ||
		!strings.Contains(out, "error_class=http_4xx") {
		t.Errorf("the log does not say which delivery failed and how:\n%s", out)
	}
}

// lockedWriter serializes writes from the dispatcher's goroutines.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
