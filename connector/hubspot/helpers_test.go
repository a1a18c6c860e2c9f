package hubspot

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/connector/connectortest/spectest"
)

// Credentials of the fakes.
const (
	testPrivateToken = "pat-na1-11111111-2222-3333-4444-555555555555"
	testClientID     = "client-6a1f"
	testClientSecret = "client-secret-9c0d7e"
	testRefresh      = "refresh-token-77ab21"
	testIDProperty   = "ctibridge_key"
)

// client returns an http.Client whose requests are checked against the
// HubSpot subset spec, served at the fake's base URL.
func client(tb testing.TB, base string, timeout time.Duration) *http.Client {
	return spectest.Client(tb, "testdata/hubspot-subset.yaml", base, timeout)
}

// newFake starts a HubSpot fake that accepts both the private app token
// and the OAuth client.
func newFake(tb testing.TB) *connectortest.HubSpot {
	return connectortest.NewHubSpot(tb, connectortest.HubSpotOptions{
		IDProperty:      testIDProperty,
		PrivateAppToken: testPrivateToken,
		ClientID:        testClientID, ClientSecret: testClientSecret, RefreshToken: testRefresh,
	})
}

// privateConfig and oauthConfig are configs for fake f.
func privateConfig(f *connectortest.HubSpot) Config {
	return Config{Token: testPrivateToken, BaseURL: f.URL, IDProperty: testIDProperty}
}

func oauthConfig(f *connectortest.HubSpot) Config {
	return Config{
		RefreshToken: testRefresh, ClientID: testClientID, ClientSecret: testClientSecret,
		TokenURL: f.URL + "/oauth/v1/token", BaseURL: f.URL, IDProperty: testIDProperty,
	}
}

func newTarget(tb testing.TB, cfg Config) *Target {
	tb.Helper()
	tg, err := New(cfg, client(tb, cfg.BaseURL, 2*time.Second))
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return tg
}

// activity returns the JSON of a call activity with key, linked to who
// and what when they are not nil.
func activity(key string, who, what *connector.CRMObject) []byte {
	a := connector.Activity{
		Key: key, Rule: "hubspot-calls", Target: "hubspot", Object: "calls", Platform: "five9", InteractionID: "ia-" + key,
		Fields: map[string]any{
			"hs_timestamp":        "1764694800000",
			"hs_call_title":       "Inbound call from +14155550142",
			"hs_call_duration":    "312000",
			"hs_call_direction":   "INBOUND",
			"hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
		},
		Who: who, What: what,
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return b
}

func deliver(tb testing.TB, tg *Target, key string, body []byte, attempt int) (connector.Result, error) {
	tb.Helper()
	return tg.Deliver(tb.Context(), connector.Delivery{Key: key, Body: body, Attempt: attempt})
}

// deliveryError returns err as a *connector.DeliveryError, failing the
// test when it is not one.
func deliveryError(tb testing.TB, err error) *connector.DeliveryError {
	tb.Helper()
	de, ok := err.(*connector.DeliveryError)
	if !ok {
		tb.Fatalf("error %v is %T, want *connector.DeliveryError", err, err)
	}
	return de
}
