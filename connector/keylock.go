package connector

import (
	"context"
	"sync"
)

// KeyLock serializes work per key within the process: a target whose CRM
// has no idempotent write holds the record's key from its lookup to its
// create, so that a second delivery of the same key, running at the same
// time, waits and then finds the record the first one wrote. The zero
// KeyLock is ready to use; it is safe for concurrent use.
type KeyLock struct {
	mu   sync.Mutex
	held map[string]*keyHold
}

type keyHold struct {
	ch    chan struct{} // holds one token while the key is free
	users int           // holders and waiters: the entry goes with the last
}

// Lock waits until key is free, or ctx ends, and holds it. The returned
// function frees it; call it exactly once.
func (l *KeyLock) Lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*keyHold{}
	}
	h := l.held[key]
	if h == nil {
		h = &keyHold{ch: make(chan struct{}, 1)}
		h.ch <- struct{}{}
		l.held[key] = h
	}
	h.users++
	l.mu.Unlock()

	select {
	case <-h.ch:
		return func() { h.ch <- struct{}{}; l.release(key, h) }, nil
	case <-ctx.Done():
		l.release(key, h)
		return nil, ctx.Err()
	}
}

func (l *KeyLock) release(key string, h *keyHold) {
	l.mu.Lock()
	if h.users--; h.users == 0 {
		delete(l.held, key)
	}
	l.mu.Unlock()
}
