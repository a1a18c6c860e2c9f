package salesforce

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// noWho is an activity from an inbound call that arrived with no CRM
// record.
func noWho(phone string) func(*connector.Activity) {
	return func(a *connector.Activity) { a.Who, a.What, a.Phone = nil, nil, phone }
}

func searches(fake *connectortest.Salesforce) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Path == "/search" {
			n++
		}
	}
	return n
}

func matchTarget(t *testing.T, fake *connectortest.Salesforce, multiple string) (*Target, *clock) {
	cfg := config(fake)
	cfg.MatchRules, cfg.MatchMultiple, cfg.MatchFlagField = []string{"log-call"}, multiple, "Match_Status__c"
	cfg.MatchCacheTTL = 10 * time.Minute
	tg := newTarget(t, cfg, 5*time.Second)
	clk := &clock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	tg.now = clk.Now
	return tg, clk
}

func TestCallerMatch(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	contact := fake.AddPerson("Contact", "(415) 555-0100", t0)
	tg, clk := matchTarget(t, fake, "")

	who := func(key, phone string) map[string]any {
		t.Helper()
		r, err := deliver(t, tg, key, activity(key, noWho(phone)))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return fake.Record(r.RecordID)
	}
	if rec := who("m1", "+1 415 555 0100"); rec["WhoId"] != contact || rec["Match_Status__c"] != nil {
		t.Errorf("record = %v, want WhoId %s", rec, contact)
	}
	if rec := who("m2", "+14155550100"); rec["WhoId"] != contact {
		t.Errorf("second call: WhoId %v, want %s", rec["WhoId"], contact)
	}
	if n := searches(fake); n != 1 {
		t.Errorf("%d searches for one number within match_cache_ttl, want 1", n)
	}
	clk.Add(10 * time.Minute)
	who("m3", "+14155550100")
	if n := searches(fake); n != 2 {
		t.Errorf("%d searches after match_cache_ttl, want 2", n)
	}

	if rec := who("m4", "+1 212 555 0199"); rec["WhoId"] != nil || rec["Match_Status__c"] != "no match" {
		t.Errorf("unknown number: record %v, want unlinked and flagged no match", rec)
	}
	if rec := who("m5", ""); rec["WhoId"] != nil || rec["Match_Status__c"] != "no phone number" {
		t.Errorf("no number: record %v, want unlinked and flagged", rec)
	}

	// A who from the platform is never replaced, and other rules do not
	// search.
	before := searches(fake)
	r, err := deliver(t, tg, "m6", activity("m6", func(a *connector.Activity) { a.Phone = "+1 212 555 0199" }))
	if err != nil || fake.Record(r.RecordID)["WhoId"] != contactID {
		t.Errorf("with a who: %v %v", fake.Record(r.RecordID), err)
	}
	if _, err := deliver(t, tg, "m7", activity("m7", noWho("+1 650 555 0111"), func(a *connector.Activity) { a.Rule = "log-chat" })); err != nil {
		t.Fatal(err)
	}
	if n := searches(fake) - before; n != 0 {
		t.Errorf("%d searches for a who given and a rule without caller match, want 0", n)
	}
}

func TestCallerMatchSeveral(t *testing.T) {
	for _, c := range []struct {
		multiple string
		want     func(older, newer string) any
		flag     any
	}{
		{"", func(string, string) any { return nil }, "2 matches"},
		{MatchNone, func(string, string) any { return nil }, "2 matches"},
		{MatchFirst, func(older, _ string) any { return older }, nil},
		{MatchRecent, func(_, newer string) any { return newer }, nil},
	} {
		fake := connectortest.NewSalesforce(t)
		older := fake.AddPerson("Contact", "+1 415 555 0100", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
		newer := fake.AddPerson("Lead", "415.555.0100", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		tg, _ := matchTarget(t, fake, c.multiple)
		r, err := deliver(t, tg, "s", activity("s", noWho("+14155550100")))
		if err != nil {
			t.Fatal(err)
		}
		rec := fake.Record(r.RecordID)
		if rec["WhoId"] != c.want(older, newer) || rec["Match_Status__c"] != c.flag {
			t.Errorf("match_multiple %q: WhoId %v flag %v, want %v %v", c.multiple, rec["WhoId"], rec["Match_Status__c"], c.want(older, newer), c.flag)
		}
	}
}

func TestCallerMatchErrorIsRetried(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	fake.AddPerson("Contact", "+1 415 555 0100", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	tg, _ := matchTarget(t, fake, "")
	fake.FailNext(connectortest.Fault{Kind: connectortest.ServerError})
	_, err := deliver(t, tg, "e", activity("e", noWho("+14155550100")))
	if err == nil || permanent(err) || !strings.Contains(err.Error(), "SERVER_UNAVAILABLE") {
		t.Errorf("Deliver = %v, want a retry with Salesforce's message", err)
	}
	if n := len(fake.Records("e")); n != 0 {
		t.Errorf("%d records written after a failed search, want 0", n)
	}
	if _, err := deliver(t, tg, "e", activity("e", noWho("+14155550100"))); err != nil {
		t.Errorf("retry: %v", err)
	}
}

// failSearch fails every search request as a dropped connection would.
type failSearch struct{}

func (failSearch) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/search") {
		return nil, errors.New("connection reset by peer")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestCallerMatch_ErrorHoldsNoNumber: a search that fails is retried, and
// its error, which reaches the daemon's log, does not quote the caller's
// number from the search's query.
func TestCallerMatch_ErrorHoldsNoNumber(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	cfg := config(fake)
	cfg.MatchRules = []string{"log-call"}
	tg, err := New(cfg, &http.Client{Transport: failSearch{}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = deliver(t, tg, "m1", activity("m1", noWho("+14155550142")))
	var perm interface{ Permanent() bool }
	if err == nil || (errors.As(err, &perm) && perm.Permanent()) {
		t.Fatalf("Deliver = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "4155550142") || !strings.Contains(err.Error(), "/search") {
		t.Errorf("error %q: want the search named without the caller's number", err)
	}
}
