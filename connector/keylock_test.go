package connector

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

func TestKeyLock(t *testing.T) {
	var l KeyLock
	var wg sync.WaitGroup
	inside := map[string]int{}
	var mu sync.Mutex
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			unlock, err := l.Lock(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside[key]++
			if inside[key] != 1 {
				t.Errorf("%d holders of %s at once", inside[key], key)
			}
			mu.Unlock()
			runtime.Gosched() // let another goroutine in, if the lock would
			mu.Lock()
			inside[key]--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if len(l.held) != 0 {
		t.Errorf("%d keys left held", len(l.held))
	}

	// A waiter whose ctx ends gives up, and the key stays the holder's.
	unlock, _ := l.Lock(context.Background(), "k")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Lock(ctx, "k"); err == nil {
		t.Error("Lock with an ended ctx held a held key")
	}
	unlock()
	if len(l.held) != 0 {
		t.Errorf("%d keys left held after a cancelled wait", len(l.held))
	}
}
