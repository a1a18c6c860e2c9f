package connectortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// FaultKind is a way a CRM can fail one request that writes a record.
type FaultKind int

// The faults every CRM target must handle; see RunTargetSuite for what
// each must end as.
const (
	// Validation: the CRM rejects the record (Salesforce 400, HubSpot 400
	// VALIDATION_ERROR, Zendesk 422) with Fault.Message as its explanation.
	Validation FaultKind = iota + 1
	// Throttled: the CRM's "slow down" answer (Salesforce 403
	// REQUEST_LIMIT_EXCEEDED, others 429), with a Retry-After header of
	// Fault.RetryAfter in whole seconds when that is not 0.
	Throttled
	// ServerError: a 5xx.
	ServerError
	// Timeout: the CRM never answers; the fake holds the request until the
	// client gives up, and writes nothing.
	Timeout
	// ResetAfterWrite: the CRM writes the record, then the connection
	// drops before the answer: the client cannot know it was written.
	ResetAfterWrite
	// Malformed: the CRM writes the record, then answers its success
	// status with Fault.Message as the body, which is not what its
	// documentation says (an HTML page, truncated JSON).
	Malformed
)

func (k FaultKind) String() string {
	switch k {
	case Validation:
		return "Validation"
	case Throttled:
		return "Throttled"
	case ServerError:
		return "ServerError"
	case Timeout:
		return "Timeout"
	case ResetAfterWrite:
		return "ResetAfterWrite"
	case Malformed:
		return "Malformed"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault is one scripted failure of a CRM fake.
type Fault struct {
	Kind FaultKind
	// Message is the CRM's explanation (Validation) or the body it answers
	// (Malformed).
	Message string
	// RetryAfter, for Throttled, is sent as Retry-After in whole seconds;
	// 0 sends no Retry-After.
	RetryAfter time.Duration
}

// CRM is what RunTargetSuite needs of a CRM fake.
type CRM interface {
	// FailNext makes the fake answer the next request that writes a record
	// with f, and only that one; token requests are not affected.
	FailNext(f Fault)
	// Records returns the CRM ids of the records the fake holds for an
	// activity key: more than one means the key was written twice.
	Records(key string) []string
	// ExpireTokens makes every access token issued so far be refused as
	// expired, as the CRM does after a session timeout or a revocation.
	ExpireTokens()
	// Tokens returns every access token issued, in order.
	Tokens() []string
}

// DeliverFunc is one delivery attempt of the target under test, adapted
// to this package, which cannot import connector:
//
//	func(ctx context.Context, key string, body []byte, attempt int) (string, error) {
//		r, err := tg.Deliver(ctx, connector.Delivery{Key: key, Body: body, Attempt: attempt})
//		return r.RecordID, err
//	}
type DeliverFunc func(ctx context.Context, key string, body []byte, attempt int) (recordID string, err error)

// TargetSuite describes a CRM target to RunTargetSuite.
type TargetSuite struct {
	// Setup starts a fresh CRM fake and builds the target under test
	// against it, with an http.Client whose Timeout is timeout. Each
	// scenario calls it once.
	Setup func(t *testing.T, timeout time.Duration) (CRM, DeliverFunc)
	// Activity returns the JSON of a connector.Activity with key that the
	// target can deliver.
	Activity func(key string) []byte
	// Secrets are the target's credentials (client secret, private key
	// material, API token): no error and no record id may contain one,
	// nor any access token the fake issued.
	Secrets []string
	// Skip names scenarios that do not apply to the target, with why
	// (such as "TokenExpired": "API tokens do not expire").
	Skip map[string]string
	// Timeout is the client timeout given to Setup; default 2s, which
	// a busy machine does not reach by accident. The Timeout scenario
	// waits that long.
	Timeout time.Duration
}

// RunTargetSuite runs the scenarios every CRM target must pass, each as a
// subtest against a fresh fake:
//
//   - Created: delivered, with the CRM's record id, one record.
//   - AlreadyExists: a second attempt after a success is delivered with the
//     same record id and writes no second record.
//   - Validation: dead (Permanent), the CRM's message kept in the error.
//   - TokenExpired: the target fetches one new token and delivers within
//     the same attempt.
//   - Throttled, ThrottledRetryAfter: retryable; with a Retry-After, the
//     error's RetryAfter is at least the CRM's wait. The next attempt
//     delivers.
//   - ServerError, Timeout: retryable; the next attempt delivers.
//   - ResetAfterWrite, Malformed: retryable (never delivered, never dead)
//     although the CRM wrote the record; Malformed keeps the body in the
//     error. The next attempt delivers the same record, not a second one.
//
// Errors are read through the methods the outbox uses: Permanent() bool,
// RetryAfter() time.Duration and ResponseBody() string.
func RunTargetSuite(t *testing.T, s TargetSuite) {
	t.Helper()
	if s.Setup == nil || s.Activity == nil {
		t.Fatal("TargetSuite needs Setup and Activity")
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if why, ok := s.Skip[sc.name]; ok {
				t.Skip(why)
			}
			crm, deliver := s.Setup(t, timeout)
			r := &run{t: t, s: s, crm: crm, deliver: deliver}
			sc.run(r)
		})
	}
}

