package hubspot

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestDeliver_CreatesLinkedCall(t *testing.T) {
	f := newFake(t)
	contact := f.AddRecord("contacts", nil, time.Time{})
	deal := f.AddRecord("deals", nil, time.Time{})
	tg := newTarget(t, privateConfig(f))

	body := activity("five9:1:hubspot-calls", &connector.CRMObject{Type: "Contact", ID: contact}, &connector.CRMObject{Type: "deal", ID: deal})
	res, err := deliver(t, tg, "five9:1:hubspot-calls", body, 1)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if res.Status != http.StatusCreated {
		t.Errorf("status %d, want 201 (HubSpot's create)", res.Status)
	}
	ids := f.Records("five9:1:hubspot-calls")
	if len(ids) != 1 || res.RecordID != ids[0] {
		t.Fatalf("RecordID %q, HubSpot holds %v for the key", res.RecordID, ids)
	}
	c := f.Calls()[res.RecordID]
	if got := c.Properties["hs_call_duration"]; got != "312000" {
		t.Errorf("hs_call_duration = %q, want the mapped milliseconds 312000", got)
	}
	if got := c.Properties[testIDProperty]; got != "five9:1:hubspot-calls" {
		t.Errorf("%s = %q, want the record's key", testIDProperty, got)
	}
	if _, ok := c.Properties["associations"]; ok {
		t.Error("associations sent as a property")
	}
	want := []string{"contacts/" + contact + "/194", "deals/" + deal + "/206"}
	if !slices.Equal(c.Links, want) {
		t.Errorf("links %v, want %v", c.Links, want)
	}
	if n := f.APIRequests(); n != 1 {
		t.Errorf("%d API requests, want 1 (create with its associations)", n)
	}
}

func TestDeliver_NoWhoSendsEmptyAssociations(t *testing.T) {
	// The fake answers 400 to a create without "associations", as HubSpot
	// does; the spec check fails a request without it too.
	f := newFake(t)
	tg := newTarget(t, privateConfig(f))
	res, err := deliver(t, tg, "k1", activity("k1", nil, nil), 1)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if c := f.Calls()[res.RecordID]; len(c.Links) != 0 {
		t.Errorf("call linked to %v, want nothing", c.Links)
	}
}

