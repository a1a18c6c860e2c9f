// Package zendesk is the Zendesk target. The rule's object chooses what an
// activity record becomes:
//
//   - "calls": a Talk Partner Edition call record (POST /api/v2/calls),
//     the rule's fields as the call's, linked to the ticket in the
//     activity's what when the rule sets no ticket_id.
//   - "tickets" (or "comments"): a private comment on the ticket the agent
//     worked on, the rule's "id" field or else the activity's what
//     (PUT /api/v2/tickets/{id}), the rule's "comment" field as the
//     comment, or its "body" field as the comment's text.
//
// Zendesk documents Idempotency-Key for ticket creation only, so both
// creates send it, and a comment also carries the record's key on its last
// line: a delivery first reads the ticket's newest comments and adds none
// when one has the key. Within the process, that read and the write of one
// key are one step (a per-key lock). Whether Talk honours Idempotency-Key
// on calls is not documented (crm-apis.md 8.4): a call whose answer was
// lost may be written twice if it does not.
//
// Auth is an API token ({email}/token) or an OAuth access token. A 429 (its
// body is plain text) or a 503 with Retry-After holds every delivery of the
// target until then, as do rate-limit headers that say nothing is left; a
// 422 is dead with Zendesk's details.
package zendesk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// DefaultTimeout bounds one request when New is given no client.
const DefaultTimeout = 30 * time.Second

// keyPrefix starts the last line of a comment: the record's key, by which
// a later delivery finds the comment.
const keyPrefix = "ctibridge key: "

// Config is what an admin configures for a Zendesk target.
type Config struct {
	// URL is the account's URL, such as https://acme.zendesk.com. Required.
	URL string
	// Email and APIToken authenticate with an API token: the email of the
	// agent the comments are written as, and a token from Admin Center.
	Email    string
	APIToken string
	// OAuthToken is an OAuth access token, instead of Email and APIToken.
	OAuthToken string
}

// Target delivers activity records to one Zendesk account. It is safe for
// concurrent use.
type Target struct {
	base     string // account URL + /api/v2
	redacted string
	auth     string // the Authorization header
	secret   string // the API token or OAuth token, for redaction
	client   *http.Client
	locks    connector.KeyLock
	pause    connector.Pause
	now      func() time.Time
}

// New validates cfg and returns a Target. An error names the key at fault
// (url, email, api_token, oauth_token) and never repeats a secret. A nil
// client means one with DefaultTimeout; redirects are not followed.
func New(cfg Config, client *http.Client) (*Target, error) {
	u, err := connector.ParseHTTPURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	t := &Target{
		base:     strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/") + "/api/v2",
		redacted: connector.RedactURL(u),
		now:      time.Now,
	}
	switch {
	case cfg.OAuthToken != "" && (cfg.Email != "" || cfg.APIToken != ""):
		return nil, errors.New("oauth_token: set it or email and api_token, not both")
	case cfg.OAuthToken != "":
		t.auth, t.secret = "Bearer "+cfg.OAuthToken, cfg.OAuthToken
	case cfg.Email == "":
		return nil, errors.New("email: required with api_token (or oauth_token)")
	case !strings.Contains(cfg.Email, "@"):
		return nil, errors.New("email: not an email address")
	case cfg.APIToken == "":
		return nil, errors.New("api_token: required with email")
	default:
		t.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Email+"/token:"+cfg.APIToken))
		t.secret = cfg.APIToken
	}
	if strings.ContainsAny(t.auth, "\r\n") {
		return nil, errors.New("oauth_token: has a line break")
	}
	t.client = connector.HTTPClient(client, DefaultTimeout)
	return t, nil
}

// String describes the target for logs, without secrets.
func (t *Target) String() string { return "zendesk " + t.redacted }

// GoString keeps %#v from printing the credentials.
func (t *Target) GoString() string { return t.String() }

// Deliver writes the activity in d.Body as a Talk call or a ticket
// comment. RecordID is the call's or the comment's id. Errors are
// *connector.DeliveryError: permanent for a record Zendesk refuses (with
// its details) or that cannot be built, retryable otherwise.
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	var a connector.Activity
	if err := json.Unmarshal(d.Body, &a); err != nil {
		return connector.Result{}, connector.Permanent(fmt.Errorf("activity: %w", err))
	}
	if d.Key == "" || strings.ContainsAny(d.Key, "\r\n") {
		return connector.Result{}, connector.Permanent(errors.New("delivery key is empty or has a line break"))
	}
	switch a.Object {
	case "calls", "call":
		return t.call(ctx, d.Key, a)
	case "tickets", "ticket", "comments", "comment":
		return t.comment(ctx, d.Key, a)
	}
	return connector.Result{}, connector.Permanent(fmt.Errorf("object %q: want calls or tickets", a.Object))
}

