package dynamics

import (
	"context"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestSuite(t *testing.T) {
	connectortest.RunTargetSuite(t, connectortest.TargetSuite{
		Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
			f := connectortest.NewFakeDataverse(t)
			tg, now := newTargetTimeout(t, f, config(f), timeout)
			return f, outbox(tg, now)
		},
		Activity: func(key string) []byte {
			return activity(t, connector.Activity{Key: key, Object: "phonecall", Fields: map[string]any{"subject": key}})
		},
		Secrets: []string{connectortest.DataverseClientSecret},
	})
}

// outbox adapts tg to the suite as the outbox drives it: after a failure
// that asked for a wait, the next attempt comes that much later on the
// target's clock.
func outbox(tg *Target, now *time.Time) connectortest.DeliverFunc {
	return func(ctx context.Context, key string, body []byte, attempt int) (string, error) {
		res, err := tg.Deliver(ctx, connector.Delivery{Key: key, Body: body, Attempt: attempt})
		if w, ok := err.(interface{ RetryAfter() time.Duration }); ok {
			*now = now.Add(w.RetryAfter())
		}
		return res.RecordID, err
	}
}