func TestDeliver_DateVersionedPaths(t *testing.T) {
	f := connectortest.NewHubSpot(t, connectortest.HubSpotOptions{
		ObjectsPath: "/crm/objects/2026-03", AssociationsPath: "/crm/associations/2026-03",
		IDProperty: testIDProperty, PrivateAppToken: testPrivateToken,
	})
	contact := f.AddRecord("contacts", nil, time.Time{})
	cfg := privateConfig(f)
	cfg.ObjectsPath, cfg.AssociationsPath = "/crm/objects/2026-03/", "/crm/associations/2026-03"
	tg := newTarget(t, cfg)
	who := &connector.CRMObject{Type: "contact", ID: contact}
	for attempt := 1; attempt <= 2; attempt++ { // create, then upsert and link
		if _, err := deliver(t, tg, "k1", activity("k1", who, nil), attempt); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if ids := f.Records("k1"); len(ids) != 1 {
		t.Errorf("HubSpot holds %v for the key, want one call", ids)
	}
}

// TestDeliver_RetryAfterLostAnswer is the lost answer: HubSpot stored the
// call and the connection dropped before its answer. Neither the retry
// (attempt 2: upsert) nor a fresh first attempt (after an operator's
// retry: create, 409, upsert) makes a second call, and the links are
// there.
func TestDeliver_RetryAfterLostAnswer(t *testing.T) {
	f := newFake(t)
	contact := f.AddRecord("contacts", nil, time.Time{})
	tg := newTarget(t, privateConfig(f))
	body := activity("k1", &connector.CRMObject{Type: "contact", ID: contact}, nil)

	f.FailNext(connectortest.Fault{Kind: connectortest.ResetAfterWrite})
	_, err := deliver(t, tg, "k1", body, 1)
	if err == nil || deliveryError(t, err).Permanent() {
		t.Fatalf("attempt 1 after a reset: %v, want a retryable error", err)
	}
	stored := f.Records("k1")
	if len(stored) != 1 {
		t.Fatalf("the fake holds %v, want the call it stored before the reset", stored)
	}
	for _, attempt := range []int{2, 1} {
		res, err := deliver(t, tg, "k1", body, attempt)
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if res.RecordID != stored[0] {
			t.Errorf("attempt %d: RecordID %q, want the stored call %q", attempt, res.RecordID, stored[0])
		}
	}
	if ids := f.Records("k1"); len(ids) != 1 || len(f.Calls()) != 1 {
		t.Errorf("HubSpot holds %v for the key and %d calls, want one", ids, len(f.Calls()))
	}
	if links := f.Calls()[stored[0]].Links; len(links) != 1 {
		t.Errorf("call links %v, want the contact once", links)
	}
}

func TestDeliver_Classification(t *testing.T) {
	rateLimitedDaily := func() (int, http.Header, string) { return connectortest.HubSpotRateLimited("DAILY", 0) }
	tests := []struct {
		name      string
		answer    func() (int, http.Header, string)
		permanent bool
		wait      time.Duration
		inError   string
	}{
		{"429 with Retry-After", func() (int, http.Header, string) {
			return connectortest.HubSpotRateLimited("TEN_SECONDLY_ROLLING", 7*time.Second)
		}, false, 7 * time.Second, "TEN_SECONDLY_ROLLING"},
		{"429 burst without Retry-After waits the window", func() (int, http.Header, string) {
			return connectortest.HubSpotRateLimited("TEN_SECONDLY_ROLLING", 0)
		}, false, 10 * time.Second, "ten_secondly_rolling limit"},
		{"429 daily leaves the wait to the outbox", rateLimitedDaily, false, 0, "daily limit"},
		{"423 locked waits 2 s", connectortest.HubSpotLocked, false, 2 * time.Second, "locked"},
		{"477 migrating waits its Retry-After", func() (int, http.Header, string) {
			return connectortest.HubSpotMigrating(30 * time.Second)
		}, false, 30 * time.Second, "migrated"},
		{"503", func() (int, http.Header, string) {
			return 503, nil, connectortest.HubSpotError("INTERNAL_ERROR", "unavailable")
		}, false, 0, "unavailable"},
		{"400 validation is dead with HubSpot's message", func() (int, http.Header, string) {
			return 400, nil, connectortest.HubSpotError("VALIDATION_ERROR", `Property "hs_call_direction" value "SIDEWAYS" is not valid`)
		}, true, 0, "SIDEWAYS"},
		{"403 missing scopes is dead", func() (int, http.Header, string) {
			return 403, nil, connectortest.HubSpotError("MISSING_SCOPES", "This app hasn't been granted all required scopes")
		}, true, 0, "required scopes"},
		{"404 is dead", func() (int, http.Header, string) {
			return 404, nil, connectortest.HubSpotError("OBJECT_NOT_FOUND", "resource not found")
		}, true, 0, "OBJECT_NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tg := newTarget(t, privateConfig(f))
			f.FailNextStatus(tc.answer())
			res, err := deliver(t, tg, "k1", activity("k1", nil, nil), 1)
			if err == nil {
				t.Fatal("delivered, want an error")
			}
			de := deliveryError(t, err)
			if de.Permanent() != tc.permanent || de.RetryAfter() != tc.wait {
				t.Errorf("permanent %v after %v, want %v after %v: %v", de.Permanent(), de.RetryAfter(), tc.permanent, tc.wait, err)
			}
			if !strings.Contains(err.Error(), tc.inError) {
				t.Errorf("error %q does not say %q", err, tc.inError)
			}
			if st, _, _ := tc.answer(); res.Status != st {
				t.Errorf("Result.Status %d, want %d", res.Status, st)
			}
			if len(f.Calls()) != 0 {
				t.Error("the fake stored a call it refused")
			}
		})
	}
}

func TestDeliver_MalformedAnswerIsRetried(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, privateConfig(f))
	f.FailNext(connectortest.Fault{Kind: connectortest.Malformed, Message: `{"id": "10`})
	_, err := deliver(t, tg, "k1", activity("k1", nil, nil), 1)
	if err == nil || deliveryError(t, err).Permanent() || deliveryError(t, err).Body != `{"id": "10` {
		t.Fatalf("truncated JSON answer: %v, want retryable with the body kept", err)
	}
	if res, err := deliver(t, tg, "k1", activity("k1", nil, nil), 2); err != nil || res.RecordID != f.Records("k1")[0] {
		t.Errorf("retry: %v, %+v; want the stored call %v", err, res, f.Records("k1"))
	}
}

