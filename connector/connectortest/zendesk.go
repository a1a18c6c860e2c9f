package connectortest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Credentials FakeZendesk accepts: an API token for the agent's email, or
// an OAuth access token.
const (
	ZendeskEmail      = "integration@acme.example"
	ZendeskAPIToken   = "zdApiT0ken9f8e7d6c5b4a"
	ZendeskOAuthToken = "zdOAuth-4c3b2a1f0e9d"
)

// zendeskMaxComments is how many comments a ticket takes (crm-apis.md 4.2).
const zendeskMaxComments = 5000

// FakeZendesk is a Zendesk account's Support and Talk Partner Edition
// APIs, as crm-apis.md section 4 describes them, quirks included:
//
//   - POST /api/v2/calls (Talk Partner Edition) takes the call bare or
//     wrapped as {"call":{…}}, needs app_id, from_line, to_line,
//     call_started_at and direction, and answers 201 {"call":{…,"id"}}.
//     Whether Zendesk honours Idempotency-Key there is not documented: the
//     fake ignores it unless CallsHonourIdempotencyKey is set, and then
//     answers a replay with the first call and x-idempotency-lookup: hit.
//   - GET /api/v2/tickets/{id}/comments lists a ticket's comments, oldest
//     first or with sort_order=desc newest first; PUT /api/v2/tickets/{id}
//     with {"ticket":{"comment":{…}}} adds one and answers 200 with the
//     ticket and its audit, whose Comment event is the new comment. A
//     ticket takes 5,000 comments.
//   - GET /api/v2/users/me answers the agent the credentials are.
//   - 422 {"error":"RecordInvalid","description","details"} for a record
//     Zendesk refuses, 404 {"error":"RecordNotFound"} for a ticket it does
//     not have, 401 {"error":"Couldn't authenticate you"}, and 429 with
//     Retry-After and a text/plain body.
//
// It implements CRM for RunTargetSuite; its tokens are static, so
// TokenExpired does not apply.
type FakeZendesk struct {
	crmFake

	// CallsHonourIdempotencyKey makes POST /api/v2/calls honour
	// Idempotency-Key as ticket creation does.
	CallsHonourIdempotencyKey bool

	zmu      sync.Mutex
	seq      int64
	calls    []zendeskCall
	comments map[int64][]map[string]any // ticket id → comments, oldest first
}

type zendeskCall struct {
	key    string // the Idempotency-Key it was created with
	fields map[string]any
}

// NewFakeZendesk starts a FakeZendesk, closed when the test ends.
func NewFakeZendesk(tb testing.TB) *FakeZendesk {
	f := &FakeZendesk{comments: map[int64][]map[string]any{}}
	f.start(tb, "", f.serve)
	return f
}

// AddTicket creates a ticket with n comments and returns its id.
func (f *FakeZendesk) AddTicket(n int) int64 {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	f.seq++
	id := 35436 + f.seq
	f.comments[id] = []map[string]any{}
	for range n {
		f.addComment(id, map[string]any{"body": "Earlier comment", "public": true})
	}
	return id
}

// Comments returns the comments of ticket id, oldest first.
func (f *FakeZendesk) Comments(id int64) []map[string]any {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	return slices.Clone(f.comments[id])
}

// Calls returns the fields of the Talk calls created, in order.
func (f *FakeZendesk) Calls() []map[string]any {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	var out []map[string]any
	for _, c := range f.calls {
		out = append(out, c.fields)
	}
	return out
}

// Records returns the ids of the calls created with Idempotency-Key key
// and of the comments whose body holds key.
func (f *FakeZendesk) Records(key string) []string {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	var ids []string
	for _, c := range f.calls {
		if c.key == key {
			ids = append(ids, fmt.Sprint(c.fields["id"]))
		}
	}
	for _, cs := range f.comments {
		for _, c := range cs {
			if strings.Contains(c["body"].(string), key) {
				ids = append(ids, fmt.Sprint(c["id"]))
			}
		}
	}
	return ids
}

// addComment appends a comment to ticket id. The caller holds f.zmu.
func (f *FakeZendesk) addComment(id int64, c map[string]any) map[string]any {
	f.seq++
	c = map[string]any{
		"id": 9000000 + f.seq, "type": "Comment", "body": c["body"], "plain_body": c["body"],
		"public": c["public"] != false, "author_id": c["author_id"], "created_at": "2026-03-14T17:02:11Z",
	}
	f.comments[id] = append(f.comments[id], c)
	return c
}

var zendeskTicketPath = regexp.MustCompile(`^/api/v2/tickets/([0-9]+)(/comments)?(\.json)?$`)