// run is one scenario's state.
type run struct {
	t       *testing.T
	s       TargetSuite
	crm     CRM
	deliver DeliverFunc
}

// attempt delivers key's activity and checks that nothing it returns
// holds a secret or an access token.
func (r *run) attempt(key string, n int) (string, error) {
	r.t.Helper()
	id, err := r.deliver(r.t.Context(), key, r.s.Activity(key), n)
	secrets := append(append([]string(nil), r.s.Secrets...), r.crm.Tokens()...)
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if strings.Contains(id, sec) {
			r.t.Errorf("record id %q contains a secret or token", id)
		}
		if err != nil && strings.Contains(errorText(err), sec) {
			r.t.Errorf("error leaks a secret or token %.6q…: %v", sec, err)
		}
	}
	return id, err
}

// delivered runs an attempt that must succeed with one record for key,
// and returns its id.
func (r *run) delivered(key string, n int) string {
	r.t.Helper()
	id, err := r.attempt(key, n)
	if err != nil {
		r.t.Fatalf("attempt %d: %v, want delivered", n, err)
	}
	if id == "" {
		r.t.Errorf("attempt %d delivered without the CRM's record id", n)
	}
	r.records(key, 1)
	if recs := r.crm.Records(key); len(recs) == 1 && id != recs[0] {
		r.t.Errorf("attempt %d returned record id %q, the CRM holds %q", n, id, recs[0])
	}
	return id
}

// retryable runs an attempt that must fail with an error the outbox
// retries, and returns it.
func (r *run) retryable(key string, n int) error {
	r.t.Helper()
	_, err := r.attempt(key, n)
	switch {
	case err == nil:
		r.t.Fatalf("attempt %d delivered, want a retryable error", n)
	case permanent(err):
		r.t.Fatalf("attempt %d is permanent (dead), want retryable: %v", n, err)
	}
	return err
}

// records checks that the CRM holds want records for key.
func (r *run) records(key string, want int) {
	r.t.Helper()
	if got := r.crm.Records(key); len(got) != want {
		r.t.Errorf("CRM holds %d records for %q (%v), want %d", len(got), key, got, want)
	}
}

// failThenDeliver scripts f, expects a retryable failure, then a delivery
// on the next attempt with one record.
func (r *run) failThenDeliver(f Fault, writes bool) error {
	r.t.Helper()
	key := "suite:" + f.Kind.String()
	r.crm.FailNext(f)
	err := r.retryable(key, 1)
	if writes {
		r.records(key, 1)
	} else {
		r.records(key, 0)
	}
	r.delivered(key, 2)
	return err
}