// call creates a Talk Partner Edition call record.
func (t *Target) call(ctx context.Context, key string, a connector.Activity) (connector.Result, error) {
	fields := make(map[string]any, len(a.Fields)+1)
	for k, v := range a.Fields {
		fields[k] = v
	}
	if _, ok := fields["ticket_id"]; !ok {
		if id, ok := ticketID(a.What); ok {
			fields["ticket_id"] = id
		}
	}
	var out struct {
		Call struct {
			ID json.Number `json:"id"`
		} `json:"call"`
	}
	status, err := t.send(ctx, http.MethodPost, "/calls", key, fields, &out)
	res := connector.Result{Status: status, RecordID: out.Call.ID.String()}
	if err == nil && res.RecordID == "" {
		err = &connector.DeliveryError{Status: status, Err: errors.New("answer has no call.id")}
	}
	return res, err
}

// comment adds a private comment with the key to a ticket, unless one of
// its newest comments has the key already.
func (t *Target) comment(ctx context.Context, key string, a connector.Activity) (connector.Result, error) {
	ticket, comment, err := commentOf(key, a)
	if err != nil {
		return connector.Result{}, connector.Permanent(err)
	}
	unlock, err := t.locks.Lock(ctx, key)
	if err != nil {
		return connector.Result{}, &connector.DeliveryError{Err: err}
	}
	defer unlock()

	var list struct {
		Comments []struct {
			ID   json.Number `json:"id"`
			Body string      `json:"body"`
		} `json:"comments"`
	}
	path := "/tickets/" + strconv.FormatInt(ticket, 10)
	status, err := t.send(ctx, http.MethodGet, path+"/comments?sort_order=desc", "", nil, &list)
	if err != nil {
		return connector.Result{Status: status}, err
	}
	if list.Comments == nil {
		return connector.Result{Status: status}, &connector.DeliveryError{Status: status, Err: errors.New("answer has no comments array")}
	}
	marker := keyPrefix + key
	for _, c := range list.Comments {
		if strings.HasSuffix(strings.TrimRight(c.Body, "\n "), marker) {
			return connector.Result{Status: status, RecordID: c.ID.String()}, nil
		}
	}

	var out struct {
		Audit struct {
			Events []struct {
				ID   json.Number `json:"id"`
				Type string      `json:"type"`
			} `json:"events"`
		} `json:"audit"`
	}
	status, err = t.send(ctx, http.MethodPut, path, "", map[string]any{"ticket": map[string]any{"comment": comment}}, &out)
	res := connector.Result{Status: status}
	for _, e := range out.Audit.Events {
		if e.Type == "Comment" {
			res.RecordID = e.ID.String()
		}
	}
	if err == nil && res.RecordID == "" {
		err = &connector.DeliveryError{Status: status, Err: errors.New("answer has no Comment event in its audit")}
	}
	return res, err
}

// commentOf returns the ticket and the comment of a, the comment private
// unless the rule says otherwise and its body ending with the key.
func commentOf(key string, a connector.Activity) (int64, map[string]any, error) {
	ticket, ok := ticketID(a.What)
	if v, set := a.Fields["id"]; set {
		n, isNum := v.(float64)
		if !isNum || n != float64(int64(n)) || n <= 0 {
			return 0, nil, fmt.Errorf("field id: %v is not a ticket id", v)
		}
		ticket, ok = int64(n), true
	}
	if !ok {
		return 0, nil, errors.New("no ticket: the rule sets no id field and the activity's what is not a Zendesk ticket")
	}
	comment := map[string]any{"public": false}
	switch c := a.Fields["comment"].(type) {
	case map[string]any:
		for k, v := range c {
			comment[k] = v
		}
	case nil:
		comment["body"] = a.Fields["body"]
	default:
		return 0, nil, errors.New("field comment: want an object such as {body, public}")
	}
	body, _ := comment["body"].(string)
	if strings.TrimSpace(body) == "" {
		return 0, nil, errors.New("the comment has no body")
	}
	comment["body"] = strings.TrimRight(body, "\n ") + "\n\n" + keyPrefix + key
	return ticket, comment, nil
}