func TestDeliver_BadRecordsAreDead(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, privateConfig(f))
	withFields := func(fields map[string]any) []byte {
		return []byte(`{"key":"k1","rule":"r1","object":"calls","fields":` + mustJSON(fields) + `}`)
	}
	tests := []struct {
		name, body, want string
	}{
		{"no hs_timestamp", string(withFields(map[string]any{"hs_call_title": "x"})), `rule "r1": field hs_timestamp: required`},
		{"list value", string(withFields(map[string]any{"hs_timestamp": "1", "hs_call_title": []any{"a"}})), "field hs_call_title: HubSpot property values are text"},
		{"who of another CRM", `{"key":"k1","rule":"r1","fields":{"hs_timestamp":"1"},"who":{"type":"Lead","id":"00Q1"}}`, `who: type "Lead" cannot be linked`},
		{"what id not HubSpot's", `{"key":"k1","rule":"r1","fields":{"hs_timestamp":"1"},"what":{"type":"deal","id":"006x"}}`, `what: deal id "006x" is not a HubSpot record id`},
		{"another object", `{"key":"k1","rule":"r1","object":"Task","fields":{"hs_timestamp":"1"}}`, `object "Task": the hubspot target writes calls only`},
		{"bad associations field", string(withFields(map[string]any{"hs_timestamp": "1", "associations": []any{map[string]any{"to": map[string]any{"id": "5"}, "types": []any{map[string]any{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}}}}})), "field associations: item 1"},
		{"not JSON", `{"key":`, "stored activity is not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := deliver(t, tg, "k1", []byte(tc.body), 1)
			if err == nil || !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want permanent %q", err, tc.want)
			}
		})
	}
	if n := f.APIRequests(); n != 0 {
		t.Errorf("%d requests sent for records that cannot be sent", n)
	}
}

func TestDeliver_AssociationsField(t *testing.T) {
	// A rule's "associations" field (the webhook-era example mapping) is
	// taken out of the properties and merged with who, without duplicates.
	f := newFake(t)
	contact := f.AddRecord("contacts", nil, time.Time{})
	company := f.AddRecord("companies", nil, time.Time{})
	tg := newTarget(t, privateConfig(f))
	link := func(id string, typeID int) map[string]any {
		return map[string]any{"to": map[string]any{"id": id}, "types": []any{map[string]any{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": typeID}}}
	}
	body := `{"key":"k1","rule":"r1","fields":` + mustJSON(map[string]any{
		"hs_timestamp": "1764694800000", "associations": []any{link(contact, 194), link(company, 182)},
	}) + `,"who":{"type":"contact","id":"` + contact + `"}}`
	res, err := deliver(t, tg, "k1", []byte(body), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"contacts/" + contact + "/194", "companies/" + company + "/182"}
	if got := f.Calls()[res.RecordID].Links; !slices.Equal(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
}

func TestNew_ConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	base := Config{Token: "pat-x", IDProperty: "k"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no credentials", func(c *Config) { c.Token = "" }, "token: required"},
		{"both", func(c *Config) { c.RefreshToken = "r" }, "token: set either"},
		{"refresh without client", func(c *Config) { c.Token, c.RefreshToken = "", "r" }, "client_id: required"},
		{"refresh without secret", func(c *Config) { c.Token, c.RefreshToken, c.ClientID = "", "r", "id" }, "client_secret: required"},
		{"unreadable token file", func(c *Config) { c.Token, c.TokenFile = "", filepath.Join(dir, "missing") }, "token_file: cannot read"},
		{"empty secret file", func(c *Config) {
			c.Token, c.RefreshToken, c.ClientID, c.ClientSecretFile = "", "r", "id", empty
		}, "client_secret_file: "},
		{"token and token file", func(c *Config) { c.TokenFile = empty }, "token: set either token or token_file"},
		{"no id property", func(c *Config) { c.IDProperty = "" }, "id_property: required"},
		{"bad id property", func(c *Config) { c.IDProperty = "Call Key" }, "id_property: "},
		{"bad base URL", func(c *Config) { c.BaseURL = "api.hubapi.com" }, "base_url: "},
		{"bad objects path", func(c *Config) { c.ObjectsPath = "crm/v3/objects" }, "objects_path: "},
		{"bad match choice", func(c *Config) { c.Match = &MatchConfig{Multiple: "all"} }, "match.multiple: "},
		{"bad token URL", func(c *Config) {
			c.Token, c.RefreshToken, c.ClientID, c.ClientSecret, c.TokenURL = "", "r", "id", "s", "ftp://x"
		}, "token_url: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := New(cfg, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("pat-from-file\n"), 0o600)
	tg, err := New(Config{TokenFile: tokenFile, IDProperty: "k"}, nil)
	if err != nil || tg.auth.static != "pat-from-file" {
		t.Errorf("token_file: %v, want the file's token", err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
