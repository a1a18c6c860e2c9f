package zendesk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/connector/connectortest/spectest"
)

// t0 is the tests' clock: any fixed time works.
var t0 = time.Date(2026, 3, 14, 17, 2, 11, 0, time.UTC)

func apiToken(f *connectortest.FakeZendesk) Config {
	return Config{URL: f.URL, Email: connectortest.ZendeskEmail, APIToken: connectortest.ZendeskAPIToken}
}

func newTarget(t *testing.T, f *connectortest.FakeZendesk, cfg Config, timeout time.Duration) (*Target, *time.Time) {
	t.Helper()
	tg, err := New(cfg, spectest.Client(t, "testdata/zendesk.yaml", f.URL, timeout))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	tg.now = func() time.Time { return now }
	return tg, &now
}

func delivery(t *testing.T, key string, a connector.Activity) connector.Delivery {
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return connector.Delivery{Key: key, Body: b, Attempt: 1}
}

func talkCall(t *testing.T, key string, ticket int64) connector.Delivery {
	return delivery(t, key, connector.Activity{Object: "calls", Fields: map[string]any{
		"app_id": 735264019863524, "from_line": "+14155550100", "to_line": "+14155550199",
		"call_started_at": "2026-03-14T17:02:11Z", "direction": "inbound", "completion_status": "completed",
	}, What: &connector.CRMObject{Type: "Ticket", ID: fmt.Sprint(ticket)}})
}

func note(t *testing.T, key string, ticket int64) connector.Delivery {
	return delivery(t, key, connector.Activity{Object: "tickets", Fields: map[string]any{
		"comment": map[string]any{"body": "Call from Maria Lopez (6 min)\nOutcome: Resolved"},
	}, What: &connector.CRMObject{Type: "ticket", ID: fmt.Sprint(ticket)}})
}

func deliveryError(t *testing.T, err error) *connector.DeliveryError {
	t.Helper()
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *connector.DeliveryError", err, err)
	}
	return de
}

