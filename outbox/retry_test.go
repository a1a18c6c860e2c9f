package outbox_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

func TestRetryPolicy_Wait(t *testing.T) {
	p := outbox.DefaultRetryPolicy()
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0.5, 5 * time.Second},
		{2, 0.5, 30 * time.Second},
		{3, 0.5, 2 * time.Minute},
		{8, 0.5, 4 * time.Hour},
		{50, 0.5, 4 * time.Hour}, // the last step repeats
		{1, 0, 4 * time.Second},  // -20 %
		{2, 0.9999999, 36 * time.Second},
		{0, 0.5, 5 * time.Second}, // out of range counts as the first
	}
	for _, tt := range tests {
		got := p.Wait(tt.attempt, tt.r).Round(time.Millisecond)
		if got != tt.want {
			t.Errorf("Wait(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
		}
	}
}

func TestRetryPolicy_Next(t *testing.T) {
	p := outbox.DefaultRetryPolicy()
	created := t0

	if _, ok := p.Next(t0, created, p.MaxAttempts, 0); ok {
		t.Errorf("Next after MaxAttempts = ok, want give up")
	}
	if _, ok := p.Next(created.Add(p.MaxAge), created, 3, 0); ok {
		t.Errorf("Next at MaxAge = ok, want give up")
	}
	next, ok := p.Next(t0, created, 1, 7*time.Second)
	if !ok || next != t0.Add(7*time.Second) {
		t.Errorf("Next with Retry-After 7s = %v, %v; want %v", next, ok, t0.Add(7*time.Second))
	}
	next, ok = p.Next(t0, created, 1, 1000*time.Hour)
	if !ok || next != t0.Add(p.MaxRetryAfter) {
		t.Errorf("Next with a huge Retry-After = %v, want capped at %v", next, t0.Add(p.MaxRetryAfter))
	}
	late := created.Add(p.MaxAge - time.Minute)
	next, ok = p.Next(late, created, 8, 0)
	if !ok || next != created.Add(p.MaxAge) {
		t.Errorf("Next near MaxAge = %v, %v; want a last attempt at the deadline %v", next, ok, created.Add(p.MaxAge))
	}
}

// TestRetryPolicy_Span checks the default schedule spans about a day: a
// target that stays down is given up after roughly MaxAge, not hours early
// and not days late.
func TestRetryPolicy_Span(t *testing.T) {
	p := outbox.DefaultRetryPolicy()
	now, attempts := t0, 1
	for {
		next, ok := p.Next(now, t0, attempts, 0)
		if !ok {
			break
		}
		now, attempts = next, attempts+1
	}
	if span := now.Sub(t0); span < 20*time.Hour || span > p.MaxAge {
		t.Errorf("retries span %v over %d attempts, want between 20h and %v", span, attempts, p.MaxAge)
	}
}

func FuzzRetryPolicy_Next(f *testing.F) {
	f.Add(1, int64(0), int64(0), 0.5)
	f.Add(7, int64(time.Hour), int64(3*time.Second), 0.1)
	f.Add(100, int64(23*time.Hour), int64(-1), 0.99)
	p := outbox.DefaultRetryPolicy()
	f.Fuzz(func(t *testing.T, attempt int, age, retryAfter int64, r float64) {
		if r < 0 || r >= 1 || age < 0 {
			t.Skip()
		}
		if w := p.Wait(attempt, r); w < 4*time.Second || w > 4*time.Hour*12/10 {
			t.Fatalf("Wait(%d, %v) = %v, outside [4s, 4h48m]", attempt, r, w)
		}
		now := t0.Add(time.Duration(age))
		next, ok := p.Next(now, t0, attempt, time.Duration(retryAfter))
		if !ok {
			return
		}
		if !next.After(now) {
			t.Fatalf("Next(attempt %d, age %v) = %v, not after now", attempt, time.Duration(age), next)
		}
		if next.Sub(now) > max(p.MaxRetryAfter, 4*time.Hour*12/10) {
			t.Fatalf("Next waits %v, more than any cap", next.Sub(now))
		}
		if next.Sub(t0) > p.MaxAge {
			t.Fatalf("Next = %v, past MaxAge", next)
		}
	})
}

func TestRetryPolicy_Validate(t *testing.T) {
	if err := outbox.DefaultRetryPolicy().Validate(); err != nil {
		t.Fatalf("the default policy: %v", err)
	}
	tests := []struct {
		name   string
		change func(*outbox.RetryPolicy)
		want   []string // each must appear in the error
	}{
		{"NoSteps", func(p *outbox.RetryPolicy) { p.Steps = nil }, []string{"retry_steps: at least one"}},
		{"ZeroStep", func(p *outbox.RetryPolicy) { p.Steps[2] = 0 }, []string{"retry_steps[2]: 0s"}},
		{"TooShortStep", func(p *outbox.RetryPolicy) { p.Steps[0] = 10 * time.Millisecond }, []string{"retry_steps[0]: 10ms, want at least 1s"}},
		{"NegativeJitter", func(p *outbox.RetryPolicy) { p.Jitter = -0.1 }, []string{"retry_jitter: -0.1"}},
		{"WholeJitter", func(p *outbox.RetryPolicy) { p.Jitter = 1 }, []string{"retry_jitter: 1,"}},
		{"NaNJitter", func(p *outbox.RetryPolicy) { p.Jitter = math.NaN() }, []string{"retry_jitter: NaN"}},
		{"NegativeAttempts", func(p *outbox.RetryPolicy) { p.MaxAttempts = -1 }, []string{"max_attempts: -1"}},
		{"NegativeAge", func(p *outbox.RetryPolicy) { p.MaxAge = -time.Hour }, []string{"max_age: -1h0m0s"}},
		{"NoRetryAfterCap", func(p *outbox.RetryPolicy) { p.MaxRetryAfter = 0 }, []string{"max_retry_after: 0s"}},
		{"AllAtOnce", func(p *outbox.RetryPolicy) { p.Steps[1], p.Jitter = -time.Second, 2 },
			[]string{"retry_steps[1]", "retry_jitter: 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := outbox.DefaultRetryPolicy()
			tt.change(&p)
			err := p.Validate()
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to say %q", err, w)
				}
			}
		})
	}
	// No limits at all is allowed: retry until delivered or given up by hand.
	p := outbox.DefaultRetryPolicy()
	p.MaxAttempts, p.MaxAge = 0, 0
	if err := p.Validate(); err != nil {
		t.Errorf("a policy without limits: %v", err)
	}
}

// TestDefaultRetryPolicy pins the default: configurable schedules must not
// change what runs when nothing is configured.
func TestDefaultRetryPolicy(t *testing.T) {
	p := outbox.DefaultRetryPolicy()
	want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}
	if len(p.Steps) != len(want) {
		t.Fatalf("Steps = %v, want %v", p.Steps, want)
	}
	for i := range want {
		if p.Steps[i] != want[i] {
			t.Fatalf("Steps = %v, want %v", p.Steps, want)
		}
	}
	if p.Jitter != 0.2 || p.MaxAttempts != 20 || p.MaxAge != 24*time.Hour || p.MaxRetryAfter != time.Hour {
		t.Fatalf("default = %+v, want jitter 0.2, 20 attempts, 24h, Retry-After capped at 1h", p)
	}
}
