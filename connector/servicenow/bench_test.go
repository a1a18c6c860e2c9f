package servicenow

import (
	"fmt"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// BenchmarkDeliver inserts new rows into the fake over loopback: a lookup
// and an insert per record, with basic auth.
func BenchmarkDeliver(b *testing.B) {
	f := connectortest.NewFakeServiceNow(b)
	tg, err := New(Config{URL: f.URL, Username: connectortest.ServiceNowUser, Password: connectortest.ServiceNowPassword, Table: "incident"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"fields":{"short_description":"Call from +14155550100","contact_type":"phone"}}`)
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