func TestDeliver_TalkCall(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	f.CallsHonourIdempotencyKey = true
	tg, _ := newTarget(t, f, apiToken(f), 2*time.Second)
	ticket := f.AddTicket(1)
	d := talkCall(t, "genesys:1:calls", ticket)
	res, err := tg.Deliver(t.Context(), d)
	if err != nil || res.Status != 201 {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	calls := f.Calls()
	if len(calls) != 1 || fmt.Sprint(calls[0]["id"]) != res.RecordID || calls[0]["ticket_id"] != float64(ticket) {
		t.Fatalf("calls = %v, RecordID %s; want one, linked to ticket %d", calls, res.RecordID, ticket)
	}
	if k := f.Requests()[0].Key; k != d.Key {
		t.Errorf("Idempotency-Key = %q, want %q", k, d.Key)
	}
	// An answer lost after Zendesk wrote the call: the retry's
	// Idempotency-Key finds it. (net/http itself may resend a request with
	// an Idempotency-Key on a reused connection, so the first attempt may
	// already succeed.)
	d2 := talkCall(t, "genesys:2:calls", ticket)
	f.FailRequest(connectortest.RequestFault{Commit: true, Response: connectortest.Response{Reset: true}})
	if _, err := tg.Deliver(t.Context(), d2); err != nil && deliveryError(t, err).Permanent() {
		t.Fatalf("lost answer: %v, want a retry", err)
	}
	if _, err := tg.Deliver(t.Context(), d2); err != nil || len(f.Records(d2.Key)) != 1 {
		t.Errorf("retry: %v, %d calls for the key", err, len(f.Records(d2.Key)))
	}
}

func TestDeliver_PrivateCommentOnce(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	tg, _ := newTarget(t, f, Config{URL: f.URL, OAuthToken: connectortest.ZendeskOAuthToken}, 2*time.Second)
	ticket := f.AddTicket(3)
	d := note(t, "five9:42:notes", ticket)
	res, err := tg.Deliver(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	cs := f.Comments(ticket)
	last := cs[len(cs)-1]
	if len(cs) != 4 || fmt.Sprint(last["id"]) != res.RecordID || last["public"] != false ||
		last["body"] != "Call from Maria Lopez (6 min)\nOutcome: Resolved\n\nctibridge key: five9:42:notes" {
		t.Fatalf("comments %d, last %v, RecordID %s", len(cs), last, res.RecordID)
	}
	puts := 0
	for range 2 {
		again, err := tg.Deliver(t.Context(), d)
		if err != nil || again.RecordID != res.RecordID {
			t.Errorf("again: %+v, %v; want the same comment found", again, err)
		}
	}
	for _, r := range f.Requests() {
		if len(r.Body) > 0 {
			puts++
		}
	}
	if len(f.Comments(ticket)) != 4 || puts != 1 {
		t.Errorf("%d comments after %d writes, want 4 after 1", len(f.Comments(ticket)), puts)
	}
}

func TestDeliver_ConcurrentCommentsOfOneKey(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	tg, _ := newTarget(t, f, apiToken(f), 2*time.Second)
	ticket := f.AddTicket(0)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tg.Deliver(context.Background(), note(t, "k", ticket)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(f.Comments(ticket)); n != 1 {
		t.Errorf("%d comments for one key delivered 10 times at once, want 1", n)
	}
}

func TestDeliver_Rejected(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	tg, _ := newTarget(t, f, apiToken(f), 2*time.Second)
	ticket := f.AddTicket(0)
	for _, tc := range []struct {
		name string
		d    connector.Delivery
		want string // in the error
	}{
		{"no such ticket", note(t, "k2", 999), "RecordNotFound"},
		{"no ticket", delivery(t, "k3", connector.Activity{Object: "tickets", Fields: map[string]any{"body": "x"}}), "no ticket"},
		{"blank comment", delivery(t, "k4", connector.Activity{Object: "tickets", Fields: map[string]any{"id": ticket}}), "no body"},
		{"bad id", delivery(t, "k5", connector.Activity{Object: "tickets", Fields: map[string]any{"id": "12a", "body": "x"}}), "field id"},
		{"unknown object", delivery(t, "k6", connector.Activity{Object: "users"}), `object "users"`},
	} {
		_, err := tg.Deliver(t.Context(), tc.d)
		if err == nil || !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want dead with %q", tc.name, err, tc.want)
		}
	}
	if len(f.Calls()) != 0 || len(f.Comments(ticket)) != 0 {
		t.Error("a refused record was written")
	}

	// Zendesk's 422: its error, description and details, in field order.
	f.FailRequest(connectortest.RequestFault{Response: connectortest.Response{Status: 422, Body: `{"error":"RecordInvalid","description":"Record validation errors",` +
		`"details":{"to_line":[{"description":"To line: is invalid","error":"InvalidValue"}],"from_line":[{"description":"From line: cannot be blank","error":"BlankValue"}]}}`}})
	_, err := tg.Deliver(t.Context(), talkCall(t, "k7", ticket))
	want := "RecordInvalid: Record validation errors: from_line: From line: cannot be blank: to_line: To line: is invalid"
	if de := deliveryError(t, err); !de.Permanent() || de.Body != want {
		t.Errorf("422: %v (body %q), want dead with %q", err, de.Body, want)
	}
}

func TestDeliver_Throttled(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	tg, now := newTarget(t, f, apiToken(f), 2*time.Second)
	ticket := f.AddTicket(0)
	f.FailRequest(connectortest.RequestFault{Response: connectortest.Response{
		Status: 429, Header: http.Header{"Retry-After": {"93"}, "Content-Type": {"text/plain"}}, Body: "Too Many Requests",
	}})
	_, err := tg.Deliver(t.Context(), note(t, "k", ticket))
	de := deliveryError(t, err)
	if de.Permanent() || de.RetryAfter() != 93*time.Second || de.Body != "Too Many Requests" {
		t.Fatalf("429: %v (after %v), want a retry after 93 s with the plain-text body", err, de.RetryAfter())
	}
	sent := len(f.Requests())
	*now = t0.Add(90 * time.Second)
	if _, err := tg.Deliver(t.Context(), note(t, "k", ticket)); deliveryError(t, err).RetryAfter() != 3*time.Second || len(f.Requests()) != sent {
		t.Errorf("during the pause: %v", err)
	}

	// Headers that say the minute's requests are spent hold the target too.
	*now = t0.Add(time.Hour)
	f.FailRequest(connectortest.RequestFault{Method: http.MethodGet, Response: connectortest.Response{
		Status: 200, Header: http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"12"}}, Body: `{"comments":[]}`,
	}})
	if _, err := tg.Deliver(t.Context(), note(t, "k", ticket)); deliveryError(t, err).RetryAfter() != 12*time.Second {
		t.Errorf("after ratelimit-remaining 0: %v, want held for 12 s", err)
	}
	*now = now.Add(12 * time.Second)
	if _, err := tg.Deliver(t.Context(), note(t, "k", ticket)); err != nil || len(f.Comments(ticket)) != 1 {
		t.Errorf("after the pause: %v", err)
	}
}