func (f *FakeZendesk) serve(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Couldn't authenticate you"})
		return
	}
	switch m := zendeskTicketPath.FindStringSubmatch(r.URL.Path); {
	case r.URL.Path == "/api/v2/users/me" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"user": map[string]any{"id": 361908041, "email": ZendeskEmail, "role": "agent"}})
	case r.URL.Path == "/api/v2/calls" && r.Method == http.MethodPost:
		if f.suiteFault(w, r, zendeskQuirks, func() { f.createCall(httptest.NewRecorder(), r) }) {
			return
		}
		f.createCall(w, r)
	case m != nil && m[2] != "" && r.Method == http.MethodGet:
		id, _ := strconv.ParseInt(m[1], 10, 64)
		f.listComments(w, r, id)
	case m != nil && m[2] == "" && r.Method == http.MethodPut:
		id, _ := strconv.ParseInt(m[1], 10, 64)
		if f.suiteFault(w, r, zendeskQuirks, func() { f.updateTicket(httptest.NewRecorder(), r, id) }) {
			return
		}
		f.updateTicket(w, r, id)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "InvalidEndpoint", "description": "Not found"})
	}
}

func (f *FakeZendesk) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return tok == ZendeskOAuthToken
	}
	raw, ok := strings.CutPrefix(auth, "Basic ")
	b, err := base64.StdEncoding.DecodeString(raw)
	return ok && err == nil && string(b) == ZendeskEmail+"/token:"+ZendeskAPIToken
}

func (f *FakeZendesk) createCall(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		zendeskInvalid(w, "base", "Request body is not valid JSON")
		return
	}
	if wrapped, ok := in["call"].(map[string]any); ok && len(in) == 1 {
		in = wrapped
	}
	for _, k := range []string{"app_id", "from_line", "to_line", "call_started_at", "direction"} {
		if in[k] == nil || in[k] == "" {
			zendeskInvalid(w, k, k+": cannot be blank")
			return
		}
	}
	if d := in["direction"]; d != "inbound" && d != "outbound" {
		zendeskInvalid(w, "direction", fmt.Sprintf("direction: %v is not inbound or outbound", d))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	f.zmu.Lock()
	defer f.zmu.Unlock()
	if f.CallsHonourIdempotencyKey && key != "" {
		for _, c := range f.calls {
			if c.key == key {
				w.Header().Set("x-idempotency-lookup", "hit")
				writeJSON(w, http.StatusCreated, map[string]any{"call": c.fields})
				return
			}
		}
		w.Header().Set("x-idempotency-lookup", "miss")
	}
	f.seq++
	call := map[string]any{"id": 7300000 + f.seq}
	for k, v := range in {
		call[k] = v
	}
	f.calls = append(f.calls, zendeskCall{key: key, fields: call})
	w.Header().Set("Location", fmt.Sprintf("%s/api/v2/calls/%d", f.URL, call["id"]))
	writeJSON(w, http.StatusCreated, map[string]any{"call": call})
}

func (f *FakeZendesk) listComments(w http.ResponseWriter, r *http.Request, id int64) {
	f.zmu.Lock()
	cs, ok := f.comments[id]
	cs = slices.Clone(cs)
	f.zmu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "RecordNotFound", "description": "Not found"})
		return
	}
	if r.URL.Query().Get("sort_order") == "desc" {
		slices.Reverse(cs)
	}
	if len(cs) > 100 {
		cs = cs[:100] // one page
	}
	writeJSON(w, http.StatusOK, map[string]any{"comments": cs, "count": len(cs)})
}

func (f *FakeZendesk) updateTicket(w http.ResponseWriter, r *http.Request, id int64) {
	var in struct {
		Ticket struct {
			Comment map[string]any `json:"comment"`
		} `json:"ticket"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		zendeskInvalid(w, "base", "Request body is not valid JSON")
		return
	}
	f.zmu.Lock()
	defer f.zmu.Unlock()
	cs, ok := f.comments[id]
	switch body, _ := in.Ticket.Comment["body"].(string); {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "RecordNotFound", "description": "Not found"})
	case strings.TrimSpace(body) == "":
		zendeskInvalid(w, "base", "Comment: body cannot be blank")
	case len(cs) >= zendeskMaxComments:
		zendeskInvalid(w, "base", "Ticket has reached the maximum number of comments (5000)")
	default:
		c := f.addComment(id, in.Ticket.Comment)
		writeJSON(w, http.StatusOK, map[string]any{
			"ticket": map[string]any{"id": id, "status": "open"},
			"audit":  map[string]any{"id": 8000000 + f.seq, "ticket_id": id, "events": []any{c}},
		})
	}
}

// zendeskInvalid answers 422 RecordInvalid with one detail.
func zendeskInvalid(w http.ResponseWriter, field, description string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"error": "RecordInvalid", "description": "Record validation errors",
		"details": map[string]any{field: []any{map[string]string{"description": description, "error": "BlankValue"}}},
	})
}

// zendeskQuirks are Zendesk's answers to the suite's faults.
var zendeskQuirks = quirks{
	validation: func(w http.ResponseWriter, msg string) { zendeskInvalid(w, "base", msg) },
	throttled: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Rate-Limit", "700")
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, "Too Many Requests")
	},
	serverError: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><body>Zendesk is down for maintenance</body></html>")
	},
	created: http.StatusCreated,
}
