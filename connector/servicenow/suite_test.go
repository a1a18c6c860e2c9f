package servicenow

import (
	"context"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestSuite(t *testing.T) {
	for _, mode := range []string{"basic", "oauth", "work notes"} {
		t.Run(mode, func(t *testing.T) {
			var incident string // for work notes
			suite := connectortest.TargetSuite{
				Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
					f := connectortest.NewFakeServiceNow(t)
					incident = f.AddRow("incident", map[string]string{"short_description": "Printer on fire"})
					cfg := basic(f)
					if mode == "oauth" {
						cfg.ClientID, cfg.ClientSecret = connectortest.ServiceNowClientID, connectortest.ServiceNowClientSecret
					}
					tg, now := newTargetTimeout(t, f, cfg, timeout)
					return f, outbox(tg, now)
				},
				Activity: func(key string) []byte {
					if mode == "work notes" {
						return workNote(t, key, incident).Body
					}
					return call(t, key).Body
				},
				Secrets: []string{connectortest.ServiceNowPassword, connectortest.ServiceNowClientSecret},
			}
			if mode != "oauth" {
				suite.Skip = map[string]string{"TokenExpired": "basic auth has no tokens"}
			}
			connectortest.RunTargetSuite(t, suite)
		})
	}
}

// outbox adapts tg to the suite as the outbox drives it (see the
// dynamics package's).
func outbox(tg *Target, now *time.Time) connectortest.DeliverFunc {
	return func(ctx context.Context, key string, body []byte, attempt int) (string, error) {
		res, err := tg.Deliver(ctx, connector.Delivery{Key: key, Body: body, Attempt: attempt})
		if w, ok := err.(interface{ RetryAfter() time.Duration }); ok {
			*now = now.Add(w.RetryAfter())
		}
		return res.RecordID, err
	}
}
