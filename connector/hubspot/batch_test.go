package hubspot

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// batch returns n deliveries, linked in turn to contact and to company.
func batch(n int, contact, company string) []connector.Delivery {
	ds := make([]connector.Delivery, n)
	for i := range ds {
		key := fmt.Sprintf("five9:%d:hubspot-calls", i)
		who := &connector.CRMObject{Type: "contact", ID: contact}
		if i%2 == 1 {
			who = &connector.CRMObject{Type: "company", ID: company}
		}
		ds[i] = connector.Delivery{Key: key, Body: activity(key, who, nil), Attempt: 1}
	}
	return ds
}

func TestDeliverBatch(t *testing.T) {
	f := newFake(t)
	contact := f.AddRecord("contacts", nil, time.Time{})
	company := f.AddRecord("companies", nil, time.Time{})
	tg := newTarget(t, privateConfig(f))
	ds := batch(250, contact, company)
	ds[7].Body = []byte(`{"key":"bad","rule":"r1","fields":{"hs_call_title":"no timestamp"}}`)

	check := func(round int, results []connector.BatchResult) {
		t.Helper()
		if len(results) != len(ds) {
			t.Fatalf("round %d: %d results for %d deliveries", round, len(results), len(ds))
		}
		for i, r := range results {
			if i == 7 {
				if r.Err == nil || !deliveryError(t, r.Err).Permanent() {
					t.Errorf("round %d: the record without hs_timestamp: %v, want dead", round, r.Err)
				}
				continue
			}
			ids := f.Records(ds[i].Key)
			if r.Err != nil || len(ids) != 1 || r.Result.RecordID != ids[0] {
				t.Fatalf("round %d, record %d: %+v, HubSpot holds %v", round, i, r, ids)
			}
		}
	}
	check(1, tg.DeliverBatch(t.Context(), ds))
	// 3 upserts of 100, 100 and 49, and per upsert one link request per
	// type of record linked.
	if n := f.APIRequests(); n != 9 {
		t.Errorf("%d API requests for 249 records, want 9", n)
	}
	// The whole batch again (as after a crash before the outbox stored the
	// results): the same calls, no second ones.
	check(2, tg.DeliverBatch(t.Context(), ds))
	if got := len(f.Calls()); got != 249 {
		t.Errorf("HubSpot holds %d calls, want 249", got)
	}
	for _, c := range f.Calls() {
		if len(c.Links) != 1 {
			t.Fatalf("call %s links %v, want one record", c.ID, c.Links)
		}
	}
}

func TestDeliverBatch_FailuresPerRecord(t *testing.T) {
	f := newFake(t)
	contact := f.AddRecord("contacts", nil, time.Time{})
	company := f.AddRecord("companies", nil, time.Time{})
	tg := newTarget(t, privateConfig(f))

	// A throttled upsert fails every record it carried, retryably.
	ds := batch(4, contact, company)
	f.FailNextStatus(connectortest.HubSpotRateLimited("TEN_SECONDLY_ROLLING", 3*time.Second))
	for i, r := range tg.DeliverBatch(t.Context(), ds) {
		if r.Err == nil || deliveryError(t, r.Err).Permanent() || deliveryError(t, r.Err).RetryAfter() != 3*time.Second {
			t.Errorf("record %d of a throttled batch: %v, want retryable after 3s", i, r.Err)
		}
	}

	// A link HubSpot refuses (a contact deleted since) fails only its own
	// record, with HubSpot's message; the others are delivered.
	ds[2].Body = activity(ds[2].Key, &connector.CRMObject{Type: "contact", ID: "999999"}, nil)
	results := tg.DeliverBatch(t.Context(), ds)
	for i, r := range results {
		switch {
		case i == 2:
			if r.Err == nil || !deliveryError(t, r.Err).Permanent() || deliveryError(t, r.Err).Body != "No contacts with ID 999999 exist" {
				t.Errorf("record linked to a missing contact: %v, want dead with HubSpot's message", r.Err)
			}
		case r.Err != nil:
			t.Errorf("record %d: %v, want delivered", i, r.Err)
		}
	}
	if n := f.APIRequests(); n != 1+1+2+2 {
		// throttled upsert; upsert; contacts link (fails) and one per
		// contact record; companies link.
		t.Errorf("%d API requests, want 6", n)
	}
}

func TestDeliverBatch_ThrottledLinks(t *testing.T) {
	// Calls written, their link request throttled: each record fails
	// retryably with the call's id kept, without a request per record;
	// the retry links them.
	f := newFake(t)
	contact := f.AddRecord("contacts", nil, time.Time{})
	tg := newTarget(t, privateConfig(f))
	ds := batch(3, contact, contact)
	for i := range ds {
		ds[i].Body = activity(ds[i].Key, &connector.CRMObject{Type: "contact", ID: contact}, nil)
	}
	status, header, body := connectortest.HubSpotRateLimited("TEN_SECONDLY_ROLLING", 2*time.Second)
	f.FailNextStatusOn("/batch/create", status, header, body)
	for i, r := range tg.DeliverBatch(t.Context(), ds) {
		if r.Err == nil || deliveryError(t, r.Err).Permanent() || r.Result.RecordID == "" {
			t.Errorf("record %d: %+v, want retryable with the call's id", i, r)
		}
	}
	if n := f.APIRequests(); n != 2 {
		t.Errorf("%d API requests, want 2 (upsert, throttled link)", n)
	}
	for i, r := range tg.DeliverBatch(t.Context(), ds) {
		if r.Err != nil || len(f.Calls()[r.Result.RecordID].Links) != 1 {
			t.Errorf("retry of record %d: %v, links %v", i, r.Err, f.Calls()[r.Result.RecordID].Links)
		}
	}
	if len(f.Calls()) != 3 {
		t.Errorf("HubSpot holds %d calls, want 3", len(f.Calls()))
	}
}

// BenchmarkDeliverBatch drains 10,000 call records, each linked to a
// contact, into the HubSpot fake in batches of MaxBatch, and reports the
// records written per API request and per second.
func BenchmarkDeliverBatch(b *testing.B) {
	const records = 10000
	f := newFake(b)
	contact := f.AddRecord("contacts", nil, time.Time{})
	tg, err := New(privateConfig(f), &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ds := batch(records, contact, contact)
	for i := range ds {
		ds[i].Body = activity(ds[i].Key, &connector.CRMObject{Type: "contact", ID: contact}, nil)
	}
	b.ResetTimer()
	start, requests := time.Now(), f.APIRequests()
	for range b.N {
		for at := 0; at < records; at += MaxBatch {
			for _, r := range tg.DeliverBatch(b.Context(), ds[at:at+MaxBatch]) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(records*b.N)/float64(f.APIRequests()-requests), "records/request")
	b.ReportMetric(float64(records*b.N)/elapsed.Seconds(), "records/s")
}
