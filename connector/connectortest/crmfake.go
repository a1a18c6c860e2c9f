package connectortest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequestFault is a failure scripted into FakeDataverse, FakeServiceNow or
// FakeZendesk for one request chosen by method and path, for tests finer
// than the suite's FailNext: the fake answers that request with Response
// instead of its own answer.
type RequestFault struct {
	// Method and Path select the requests the fault applies to: a method
	// ("" for any) and a path prefix ("" for any). Token requests are
	// never selected unless Path names the token endpoint.
	Method, Path string
	// Skip lets that many of the selected requests through first.
	Skip int
	// Response is the answer: a Status, Header and Body, a Delay (a client
	// with a shorter timeout sees a timeout), or Reset (the connection is
	// closed without an answer).
	Response
	// Commit makes the fake do the request's work before it answers with
	// the fault: the CRM wrote the record, and the client never hears so.
	Commit bool
}

// crmFake is what FakeDataverse, FakeServiceNow and FakeZendesk share: a
// loopback server, a log of requests, faults scripted per request or by
// the suite (Faults, answered by the CRM's own quirks), and OAuth tokens
// (TokenStore). Each fake's handler does the CRM's work; crmFake applies
// request faults around it.
type crmFake struct {
	*httptest.Server
	Faults
	TokenStore
	tokenPath string // the path of the fake's token endpoint, or ""

	mu       sync.Mutex
	faults   []RequestFault
	requests []Request
}

// start serves handle, with the token endpoint at tokenPath when it is not
// empty, until the test ends.
func (f *crmFake) start(tb testing.TB, tokenPath string, handle http.HandlerFunc) {
	f.tokenPath = tokenPath
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		f.mu.Lock()
		f.requests = append(f.requests, Request{Key: r.Header.Get("Idempotency-Key"), Header: r.Header.Clone(), Body: body, At: time.Now()})
		fault, ok := f.takeFault(r)
		f.mu.Unlock()
		if !ok {
			handle(w, r)
			return
		}
		if fault.Commit {
			handle(httptest.NewRecorder(), r)
		}
		serveFault(w, r, fault.Response)
	}))
	tb.Cleanup(f.Close)
}

// takeFault removes and returns the first request fault that selects r.
// The caller holds f.mu.
func (f *crmFake) takeFault(r *http.Request) (RequestFault, bool) {
	for i, ft := range f.faults {
		if ft.Method != "" && ft.Method != r.Method {
			continue
		}
		if ft.Path == "" && r.URL.Path == f.tokenPath || !strings.HasPrefix(r.URL.Path, ft.Path) {
			continue
		}
		if ft.Skip > 0 {
			f.faults[i].Skip--
			continue
		}
		f.faults = append(f.faults[:i], f.faults[i+1:]...)
		return ft, true
	}
	return RequestFault{}, false
}

func serveFault(w http.ResponseWriter, r *http.Request, resp Response) {
	if resp.Delay > 0 {
		select {
		case <-time.After(resp.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if resp.Reset {
		Reset(w)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	io.WriteString(w, resp.Body)
}

// FailRequest scripts request faults: each answers one request it
// selects, in order.
func (f *crmFake) FailRequest(faults ...RequestFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

// Requests returns every request received, token requests included, in
// order.
func (f *crmFake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// bearerValid reports whether r carries an access token the fake issued
// and has not expired.
func (f *crmFake) bearerValid(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && f.Valid(tok)
}

// issueToken answers a token request that the fake's own check accepted
// with a new token that lasts expiresIn seconds as far as the client
// knows; the fake honours it until ExpireTokens.
func (f *crmFake) issueToken(w http.ResponseWriter, expiresIn int) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": expiresIn, "access_token": f.Issue()})
}

// quirks are a CRM's own answers to the suite's faults.
type quirks struct {
	validation  func(w http.ResponseWriter, message string)
	throttled   func(w http.ResponseWriter) // Retry-After is set already
	serverError func(w http.ResponseWriter)
	// created is the status of a successful write, which a Malformed fault
	// answers with its body.
	created int
}

// suiteFault answers the suite's next fault, if one is queued, the way q
// says the CRM does, and reports whether it did. write does the request's
// work, for the faults that come after the CRM wrote the record.
func (f *crmFake) suiteFault(w http.ResponseWriter, r *http.Request, q quirks, write func()) bool {
	ft, ok := f.Next()
	if !ok {
		return false
	}
	switch ft.Kind {
	case Validation:
		q.validation(w, ft.Message)
	case Throttled:
		RetryAfterHeader(w.Header(), ft.RetryAfter)
		q.throttled(w)
	case ServerError:
		q.serverError(w)
	case Timeout:
		Hang(r)
	case ResetAfterWrite:
		write()
		Reset(w)
	case Malformed:
		write()
		w.WriteHeader(q.created)
		io.WriteString(w, ft.Message)
	}
	return true
}
