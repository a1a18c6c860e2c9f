package outbox

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	b := newBreaker(3, 10*time.Second)
	check := func(at time.Time, want int, what string) {
		t.Helper()
		if got, _, _ := b.allow(at, 4); got != want {
			t.Fatalf("%s: allow = %d, want %d", what, got, want)
		}
	}
	check(now, 4, "closed")
	b.report(now, true)
	b.report(now, true)
	check(now, 4, "two failures, below the threshold")
	if st, changed := b.report(now, true); st != BreakerOpen || !changed {
		t.Fatalf("third failure: state %s (changed %v), want open", st, changed)
	}
	check(now.Add(9*time.Second), 0, "open, within the cooldown")
	check(now.Add(10*time.Second), 1, "cooldown over: one probe")
	check(now.Add(10*time.Second), 0, "probe in flight: nothing more")
	b.report(now.Add(11*time.Second), true) // the probe fails
	if s := b.status(); s.Breaker != BreakerOpen || s.PausedUntil != now.Add(31*time.Second) {
		t.Fatalf("after a failed probe: %+v, want open until +31s (the cooldown doubled)", s)
	}
	check(now.Add(31*time.Second), 1, "second probe")
	if st, changed := b.report(now.Add(32*time.Second), false); st != BreakerClosed || !changed {
		t.Fatalf("probe succeeded: state %s, want closed", st)
	}
	check(now.Add(32*time.Second), 4, "closed again")
	for range 3 {
		b.report(now.Add(40*time.Second), true)
	}
	if s := b.status(); s.PausedUntil != now.Add(50*time.Second) {
		t.Fatalf("reopened until %v, want +50s: a success resets the cooldown", s.PausedUntil)
	}
}

func TestBreaker_Disabled(t *testing.T) {
	b := newBreaker(0, time.Second)
	now := time.Now()
	for range 100 {
		b.report(now, true)
	}
	if got, _, _ := b.allow(now, 4); got != 4 {
		t.Fatalf("disabled breaker allows %d, want 4", got)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	l := &limiter{rate: 10}
	if n, _ := l.take(now, 50); n != 10 {
		t.Fatalf("first take = %d, want a burst of 10", n)
	}
	n, wait := l.take(now, 5)
	if n != 0 || wait != 100*time.Millisecond {
		t.Fatalf("take with an empty bucket = %d, wait %v; want 0, 100ms", n, wait)
	}
	if n, _ := l.take(now.Add(350*time.Millisecond), 5); n != 3 {
		t.Fatalf("take after 350ms = %d, want 3", n)
	}
	l.giveBack(2)
	if n, _ := l.take(now.Add(350*time.Millisecond), 5); n != 2 {
		t.Fatalf("take after giving back 2 = %d, want 2", n)
	}
	if n, _ := (&limiter{}).take(now, 7); n != 7 {
		t.Fatalf("unlimited take = %d, want 7", n)
	}
}

// TestBreaker_UnusedProbe: a probe that finds nothing to send must not
// leave the breaker waiting in half-open for a report that never comes.
func TestBreaker_UnusedProbe(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	b := newBreaker(1, 10*time.Second)
	b.report(now, true)
	n, _, probe := b.allow(now.Add(10*time.Second), 4)
	if n != 1 || !probe {
		t.Fatalf("after the cooldown allow = %d (probe %v), want the probe", n, probe)
	}
	b.unusedProbe() // nothing was due
	if n, _, probe := b.allow(now.Add(11*time.Second), 4); n != 1 || !probe {
		t.Fatalf("after an unused probe allow = %d (probe %v), want a new probe at once", n, probe)
	}
	b.report(now.Add(12*time.Second), false)
	if s := b.status(); s.Breaker != BreakerClosed {
		t.Fatalf("after the probe succeeded: %+v, want closed", s)
	}
}
