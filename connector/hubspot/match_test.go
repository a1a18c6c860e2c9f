package hubspot

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// callerActivity is a call with no who, from phone.
func callerActivity(key, phone string) []byte {
	var a connector.Activity
	json.Unmarshal(activity(key, nil, nil), &a)
	a.Phone = phone
	b, _ := json.Marshal(a)
	return b
}

func TestCallerMatch(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)
	f := newFake(t)
	older := f.AddRecord("contacts", map[string]string{"phone": "+14155550100"}, t0.Add(time.Hour))
	newer := f.AddRecord("contacts", map[string]string{"mobilephone": "+14155550100"}, t0.Add(2*time.Hour))
	single := f.AddRecord("contacts", map[string]string{"phone": "+14155550142"}, t0)

	tests := []struct {
		name     string
		multiple string
		phone    string
		links    []string
		flag     string
	}{
		{"one match", "", "+14155550142", []string{"contacts/" + single + "/194"}, ""},
		{"no match", "", "+14155559999", nil, FlagNoMatch},
		{"several, most recently modified", MatchRecent, "+14155550100", []string{"contacts/" + newer + "/194"}, ""},
		{"several, first", MatchFirst, "+14155550100", []string{"contacts/" + older + "/194"}, ""},
		{"several, none", MatchNone, "+14155550100", nil, FlagSeveral},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := privateConfig(f)
			cfg.Match = &MatchConfig{Multiple: tc.multiple, FlagProperty: "ctibridge_match"}
			tg := newTarget(t, cfg)
			key := tc.name
			res, err := deliver(t, tg, key, callerActivity(key, tc.phone), 1)
			if err != nil {
				t.Fatal(err)
			}
			c := f.Calls()[res.RecordID]
			if !slices.Equal(c.Links, tc.links) || c.Properties["ctibridge_match"] != tc.flag {
				t.Errorf("call %d links %v, flag %q; want %v, %q", i, c.Links, c.Properties["ctibridge_match"], tc.links, tc.flag)
			}
		})
	}
}

func TestCallerMatch_CachesAndRetries(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)
	f := newFake(t)
	contact := f.AddRecord("contacts", map[string]string{"phone": "+14155550142"}, t0)
	cfg := privateConfig(f)
	cfg.Match = &MatchConfig{CacheFor: time.Minute}
	tg := newTarget(t, cfg)
	now := t0
	tg.now = func() time.Time { return now }

	requests := func(key string) int {
		t.Helper()
		before := f.APIRequests()
		res, err := deliver(t, tg, key, callerActivity(key, "+14155550142"), 1)
		if err != nil {
			t.Fatal(err)
		}
		if links := f.Calls()[res.RecordID].Links; !slices.Equal(links, []string{"contacts/" + contact + "/194"}) {
			t.Errorf("%s: links %v, want the contact", key, links)
		}
		return f.APIRequests() - before
	}
	if n := requests("k1"); n != 2 {
		t.Errorf("first call from the number: %d requests, want search and create", n)
	}
	now = t0.Add(59 * time.Second)
	if n := requests("k2"); n != 1 {
		t.Errorf("within cache_for: %d requests, want create only", n)
	}
	now = t0.Add(time.Minute)
	if n := requests("k3"); n != 2 {
		t.Errorf("after cache_for: %d requests, want search again", n)
	}

	// A search HubSpot throttles is retried like any other request, after
	// HubSpot's wait; nothing is created meanwhile.
	before := len(f.Calls())
	f.FailNextStatus(connectortest.HubSpotRateLimited("TEN_SECONDLY_ROLLING", 4*time.Second))
	_, err := deliver(t, tg, "k4", callerActivity("k4", "+14155550199"), 1)
	if err == nil || deliveryError(t, err).Permanent() || deliveryError(t, err).RetryAfter() != 4*time.Second {
		t.Errorf("throttled search: %v, want retryable after 4s", err)
	}
	if len(f.Calls()) != before {
		t.Error("a call was created without the match")
	}

	// With a who, no search at all.
	before = f.APIRequests()
	if _, err := deliver(t, newTarget(t, privateConfig(f)), "k5",
		activity("k5", &connector.CRMObject{Type: "contact", ID: contact}, nil), 1); err != nil {
		t.Fatal(err)
	}
	if n := f.APIRequests() - before; n != 1 {
		t.Errorf("a call with a who: %d requests, want 1", n)
	}
}
