package outbox

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxCooldown caps how long an open breaker keeps a failing target paused
// between probes.
const maxCooldown = 10 * time.Minute

// BreakerState is the state of a target's circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"    // sending normally
	BreakerOpen     BreakerState = "open"      // paused after repeated failures
	BreakerHalfOpen BreakerState = "half-open" // one probe delivery in flight
)

// breaker pauses a target that keeps failing, so that its deliveries wait
// without burning attempts, and probes it with one delivery at a time until
// it answers again. Permanent failures (a 400 for one bad record) do not
// count: the target is up, it just refused that record.
type breaker struct {
	threshold int           // failures in a row that open it; 0 disables it
	base      time.Duration // first cooldown

	mu        sync.Mutex
	state     BreakerState
	failures  int
	cooldown  time.Duration
	openUntil time.Time
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	if cooldown <= 0 {
		cooldown = 30 * time.Second
	}
	return &breaker{threshold: threshold, base: cooldown, state: BreakerClosed, cooldown: cooldown}
}

// allow returns how many deliveries may be claimed now (at most want) and,
// when none may, how long to wait before asking again. probe reports that
// the one delivery allowed is the probe of a half-open breaker: if the
// caller sends nothing, it must hand the probe back with unusedProbe.
func (b *breaker) allow(now time.Time, want int) (n int, wait time.Duration, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return 0, b.openUntil.Sub(now), false
		}
		b.state = BreakerHalfOpen
		return min(want, 1), 0, true
	case BreakerHalfOpen:
		return 0, b.cooldown, false // until the probe reports
	}
	return want, 0, false
}

// unusedProbe returns a probe that was not sent (nothing was due, or the
// rate limit or a claim error stopped it) to the open state, due at once,
// so that the next due delivery becomes the probe. Without it the breaker
// would wait in half-open for a report that never comes.
func (b *breaker) unusedProbe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen {
		b.state, b.openUntil = BreakerOpen, time.Time{}
	}
}

// report records an attempt's result and returns the state it left the
// breaker in, and whether that state is new.
func (b *breaker) report(now time.Time, failed bool) (BreakerState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.state
	switch {
	case !failed:
		b.state, b.failures, b.cooldown = BreakerClosed, 0, b.base
	case b.threshold <= 0:
	case b.state == BreakerHalfOpen:
		b.cooldown = min(2*b.cooldown, maxCooldown)
		b.state, b.openUntil = BreakerOpen, now.Add(b.cooldown)
	case b.state == BreakerClosed:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.openUntil = BreakerOpen, now.Add(b.cooldown)
		}
	}
	return b.state, b.state != before
}

// TargetStatus is a target's delivery health, as the dispatcher sees it.
type TargetStatus struct {
	Breaker             BreakerState `json:"breaker"`
	ConsecutiveFailures int          `json:"consecutiveFailures"`
	// PausedUntil is when an open breaker will probe the target again.
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
}

func (b *breaker) status() TargetStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := TargetStatus{Breaker: b.state, ConsecutiveFailures: b.failures}
	if b.state == BreakerOpen {
		s.PausedUntil = b.openUntil
	}
	return s
}

// limiter caps a target's sends at rate a second, with bursts of up to
// one second's worth: a token bucket from golang.org/x/time/rate, which
// the dispatcher asks for several tokens at once and hands back those its
// claim did not use.
type limiter struct {
	rate float64 // tokens per second; 0 means unlimited

	mu     sync.Mutex
	bucket *rate.Limiter
	last   *rate.Reservation // the last take, for giveBack
	lastAt time.Time
	lastN  int
}

// take takes up to want tokens and returns how many it took and, when it
// took none, how long until the next one.
func (l *limiter) take(now time.Time, want int) (int, time.Duration) {
	if l.rate <= 0 {
		return want, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bucket == nil {
		l.bucket = rate.NewLimiter(rate.Limit(l.rate), int(max(l.rate, 1)))
	}
	n := min(want, int(l.bucket.TokensAt(now)))
	if n <= 0 {
		r := l.bucket.ReserveN(now, 1)
		wait := r.DelayFrom(now)
		r.CancelAt(now)
		l.last = nil
		return 0, wait
	}
	l.last, l.lastAt, l.lastN = l.bucket.ReserveN(now, n), now, n
	return n, 0
}

// giveBack returns n of the tokens of the last take, for sends that did
// not happen.
func (l *limiter) giveBack(n int) {
	if l.rate <= 0 || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		return
	}
	l.last.CancelAt(l.lastAt)
	keep := max(l.lastN-n, 0)
	l.last, l.lastN = nil, 0
	if keep > 0 {
		l.bucket.ReserveN(l.lastAt, keep)
	}
}
