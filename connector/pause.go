package connector

import (
	"fmt"
	"sync"
	"time"
)

// Pause holds a target's requests while a CRM has asked it to slow down: a
// 429's Retry-After, or rate-limit headers that say nothing is left. While
// it holds, a delivery fails at once, retryable after the time left,
// instead of spending a request that the CRM would refuse. The zero Pause
// holds nothing; it is safe for concurrent use.
type Pause struct {
	mu    sync.Mutex
	until time.Time
}

// Until holds requests until t. An earlier t than the one held is ignored.
func (p *Pause) Until(t time.Time) {
	p.mu.Lock()
	if t.After(p.until) {
		p.until = t
	}
	p.mu.Unlock()
}

// Check returns nil when requests may be sent at now, or else a retryable
// *DeliveryError whose RetryAfter is the time left.
func (p *Pause) Check(now time.Time) error {
	p.mu.Lock()
	until := p.until
	p.mu.Unlock()
	if !now.Before(until) {
		return nil
	}
	left := until.Sub(now)
	return &DeliveryError{
		Err:        fmt.Errorf("CRM asked to slow down: waiting %v more", left.Round(time.Second)),
		retryAfter: left,
	}
}
