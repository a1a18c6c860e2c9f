package zendesk

import (
	"fmt"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// BenchmarkDeliverComment adds new comments to one ticket of the fake over
// loopback: a read of the newest comments and an update per record.
func BenchmarkDeliverComment(b *testing.B) {
	f := connectortest.NewFakeZendesk(b)
	tg, err := New(Config{URL: f.URL, Email: connectortest.ZendeskEmail, APIToken: connectortest.ZendeskAPIToken}, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(fmt.Sprintf(`{"object":"tickets","fields":{"body":"Call from Maria Lopez"},"what":{"type":"ticket","id":"%d"}}`, f.AddTicket(0)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := tg.Deliver(b.Context(), connector.Delivery{Key: fmt.Sprint("bench:", i), Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.Requests()))/float64(i), "requests/op")
}