var scenarios = []struct {
	name string
	run  func(r *run)
}{
	{"Created", func(r *run) {
		r.delivered("suite:created", 1)
	}},
	{"AlreadyExists", func(r *run) {
		first := r.delivered("suite:again", 1)
		if again := r.delivered("suite:again", 2); again != first {
			r.t.Errorf("second attempt returned record %q, first %q", again, first)
		}
	}},
	{"Validation", func(r *run) {
		const msg = "Subject: the suite rejects this record"
		r.crm.FailNext(Fault{Kind: Validation, Message: msg})
		_, err := r.attempt("suite:invalid", 1)
		switch {
		case err == nil:
			r.t.Fatal("delivered, want dead")
		case !permanent(err):
			r.t.Errorf("retryable, want permanent (dead): %v", err)
		case !strings.Contains(errorText(err), msg):
			r.t.Errorf("error does not keep the CRM's message %q: %v", msg, err)
		}
		r.records("suite:invalid", 0)
	}},
	{"TokenExpired", func(r *run) {
		r.delivered("suite:before-expiry", 1)
		before := len(r.crm.Tokens())
		r.crm.ExpireTokens()
		r.delivered("suite:after-expiry", 1)
		if got := len(r.crm.Tokens()) - before; got != 1 {
			r.t.Errorf("target fetched %d tokens after expiry, want exactly 1", got)
		}
	}},
	{"Throttled", func(r *run) {
		r.failThenDeliver(Fault{Kind: Throttled}, false)
	}},
	{"ThrottledRetryAfter", func(r *run) {
		const wait = 7 * time.Second
		err := r.failThenDeliver(Fault{Kind: Throttled, RetryAfter: wait}, false)
		if got := retryAfter(err); got < wait {
			r.t.Errorf("RetryAfter = %v, want at least the CRM's %v", got, wait)
		}
	}},
	{"ServerError", func(r *run) {
		r.failThenDeliver(Fault{Kind: ServerError}, false)
	}},
	{"Timeout", func(r *run) {
		r.failThenDeliver(Fault{Kind: Timeout}, false)
	}},
	{"ResetAfterWrite", func(r *run) {
		r.failThenDeliver(Fault{Kind: ResetAfterWrite}, true)
	}},
	{"Malformed", func(r *run) {
		const body = "<html><body>Maintenance: upgrade in progress"
		err := r.failThenDeliver(Fault{Kind: Malformed, Message: body}, true)
		if !strings.Contains(errorText(err), "Maintenance: upgrade in progress") {
			r.t.Errorf("error does not keep the CRM's unexpected body: %v", err)
		}
	}},
}

func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func retryAfter(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// errorText is all that an error shows: its message, %+v and the response
// body the outbox stores with the attempt.
func errorText(err error) string {
	s := err.Error() + "\n" + fmt.Sprintf("%+v", err)
	var b interface{ ResponseBody() string }
	if errors.As(err, &b) {
		s += "\n" + b.ResponseBody()
	}
	return s
}

// Faults is a queue of scripted faults: a CRM fake embeds it to implement
// CRM.FailNext, and its handler calls Next before it handles a write. It
// is safe for concurrent use.
type Faults struct {
	mu    sync.Mutex
	queue []Fault
}

// FailNext queues f for the next write.
func (q *Faults) FailNext(f Fault) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, f)
}

// Next takes the fault for this write, if one is queued.
func (q *Faults) Next() (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return Fault{}, false
	}
	f := q.queue[0]
	q.queue = q.queue[1:]
	return f, true
}

// TokenStore issues and checks random access tokens: a CRM fake embeds it to
// implement CRM.ExpireTokens and CRM.Tokens. It is safe for concurrent
// use.
type TokenStore struct {
	mu      sync.Mutex
	issued  []string
	expired int // issued[:expired] are refused
}

// Issue returns a new valid token.
func (s *TokenStore) Issue() string {
	b := make([]byte, 16)
	rand.Read(b)
	tok := "tok" + hex.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued = append(s.issued, tok)
	return tok
}

// Valid reports whether tok was issued and has not expired.
func (s *TokenStore) Valid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.issued[s.expired:] {
		if t == tok {
			return true
		}
	}
	return false
}

// ExpireTokens makes every token issued so far invalid.
func (s *TokenStore) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = len(s.issued)
}

// Tokens returns every token issued, in order.
func (s *TokenStore) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Hang holds a request without answering until the client gives up (or a
// minute passes): what a client sees as a timeout.
func Hang(r *http.Request) {
	// Only once the body is read does net/http watch the connection and
	// end r.Context when the client closes it.
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}

// Reset closes the connection under w without answering: the client gets
// a connection error and never learns what the server did.
func Reset(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// RetryAfterHeader sets Retry-After to d in whole seconds, rounded up, when
// d is not 0.
func RetryAfterHeader(h http.Header, d time.Duration) {
	if d > 0 {
		h.Set("Retry-After", fmt.Sprint(int((d+time.Second-1)/time.Second)))
	}
}
