package salesforce

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

func deliveries(n int, edit func(i int, a *connector.Activity)) []connector.Delivery {
	ds := make([]connector.Delivery, n)
	for i := range ds {
		key := fmt.Sprintf("genesys:call-%05d:log-call", i)
		ds[i] = connector.Delivery{Key: key, Attempt: 1, Body: activity(key, func(a *connector.Activity) {
			if edit != nil {
				edit(i, a)
			}
		})}
	}
	return ds
}

func TestDeliverBatch(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	fake.SetExternalID("Call_Log__c", "CallLogKey__c")
	tg := newTarget(t, config(fake), 5*time.Second)
	ds := deliveries(450, func(i int, a *connector.Activity) {
		switch i {
		case 3:
			a.Who.ID = "not-an-id"
		case 4:
			a.Object, a.Fields = "Call_Log__c", map[string]any{"Notes__c": "chat"}
		}
	})
	fake.Reject(ds[5].Key, "Calls need a disposition")
	// Delivered before: its Task exists, and TaskSubtype cannot be updated.
	before, err := tg.Deliver(t.Context(), ds[6])
	if err != nil {
		t.Fatal(err)
	}
	calls := fake.APICalls()

	results := tg.DeliverBatch(t.Context(), ds)
	for i := range ds {
		err := results[i].Err
		switch i {
		case 3:
			if !permanent(err) || !strings.Contains(err.Error(), "who.id") {
				t.Errorf("record 3: %v, want dead naming who.id", err)
			}
		case 5:
			if !permanent(err) || !strings.Contains(err.Error(), "Calls need a disposition") {
				t.Errorf("record 5: %v, want dead with the validation rule's message", err)
			}
		default:
			if err != nil {
				t.Errorf("record %d: %v", i, err)
				continue
			}
			if recs := fake.Records(ds[i].Key); len(recs) != 1 || results[i].Result.RecordID != recs[0] {
				t.Errorf("record %d: id %q, the fake holds %v", i, results[i].Result.RecordID, recs)
			}
		}
	}
	if results[6].Result.RecordID != before.RecordID {
		t.Errorf("the Task delivered before got id %q, was %q", results[6].Result.RecordID, before.RecordID)
	}
	if rec := fake.Record(results[4].Result.RecordID); rec["Notes__c"] != "chat" {
		t.Errorf("custom object record = %v", rec)
	}
	// Tasks: 200, 200, 47 (one invalid, one custom object); the custom
	// object: 1; the Task delivered before, again without TaskSubtype: 1.
	if n := fake.APICalls() - calls; n != 5 {
		t.Errorf("%d API calls for 450 records, want 5", n)
	}

	// A retry of the whole batch writes no second record.
	if r := tg.DeliverBatch(t.Context(), ds[:10]); r[0].Err != nil {
		t.Errorf("retry: %v", r[0].Err)
	}
	if n := len(fake.Records(ds[0].Key)); n != 1 {
		t.Errorf("%d records after a retried batch, want 1", n)
	}
}

func TestDeliverBatchWholeCallFails(t *testing.T) {
	for _, f := range []connectortest.Fault{
		{Kind: connectortest.ServerError},
		{Kind: connectortest.Throttled, RetryAfter: 30 * time.Second},
		{Kind: connectortest.Timeout},
		{Kind: connectortest.ResetAfterWrite},
		{Kind: connectortest.Malformed, Message: "<html>"},
	} {
		fake := connectortest.NewSalesforce(t)
		tg := newTarget(t, config(fake), 2*time.Second)
		ds := deliveries(3, nil)
		fake.FailNext(f)
		for i, r := range tg.DeliverBatch(t.Context(), ds) {
			var de *connector.DeliveryError
			if !errors.As(r.Err, &de) || de.Permanent() || de.RetryAfter() != f.RetryAfter {
				t.Errorf("%s: record %d: %v, want retryable after %v", f.Kind, i, r.Err, f.RetryAfter)
			}
		}
		for i, r := range tg.DeliverBatch(t.Context(), ds) {
			if r.Err != nil || len(fake.Records(ds[i].Key)) != 1 || r.Result.RecordID == "" {
				t.Errorf("%s: retry of record %d: %v, records %v", f.Kind, i, r.Err, fake.Records(ds[i].Key))
			}
		}
	}
}

// backlog returns a fresh outbox holding n call activities for the
// target "salesforce".
func backlog(tb testing.TB, n int) *outbox.DB {
	db := outbox.NewDB(filepath.Join(tb.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for _, d := range deliveries(n, nil) {
		ev := outbox.Event{Platform: "genesys", Key: d.Key, Type: "MARKDONE", ReceivedAt: time.Now(), Body: []byte("{}")}
		if _, err := db.Accept(context.Background(), ev, []outbox.NewDelivery{{Target: "salesforce", Key: d.Key, Payload: d.Body}}); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// drain delivers db's n activities to fake through a dispatcher that
// batches, and returns how long it took.
func drain(tb testing.TB, db *outbox.DB, fake *connectortest.Salesforce, n int) time.Duration {
	tg, err := New(config(fake), nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan struct{})
	var delivered atomic.Int64
	disp := &outbox.Dispatcher{DB: db, Targets: []outbox.Target{{
		Name: "salesforce", Retry: outbox.DefaultRetryPolicy(), BatchSize: MaxBatch,
		SendBatch: func(ctx context.Context, ms []outbox.Message) ([]outbox.Receipt, []error) {
			ds := make([]connector.Delivery, len(ms))
			for i, m := range ms {
				ds[i] = connector.Delivery{Key: m.Key, Body: m.Payload, Attempt: m.Attempt}
			}
			rs, errs := make([]outbox.Receipt, len(ms)), make([]error, len(ms))
			for i, r := range tg.DeliverBatch(ctx, ds) {
				rs[i], errs[i] = outbox.Receipt{Status: r.Result.Status, RecordID: r.Result.RecordID}, r.Err
			}
			return rs, errs
		},
	}}, OnAttempt: func(_ string, a outbox.Attempt) {
		if a.Outcome != outbox.OutcomeDelivered {
			tb.Errorf("attempt %+v", a)
		}
		// OnAttempt runs on the delivery goroutines.
		if delivered.Add(1) == int64(n) {
			close(done)
		}
	}}
	start := time.Now()
	if err := disp.Open(); err != nil {
		tb.Fatal(err)
	}
	<-done
	took := time.Since(start)
	disp.Close(ctx)
	return took
}

func TestBacklogDrainsInBatches(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	drain(t, backlog(t, 1000), fake, 1000)
	if n := fake.APICalls(); n > 5 {
		t.Errorf("1,000 records took %d API calls, want at most 5", n)
	}
}

// BenchmarkBacklog drains a backlog of 10,000 call records from the outbox
// into the Salesforce fake, and fails if it takes more than 100 API calls.
func BenchmarkBacklog(b *testing.B) {
	const n = 10000
	for range b.N {
		b.StopTimer()
		fake := connectortest.NewSalesforce(b)
		db := backlog(b, n)
		b.StartTimer()
		took := drain(b, db, fake, n)
		calls := fake.APICalls()
		if calls > 100 {
			b.Fatalf("10,000 records took %d API calls, want at most 100", calls)
		}
		b.ReportMetric(float64(n)/float64(calls), "records/call")
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
	}
}
