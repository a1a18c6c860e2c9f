package outbox

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// RetryPolicy decides when a failed delivery is tried again and when it is
// given up. Its zero value is not useful; start from DefaultRetryPolicy.
type RetryPolicy struct {
	// Steps is the wait after each failed attempt: Steps[0] after the first,
	// and the last step repeats.
	Steps []time.Duration
	// Jitter spreads each wait by ±Jitter (0.2 = ±20 %) so that deliveries
	// that failed together do not retry together.
	Jitter float64
	// MaxAttempts gives up after this many attempts; 0 means no limit.
	MaxAttempts int
	// MaxAge gives up on a delivery this long after it was accepted.
	MaxAge time.Duration
	// MaxRetryAfter caps a target's Retry-After, so that a CRM answering
	// "Retry-After: 86400000" cannot park a delivery for years.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy retries quickly first (a blip), then ever more slowly
// for about a day (an outage), as Standard Webhooks and Svix do: 5s, 30s,
// 2m, 10m, 30m, 1h, 2h, then every 4h, for 24 hours or 20 attempts.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Steps: []time.Duration{
			5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
			30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour,
		},
		Jitter:        0.2,
		MaxAttempts:   20,
		MaxAge:        24 * time.Hour,
		MaxRetryAfter: time.Hour,
	}
}

// MinRetryStep is the shortest wait Validate accepts between attempts:
// anything shorter hammers a CRM that is already failing.
const MinRetryStep = time.Second

// Validate reports every setting of p that cannot work, each error naming
// the configuration key it comes from: retry_steps, retry_jitter,
// max_attempts, max_age and max_retry_after. A policy with neither
// max_attempts nor max_age retries until the delivery succeeds or is
// given up by hand.
func (p RetryPolicy) Validate() error {
	var errs []error
	if len(p.Steps) == 0 {
		errs = append(errs, errors.New("retry_steps: at least one wait required, such as [\"5s\", \"1m\", \"1h\"]"))
	}
	for i, s := range p.Steps {
		if s < MinRetryStep {
			errs = append(errs, fmt.Errorf("retry_steps[%d]: %v, want at least %v", i, s, MinRetryStep))
		}
	}
	if math.IsNaN(p.Jitter) || p.Jitter < 0 || p.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("retry_jitter: %v, want at least 0 and below 1 (0.2 spreads each wait by ±20 %%)", p.Jitter))
	}
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max_attempts: %d, want 0 (no limit) or more", p.MaxAttempts))
	}
	if p.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: %v, want 0 (no limit) or more", p.MaxAge))
	}
	if p.MaxRetryAfter < MinRetryStep {
		errs = append(errs, fmt.Errorf("max_retry_after: %v, want at least %v", p.MaxRetryAfter, MinRetryStep))
	}
	return errors.Join(errs...)
}

// Wait returns the wait after failed attempt number attempt (counting from
// 1), jittered with r in [0, 1): r = 0.5 gives the step itself.
func (p RetryPolicy) Wait(attempt int, r float64) time.Duration {
	if len(p.Steps) == 0 {
		return 0
	}
	step := p.Steps[min(max(attempt, 1), len(p.Steps))-1]
	return step + time.Duration(float64(step)*p.Jitter*(2*r-1))
}

// Next returns when to try again after failed attempt number attempt of a
// delivery created at created, and false when the delivery should be given
// up instead. A delivery gets a last attempt at created+MaxAge. retryAfter is the target's own request (0 for none); it is
// honoured up to MaxRetryAfter in place of the schedule.
func (p RetryPolicy) Next(now, created time.Time, attempt int, retryAfter time.Duration) (time.Time, bool) {
	if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
		return time.Time{}, false
	}
	wait := p.Wait(attempt, rand.Float64())
	if retryAfter > 0 {
		wait = min(retryAfter, p.MaxRetryAfter)
	}
	next := now.Add(wait)
	if p.MaxAge > 0 {
		deadline := created.Add(p.MaxAge)
		if !now.Before(deadline) {
			return time.Time{}, false
		}
		// One last attempt at the deadline rather than none past it.
		if next.After(deadline) {
			next = deadline
		}
	}
	return next, true
}
