package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// mustFail claims key's delivery at now and records a failed attempt with
// outcome o, answered with status and body.
func mustFail(tb testing.TB, db *outbox.DB, target, key string, now time.Time, o outbox.Outcome, status int, body string) {
	tb.Helper()
	ctx := context.Background()
	msgs, err := db.Claim(ctx, target, 100, now, time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Key != key {
		tb.Fatalf("claimed %+v, want only %s", msgs, key)
	}
	a := outbox.Attempt{Outcome: o, StartedAt: now, Latency: 42 * time.Millisecond, Status: status,
		Class: "http_4xx", Error: "HTTP " + body, ResponseBody: body, NextAttemptAt: now}
	if err := db.Record(ctx, msgs[0], a, now); err != nil {
		tb.Fatal(err)
	}
}

// idOf returns the id of the delivery with key.
func idOf(tb testing.TB, db *outbox.DB, key string) int64 {
	tb.Helper()
	d, ok := states(tb, db)[key]
	if !ok {
		tb.Fatalf("no delivery %s", key)
	}
	return d.ID
}

func TestDB_Show(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		mustAccept(t, db, "e1", "crm", "k1")
		mustFail(t, db, "crm", "k1", t0, outbox.OutcomeRetry, 503, "busy")
		mustFail(t, db, "crm", "k1", t0.Add(time.Minute), outbox.OutcomeDead, 400, `{"message":"REQUIRED_FIELD_MISSING"}`)

		res, err := db.Show(ctx, idOf(t, db, "k1"))
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Delivery; d.Key != "k1" || d.Target != "crm" || d.State != outbox.StateDead || d.Attempts != 2 ||
			d.LastStatus != 400 {
			t.Errorf("delivery = %+v, want k1 to crm, dead after 2 attempts, last status 400", d)
		}
		if got, want := string(res.Payload), `{"key":"k1"}`; got != want {
			t.Errorf("payload = %s, want %s", got, want)
		}
		if !res.AcceptedAt.Equal(t0) {
			t.Errorf("AcceptedAt = %v, want %v", res.AcceptedAt, t0)
		}
		if len(res.Attempts) != 2 {
			t.Fatalf("attempts = %+v, want 2", res.Attempts)
		}
		a1, a2 := res.Attempts[0], res.Attempts[1]
		if a1.Attempt != 1 || a1.Outcome != outbox.OutcomeRetry || a1.Status != 503 || a1.ResponseBody != "busy" ||
			!a1.StartedAt.Equal(t0) || a1.Latency != 42*time.Millisecond || a1.Window != 1 {
			t.Errorf("first attempt = %+v, want attempt 1, retry, 503 busy at t0 in 42ms, window 1", a1)
		}
		if a2.Attempt != 2 || a2.Outcome != outbox.OutcomeDead || a2.Status != 400 || a2.ErrorClass != "http_4xx" ||
			a2.ResponseBody != `{"message":"REQUIRED_FIELD_MISSING"}` || a2.Error == "" || a2.Window != 1 {
			t.Errorf("second attempt = %+v, want attempt 2, dead, 400 with the CRM's message", a2)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		db := MustOpenDB(t)
		mustAccept(t, db, "e1", "crm", "k1")
		mustFail(t, db, "crm", "k1", t0, outbox.OutcomeDead, 400, "no")
		res, err := db.Show(ctx, idOf(t, db, "k1"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Delivery struct{ State string }
			Payload  map[string]string
			Attempts []map[string]any
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Delivery.State != "dead" || got.Payload["key"] != "k1" || len(got.Attempts) != 1 ||
			got.Attempts[0]["latencyMs"] != float64(42) || got.Attempts[0]["responseBody"] != "no" {
			t.Errorf("JSON = %s, want the payload embedded as JSON and the attempt with latencyMs 42", b)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.Show(ctx, 99); !errors.Is(err, outbox.ErrNotFound) {
			t.Fatalf("Show(99) = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_Retry(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(48 * time.Hour)
	t.Run("OK", func(t *testing.T) {
		db := MustOpenDB(t)
		mustAccept(t, db, "e1", "crm", "dead")
		mustFail(t, db, "crm", "dead", t0, outbox.OutcomeDead, 400, "bad")
		id := idOf(t, db, "dead")
		n, err := db.Retry(ctx, []int64{id, id}, now)
		if err != nil || n != 1 {
			t.Fatalf("Retry = %d, %v; want 1 moved", n, err)
		}
		d := states(t, db)["dead"]
		if d.State != outbox.StateRetrying || d.Attempts != 0 || !d.NextAttemptAt.Equal(now) ||
			!d.CreatedAt.Equal(now) || !d.FinishedAt.IsZero() || d.LastError == "" {
			t.Fatalf("retried = %+v, want retrying, due now, in a fresh window, with its last error kept", d)
		}
		msgs, err := db.Claim(ctx, "crm", 1, now, time.Minute)
		if err != nil || len(msgs) != 1 || msgs[0].Attempt != 1 || !msgs[0].CreatedAt.Equal(now) {
			t.Fatalf("Claim after Retry = %+v, %v; want attempt 1 of a window opened now", msgs, err)
		}
		if err := db.Record(ctx, msgs[0], outbox.Attempt{Outcome: outbox.OutcomeDelivered, StartedAt: now, Status: 201}, now); err != nil {
			t.Fatal(err)
		}
		res, err := db.Show(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Attempts) != 2 || res.Attempts[0].Window != 1 || res.Attempts[1].Window != 2 ||
			res.Attempts[1].Outcome != outbox.OutcomeDelivered || !res.AcceptedAt.Equal(t0) {
			t.Errorf("history = %+v accepted %v, want the dead attempt in window 1, the delivery in window 2, accepted at t0",
				res.Attempts, res.AcceptedAt)
		}
	})
	t.Run("ReportsWhatItLeaves", func(t *testing.T) {
		db := MustOpenDB(t)
		mustAccept(t, db, "e1", "crm", "dead")
		mustFail(t, db, "crm", "dead", t0, outbox.OutcomeDead, 400, "bad")
		mustAccept(t, db, "e2", "crm", "pending")
		dead, pending := idOf(t, db, "dead"), idOf(t, db, "pending")
		n, err := db.Retry(ctx, []int64{pending, 404, dead}, now)
		if n != 1 {
			t.Errorf("Retry moved %d, want 1: the dead one, despite the others", n)
		}
		if !errors.Is(err, outbox.ErrNotFound) || !errors.Is(err, outbox.ErrNotDead) {
			t.Fatalf("Retry error = %v, want ErrNotFound (404) and ErrNotDead (pending)", err)
		}
		if got := states(t, db); got["dead"].State != outbox.StateRetrying || got["pending"].State != outbox.StatePending {
			t.Errorf("states = %+v, want dead retried, pending untouched", got)
		}
	})
	t.Run("Force", func(t *testing.T) {
		db := MustOpenDB(t)
		mustAccept(t, db, "e1", "crm", "waiting")
		later := t0.Add(time.Hour)
		msgs, _ := db.Claim(ctx, "crm", 1, t0, time.Minute)
		if err := db.Record(ctx, msgs[0], outbox.Attempt{Outcome: outbox.OutcomeRetry, StartedAt: t0, Status: 503,
			Error: "down", NextAttemptAt: later}, t0); err != nil {
			t.Fatal(err)
		}
		id := idOf(t, db, "waiting")
		if _, err := db.Retry(ctx, []int64{id}, t0); !errors.Is(err, outbox.ErrNotDead) {
			t.Fatalf("Retry of a retrying delivery = %v, want ErrNotDead without force", err)
		}
		n, err := db.RetryForce(ctx, []int64{id}, t0.Add(time.Second))
		if err != nil || n != 1 {
			t.Fatalf("RetryForce = %d, %v; want 1", n, err)
		}
		d := states(t, db)["waiting"]
		if !d.NextAttemptAt.Equal(t0.Add(time.Second)) || d.Attempts != 1 || !d.CreatedAt.Equal(t0) {
			t.Errorf("forced = %+v, want due now with its attempts and window kept", d)
		}
	})
}

func TestDB_RetryDead(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	for _, k := range []string{"a", "b"} {
		mustAccept(t, db, "e"+k, "crm", k)
		mustFail(t, db, "crm", k, t0, outbox.OutcomeDead, 400, "bad")
	}
	mustAccept(t, db, "ec", "other", "c")
	mustFail(t, db, "other", "c", t0, outbox.OutcomeDead, 400, "bad")
	mustAccept(t, db, "ed", "crm", "d") // pending: not touched

	n, err := db.RetryDead(ctx, "crm", t0)
	if err != nil || n != 2 {
		t.Fatalf("RetryDead(crm) = %d, %v; want 2", n, err)
	}
	s := states(t, db)
	if s["a"].State != outbox.StateRetrying || s["b"].State != outbox.StateRetrying || s["c"].State != outbox.StateDead ||
		s["d"].State != outbox.StatePending {
		t.Fatalf("states = %+v, want a and b retrying, c (other target) dead, d pending", s)
	}
	if n, err := db.RetryDead(ctx, "", t0); err != nil || n != 1 {
		t.Fatalf("RetryDead(all) = %d, %v; want 1 (c)", n, err)
	}
	if n, err := db.RetryDead(ctx, "", t0); err != nil || n != 0 {
		t.Fatalf("RetryDead with none dead = %d, %v; want 0", n, err)
	}
}

func TestDB_Stats(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := t0.Add(time.Hour)
	mustAccept(t, db, "e1", "crm", "dead")
	mustFail(t, db, "crm", "dead", t0, outbox.OutcomeDead, 400, "bad")
	mustAccept(t, db, "e2", "crm", "pending")
	mustAccept(t, db, "e3", "file", "delivered")
	msgs, _ := db.Claim(ctx, "file", 1, t0, time.Minute)
	if err := db.Record(ctx, msgs[0], outbox.Attempt{Outcome: outbox.OutcomeDelivered, StartedAt: t0}, t0); err != nil {
		t.Fatal(err)
	}
	failed := event("e4")
	failed.MappingError = "boom"
	if _, err := db.Accept(ctx, failed, nil); err != nil {
		t.Fatal(err)
	}

	s, err := db.Stats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dead != 1 || s.Events != 4 || s.MappingFailed != 1 || len(s.Targets) != 2 {
		t.Fatalf("Stats = %+v, want 1 dead, 4 events, 1 mapping failed, 2 targets", s)
	}
	crm, file := s.Targets[0], s.Targets[1]
	if crm.Target != "crm" || crm.Pending != 1 || crm.Dead != 1 || crm.Delivered != 0 ||
		!crm.OldestWaiting.Equal(t0) || crm.OldestWaitingAge != time.Hour {
		t.Errorf("crm = %+v, want 1 pending (waiting since t0, 1h old), 1 dead", crm)
	}
	if file.Target != "file" || file.Delivered != 1 || file.Pending != 0 || !file.OldestWaiting.IsZero() {
		t.Errorf("file = %+v, want 1 delivered and nothing waiting", file)
	}
	b, _ := json.Marshal(crm)
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil || j["oldestWaitingSeconds"] != float64(3600) || j["pending"] != float64(1) {
		t.Errorf("JSON = %s, want pending 1 and oldestWaitingSeconds 3600", b)
	}
}

// TestDB_RetriedDeadIsDelivered checks the point of Retry: a delivery given
// up after all its attempts and past its maximum age, once retried, gets a
// fresh retry window from a running Dispatcher. A transient failure right
// after the retry is retried, not given up at once.
func TestDB_RetriedDeadIsDelivered(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	policy := outbox.DefaultRetryPolicy()
	policy.MaxAttempts = 3
	clock := clockAt(t0)
	accepted := t0.Add(-2 * policy.MaxAge)
	ev := event("e1")
	ev.ReceivedAt = accepted
	if _, err := db.Accept(ctx, ev, []outbox.NewDelivery{{Target: "crm", Key: "k1", Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	// Given up: every attempt used and long past its age.
	for i := range policy.MaxAttempts {
		o := outbox.OutcomeRetry
		if i == policy.MaxAttempts-1 {
			o = outbox.OutcomeDead
		}
		mustFail(t, db, "crm", "k1", accepted, o, 503, "down")
	}
	id := idOf(t, db, "k1")

	var mu sync.Mutex
	var sends []int
	send := func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
		mu.Lock()
		defer mu.Unlock()
		sends = append(sends, m.Attempt)
		if len(sends) == 1 {
			return outbox.Receipt{Status: 503}, testErr{after: time.Millisecond} // still recovering
		}
		return outbox.Receipt{Status: 201}, nil
	}
	d := &outbox.Dispatcher{DB: db, Now: clock, Targets: []outbox.Target{{Name: "crm", Send: send, Retry: policy}}}
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	if n, err := db.Retry(ctx, []int64{id}, clock()); err != nil || n != 1 {
		t.Fatalf("Retry = %d, %v; want 1", n, err)
	}
	d.Notify("crm")
	waitFor(t, "the retried delivery to finish", func() bool {
		st := states(t, db)["k1"].State
		return st == outbox.StateDelivered || st == outbox.StateDead
	})
	res, err := db.Show(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivery.State != outbox.StateDelivered {
		t.Fatalf("retried delivery = %+v, last attempts %+v; want delivered, not given up again",
			res.Delivery, res.Attempts[len(res.Attempts)-1])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sends) != 2 || sends[0] != 1 || sends[1] != 2 {
		t.Errorf("sends = %v, want attempts 1 and 2 of the new window", sends)
	}
	if n := len(res.Attempts); n != policy.MaxAttempts+2 || res.Attempts[n-1].Window != 2 || res.Attempts[0].Window != 1 {
		t.Errorf("history = %+v, want the %d old attempts (window 1) and 2 new ones (window 2)", res.Attempts, policy.MaxAttempts)
	}
}
