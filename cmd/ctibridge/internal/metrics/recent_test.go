package metrics

import (
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// TestRecent counts events and attempts into the minute they ended in,
// forgets what is older than an hour, and reads buckets left from an
// earlier hour as empty.
func TestRecent(t *testing.T) {
	var r recent
	now := time.Date(2001, 2, 3, 10, 30, 20, 0, time.UTC)
	r.event(now)
	r.event(now.Add(-time.Minute))
	r.event(now.Add(-time.Hour)) // the same ring slot as now, an hour earlier
	r.attempt("crm", outbox.Attempt{Outcome: outbox.OutcomeDelivered, StartedAt: now, Latency: 100 * time.Millisecond})
	r.attempt("crm", outbox.Attempt{Outcome: outbox.OutcomeRetry, StartedAt: now, Latency: 300 * time.Millisecond, Status: 429})
	r.attempt("crm", outbox.Attempt{Outcome: outbox.OutcomeDead, StartedAt: now.Add(-2 * time.Minute), Status: 400})

	a := r.activity(now)
	last := recentMinutes - 1
	if a.Events[last] != 1 || a.Events[last-1] != 1 || sum(a.Events) != 2 {
		t.Errorf("events = %v, want 1 this minute and 1 the minute before (the one an hour ago forgotten)", a.Events)
	}
	crm := a.Targets["crm"]
	if crm.Delivered[last] != 1 || crm.Failed[last] != 1 || crm.Throttled[last] != 1 || crm.LatencyMS[last] != 200 {
		t.Errorf("crm this minute = delivered %d failed %d throttled %d latency %v, want 1, 1, 1, 200",
			crm.Delivered[last], crm.Failed[last], crm.Throttled[last], crm.LatencyMS[last])
	}
	if crm.Failed[last-2] != 1 || crm.Throttled[last-2] != 0 {
		t.Errorf("crm two minutes ago = failed %d throttled %d, want the 400 as failed, not throttled", crm.Failed[last-2], crm.Throttled[last-2])
	}
	if !a.Until.Equal(time.Date(2001, 2, 3, 10, 30, 0, 0, time.UTC)) {
		t.Errorf("until = %v, want the start of now's minute", a.Until)
	}
	if later := r.activity(now.Add(2 * time.Hour)); sum(later.Events) != 0 || sum(later.Targets["crm"].Delivered) != 0 {
		t.Errorf("two hours later = %+v, want nothing", later)
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
