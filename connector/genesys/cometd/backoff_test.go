package cometd

import (
	"testing"
	"time"
)

// TestCometD_Backoff: the wait doubles from lo, never exceeds hi, and its
// random part takes off at most half.
func TestCometD_Backoff(t *testing.T) {
	const lo, hi = 500 * time.Millisecond, 30 * time.Second
	for _, tc := range []struct {
		n    int
		want time.Duration // with no jitter
	}{{1, lo}, {2, 2 * lo}, {3, 4 * lo}, {6, 16 * time.Second}, {7, hi}, {100, hi}, {1 << 30, hi}} {
		if got := backoff(lo, hi, tc.n, 0); got != tc.want {
			t.Errorf("backoff(%d, no jitter) = %v, want %v", tc.n, got, tc.want)
		}
		if got := backoff(lo, hi, tc.n, 0.999999); got < tc.want/2 || got > tc.want {
			t.Errorf("backoff(%d, most jitter) = %v, want within [%v, %v]", tc.n, got, tc.want/2, tc.want)
		}
	}
}