func TestDeliver_ConflictRetries(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	tg, _ := newTarget(t, f, apiToken(f), 2*time.Second)
	ticket := f.AddTicket(0)
	f.FailRequest(connectortest.RequestFault{Method: http.MethodPut, Response: connectortest.Response{
		Status: 409, Body: `{"error":"UpdateConflict","description":"The ticket was updated by another request"}`,
	}})
	_, err := tg.Deliver(t.Context(), note(t, "k", ticket))
	if de := deliveryError(t, err); de.Permanent() || !strings.Contains(de.Body, "UpdateConflict") {
		t.Errorf("409: %v, want a retry with Zendesk's error", err)
	}
}

func TestNew_Errors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "url: required"},
		{Config{URL: "https://acme.zendesk.com"}, "email: required"},
		{Config{URL: "https://acme.zendesk.com", Email: "agent"}, "email: not"},
		{Config{URL: "https://acme.zendesk.com", Email: "a@b.c"}, "api_token: required"},
		{Config{URL: "https://acme.zendesk.com", Email: "a@b.c", APIToken: "t", OAuthToken: "o"}, "oauth_token:"},
		{Config{URL: "https://acme.zendesk.com", OAuthToken: "o\r\nX: y"}, "oauth_token:"},
	} {
		_, err := New(tc.cfg, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q…", tc.cfg, err, tc.want)
		}
	}
}

func TestSecretsStayOut(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(connectortest.ZendeskEmail + "/token:" + connectortest.ZendeskAPIToken))
	for _, cfg := range []func(*connectortest.FakeZendesk) Config{
		apiToken,
		func(f *connectortest.FakeZendesk) Config {
			return Config{URL: f.URL, OAuthToken: connectortest.ZendeskOAuthToken}
		},
	} {
		for _, status := range []int{422, 500, 200} {
			f := connectortest.NewFakeZendesk(t)
			tg, _ := newTarget(t, f, cfg(f), 2*time.Second)
			echo := connectortest.ZendeskAPIToken + " " + basic + " " + connectortest.ZendeskOAuthToken
			f.FailRequest(connectortest.RequestFault{Response: connectortest.Response{Status: status, Body: `{"error":"Echo","description":"` + echo + `"}`}})
			res, err := tg.Deliver(t.Context(), note(t, "k", f.AddTicket(0)))
			if err == nil {
				t.Fatalf("%d: delivered", status)
			}
			for _, s := range []string{err.Error(), deliveryError(t, err).Body, res.RecordID, fmt.Sprintf("%v %+v %#v", tg, tg, tg)} {
				for _, secret := range []string{connectortest.ZendeskAPIToken, basic, connectortest.ZendeskOAuthToken} {
					if strings.Contains(s, secret) && strings.Contains(tg.auth, secret) {
						t.Errorf("%d: %q shows %q", status, s, secret)
					}
				}
			}
		}
	}
}

func TestSuite(t *testing.T) {
	for _, mode := range []string{"calls", "tickets"} {
		t.Run(mode, func(t *testing.T) {
			var ticket int64
			connectortest.RunTargetSuite(t, connectortest.TargetSuite{
				Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
					f := connectortest.NewFakeZendesk(t)
					// Talk's Idempotency-Key is not documented: the suite
					// holds the calls mode to what it would give.
					f.CallsHonourIdempotencyKey = true
					ticket = f.AddTicket(2)
					tg, now := newTarget(t, f, apiToken(f), timeout)
					return f, func(ctx context.Context, key string, body []byte, attempt int) (string, error) {
						res, err := tg.Deliver(ctx, connector.Delivery{Key: key, Body: body, Attempt: attempt})
						if w, ok := err.(interface{ RetryAfter() time.Duration }); ok {
							*now = now.Add(w.RetryAfter()) // the outbox waits as asked
						}
						return res.RecordID, err
					}
				},
				Activity: func(key string) []byte {
					if mode == "calls" {
						return talkCall(t, key, ticket).Body
					}
					return note(t, key, ticket).Body
				},
				Secrets: []string{connectortest.ZendeskAPIToken},
				Skip:    map[string]string{"TokenExpired": "API tokens and OAuth tokens given in the config are not refreshed"},
			})
		})
	}
}

func TestCheck(t *testing.T) {
	f := connectortest.NewFakeZendesk(t)
	tg, _ := newTarget(t, f, apiToken(f), 2*time.Second)
	if err := tg.Check(t.Context()); err != nil {
		t.Errorf("Check = %v", err)
	}
	tg, _ = newTarget(t, f, Config{URL: f.URL, Email: connectortest.ZendeskEmail, APIToken: "wrong"}, 2*time.Second)
	if err := tg.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "Couldn't authenticate you") {
		t.Errorf("Check with a wrong token = %v", err)
	}
}
