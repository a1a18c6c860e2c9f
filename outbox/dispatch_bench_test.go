package outbox_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ctibridge/ctibridge/outbox"
)

// BenchmarkDispatch measures the outbox's side of delivery: claiming,
// recording and committing b.N deliveries to a target that answers at
// once, with the default concurrency.
func BenchmarkDispatch(b *testing.B) {
	db := MustOpenDB(b)
	ctx := context.Background()
	payload := make([]byte, 600)
	for i := range b.N {
		k := fmt.Sprint(i)
		if _, err := db.Accept(ctx, outbox.Event{Platform: "p", Key: k, Type: "t", ReceivedAt: t0, Body: payload},
			[]outbox.NewDelivery{{Target: "crm", Key: k, Payload: payload}}); err != nil {
			b.Fatal(err)
		}
	}
	done := make(chan struct{})
	var n atomic.Int64 // OnAttempt runs on the delivery goroutines
	d := &outbox.Dispatcher{DB: db, Now: clockAt(t0), Targets: []outbox.Target{{Name: "crm", Retry: outbox.DefaultRetryPolicy(),
		Send: func(ctx context.Context, m outbox.Message) (outbox.Receipt, error) {
			return outbox.Receipt{Status: 200}, nil
		}}},
		OnAttempt: func(string, outbox.Attempt) {
			if n.Add(1) == int64(b.N) {
				close(done)
			}
		}}
	b.ResetTimer()
	if err := d.Open(); err != nil {
		b.Fatal(err)
	}
	<-done
	b.StopTimer()
	d.Close(ctx)
}
