package dynamics

import (
	"fmt"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// BenchmarkDeliver delivers new phone calls to the fake over loopback:
// a create and a completion per call, with a cached token.
func BenchmarkDeliver(b *testing.B) {
	f := connectortest.NewFakeDataverse(b)
	tg, err := New(Config{URL: f.URL, TokenURL: f.TokenURL(), ClientID: connectortest.DataverseClientID, ClientSecret: connectortest.DataverseClientSecret}, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"object":"phonecall","fields":{"subject":"Call from Maria Lopez","directioncode":false},"who":{"type":"contact","id":"` + contactID + `"}}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := tg.Deliver(b.Context(), connector.Delivery{Key: fmt.Sprint("bench:", i), Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.Requests())-1)/float64(i), "requests/op")
}
