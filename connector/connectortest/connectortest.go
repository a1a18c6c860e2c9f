// Package connectortest provides fakes for testing deliveries, as
// net/http/httptest does for HTTP: FakeCRM is a real HTTP server on
// loopback that records what it receives and answers as a test scripts it.
//
// RunTargetSuite is the conformance table every CRM target runs against its
// CRM's fake: created, already exists, validation error, expired token,
// throttling, 5xx, timeout, and answers lost or garbled after the CRM wrote
// the record. Faults, TokenStore, Hang, Reset and RetryAfterHeader are the
// pieces a CRM fake is built from.
//
// It imports only the standard library, so that any target's tests can use
// it.
package connectortest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is one request a FakeCRM received.
type Request struct {
	Key    string // the Idempotency-Key header
	Header http.Header
	Body   []byte
	At     time.Time
	// Try counts the requests received with this Key, from 1.
	Try int
}

// Response is what a FakeCRM answers.
type Response struct {
	Status int // default 201
	Header http.Header
	Body   string
	// Delay holds the response back; a client whose timeout is shorter
	// sees a timeout.
	Delay time.Duration
	// Reset closes the connection after reading the request, without
	// answering: the CRM may have processed a request the client never
	// hears about.
	Reset bool
}

// FakeCRM is a CRM that records every request and remembers which
// idempotency keys it accepted, like a CRM with idempotent writes: a key it
// accepted before is answered 200 again and not stored twice.
type FakeCRM struct {
	*httptest.Server

	mu       sync.Mutex
	respond  func(Request) Response
	requests []Request
	tries    map[string]int
	accepted map[string][]byte // key → body of the first accepted request
	changed  chan struct{}
}

// NewFakeCRM starts a FakeCRM that accepts everything with 201. It is
// closed when the test ends.
func NewFakeCRM(tb testing.TB) *FakeCRM {
	f := &FakeCRM{
		respond:  func(Request) Response { return Response{} },
		tries:    map[string]int{},
		accepted: map[string][]byte{},
		changed:  make(chan struct{}),
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.Close)
	return f
}

// Respond sets how the fake answers each request from now on.
func (f *FakeCRM) Respond(fn func(Request) Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = fn
}

func (f *FakeCRM) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	f.tries[key]++
	req := Request{Key: key, Header: r.Header.Clone(), Body: body, At: time.Now(), Try: f.tries[key]}
	f.requests = append(f.requests, req)
	respond := f.respond
	f.mu.Unlock()

	resp := respond(req)
	if resp.Delay > 0 {
		select {
		case <-time.After(resp.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if resp.Reset {
		f.accept(req) // it processed the request; the client will never know
		Reset(w)
		return
	}
	if resp.Status == 0 {
		resp.Status = http.StatusCreated
		if !f.accept(req) {
			resp.Status = http.StatusOK // already have it: the same answer, nothing stored
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	io.WriteString(w, resp.Body)
}

// accept stores req's body under its key unless the key is known, and
// reports whether it was new.
func (f *FakeCRM) accept(req Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.accepted[req.Key]; ok {
		return false
	}
	f.accepted[req.Key] = req.Body
	close(f.changed)
	f.changed = make(chan struct{})
	return true
}

// Requests returns every request received, in order.
func (f *FakeCRM) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// Accepted returns the body accepted for each key.
func (f *FakeCRM) Accepted() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string][]byte, len(f.accepted))
	for k, v := range f.accepted {
		m[k] = v
	}
	return m
}

// WaitAccepted waits until the fake has accepted every one of keys,
// failing the test after timeout.
func (f *FakeCRM) WaitAccepted(tb testing.TB, timeout time.Duration, keys ...string) {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		missing, changed := 0, f.changed
		for _, k := range keys {
			if _, ok := f.accepted[k]; !ok {
				missing++
			}
		}
		f.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("fake CRM is missing %d of %d records after %v", missing, len(keys), timeout)
		}
	}
}

// Conflicts returns the keys that arrived with a body other than the one
// first accepted: one idempotency key delivered as two different records.
func (f *FakeCRM) Conflicts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	seen := map[string]bool{}
	for _, r := range f.requests {
		if a, ok := f.accepted[r.Key]; ok && !bytes.Equal(a, r.Body) && !seen[r.Key] {
			keys = append(keys, r.Key)
			seen[r.Key] = true
		}
	}
	return keys
}
