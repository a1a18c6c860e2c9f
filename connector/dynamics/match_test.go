package dynamics

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// unlinkedCall is an inbound call of rule "calls" with the customer's
// phone and no who.
func unlinkedCall(t *testing.T, key, phone string) connector.Delivery {
	return connector.Delivery{Key: key, Body: activity(t, connector.Activity{
		Rule: "calls", Object: "phonecall", Phone: phone,
		Fields: map[string]any{"subject": "Call", "directioncode": false},
	})}
}

// lookups counts the caller lookups f received.
func lookups(f *connectortest.FakeDataverse) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Header.Get("OData-Version") != "" && len(r.Body) == 0 && r.Header.Get("If-Match") == "" && r.Header.Get("If-None-Match") == "" {
			n++
		}
	}
	return n
}

func TestMatchCaller(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	cfg := config(f)
	cfg.MatchRules = []string{"calls"}
	tg, now := newTarget(t, f, cfg)
	maria := f.AddPerson("contacts", map[string]string{"mobilephone": "+14155550100", "modifiedon": "2026-01-01T00:00:00Z"})
	acme := f.AddPerson("accounts", map[string]string{"telephone1": "4155550177"})
	f.AddPerson("contacts", map[string]string{"telephone1": "+14155550188", "modifiedon": "2026-01-01T00:00:00Z"})
	f.AddPerson("contacts", map[string]string{"telephone2": "14155550188", "modifiedon": "2026-02-01T00:00:00Z"})

	for _, tc := range []struct {
		key, phone string
		want       string // the regarding bind, "" for none
	}{
		{"c1", "+14155550100", "/contacts(" + maria + ")"},
		{"c2", "+1 415 555 0177", "/accounts(" + acme + ")"}, // no contact: the account, by its national digits
		{"c3", "+14155550188", ""},                           // two contacts: none
		{"c4", "+14155550199", ""},                           // nobody
		{"c5", "", ""},                                       // no phone
	} {
		if _, err := tg.Deliver(t.Context(), unlinkedCall(t, tc.key, tc.phone)); err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		rec := f.Record("phonecalls", ActivityID(tc.key))
		var got string
		for k, v := range rec {
			if strings.HasPrefix(k, "regardingobjectid_") {
				got = v.(string)
			}
		}
		if got != tc.want {
			t.Errorf("%s (%q): regarding %q, want %q", tc.key, tc.phone, got, tc.want)
		}
	}
	if p, _ := json.Marshal(f.Record("phonecalls", ActivityID("c1"))["phonecall_activity_parties"]); !strings.Contains(string(p), maria) {
		t.Errorf("the matched contact is not the call's sender: %s", p)
	}

	// The answer for a number is cached, then asked again.
	before := lookups(f)
	if _, err := tg.Deliver(t.Context(), unlinkedCall(t, "c6", "+14155550100")); err != nil || lookups(f) != before {
		t.Errorf("cached number: %v, %d lookups", err, lookups(f)-before)
	}
	*now = now.Add(DefaultMatchCacheTTL)
	if _, err := tg.Deliver(t.Context(), unlinkedCall(t, "c7", "+14155550100")); err != nil || lookups(f) != before+1 {
		t.Errorf("after the TTL: %v, %d lookups, want 1", err, lookups(f)-before)
	}

	// Another rule, or an activity with a who, is not matched.
	before = lookups(f)
	other := connector.Delivery{Key: "o1", Body: activity(t, connector.Activity{Rule: "other", Object: "phonecall", Phone: "+14155550100", Fields: map[string]any{"subject": "x"}})}
	if _, err := tg.Deliver(t.Context(), other); err != nil || lookups(f) != before {
		t.Errorf("another rule: %v, %d lookups", err, lookups(f)-before)
	}
}

func TestMatchCaller_Recent(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	cfg := config(f)
	cfg.MatchRules, cfg.MatchMultiple = []string{"*"}, MatchRecent
	tg, _ := newTarget(t, f, cfg)
	f.AddPerson("contacts", map[string]string{"telephone1": "+14155550188", "modifiedon": "2026-01-01T00:00:00Z"})
	newer := f.AddPerson("contacts", map[string]string{"telephone2": "14155550188", "modifiedon": "2026-02-01T00:00:00Z"})
	if _, err := tg.Deliver(t.Context(), unlinkedCall(t, "k", "+14155550188")); err != nil {
		t.Fatal(err)
	}
	if got := f.Record("phonecalls", ActivityID("k"))["regardingobjectid_contact_phonecall@odata.bind"]; got != "/contacts("+newer+")" {
		t.Errorf("regarding %v, want the last modified contact %s", got, newer)
	}
}

func TestMatchCaller_LookupFails(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	cfg := config(f)
	cfg.MatchRules = []string{"*"}
	tg, _ := newTarget(t, f, cfg)
	f.FailRequest(connectortest.RequestFault{Method: http.MethodGet, Path: connectortest.DataversePath + "/contacts", Response: connectortest.Response{
		Status: 503, Body: `{"error":{"code":"0x80040216","message":"An unexpected error occurred."}}`,
	}})
	_, err := tg.Deliver(t.Context(), unlinkedCall(t, "k", "+14155550100"))
	if de := deliveryError(t, err); de.Permanent() || f.Count("phonecalls") != 0 {
		t.Errorf("lookup 503: %v, %d calls; want a retry before anything is written", err, f.Count("phonecalls"))
	}
	if _, err := tg.Deliver(t.Context(), unlinkedCall(t, "k", "+14155550100")); err != nil {
		t.Error(err)
	}
}

func TestNew_MatchErrors(t *testing.T) {
	cfg := Config{URL: "https://acme.crm.dynamics.com", TenantID: "t", ClientID: "id", ClientSecret: "s", MatchRules: []string{"*"}}
	cfg.MatchMultiple = "first"
	if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "match_multiple:") {
		t.Errorf("match_multiple first: %v", err)
	}
	cfg.MatchMultiple, cfg.MatchCacheTTL = "", -time.Second
	if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "match_cache_ttl:") {
		t.Errorf("negative TTL: %v", err)
	}
}
