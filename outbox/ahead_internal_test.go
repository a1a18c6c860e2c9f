package outbox

import (
	"context"
	"testing"
	"time"
)

func TestAheadFor(t *testing.T) {
	d := &Dispatcher{Lease: time.Minute}
	send := func(context.Context, Message) (Receipt, error) { return Receipt{}, nil }
	sendBatch := func(context.Context, []Message) ([]Receipt, []error) { return nil, nil }
	tests := []struct {
		name     string
		target   Target
		sendTime time.Duration
		want     int
	}{
		{"no sends yet", Target{Send: send, Concurrency: 4}, 0, 64},
		{"fast sends", Target{Send: send, Concurrency: 4}, 2 * time.Millisecond, 64},
		// A quarter of the lease is 15s: each slot starts 15 one-second sends.
		{"one-second sends", Target{Send: send, Concurrency: 4}, time.Second, 60},
		{"five-second sends", Target{Send: send, Concurrency: 4}, 5 * time.Second, 12},
		{"sends longer than a quarter lease", Target{Send: send, Concurrency: 4}, 20 * time.Second, 0},
		{"rate limited", Target{Send: send, Concurrency: 4, RateLimit: 10}, 0, 0},
		{"batch endpoint", Target{SendBatch: sendBatch, Concurrency: 4}, 0, 0},
	}
	for _, tt := range tests {
		if got := d.aheadFor(&tt.target, tt.sendTime); got != tt.want {
			t.Errorf("%s: aheadFor = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestLiteralClaim(t *testing.T) {
	for n, want := range map[int]int{-1: 0, 0: 0, 1: 1, 7: 7, 16: 16, 17: 16, 31: 16, 32: 32, 68: 64, 1024: 1024, 5000: 1024} {
		if got := literalClaim(n); got != want {
			t.Errorf("literalClaim(%d) = %d, want %d", n, got, want)
		}
	}
	// Every size it gives has its statement ready: a missing one would
	// make Claim run a statement that was never prepared.
	db := openTestDB(t)
	for n := 1; n <= 2*maxLiteralClaim; n++ {
		if _, ok := db.stmts[claimSQL(literalClaim(n))]; !ok {
			t.Fatalf("no prepared claim statement for size %d (asked %d)", literalClaim(n), n)
		}
	}
}