// ticketID returns the ticket o names, if it is a Zendesk ticket.
func ticketID(o *connector.CRMObject) (int64, bool) {
	if o == nil || !strings.EqualFold(o.Type, "ticket") {
		return 0, false
	}
	id, err := strconv.ParseInt(o.ID, 10, 64)
	return id, err == nil && id > 0
}

// send makes one request and decodes a 2xx JSON answer into out. key, when
// not empty, goes in Idempotency-Key.
func (t *Target) send(ctx context.Context, method, path, key string, body, out any) (int, error) {
	if err := t.pause.Check(t.now()); err != nil {
		return 0, err
	}
	req, err := connector.JSONRequest(ctx, method, t.base+path, body, t.redacted)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", t.auth)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := connector.Send(t.client, req, t.redacted)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, t.check(resp, out)
}

// check is what a Zendesk answer means for a delivery, the one place that
// decides it: a 2xx whose JSON decodes into out is done, one that does not
// is retried with its body kept; 429, and 503 with Retry-After, hold the
// target, as does a rate-limit header at 0; 409 (a concurrent update of
// the ticket) is retried; 422 and other statuses are as connector.Classify
// says, with Zendesk's error, description and details. It reads and
// closes the body.
func (t *Target) check(resp *http.Response, out any) error {
	now := t.now()
	status := resp.StatusCode
	if resp.Header.Get("ratelimit-remaining") == "0" || resp.Header.Get("X-Rate-Limit-Remaining") == "0" {
		if secs, err := strconv.Atoi(resp.Header.Get("ratelimit-reset")); err == nil && secs > 0 {
			t.pause.Until(now.Add(time.Duration(secs) * time.Second))
		}
	}
	if connector.Classify(status) == connector.Delivered {
		if body, err := connector.ReadJSON(resp, out); err != nil {
			return &connector.DeliveryError{Status: status, Err: errors.New("answer is not the JSON Zendesk documents"), Body: t.redact(body)}
		}
		return nil
	}

	err := connector.CheckResponse(resp, now)
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		return err
	}
	if wait := de.RetryAfter(); wait > 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		t.pause.Until(now.Add(wait))
	}
	if status == http.StatusConflict {
		// Retrying reads the comments again first: no second comment.
		err = connector.RetryLater(de, 0)
		errors.As(err, &de)
	}
	c := *de
	c.Body = t.redact(explain(c.Body))
	return &c
}

// explain returns Zendesk's error as one line: "RecordInvalid: Record
// validation errors: base: Comment: body cannot be blank", or the body as it
// is when it is not Zendesk's JSON (a 429's plain text).
func explain(body string) string {
	var e struct {
		Error       any                                       `json:"error"`
		Description string                                    `json:"description"`
		Details     map[string][]struct{ Description string } `json:"details"`
	}
	if json.Unmarshal([]byte(body), &e) != nil || e.Error == nil {
		return body
	}
	parts := []string{fmt.Sprint(e.Error)}
	if m, ok := e.Error.(map[string]any); ok { // {"error":{"title","message"}}
		parts = []string{fmt.Sprint(m["title"]), fmt.Sprint(m["message"])}
	}
	if e.Description != "" {
		parts = append(parts, e.Description)
	}
	for _, field := range slices.Sorted(maps.Keys(e.Details)) {
		for _, d := range e.Details[field] {
			parts = append(parts, field+": "+d.Description)
		}
	}
	return strings.Join(parts, ": ")
}

// redact removes the API or OAuth token from text Zendesk sent, in case it
// echoes the request.
func (t *Target) redact(text string) string {
	text = strings.ReplaceAll(text, t.secret, "[secret]")
	return strings.ReplaceAll(text, strings.TrimPrefix(t.auth, "Basic "), "[secret]")
}

// Check asks Zendesk who the credentials are, for `ctibridge targets
// check`: an error says that they are refused, or that they are an end
// user's, who cannot write calls or private comments.
func (t *Target) Check(ctx context.Context) error {
	var me struct {
		User struct {
			ID   *json.Number `json:"id"`
			Role string       `json:"role"`
		} `json:"user"`
	}
	if _, err := t.send(ctx, http.MethodGet, "/users/me", "", nil, &me); err != nil {
		return err
	}
	switch {
	case me.User.ID == nil:
		return errors.New("zendesk answered as an anonymous user: check email and api_token, or oauth_token")
	case me.User.Role == "end-user":
		return errors.New("the credentials are an end user's: use an agent's or an admin's")
	}
	return nil
}
