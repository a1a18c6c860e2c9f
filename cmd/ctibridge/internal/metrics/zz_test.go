package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/outbox"
)

func TestZZ(t *testing.T) {
	m := metrics.New(sources(openDB(t)))
	m.Attempt("crm", outbox.Attempt{Outcome: outbox.OutcomeDelivered, Latency: 30 * time.Millisecond})
	for k := range scrape(t, m.Handler()) {
		if strings.HasPrefix(k, "ctibridge_delivery_attempt_sec") {
			t.Log(k)
		}
	}
}
