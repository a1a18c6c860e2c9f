package connectortest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is a failure scripted into a CRM fake (FakeDataverse,
// FakeServiceNow, FakeZendesk): the fake answers one request with Response
// instead of its own answer.
type Fault struct {
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

// crmFake is what the CRM fakes share: a loopback server, a log of
// requests, scripted faults and OAuth tokens. Each fake's handler does the
// CRM's work; crmFake applies faults around it.
type crmFake struct {
	*httptest.Server
	tokenPath string // the path of the fake's token endpoint, or ""

	mu       sync.Mutex
	faults   []Fault
	requests []Request
	tokenN   int
	tokens   map[string]bool // access tokens issued and still valid
}

// start serves handle, with the token endpoint at tokenPath when it is not
// empty, until the test ends.
func (f *crmFake) start(tb testing.TB, tokenPath string, handle http.HandlerFunc) {
	f.tokenPath = tokenPath
	f.tokens = map[string]bool{}
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

// takeFault removes and returns the first fault that selects r. The
// caller holds f.mu.
func (f *crmFake) takeFault(r *http.Request) (Fault, bool) {
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
	return Fault{}, false
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
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	io.WriteString(w, resp.Body)
}

// Fail scripts faults: each answers one request it selects, in order.
func (f *crmFake) Fail(faults ...Fault) {
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

// ExpireTokens makes every access token issued so far invalid, as if it
// had expired: the next request that uses one is answered 401.
func (f *crmFake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// TokensIssued counts the access tokens the token endpoint has issued.
func (f *crmFake) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenN
}

// issueToken answers a token request that the fake's own check accepted,
// with a new token valid for expiresIn seconds (as far as the client
// knows: the fake honours it until ExpireTokens).
func (f *crmFake) issueToken(w http.ResponseWriter, prefix string, expiresIn int) {
	f.mu.Lock()
	f.tokenN++
	tok := fmt.Sprintf("%s-%d", prefix, f.tokenN)
	f.tokens[tok] = true
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"access_token":%q}`, expiresIn, tok)
}

// bearerValid reports whether r carries an access token the fake issued
// and has not expired.
func (f *crmFake) bearerValid(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	return ok && f.tokens[tok]
}

// writeJSON answers status with a JSON body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
