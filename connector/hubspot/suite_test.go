package hubspot

import (
	"context"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestTargetSuite runs the conformance table every CRM target runs, with
// OAuth (so that token expiry applies) and every request checked against
// the HubSpot subset spec. Each activity is linked to a contact, so that
// a retry also re-links.
func TestTargetSuite(t *testing.T) {
	t.Run("OAuth", func(t *testing.T) { runSuite(t, oauthConfig, nil) })
	t.Run("PrivateApp", func(t *testing.T) {
		runSuite(t, privateConfig, map[string]string{"TokenExpired": "a private app's token does not expire"})
	})
}

func runSuite(t *testing.T, config func(*connectortest.HubSpot) Config, skip map[string]string) {
	var contact string
	connectortest.RunTargetSuite(t, connectortest.TargetSuite{
		Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
			f := newFake(t)
			contact = f.AddRecord("contacts", nil, time.Time{})
			tg, err := New(config(f), client(t, f.URL, timeout))
			if err != nil {
				t.Fatal(err)
			}
			return f, func(ctx context.Context, key string, body []byte, attempt int) (string, error) {
				r, err := tg.Deliver(ctx, connector.Delivery{Key: key, Body: body, Attempt: attempt})
				return r.RecordID, err
			}
		},
		Activity: func(key string) []byte {
			return activity(key, &connector.CRMObject{Type: "contact", ID: contact}, nil)
		},
		Secrets: []string{testClientSecret, testRefresh, testPrivateToken},
		Skip:    skip,
	})
}
