package outbox_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// BenchmarkDispatch measures the outbox's side of delivery: claiming,
// recording and committing b.N deliveries to a target that answers at
// once, with the default concurrency. Besides the time per delivery, it
// reports the process's CPU time per delivery (user and system, all
// threads), which a busy machine changes less than the time.
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
	cpu0 := cpuTime(b)
	if err := d.Open(); err != nil {
		b.Fatal(err)
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	d.Close(ctx)
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
