package connector

import (
	"testing"
	"time"
)

func TestPause(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)
	var p Pause
	if err := p.Check(t0); err != nil {
		t.Fatalf("zero Pause holds: %v", err)
	}
	p.Until(t0.Add(10 * time.Second))
	p.Until(t0.Add(5 * time.Second)) // earlier: ignored
	err := p.Check(t0.Add(4 * time.Second))
	de, ok := err.(*DeliveryError)
	if !ok || de.Permanent() || de.RetryAfter() != 6*time.Second {
		t.Errorf("Check during the pause = %v, want retryable after the 6 s left", err)
	}
	if err := p.Check(t0.Add(10 * time.Second)); err != nil {
		t.Errorf("Check at the end of the pause = %v", err)
	}
}
